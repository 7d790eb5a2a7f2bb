"""The index store: one SQLite file per repository (sqlean + sqlite-vec vec0 + FTS5).

Every public method runs under the store's lock and turns SQLite errors into the project's
errors (IndexLocked, IndexCorrupt, ...), so no raw sqlite exception leaves this module.
Writes run in ``BEGIN IMMEDIATE`` transactions: a failed write leaves the previous state.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np
import sqlean
import sqlite_vec

from codesearch.globs import any_path_matches
from codesearch.store import fts
from codesearch.store.check import find_problems
from codesearch.store.migrations import NewerSchema, migrate
from codesearch.store.vcache import VectorCache
from codesearch.types import (
    Chunk,
    CodesearchError,
    FileState,
    Filters,
    IndexCorrupt,
    IndexLocked,
    IndexMissing,
    ModelMismatch,
)

VEC_TABLE = "vec_chunks"
KNN_MAX_K = 4096  # sqlite-vec's limit on `k` in one KNN query
KNN_OVERFETCH = 4  # vectors fetched per wanted result without filters
KNN_OVERFETCH_FILTERED = 20  # ... and with filters
DEFAULT_BUSY_TIMEOUT_MS = 5000
NO_FILTERS = Filters()
_BATCH = 500  # ids per `IN (...)` list
_CHUNK_COLUMNS = "id, path, language, kind, name, start_line, end_line, text, header"
_CORRUPT_MARKERS = ("not a database", "malformed", "corrupt", "no such table", "no such column")
_TABLES = ("meta", "files", "vectors", "chunks", "chunks_fts")  # what every migrated index has

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class StoredChunk:
    id: int
    chunk: Chunk


def _translate(exc: Exception, path: Path) -> CodesearchError:
    message = " ".join(str(exc).split())  # one line, whatever SQLite said
    lowered = message.lower()
    if "locked" in lowered or "busy" in lowered:
        return IndexLocked(f"index is locked by another codesearch process: {path}")
    if any(marker in lowered for marker in _CORRUPT_MARKERS):
        return IndexCorrupt(
            f"index at {path} is corrupted ({message}): "
            "delete it or run `codesearch index --rebuild`"
        )
    return CodesearchError(f"index error at {path}: {message}")


def _guarded(method: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[Store, P], R]:
    @functools.wraps(method)
    def wrapper(self: Store, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            try:
                return method(self, *args, **kwargs)
            except sqlean.Error as exc:
                raise _translate(exc, self.path) from exc

    return wrapper


def _batches(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _as_blob(vector: Any, dim: int) -> bytes:
    array = np.asarray(vector, dtype=np.float32)
    if array.shape != (dim,):
        raise ValueError(f"vector has shape {array.shape}, expected ({dim},)")
    if not np.isfinite(array).all():
        raise ValueError("vector has non-finite values")
    return array.tobytes()


def _nearest(ids: np.ndarray, distances: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The ``n`` (id, distance) pairs of smallest distance, nearest first."""
    if n < len(distances):
        part = np.argpartition(distances, n - 1)[:n] if n > 0 else np.zeros(0, dtype=np.intp)
    else:
        part = np.arange(len(distances))
    order = part[np.argsort(distances[part], kind="stable")]
    return list(zip(ids[order].tolist(), distances[order].tolist(), strict=True))


def _filtered(filters: Filters) -> bool:
    return bool(filters.languages or filters.kinds or filters.path_globs)


def _passes(filters: Filters, path: str, language: str, kind: str) -> bool:
    return (
        (not filters.languages or language in filters.languages)
        and (not filters.kinds or kind in filters.kinds)
        and any_path_matches(path, filters.path_globs)
    )


