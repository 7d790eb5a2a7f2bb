"""The vec0 table: creating it, and rewriting it densely in place.

vec0 keeps vectors in blocks of 1,024 slots. A deleted vector frees its slot only for the
newest block (sqlite-vec issues #184 and #185: older blocks keep their holes), so an index
that keeps deleting and adding vectors grows although it holds no more of them.
:func:`rewrite` copies the live rows out (to a temporary table), drops the table and inserts
them again in rowid order, batch by batch: no more blocks than the rows need, and no table is
held in memory. Rowids and codes stay the same, so readers (and the daemon's in-memory copy)
see no change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from codesearch.store.base import VEC_TABLE
from codesearch.store.quant import column

VEC_BLOCK = 1024  # vec0's default chunk_size: slots allocated at a time
_ROWS = 2000  # rows moved per batch


def create(conn: Any, dim: int) -> None:
    conn.execute(f"CREATE VIRTUAL TABLE {VEC_TABLE} USING vec0({column(dim)})")


def blocks(conn: Any) -> int:
    """How many blocks of :data:`VEC_BLOCK` slots the table has allocated."""
    return int(conn.execute(f"SELECT count(*) FROM {VEC_TABLE}_chunks").fetchone()[0])


def wasted_blocks(conn: Any) -> int:
    """Blocks beyond what the live rows need (holes left by deletes)."""
    (rows,) = conn.execute(f"SELECT count(*) FROM {VEC_TABLE}_rowids").fetchone()
    return blocks(conn) - -(-int(rows) // VEC_BLOCK)


def rewrite(conn: Any, dim: int, convert: Callable[[bytes], bytes] | None = None) -> None:
    """Rewrite the table densely (inside the caller's transaction); ``convert`` maps each
    stored blob to the int8 codes to store (a table of another format: migration 5)."""
    conn.execute("DROP TABLE IF EXISTS temp.vec_copy")
    conn.execute(f"CREATE TEMP TABLE vec_copy AS SELECT rowid AS id, embedding FROM {VEC_TABLE}")
    conn.execute(f"DROP TABLE {VEC_TABLE}")
    create(conn, dim)
    last = -(2**63)
    while rows := conn.execute(
        "SELECT id, embedding FROM temp.vec_copy WHERE id > ? ORDER BY id LIMIT ?",
        (last, _ROWS),
    ).fetchall():
        conn.executemany(
            f"INSERT INTO {VEC_TABLE}(rowid, embedding) VALUES (?, vec_int8(?))",
            [(rid, convert(blob) if convert else blob) for rid, blob in rows],
        )
        last = rows[-1][0]
    conn.execute("DROP TABLE temp.vec_copy")
