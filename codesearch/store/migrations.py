"""Numbered schema migrations, tracked with ``PRAGMA user_version``.

Migration ``n`` (1-based) is ``MIGRATIONS[n - 1]``: a tuple of SQL statements applied in one
transaction together with ``PRAGMA user_version = n``. Never edit a released migration;
append a new one. The vec0 table is not here: its dimension is known only when the store is
configured with a model (see ``Store.configure``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from codesearch.store.base import VEC_TABLE
from codesearch.store.quant import column, quantise
from codesearch.store.sql import pack_body

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the initial schema
    (
        """CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
        """CREATE TABLE files (
            path TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            content_hash TEXT NOT NULL,
            indexed_at INTEGER NOT NULL
        )""",
        """CREATE TABLE vectors (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            hash TEXT NOT NULL UNIQUE,
            last_used INTEGER NOT NULL
        )""",
        "CREATE INDEX vectors_last_used ON vectors(last_used)",
        """CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL REFERENCES files(path) ON DELETE CASCADE,
            language TEXT NOT NULL,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            start_line INTEGER NOT NULL,
            end_line INTEGER NOT NULL,
            text TEXT NOT NULL,
            header TEXT NOT NULL,
            hash TEXT NOT NULL,
            vector_id INTEGER NOT NULL REFERENCES vectors(id)
        )""",
        "CREATE INDEX chunks_path ON chunks(path)",
        "CREATE INDEX chunks_hash ON chunks(hash)",
        "CREATE INDEX chunks_vector ON chunks(vector_id)",
        # Contentless: the text lives in `chunks`; rowid = chunks.id.
        """CREATE VIRTUAL TABLE chunks_fts USING fts5(
            name, path, body,
            content = '', contentless_delete = 1,
            tokenize = 'porter unicode61'
        )""",
        # Also fires for rows removed by ON DELETE CASCADE from `files`.
        """CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
            DELETE FROM chunks_fts WHERE rowid = old.id;
        END""",
    ),
    # 2: the task each vector was embedded for ("" for backends without tasks, and for every
    # vector written before tasks existed: their keys are the bare content hashes)
    (
        "ALTER TABLE vectors ADD COLUMN task TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX vectors_task ON vectors(task)",
    ),
    # 3: pictures. A picture chunk's identity and size (JSON, "" for text chunks), and the
    # references from documents to pictures (their alt text and section describe the picture)
    (
        "ALTER TABLE chunks ADD COLUMN media TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE refs (
            doc TEXT NOT NULL REFERENCES files(path) ON DELETE CASCADE,
            target TEXT NOT NULL,
            alt TEXT NOT NULL,
            context TEXT NOT NULL,
            line INTEGER NOT NULL,
            section TEXT NOT NULL
        )""",
        "CREATE INDEX refs_doc ON refs(doc)",
        "CREATE INDEX refs_target ON refs(target)",
    ),
    # 4: a part of a split definition knows the whole definition's lines (0: a whole chunk),
    # so that search reports the definition and the part as the lines that matched
    (
        "ALTER TABLE chunks ADD COLUMN def_start INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE chunks ADD COLUMN def_end INTEGER NOT NULL DEFAULT 0",
    ),
    # 5: a leaner index: int8 vectors (store/quant.py), each chunk's header and text
    # in one zlib-compressed `body` (store/sql.py), no copy of the vector key in `chunks`
    # (chunks.vector_id names the vectors row that holds it). Old rows are rewritten in Python
    # (zlib, vec0): :func:`_upgrade_5`, in the same transaction; no vector is re-embedded.
    ("ALTER TABLE chunks ADD COLUMN body BLOB NOT NULL DEFAULT x''", "python:upgrade_5"),
)

SCHEMA_VERSION = len(MIGRATIONS)
LEAN_SCHEMA = 5  # int8 vectors, compressed bodies: an index upgraded to it is vacuumed once


class NewerSchema(Exception):
    """The database was written by a newer codesearch (its user_version is unknown here)."""

    def __init__(self, found: int) -> None:
        super().__init__(f"schema version {found} > {SCHEMA_VERSION}")
        self.found = found


def migrate(conn: Any) -> int:
    """Bring the schema up to SCHEMA_VERSION; return the version found before.

    ``conn`` is an autocommit (``isolation_level=None``) sqlean connection.
    """
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise NewerSchema(found)
    for version in range(found + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated between our check and the lock.
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current >= version:
                conn.execute("COMMIT")
                continue
            for statement in MIGRATIONS[version - 1]:
                if statement.startswith("python:"):
                    _STEPS[statement.removeprefix("python:")](conn)
                else:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return found


def _upgrade_5(conn: Any) -> None:
    """Rewrite an index of schema 4: float32 vectors as int8 codes, header and text as one
    compressed body; drop ``chunks.hash`` (and its index), ``chunks.text``, ``chunks.header``."""
    table = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (VEC_TABLE,)
    ).fetchone()
    dim = conn.execute("SELECT value FROM meta WHERE key = 'dim'").fetchone()
    if table is not None and dim is not None and "int8[" not in str(table[0]):
        rows = conn.execute(f"SELECT rowid, embedding FROM {VEC_TABLE}").fetchall()
        conn.execute(f"DROP TABLE {VEC_TABLE}")
        conn.execute(f"CREATE VIRTUAL TABLE {VEC_TABLE} USING vec0({column(int(dim[0]))})")
        conn.executemany(
            f"INSERT INTO {VEC_TABLE}(rowid, embedding) VALUES (?, vec_int8(?))",
            (
                (rowid, quantise(np.frombuffer(blob, dtype=np.float32)).tobytes())
                for rowid, blob in rows
            ),
        )
    bodies = conn.execute("SELECT id, header, text FROM chunks").fetchall()
    conn.executemany(
        "UPDATE chunks SET body = ? WHERE id = ?",
        ((pack_body(header, text), cid) for cid, header, text in bodies),
    )
    conn.execute("DROP INDEX IF EXISTS chunks_hash")
    for name in ("hash", "text", "header"):
        conn.execute(f"ALTER TABLE chunks DROP COLUMN {name}")


_STEPS: dict[str, Callable[[Any], None]] = {"upgrade_5": _upgrade_5}