class Store:
    """The index of one repository. Open with :meth:`open`; safe to share between threads."""

    def __init__(self, conn: Any, path: Path, *, vector_cache: bool = False) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()
        self._writes = 0  # transactions this connection wrote (data_version does not see them)
        self._cache = VectorCache(VEC_TABLE) if vector_cache else None

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
            conn.execute("PRAGMA foreign_keys = ON")
            if not create and cls._is_empty(conn):
                raise IndexMissing(f"no index at {path}: run `codesearch index` first")
            cls._check_schema(conn)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn)
            store = cls(conn, path, vector_cache=vector_cache)
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
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
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

    @contextmanager
    def _write(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        finally:
            self._writes += 1

    @contextmanager
    def _read(self) -> Iterator[None]:
        """One consistent snapshot for several statements."""
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            # Nothing to commit; and unlike COMMIT, ROLLBACK does not fail after vec0 hit a
            # damaged page inside the transaction.
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")

    # -- metadata ----------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @_guarded
    def get_meta(self, key: str) -> str | None:
        return self._meta(key)

    @_guarded
    def set_meta(self, key: str, value: str) -> None:
        with self._write():
            self._set_meta(key, value)

    @_guarded
    def configure(self, *, model_id: str, dim: int, chunker_version: str) -> bool:
        """Record the model, dimension and chunker; wipe what they invalidate. True if wiped."""
        if dim <= 0:
            raise ValueError(f"dimension must be positive, got {dim}")
        with self._write():
            old_model, old_dim = self._meta("model_id"), self._meta("dim")
            old_chunker = self._meta("chunker_version")
            first = old_model is None or old_dim is None
            if first or old_model != model_id or int(old_dim or 0) != dim:
                self._clear_chunks()
                self._conn.execute("DELETE FROM vectors")
                self._conn.execute(f"DROP TABLE IF EXISTS {VEC_TABLE}")
                self._conn.execute(
                    f"CREATE VIRTUAL TABLE {VEC_TABLE} USING vec0("
                    f"embedding float[{int(dim)}] distance_metric=cosine)"
                )
                self._set_meta("model_id", model_id)
                self._set_meta("dim", str(int(dim)))
                self._set_meta("chunker_version", chunker_version)
                return not first
            if old_chunker != chunker_version:
                self._clear_chunks()  # vectors stay: re-chunked text with the same hash reuses them
                self._set_meta("chunker_version", chunker_version)
                return True
            return False

    def _clear_chunks(self) -> None:
        self._conn.execute("DELETE FROM chunks")
        self._conn.execute("DELETE FROM files")
        self._conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('delete-all')")

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

    def _dim(self) -> int:
        dim = self._meta("dim")
        if dim is None:
            raise CodesearchError(f"index at {self.path} has no model configured yet")
        return int(dim)

    # -- files and chunks --------------------------------------------------------------------

    @_guarded
    def file_states(self) -> dict[str, FileState]:
        rows = self._conn.execute("SELECT path, size, mtime_ns, content_hash FROM files")
        return {r[0]: FileState(r[0], int(r[1]), int(r[2]), r[3]) for r in rows}

    def _vector_ids(self, hashes: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for batch in _batches(hashes):
            sql = f"SELECT hash, id FROM vectors WHERE hash IN ({_marks(len(batch))})"
            found.update(self._conn.execute(sql, list(batch)).fetchall())
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
    ) -> None:
        """Replace the file's chunks (and FTS rows) in one transaction; store new vectors.

        ``tasks``: the task each chunk was embedded for (default: "" for all). ``vectors`` maps
        vector keys (``chunk.vector_key(task)``; the content hash for task "") to vectors; only
        keys the store does not hold yet are needed.
        """
        for chunk in chunks:
            if chunk.path != state.path:
                raise ValueError(f"chunk of {chunk.path!r} given for file {state.path!r}")
        if tasks is None:
            tasks = [""] * len(chunks)
        elif len(tasks) != len(chunks):
            raise ValueError(f"{len(tasks)} tasks given for {len(chunks)} chunks")
        dim = self._dim()
        chash = [chunk.vector_key(task) for chunk, task in zip(chunks, tasks, strict=True)]
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
                    new[h] = _as_blob(vectors[h], dim)
            clock = self._next_clock()
            conn.execute("DELETE FROM chunks WHERE path = ?", (state.path,))
            conn.execute(
                "INSERT INTO files(path, size, mtime_ns, content_hash, indexed_at) "
                "VALUES (?, ?, ?, ?, unixepoch()) ON CONFLICT(path) DO UPDATE SET "
                "size = excluded.size, mtime_ns = excluded.mtime_ns, "
                "content_hash = excluded.content_hash, indexed_at = excluded.indexed_at",
                (state.path, state.size, state.mtime_ns, state.content_hash),
            )
            for h, blob in new.items():
                cur = conn.execute(
                    "INSERT INTO vectors(hash, task, last_used) VALUES (?, ?, ?)",
                    (h, task_of[h], clock),
                )
                ids[h] = int(cur.lastrowid)
                conn.execute(
                    f"INSERT INTO {VEC_TABLE}(rowid, embedding) VALUES (?, ?)", (ids[h], blob)
                )
            reused = [ids[h] for h in hashes if h not in new]
            for batch in _batches(reused):
                conn.execute(
                    f"UPDATE vectors SET last_used = ? WHERE id IN ({_marks(len(batch))})",
                    [clock, *batch],
                )
            for chunk, h in zip(chunks, chash, strict=True):
                cur = conn.execute(
                    "INSERT INTO chunks(path, language, kind, name, start_line, end_line, text,"
                    " header, hash, vector_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        chunk.path,
                        chunk.language,
                        chunk.kind,
                        chunk.name,
                        chunk.start_line,
                        chunk.end_line,
                        chunk.text,
                        chunk.header,
                        h,
                        ids[h],
                    ),
                )
                conn.execute(
                    "INSERT INTO chunks_fts(rowid, name, path, body) VALUES (?, ?, ?, ?)",
                    (
                        cur.lastrowid,
                        fts.index_text(chunk.name),
                        fts.path_text(chunk.path),
                        fts.index_text(chunk.text),
                    ),
                )

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
            self._conn.execute(
                "UPDATE vectors SET last_used = ? "
                "WHERE id IN (SELECT vector_id FROM chunks WHERE path = ?)",
                (self._next_clock(), path),
            )
            self._conn.execute("DELETE FROM files WHERE path = ?", (path,))

    @_guarded
    def prune_orphan_vectors(self, keep: int) -> int:
        """Delete orphan vectors beyond the ``keep`` most recently used; return how many."""
        with self._write():
            rows = self._conn.execute(
                "SELECT v.id FROM vectors v "
                "WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.vector_id = v.id) "
                "ORDER BY v.last_used DESC, v.id DESC LIMIT -1 OFFSET ?",
                (max(int(keep), 0),),
            ).fetchall()
            ids = [(r[0],) for r in rows]
            self._conn.executemany(f"DELETE FROM {VEC_TABLE} WHERE rowid = ?", ids)
            self._conn.executemany("DELETE FROM vectors WHERE id = ?", ids)
            return len(ids)

    @_guarded
    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        found: dict[int, StoredChunk] = {}
        for batch in _batches(list(dict.fromkeys(ids))):
            sql = f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id IN ({_marks(len(batch))})"
            for row in self._conn.execute(sql, list(batch)):
                found[row[0]] = StoredChunk(row[0], Chunk(*row[1:]))
        return found

    @_guarded
    def all_chunks(self, path: str | None = None) -> list[StoredChunk]:
        """Every chunk (of one file when ``path`` is given), in path and line order."""
        where, params = ("WHERE path = ?", [path]) if path is not None else ("", [])
        sql = f"SELECT {_CHUNK_COLUMNS} FROM chunks {where} ORDER BY path, start_line, id"
        return [StoredChunk(row[0], Chunk(*row[1:])) for row in self._conn.execute(sql, params)]

    # -- search ------------------------------------------------------------------------------

    @_guarded
    def knn(
        self,
        query: np.ndarray,
        k: int,
        filters: Filters = NO_FILTERS,
        task: str | None = None,
    ) -> list[tuple[int, float]]:
        """Chunk ids nearest to ``query`` with their cosine distance, nearest first.

        ``task``: only vectors embedded for that task ("" for task-less ones); None: all."""
        blob = _as_blob(query, self._dim())
        if k <= 0:
            return []
        if self._cache is not None:
            return self._knn_cached(np.frombuffer(blob, dtype=np.float32), k, filters, task)
        factor = KNN_OVERFETCH_FILTERED if _filtered(filters) else KNN_OVERFETCH
        fetch = min(KNN_MAX_K, k * factor)
        of_task, task_params = "", []
        if task is not None:
            of_task, task_params = " AND rowid IN (SELECT id FROM vectors WHERE task = ?)", [task]
        rows = self._conn.execute(
            f"SELECT rowid, distance FROM {VEC_TABLE} WHERE embedding MATCH ? AND k = ?{of_task}",
            [blob, fetch, *task_params],
        ).fetchall()
        hits = self._chunk_hits(rows, filters)
        # Enough hits, or every vector was already seen: the answer is exact.
        if len(hits) >= k or len(rows) < fetch:
            return hits[:k]
        # Exact scan: the same brute-force KNN restricted to the filtered chunks' vectors.
        where, params = self._filter_sql(filters)
        if task is not None:
            where += " AND c.vector_id IN (SELECT id FROM vectors WHERE task = ?)"
            params.append(task)
        rows = self._conn.execute(
            f"SELECT rowid, distance FROM {VEC_TABLE} WHERE embedding MATCH ? AND k = ? "
            f"AND rowid IN (SELECT c.vector_id FROM chunks c WHERE 1{where})",
            [blob, min(k, KNN_MAX_K), *params],
        ).fetchall()
        return self._chunk_hits(rows, filters)[:k]

    def _knn_cached(
        self, query: np.ndarray, k: int, filters: Filters, task: str | None
    ) -> list[tuple[int, float]]:
        """:meth:`knn` over the in-memory vectors: the same steps, without vec0's limit on k."""
        cache = self._refresh_cache()
        ids = cache.ids
        distances = cache.distances(query)
        if task is not None:
            rows = cache.rows_of(task)
            ids, distances = ids[rows], distances[rows]
        factor = KNN_OVERFETCH_FILTERED if _filtered(filters) else KNN_OVERFETCH
        fetch = min(len(ids), k * factor)
        hits = self._chunk_hits(_nearest(ids, distances, fetch), filters)
        if len(hits) >= k or fetch == len(ids):
            return hits[:k]
        # Exact: the k nearest among the vectors of chunks that pass the filters' SQL part.
        where, params = self._filter_sql(filters)
        sql = f"SELECT c.vector_id FROM chunks c WHERE 1{where}"
        wanted = np.array([r[0] for r in self._conn.execute(sql, params)], dtype=np.int64)
        among = np.flatnonzero(np.isin(ids, wanted))
        rows = _nearest(ids[among], distances[among], min(k, len(among)))
        return self._chunk_hits(rows, filters)[:k]

    @_guarded
    def tasks(self) -> list[str]:
        """The tasks of the vectors that chunks use, sorted ("" for vectors of a backend
        without tasks). A few index lookups: one per task held."""
        found: list[str] = []
        with self._read():
            candidate = self._conn.execute("SELECT min(task) FROM vectors").fetchone()[0]
            while candidate is not None:
                used = self._conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM vectors v JOIN chunks c ON c.vector_id = v.id "
                    "WHERE v.task = ?)",
                    (candidate,),
                ).fetchone()[0]
                if used:
                    found.append(str(candidate))
                candidate = self._conn.execute(
                    "SELECT min(task) FROM vectors WHERE task > ?", (candidate,)
                ).fetchone()[0]
        return found

    def _refresh_cache(self) -> VectorCache:
        """The vector cache, brought up to date if this or another connection wrote."""
        cache = self._cache
        assert cache is not None
        # Read before the snapshot below: a commit in between only causes one more refresh.
        stamp = (int(self._conn.execute("PRAGMA data_version").fetchone()[0]), self._writes)
        if cache.stamp == stamp:
            return cache
        cache.stamp = None
        try:
            with self._read():
                dim = self._meta("dim")
                cache.refresh(self._conn, None if dim is None else int(dim))
        except BaseException:
            cache.clear()
            raise
        cache.stamp = stamp
        return cache

    def _chunk_hits(
        self, rows: list[tuple[int, float]], filters: Filters
    ) -> list[tuple[int, float]]:
        """(chunk id, distance) for every chunk of the given vectors that passes the filters."""
        # vec0 gives NULL for a zero vector; the cache gives 1.0 (orthogonal): so does this.
        distance = {vid: 1.0 if d is None else float(d) for vid, d in rows}
        hits: list[tuple[int, float]] = []
        for batch in _batches(list(distance)):
            sql = (
                "SELECT id, vector_id, path, language, kind FROM chunks "
                f"WHERE vector_id IN ({_marks(len(batch))})"
            )
            for cid, vid, path, language, kind in self._conn.execute(sql, list(batch)):
                if _passes(filters, path, language, kind):
                    hits.append((cid, distance[vid]))
        hits.sort(key=lambda hit: (hit[1], hit[0]))
        return hits

    def _filter_sql(self, filters: Filters) -> tuple[str, list[Any]]:
        """SQL conditions (`` AND ...``) on the chunks table aliased ``c``, and their params."""
        sql: list[str] = []
        params: list[Any] = []
        if filters.languages:
            sql.append(f"c.language IN ({_marks(len(filters.languages))})")
            params.extend(filters.languages)
        if filters.kinds:
            sql.append(f"c.kind IN ({_marks(len(filters.kinds))})")
            params.extend(filters.kinds)
        if filters.path_globs:
            # Globs are matched in Python once per file, not once per chunk.
            paths = [
                path
                for (path,) in self._conn.execute("SELECT path FROM files")
                if any_path_matches(path, filters.path_globs)
            ]
            sql.append("c.path IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(paths))
        return "".join(f" AND {s}" for s in sql), params

    def _fts(self, expr: str, k: int, filters: Filters) -> list[tuple[int, float]]:
        """Chunk ids matching an FTS5 expression, best BM25 (highest score) first."""
        where, params = self._filter_sql(filters)
        join = " JOIN chunks c ON c.id = chunks_fts.rowid" if where else ""
        sql = (
            f"SELECT chunks_fts.rowid, {fts.BM25_EXPR} AS s FROM chunks_fts{join} "
            f"WHERE chunks_fts MATCH ?{where} ORDER BY s, chunks_fts.rowid LIMIT ?"
        )
        rows = self._conn.execute(sql, [expr, *params, k]).fetchall()
        return [(int(cid), -float(s)) for cid, s in rows]

    @_guarded
    def bm25(self, query: str, k: int, filters: Filters = NO_FILTERS) -> list[tuple[int, float]]:
        """Chunk ids matching ``query`` in the full-text index, best (highest score) first."""
        expr = fts.match_query(query)
        if expr is None or k <= 0:
            return []
        return self._fts(expr, k, filters)

    @_guarded
    def phrase(self, query: str, k: int, filters: Filters = NO_FILTERS) -> list[int]:
        """Chunk ids whose body contains ``query``'s words verbatim, in order; best first."""
        expr = fts.phrase_query(query)
        if expr is None or k <= 0:
            return []
        return [cid for cid, _ in self._fts("body : " + expr, k, filters)]

    # -- reporting ---------------------------------------------------------------------------

    @_guarded
    def check(self) -> list[str]:
        """Problems found in the index, one human-readable line each; empty when healthy.

        Runs SQLite's ``quick_check`` (reads every page: seconds for a large index) and
        compares the tables that must agree: chunks, vectors, the vec0 and FTS tables, files
        and meta. Damage it reports is repaired by rebuilding the index.
        """
        with self._read():
            return find_problems(self._conn, VEC_TABLE)

    @_guarded
    def stats(self) -> dict[str, int]:
        def count(sql: str) -> int:
            return int(self._conn.execute(sql).fetchone()[0])

        size = 0
        for suffix in ("", "-wal"):
            with suppress(OSError):
                size += os.stat(f"{self.path}{suffix}").st_size
        return {
            "files": count("SELECT count(*) FROM files"),
            "chunks": count("SELECT count(*) FROM chunks"),
            "vectors": count("SELECT count(*) FROM vectors"),
            "orphan_vectors": count(
                "SELECT count(*) FROM vectors v "
                "WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.vector_id = v.id)"
            ),
            "bytes": size,
        }

    @_guarded
    def chunk_count_by(self, column: str) -> dict[str, int]:
        if column not in ("language", "kind"):
            raise ValueError(f"cannot count chunks by {column!r}: use 'language' or 'kind'")
        sql = f"SELECT {column}, count(*) FROM chunks GROUP BY {column} ORDER BY {column}"
        return {str(value): int(n) for value, n in self._conn.execute(sql)}
