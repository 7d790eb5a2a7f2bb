"""The index store: one SQLite file per repository (sqlean + sqlite-vec vec0 + FTS5).

Every public method runs under the store's lock and turns SQLite errors into the project's
errors (IndexLocked, IndexCorrupt, ...), so no raw sqlite exception leaves the store.
Writes run in ``BEGIN IMMEDIATE`` transactions: a failed write leaves the previous state.

:class:`Store` is split over three modules: :mod:`~codesearch.store.base` (connection, lock,
transactions, meta rows), :mod:`~codesearch.store.reads` (chunk fetching, search, reports) and
this one (opening the index, and every write); :mod:`~codesearch.store.sql` holds helpers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlean
import sqlite_vec

from codesearch.store import fts, vec_table
from codesearch.store.base import VEC_TABLE, _guarded, _translate
from codesearch.store.migrations import LEAN_SCHEMA, NewerSchema, migrate
from codesearch.store.quant import to_blob
from codesearch.store.reads import (
    KNN_MAX_K,
    KNN_OVERFETCH,
    KNN_OVERFETCH_FILTERED,
    NO_FILTERS,
    StoredChunk,
    StoreReads,
)
from codesearch.store.sql import (
    FTS_SOURCE,
    _batches,
    _marks,
    _media_text,
    body_dictionary,
    fts_columns,
    fts_row,
    key_digest,
    pack_body,
)
from codesearch.types import (
    Chunk,
    FileState,
    ImageRef,
    IndexCorrupt,
    IndexMissing,
    ModelMismatch,
)

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "KNN_MAX_K",
    "KNN_OVERFETCH",
    "KNN_OVERFETCH_FILTERED",
    "NO_FILTERS",
    "VEC_TABLE",
    "Store",
    "StoredChunk",
]

DEFAULT_BUSY_TIMEOUT_MS = 5000
_FREE_PAGES = 1  # give free pages back at the end of every run (cheap: it moves few pages)
FTS_OPTIMIZE_SHARE = 10  # merge the FTS index when a tenth of its rows changed since
FTS_OPTIMIZE_MIN = 64  # ... and at least this many
# What every migrated index has (``chunks`` is a table before schema 6, a view since).
_TABLES = ("meta", "files", "vectors", "chunks", "chunks_fts")


class Store(StoreReads):
    """The index of one repository. Open with :meth:`open`; safe to share between threads.

    The connection, lock and transactions are in :class:`~codesearch.store.base.StoreBase`,
    the queries in :class:`~codesearch.store.reads.StoreReads`; this class opens the index and
    writes it.
    """

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        create: bool = False,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        vector_cache: bool = False,
    ) -> Store:
        """Open (or with ``create``, create) the index at ``path``.

        ``vector_cache``: hold every vector in memory (4 bytes per dimension per vector, plus
        its id and task code; loaded here) and answer :meth:`knn` with numpy instead of vec0:
        the same results, much faster, for a process that answers many queries. The copy
        follows writes made through any connection to the file.
        """
        path = Path(path)
        if not path.exists():
            if not create:
                raise IndexMissing(f"no index at {path}: run `codesearch index` first")
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        try:
            conn = sqlean.connect(
                str(path),
                timeout=busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlean.Error as exc:
            raise _translate(exc, path) from exc
        try:
            conn.enable_load_extension(True)
            sqlite_vec.load(conn)
            conn.enable_load_extension(False)
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys = OFF")  # a migration may rebuild tables
            empty = cls._is_empty(conn)
            if not create and empty:
                raise IndexMissing(f"no index at {path}: run `codesearch index` first")
            cls._check_schema(conn)
            if empty:  # free pages can be given back (only settable before the first table)
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            found = migrate(conn)
            conn.execute("PRAGMA foreign_keys = ON")
            store = cls(conn, path, vector_cache=vector_cache)
            if 0 < found < LEAN_SCHEMA:  # rewritten smaller: give the pages back once
                store._compact(full=True)
            if store._cache is not None:
                store._refresh_cache()
        except NewerSchema as exc:
            conn.close()
            raise IndexCorrupt(
                f"index at {path} was written by a newer codesearch ({exc}): "
                "upgrade codesearch, or delete it or run `codesearch index --rebuild`"
            ) from exc
        except sqlean.Error as exc:
            conn.close()
            raise _translate(exc, path) from exc
        except BaseException:
            conn.close()
            raise
        return store

    @staticmethod
    def _is_empty(conn: Any) -> bool:
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        return tables == 0 and version == 0

    @staticmethod
    def _check_schema(conn: Any) -> None:
        """Cheap checks that this is a codesearch index (a full check reads every page)."""
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = {
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
        }
        if version == 0 and tables:
            raise sqlean.DatabaseError(
                "file is not a database: it has tables but no codesearch schema"
            )
        missing = [t for t in _TABLES if t not in tables]
        if version > 0 and missing:
            raise sqlean.DatabaseError(f"no such table: {', '.join(missing)}")

    @_guarded
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata ----------------------------------------------------------------------------

    @_guarded
    def get_meta(self, key: str) -> str | None:
        return self._meta(key)

    @_guarded
    def set_meta(self, key: str, value: str) -> None:
        with self._write():
            self._set_meta(key, value)

    @_guarded
    def configure(
        self, *, model_id: str, dim: int, chunker_version: str, late_chunking: bool = False
    ) -> bool:
        """Record the model, dimension, chunker and chunking mode; wipe what they invalidate.
        True if wiped.

        ``late_chunking`` (recorded as meta ``late_chunking``, "0" when absent: indexes from
        before the option) changes every file's vectors: a change forgets the files and chunks.
        The vectors stay (orphans, pruned as usual): late vectors have keys of their own
        (``index.late_vector_key``), so no vector of one mode is ever used by the other.
        """
        if dim <= 0:
            raise ValueError(f"dimension must be positive, got {dim}")
        mode = "1" if late_chunking else "0"
        with self._write():
            old_model, old_dim = self._meta("model_id"), self._meta("dim")
            old_chunker = self._meta("chunker_version")
            old_text = self._meta("fts_text")
            if old_text != fts.TEXT_VERSION:
                self._set_meta("fts_text", fts.TEXT_VERSION)
            recorded = self._meta("late_chunking")
            old_mode = recorded or "0"
            if recorded != mode:
                self._set_meta("late_chunking", mode)
            first = old_model is None or old_dim is None
            if first or old_model != model_id or int(old_dim or 0) != dim:
                self._clear_chunks()
                self._conn.execute("DELETE FROM vectors")
                self._conn.execute(f"DROP TABLE IF EXISTS {VEC_TABLE}")
                vec_table.create(self._conn, int(dim))
                self._set_meta("model_id", model_id)
                self._set_meta("dim", str(int(dim)))
                self._set_meta("chunker_version", chunker_version)
                return not first
            if old_chunker != chunker_version or old_mode != mode or old_text != fts.TEXT_VERSION:
                # Vectors stay: re-chunked text with the same hash reuses them. (Full-text rows
                # of another text version could not be deleted exactly: they go too.)
                self._clear_chunks()
                self._set_meta("chunker_version", chunker_version)
                return True
            return False

    def _compact(self, *, full: bool = False) -> None:
        """Give free pages back: ``full`` rewrites the file once (VACUUM, which also turns on
        incremental vacuum for an index created before it); otherwise an incremental vacuum
        when at least an eighth of the file is free. Skipped while another process reads."""
        conn = self._conn
        try:
            if full:
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                conn.execute("VACUUM")
                return
            free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
            if free >= _FREE_PAGES:
                conn.execute("PRAGMA incremental_vacuum").fetchall()  # runs as it is stepped
        except sqlean.OperationalError as exc:
            if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                raise

    def _clear_chunks(self) -> None:
        self._conn.execute("DELETE FROM chunk_rows")
        self._conn.execute("DELETE FROM files")
        self._conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('delete-all')")
        self._set_meta("fts_changed", "0")

    def _delete_chunks(self, file_id: int) -> None:
        """Delete a file's chunks and their full-text rows. The contentless FTS table is told
        each row's indexed text again, so that its statistics (rows, lengths, term counts:
        what BM25 reads) are exactly those of the rows that remain."""
        rows = self._conn.execute(
            f"SELECT {FTS_SOURCE} FROM chunks WHERE file = ?", (file_id,)
        ).fetchall()
        self._conn.executemany(
            "INSERT INTO chunks_fts(chunks_fts, rowid, name, path, body) "
            "VALUES ('delete', ?, ?, ?, ?)",
            [fts_row(*row) for row in rows],
        )
        self._conn.execute("DELETE FROM chunk_rows WHERE file = ?", (file_id,))
        self._fts_changed(len(rows))

    def _fts_changed(self, rows: int) -> None:
        """Count full-text rows written or deleted since the index was last merged."""
        if rows:
            self._conn.execute(
                "INSERT INTO meta(key, value) VALUES ('fts_changed', ?) ON CONFLICT(key) "
                "DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
                (rows,),
            )

    def _optimize_fts(self) -> None:
        """Merge the full-text index into one segment once the rows written or deleted since
        the last merge reach a tenth of the live ones. FTS5 keeps a deleted row's entries (and
        a delete marker) until a merge reaches the oldest segment: an index updated through
        many edits would otherwise keep growing (3x its size after 150 edit cycles); and a
        query reads every segment (a first index leaves dozens)."""
        changed = int(self._meta("fts_changed") or 0)
        if changed < FTS_OPTIMIZE_MIN:
            return
        (live,) = self._conn.execute("SELECT count(*) FROM chunk_rows").fetchone()
        if changed * FTS_OPTIMIZE_SHARE >= int(live):
            self._conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
            self._set_meta("fts_changed", "0")

    def _file_id(self, path: str) -> int | None:
        row = self._conn.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        return None if row is None else int(row[0])

    @_guarded
    def require_model(self, model_id: str) -> None:
        built = self._meta("model_id")
        if built is None:
            raise IndexMissing(f"index at {self.path} is empty: run `codesearch index` first")
        if built != model_id:
            raise ModelMismatch(
                f"index was built with {built}, not {model_id}: search with the model that "
                f"built it, or re-index with `codesearch index --model {model_id}`"
            )

    # -- files and chunks --------------------------------------------------------------------

    @_guarded
    def file_states(self) -> dict[str, FileState]:
        rows = self._conn.execute("SELECT path, size, mtime_ns, content_hash FROM files")
        return {r[0]: FileState(r[0], int(r[1]), int(r[2]), r[3]) for r in rows}

    def _vector_ids(self, keys: Sequence[str]) -> dict[str, int]:
        """The ``vectors`` ids of the keys the store holds."""
        digests = {key_digest(key): key for key in keys}
        found: dict[str, int] = {}
        for batch in _batches(list(digests)):
            sql = f"SELECT key, id FROM vectors WHERE key IN ({_marks(len(batch))})"
            for digest, vid in self._conn.execute(sql, batch):
                found[digests[bytes(digest)]] = int(vid)
        return found

    @_guarded
    def has_vectors(self, hashes: Iterable[str]) -> set[str]:
        return set(self._vector_ids(list(dict.fromkeys(hashes))))

    def _next_clock(self) -> int:
        row = self._conn.execute("SELECT coalesce(max(last_used), 0) + 1 FROM vectors")
        return int(row.fetchone()[0])

    @_guarded
    def replace_file(
        self,
        state: FileState,
        chunks: Sequence[Chunk],
        vectors: Mapping[str, np.ndarray],
        tasks: Sequence[str] | None = None,
        refs: Sequence[ImageRef] = (),
        keys: Sequence[str] | None = None,
    ) -> None:
        """Replace the file's chunks (and FTS rows) in one transaction; store new vectors.

        ``tasks``: the task each chunk was embedded for (default: "" for all). ``vectors`` maps
        vector keys (``chunk.vector_key(task)``; the content hash for task "") to vectors; only
        keys the store does not hold yet are needed. ``refs``: the pictures this file (a
        document) references, replacing the ones recorded for it. ``keys``: each chunk's vector
        key when it is not ``chunk.vector_key(task)`` (late chunking); it must start with the
        task like every key.
        """
        for ref in refs:
            if ref.doc_path != state.path:
                raise ValueError(f"reference from {ref.doc_path!r} given for file {state.path!r}")
        for chunk in chunks:
            if chunk.path != state.path:
                raise ValueError(f"chunk of {chunk.path!r} given for file {state.path!r}")
        if tasks is None:
            tasks = [""] * len(chunks)
        elif len(tasks) != len(chunks):
            raise ValueError(f"{len(tasks)} tasks given for {len(chunks)} chunks")
        if keys is not None and len(keys) != len(chunks):
            raise ValueError(f"{len(keys)} vector keys given for {len(chunks)} chunks")
        dim = self._dim()
        chash = (
            list(keys)
            if keys is not None
            else [chunk.vector_key(task) for chunk, task in zip(chunks, tasks, strict=True)]
        )
        task_of = dict(zip(chash, tasks, strict=True))
        hashes = list(task_of)
        conn = self._conn
        with self._write():
            ids = self._vector_ids(hashes)
            new: dict[str, bytes] = {}
            for h in hashes:
                if h not in ids:
                    if h not in vectors:
                        raise ValueError(f"no vector given for chunk content hash {h}")
                    new[h] = to_blob(vectors[h], dim)
            clock = self._next_clock()
            file_id = self._file_id(state.path)
            if file_id is not None:
                self._delete_chunks(file_id)
            (file_id,) = conn.execute(
                "INSERT INTO files(path, size, mtime_ns, content_hash, indexed_at) "
                "VALUES (?, ?, ?, ?, unixepoch()) ON CONFLICT(path) DO UPDATE SET "
                "size = excluded.size, mtime_ns = excluded.mtime_ns, "
                "content_hash = excluded.content_hash, indexed_at = excluded.indexed_at "
                "RETURNING id",
                (state.path, state.size, state.mtime_ns, state.content_hash),
            ).fetchone()
            for h, blob in new.items():
                cur = conn.execute(
                    "INSERT INTO vectors(key, task, last_used) VALUES (?, ?, ?)",
                    (key_digest(h), task_of[h], clock),
                )
                ids[h] = int(cur.lastrowid)
                conn.execute(
                    f"INSERT INTO {VEC_TABLE}(rowid, embedding) VALUES (?, vec_int8(?))",
                    (ids[h], blob),
                )
            reused = [ids[h] for h in hashes if h not in new]
            for batch in _batches(reused):
                conn.execute(
                    f"UPDATE vectors SET last_used = ? WHERE id IN ({_marks(len(batch))})",
                    [clock, *batch],
                )
            conn.execute("DELETE FROM refs WHERE doc = ?", (state.path,))
            conn.executemany(
                "INSERT INTO refs(doc, target, alt, context, line, section) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(r.doc_path, r.target, r.alt, r.context, r.line, r.section) for r in refs],
            )
            for chunk, h in zip(chunks, chash, strict=True):
                cur = conn.execute(
                    "INSERT INTO chunk_rows(file, language, kind, name, start_line, end_line,"
                    " body, vector_id, media, def_start, def_end)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        file_id,
                        chunk.language,
                        chunk.kind,
                        chunk.name,
                        chunk.start_line,
                        chunk.end_line,
                        pack_body(
                            chunk.header,
                            chunk.text,
                            body_dictionary(chunk.language, chunk.kind, chunk.name, chunk.path),
                        ),
                        ids[h],
                        _media_text(chunk.media),
                        chunk.def_start,
                        chunk.def_end,
                    ),
                )
                conn.execute(
                    "INSERT INTO chunks_fts(rowid, name, path, body) VALUES (?, ?, ?, ?)",
                    (cur.lastrowid, *fts_columns(chunk.name, chunk.path, chunk.text)),
                )
            self._fts_changed(len(chunks))

    @_guarded
    def touch_file(self, state: FileState) -> None:
        """Record new size/mtime for a file whose content (``state.content_hash``) is unchanged."""
        with self._write():
            self._conn.execute(
                "UPDATE files SET size = ?, mtime_ns = ? WHERE path = ? AND content_hash = ?",
                (state.size, state.mtime_ns, state.path, state.content_hash),
            )

    @_guarded
    def forget_files(self) -> None:
        """Forget every file and chunk; vectors stay, for reuse by key. The next index run
        re-reads and re-chunks everything."""
        with self._write():
            self._clear_chunks()

    @_guarded
    def remove_file(self, path: str) -> None:
        """Forget a file and its chunks; its vectors stay (orphans) for a revert or rename."""
        with self._write():
            file_id = self._file_id(path)
            if file_id is None:
                return
            self._conn.execute(
                "UPDATE vectors SET last_used = ? "
                "WHERE id IN (SELECT vector_id FROM chunk_rows WHERE file = ?)",
                (self._next_clock(), file_id),
            )
            self._delete_chunks(file_id)
            self._conn.execute("DELETE FROM files WHERE id = ?", (file_id,))

    @_guarded
    def prune_orphan_vectors(self, keep: int) -> int:
        """Delete orphan vectors beyond the ``keep`` most recently used; return how many.
        Then give space back: the vec0 table is rewritten densely once its holes add up to a
        whole block (:mod:`~codesearch.store.vec_table`), the full-text index is merged once
        enough of its rows were deleted, and free pages are returned."""
        with self._write():
            rows = self._conn.execute(
                "SELECT v.id FROM vectors v "
                "WHERE NOT EXISTS (SELECT 1 FROM chunk_rows c WHERE c.vector_id = v.id) "
                "ORDER BY v.last_used DESC, v.id DESC LIMIT -1 OFFSET ?",
                (max(int(keep), 0),),
            ).fetchall()
            ids = [(r[0],) for r in rows]
            self._conn.executemany(f"DELETE FROM {VEC_TABLE} WHERE rowid = ?", ids)
            self._conn.executemany("DELETE FROM vectors WHERE id = ?", ids)
            dim = self._meta("dim")
            if dim is not None and vec_table.wasted_blocks(self._conn) > 0:
                vec_table.rewrite(self._conn, int(dim))
            self._optimize_fts()
        self._compact()
        return len(ids)
