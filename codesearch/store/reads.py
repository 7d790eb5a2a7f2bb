"""The read side of the store: chunk fetching, vector (KNN) and full-text search, reports.

:class:`StoreReads` is the half of :class:`~codesearch.store.db.Store` that never writes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import numpy as np

from codesearch.globs import filters_paths, path_passes
from codesearch.roles import is_test_path
from codesearch.store import fts
from codesearch.store.base import VEC_TABLE, StoreBase, _guarded
from codesearch.store.check import find_problems, page_problems
from codesearch.store.quant import checked, codes, to_blob, unit
from codesearch.store.sql import (
    CHUNK_COLUMNS,
    _batches,
    _chunk_row,
    _filtered,
    _marks,
    _passes,
)
from codesearch.store.vcache import VectorCache
from codesearch.types import IMAGE_TASK, VISUAL_KINDS, Chunk, Filters, ImageRef

KNN_MAX_K = 4096  # sqlite-vec's limit on `k` in one KNN query
KNN_OVERFETCH = 4  # vectors fetched per wanted result without filters
KNN_OVERFETCH_FILTERED = 20  # ... and with filters
NO_FILTERS = Filters()


@dataclass(frozen=True)
class StoredChunk:
    id: int
    chunk: Chunk


def _nearest(ids: np.ndarray, distances: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The ``n`` (id, distance) pairs of smallest distance, nearest first."""
    if n < len(distances):
        part = np.argpartition(distances, n - 1)[:n] if n > 0 else np.zeros(0, dtype=np.intp)
    else:
        part = np.arange(len(distances))
    order = part[np.argsort(distances[part], kind="stable")]
    return list(zip(ids[order].tolist(), distances[order].tolist(), strict=True))


