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

from codesearch.store import fts, vec_table
from codesearch.store.base import VEC_TABLE
from codesearch.store.quant import quantise
from codesearch.store.sql import (
    FTS_SOURCE,
    body_dictionary,
    fts_row,
    key_digest,
    pack_body,
    unpack_body,
)

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
    # 6: smaller keys, and a full-text index whose statistics follow deletes exactly. Files get
    # an integer id and chunks name it (table `chunk_rows`; the view `chunks` shows each row
    # with its file's path, as the table did); a vector's key is kept as a 16-byte digest
    # (store/sql.py `key_digest`) instead of 64 hex digits; `chunks_fts` is contentless
    # without `contentless_delete`: a delete passes the row's indexed text back (store/db.py),
    # so its document count and lengths, which BM25 reads, stay those of the live rows.
    ("python:upgrade_6",),
)

SCHEMA_VERSION = len(MIGRATIONS)
LEAN_SCHEMA = 6  # an index upgraded to it from before is rewritten smaller: vacuumed once

# The view every reader uses: one row per chunk, with its file's path.
CHUNKS_VIEW = """CREATE VIEW chunks AS
    SELECT c.id AS id, f.path AS path, c.file AS file, c.language AS language, c.kind AS kind,
           c.name AS name, c.start_line AS start_line, c.end_line AS end_line, c.body AS body,
           c.vector_id AS vector_id, c.media AS media, c.def_start AS def_start,
           c.def_end AS def_end
    FROM chunk_rows c JOIN files f ON f.id = c.file"""
FTS_TABLE = """CREATE VIRTUAL TABLE chunks_fts USING fts5(
    name, path, body, content = '', tokenize = 'porter unicode61'
)"""
_ROWS = 2000  # rows rewritten per statement batch (no table is read into memory whole)


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
        vec_table.rewrite(conn, int(dim[0]), _float_to_codes)
    last = 0
    while rows := conn.execute(
        "SELECT id, header, text FROM chunks WHERE id > ? ORDER BY id LIMIT ?", (last, _ROWS)
    ).fetchall():
        conn.executemany(
            "UPDATE chunks SET body = ? WHERE id = ?",
            [(pack_body(header, text), cid) for cid, header, text in rows],
        )
        last = rows[-1][0]
    conn.execute("DROP INDEX IF EXISTS chunks_hash")
    for name in ("hash", "text", "header"):
        conn.execute(f"ALTER TABLE chunks DROP COLUMN {name}")


def _float_to_codes(blob: bytes) -> bytes:
    return bytes(quantise(np.frombuffer(blob, dtype=np.float32)).tobytes())


def _upgrade_6(conn: Any) -> None:
    """Files get integer ids (``chunk_rows.file``), vector keys become 16-byte digests, and
    the full-text table is rebuilt without ``contentless_delete`` from the chunks' own text.
    Runs with foreign keys off (Store.open); ids of chunks and vectors are kept."""
    conn.execute(
        """CREATE TABLE files_6 (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            content_hash TEXT NOT NULL,
            indexed_at INTEGER NOT NULL
        )"""
    )
    conn.execute(
        "INSERT INTO files_6(path, size, mtime_ns, content_hash, indexed_at) "
        "SELECT path, size, mtime_ns, content_hash, indexed_at FROM files ORDER BY path"
    )
    conn.execute(
        """CREATE TABLE vectors_6 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key BLOB NOT NULL UNIQUE,
            task TEXT NOT NULL DEFAULT '',
            last_used INTEGER NOT NULL
        )"""
    )
    last = 0
    while rows := conn.execute(
        "SELECT id, hash, task, last_used FROM vectors WHERE id > ? ORDER BY id LIMIT ?",
        (last, _ROWS),
    ).fetchall():
        conn.executemany(
            "INSERT INTO vectors_6(id, key, task, last_used) VALUES (?, ?, ?, ?)",
            [(vid, key_digest(key), task, used) for vid, key, task, used in rows],
        )
        last = rows[-1][0]
    conn.execute(
        """CREATE TABLE chunk_rows (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            file INTEGER NOT NULL REFERENCES files_6(id) ON DELETE CASCADE,
            language TEXT NOT NULL,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            start_line INTEGER NOT NULL,
            end_line INTEGER NOT NULL,
            def_start INTEGER NOT NULL DEFAULT 0,
            def_end INTEGER NOT NULL DEFAULT 0,
            media TEXT NOT NULL DEFAULT '',
            vector_id INTEGER NOT NULL REFERENCES vectors_6(id),
            body BLOB NOT NULL
        )"""
    )
    conn.execute(
        "INSERT INTO chunk_rows(id, file, language, kind, name, start_line, end_line, "
        "def_start, def_end, media, vector_id, body) "
        "SELECT c.id, f.id, c.language, c.kind, c.name, c.start_line, c.end_line, c.def_start, "
        "c.def_end, c.media, c.vector_id, c.body FROM chunks c JOIN files_6 f ON f.path = c.path "
        "ORDER BY c.id"
    )
    last = 0
    while rows := conn.execute(
        "SELECT c.id, c.body, c.language, c.kind, c.name, f.path FROM chunk_rows c "
        "JOIN files_6 f ON f.id = c.file WHERE c.id > ? ORDER BY c.id LIMIT ?",
        (last, _ROWS),
    ).fetchall():
        conn.executemany(
            "UPDATE chunk_rows SET body = ? WHERE id = ?",
            [
                (pack_body(*unpack_body(body), body_dictionary(*row)), cid)
                for cid, body, *row in rows
            ],
        )
        last = rows[-1][0]
    for table in ("chunks", "vectors", "files", "chunks_fts"):  # chunks' FTS trigger goes too
        conn.execute(f"DROP TABLE {table}")
    conn.execute("ALTER TABLE files_6 RENAME TO files")
    conn.execute("ALTER TABLE vectors_6 RENAME TO vectors")
    for statement in (
        "CREATE INDEX chunk_rows_file ON chunk_rows(file)",
        "CREATE INDEX chunk_rows_vector ON chunk_rows(vector_id)",
        "CREATE INDEX vectors_last_used ON vectors(last_used)",
        "CREATE INDEX vectors_task ON vectors(task)",
        CHUNKS_VIEW,
        FTS_TABLE,
    ):
        conn.execute(statement)
    last = 0
    while rows := conn.execute(
        f"SELECT {FTS_SOURCE} FROM chunks WHERE id > ? ORDER BY id LIMIT ?", (last, _ROWS)
    ).fetchall():
        conn.executemany(
            "INSERT INTO chunks_fts(rowid, name, path, body) VALUES (?, ?, ?, ?)",
            [fts_row(*row) for row in rows],
        )
        last = rows[-1][0]
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('fts_text', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (fts.TEXT_VERSION,),
    )
    problems = conn.execute("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise RuntimeError(f"migration 6 left {len(problems)} broken references")


_STEPS: dict[str, Callable[[Any], None]] = {"upgrade_5": _upgrade_5, "upgrade_6": _upgrade_6}