class StoreReads(StoreBase):
    """Queries over the index; every public one runs under the store's lock (``_guarded``)."""

    # -- chunks ------------------------------------------------------------------------------

    @_guarded
    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        found: dict[int, StoredChunk] = {}
        for batch in _batches(list(dict.fromkeys(ids))):
            sql = f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE id IN ({_marks(len(batch))})"
            for row in self._conn.execute(sql, list(batch)):
                found[row[0]] = StoredChunk(row[0], _chunk_row(row[1:]))
        return found

    @_guarded
    def all_chunks(self, path: str | None = None) -> list[StoredChunk]:
        """Every chunk (of one file when ``path`` is given), in path and line order."""
        where, params = ("WHERE path = ?", [path]) if path is not None else ("", [])
        sql = f"SELECT {CHUNK_COLUMNS} FROM chunks {where} ORDER BY path, start_line, id"
        return [StoredChunk(row[0], _chunk_row(row[1:])) for row in self._conn.execute(sql, params)]

    @_guarded
    def parts_of(self, chunks: Sequence[Chunk]) -> dict[tuple[str, int, int], list[Chunk]]:
        """The parts of the definitions that ``chunks`` are parts of, in line order, keyed by
        (path, def_start, def_end); whole chunks are left out."""
        wanted = {(c.path, c.def_start, c.def_end) for c in chunks if c.is_part}
        found: dict[tuple[str, int, int], list[Chunk]] = {key: [] for key in wanted}
        for path, start, end in wanted:
            sql = (
                f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE path = ? AND def_start = ? "
                "AND def_end = ? ORDER BY start_line, id"
            )
            for row in self._conn.execute(sql, [path, start, end]):
                found[(path, start, end)].append(_chunk_row(row[1:]))
        return found

    @_guarded
    def chunk_vectors(self, ids: Sequence[int]) -> dict[int, tuple[np.ndarray, str]]:
        """Each chunk's stored vector (float32, L2-normalised: the embedded vector up to the
        storage's rounding, store/quant.py) and the task it was embedded for ("" for a backend
        without tasks); chunks without a vector row are left out."""
        found: dict[int, tuple[np.ndarray, str]] = {}
        with self._read():
            for batch in _batches(list(dict.fromkeys(ids))):
                sql = (
                    "SELECT c.id, c.vector_id, v.task FROM chunks c "
                    f"JOIN vectors v ON v.id = c.vector_id WHERE c.id IN ({_marks(len(batch))})"
                )
                for cid, vid, task in self._conn.execute(sql, list(batch)).fetchall():
                    row = self._conn.execute(
                        f"SELECT embedding FROM {VEC_TABLE} WHERE rowid = ?", (vid,)
                    ).fetchone()
                    if row is not None:
                        found[int(cid)] = (unit(codes(row[0])), str(task))
        return found

    # -- pictures ----------------------------------------------------------------------------

    @_guarded
    def refs_to(self, targets: Sequence[str]) -> dict[str, list[ImageRef]]:
        """The documents' references to each of ``targets`` (pictures), by document and line."""
        found: dict[str, list[ImageRef]] = {}
        for batch in _batches(list(dict.fromkeys(targets))):
            sql = (
                "SELECT doc, target, alt, context, line, section FROM refs "
                f"WHERE target IN ({_marks(len(batch))}) ORDER BY doc, line"
            )
            for row in self._conn.execute(sql, list(batch)):
                found.setdefault(row[1], []).append(ImageRef(*row))
        return found

    @_guarded
    def refs_from(self, doc: str) -> list[ImageRef]:
        """The references document ``doc`` makes (as last indexed)."""
        sql = (
            "SELECT doc, target, alt, context, line, section FROM refs WHERE doc = ? ORDER BY line"
        )
        return [ImageRef(*row) for row in self._conn.execute(sql, (doc,))]

    @_guarded
    def picture_counts(self) -> tuple[int, int]:
        """(picture chunks, those of them not embedded from their pixels): the second are
        described by their text context only and wait for a multimodal backend."""
        marks = _marks(len(VISUAL_KINDS))
        total, waiting = self._conn.execute(
            "SELECT count(*), coalesce(sum(v.task != ?), 0) FROM chunks c "
            f"JOIN vectors v ON v.id = c.vector_id WHERE c.kind IN ({marks})",
            [IMAGE_TASK, *VISUAL_KINDS],
        ).fetchone()
        return int(total), int(waiting)

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
        wanted = checked(query, self._dim())
        if k <= 0:
            return []
        if self._cache is not None:
            return self._knn_cached(wanted, k, filters, task)
        blob = to_blob(wanted, len(wanted))
        factor = KNN_OVERFETCH_FILTERED if _filtered(filters) else KNN_OVERFETCH
        fetch = min(KNN_MAX_K, k * factor)
        of_task, task_params = "", []
        if task is not None:
            of_task, task_params = " AND rowid IN (SELECT id FROM vectors WHERE task = ?)", [task]
        rows = self._conn.execute(
            f"SELECT rowid, distance FROM {VEC_TABLE} WHERE embedding MATCH vec_int8(?) AND k = ?"
            f"{of_task}",
            [blob, fetch, *task_params],
        ).fetchall()
        hits = self._chunk_hits(self._rescored(rows, wanted), filters)
        # Enough hits, or every vector was already seen: the answer is exact.
        if len(hits) >= k or len(rows) < fetch:
            return hits[:k]
        # Exact scan: the same brute-force KNN restricted to the filtered chunks' vectors.
        where, params = self._filter_sql(filters)
        if task is not None:
            where += " AND c.vector_id IN (SELECT id FROM vectors WHERE task = ?)"
            params.append(task)
        rows = self._conn.execute(
            f"SELECT rowid, distance FROM {VEC_TABLE} WHERE embedding MATCH vec_int8(?) AND k = ? "
            f"AND rowid IN (SELECT c.vector_id FROM chunks c WHERE 1{where})",
            [blob, min(k, KNN_MAX_K), *params],
        ).fetchall()
        return self._chunk_hits(self._rescored(rows, wanted), filters)[:k]

    def _rescored(
        self, rows: list[tuple[int, float]], query: np.ndarray
    ) -> list[tuple[int, float]]:
        """vec0's int8 KNN rows with their distances from the float question instead of its
        int8 codes, nearest first (the daemon's cache compares the same way)."""
        if not rows:
            return rows
        q = unit(query)
        sql = f"SELECT embedding FROM {VEC_TABLE} WHERE rowid = ?"
        scored = []
        for rowid, distance in rows:
            stored = self._conn.execute(sql, (rowid,)).fetchone()
            if stored is not None:
                distance = 1.0 - float(unit(codes(stored[0])) @ q)
            scored.append((rowid, distance))
        scored.sort(key=lambda r: (r[1], r[0]))
        return scored

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
        if filters_paths(filters):
            # Globs are matched in Python once per file, not once per chunk.
            paths = [
                path
                for (path,) in self._conn.execute("SELECT path FROM files")
                if path_passes(path, filters.path_globs, filters.exclude_globs)
            ]
            sql.append("c.path IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(paths))
        if not filters.include_tests:
            # Test files by their path conventions (codesearch.roles), once per file; chunks
            # that are tests only by their markers are dropped by the searcher.
            tests = [
                path
                for (path,) in self._conn.execute("SELECT path FROM files")
                if is_test_path(path)
            ]
            sql.append("c.path NOT IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(tests))
        return "".join(f" AND {s}" for s in sql), params

    def _fts(self, expr: str, k: int, filters: Filters) -> list[tuple[int, float]]:
        """Chunk ids matching an FTS5 expression, best BM25 (highest score) first; equal
        scores in path and line order (not by chunk id, which differs between an index
        updated by edits and a fresh one), also where they straddle the ``k``-th place."""
        where, params = self._filter_sql(filters)
        join = " JOIN chunks c ON c.id = chunks_fts.rowid" if where else ""
        select = f"SELECT chunks_fts.rowid, {fts.BM25_EXPR} AS s FROM chunks_fts{join} "
        match = f"WHERE chunks_fts MATCH ?{where}"
        sql = f"{select}{match} ORDER BY s, chunks_fts.rowid LIMIT ?"
        rows = self._conn.execute(sql, [expr, *params, k + 1]).fetchall()
        if len(rows) > k and rows[k][1] == rows[k - 1][1]:  # a tie across the cut: all of it
            ties = self._conn.execute(
                f"SELECT * FROM ({select}{match}) WHERE s = ?", [expr, *params, rows[k][1]]
            ).fetchall()
            rows = [r for r in rows if r[1] != rows[k][1]] + ties
        if len({s for _, s in rows}) < len(rows):  # equal scores: by place
            place = {
                cid: (path, line)
                for cid, path, line in self._conn.execute(
                    "SELECT id, path, start_line FROM chunks "
                    "WHERE id IN (SELECT value FROM json_each(?))",
                    [json.dumps([cid for cid, _ in rows])],
                )
            }
            rows.sort(key=lambda r: (r[1], *place.get(r[0], ("", 0)), r[0]))
        return [(int(cid), -float(s)) for cid, s in rows[:k]]

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
    def quick_check(self) -> list[str]:
        """SQLite's page check alone (every page read, the tables not compared): the problems
        in the words of :meth:`check`; empty when the pages are sound."""
        with self._read():
            return page_problems(self._conn)

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
            "chunks": count("SELECT count(*) FROM chunk_rows"),
            "vectors": count("SELECT count(*) FROM vectors"),
            "orphan_vectors": count(
                "SELECT count(*) FROM vectors v "
                "WHERE NOT EXISTS (SELECT 1 FROM chunk_rows c WHERE c.vector_id = v.id)"
            ),
            "bytes": size,
        }

    @_guarded
    def chunk_count_by(self, column: str) -> dict[str, int]:
        if column not in ("language", "kind"):
            raise ValueError(f"cannot count chunks by {column!r}: use 'language' or 'kind'")
        sql = f"SELECT {column}, count(*) FROM chunks GROUP BY {column} ORDER BY {column}"
        return {str(value): int(n) for value, n in self._conn.execute(sql)}
