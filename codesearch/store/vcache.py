"""Every vector of the index held in memory, for exact KNN with numpy.

vec0's KNN is a brute-force scan that reads each vector out of SQLite pages (about 100 ms for
75k x 384 floats). A long-running process that answers many queries (the daemon) can instead
keep all vectors as one float32 matrix of L2-normalised rows: the same exact search is then
one matrix-vector product, ``distance = 1 - rows @ (query / |query|)``, which is vec0's cosine
distance up to float rounding.

The copy follows the database, also when another connection writes. The owner (the Store)
calls :meth:`VectorCache.refresh` when ``PRAGMA data_version`` or its own write count has
changed. Vector rows are only ever appended (``vectors.id`` is AUTOINCREMENT, so a new row
always has a larger id than any row before it) or deleted, so a refresh is incremental: ids
above the highest id seen are loaded; if the count of ids up to it has changed, rows were
deleted and the matrix is compacted in place. A change of dimension (a new model) starts over.

Stored vectors are int8 codes (store/quant.py): the copy holds them as float32 unit rows,
because numpy has no int8 matrix-vector product: over 74k x 384 rows, converting int8 blocks
for each question took twice the time of the float32 product (30 ms against 16 ms on 2 loaded
cores), and the daemon's answer time comes first.

Each row also carries the task its vector was embedded for, as a small integer code (a
vector's task never changes), so a KNN restricted to one task is a mask over the same matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from codesearch.store.quant import codes

_BLOCK = 4096  # rows moved at once when compacting
_FULL_SCAN_FACTOR = 2  # load by a full scan when this many times more rows are new than held


def _normalised(rows: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norms, in place; zero rows stay zero (distance 1 to anything)."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    rows /= norms
    return rows


def _ids_of(text: str | None) -> np.ndarray:
    if not text:
        return np.zeros(0, dtype=np.int64)
    return np.array(text.split(","), dtype=np.int64)


def _id_array(conn: Any, where: str, *params: Any) -> np.ndarray:
    """``vectors.id`` values matching ``where``, ascending (one string: faster than rows)."""
    sql = f"SELECT group_concat(id, ',') FROM (SELECT id FROM vectors {where} ORDER BY id)"
    (text,) = conn.execute(sql, params).fetchone()
    return _ids_of(text)


class VectorCache:
    """L2-normalised float32 copies of the vec0 table's rows, and their ids.

    Not thread-safe by itself: the Store calls it under its lock. Rows ``[:len(self)]`` of
    the matrix are live; the rest is spare capacity for appends (an eighth after a full load;
    growing by a quarter at a time).
    """

    def __init__(self, vec_table: str) -> None:
        self._vec_table = vec_table
        self.stamp: object = None  # the owner's marker of the state last loaded
        self._reset(0)

    def _reset(self, dim: int) -> None:
        self.dim = dim
        self._n = 0
        self._ids = np.zeros(0, dtype=np.int64)
        self._rows = np.zeros((0, dim), dtype=np.float32)
        self._codes = np.zeros(0, dtype=np.int16)  # per row: index into _task_names
        self._task_names: list[str] = [""]
        self._max_id = 0  # highest vectors.id ever loaded (AUTOINCREMENT: only grows)
        self._known = 0  # vectors rows with id <= _max_id at the last refresh

    def clear(self) -> None:
        """Forget everything (after a failed refresh): the next refresh loads from scratch."""
        self.stamp = None
        self._reset(0)

    def __len__(self) -> int:
        return self._n

    @property
    def ids(self) -> np.ndarray:
        """vec0 rowids (= ``vectors.id``) of the live rows, in matrix order (a view)."""
        return self._ids[: self._n]

    @property
    def nbytes(self) -> int:
        return int(self._rows.nbytes + self._ids.nbytes + self._codes.nbytes)

    def rows_of(self, task: str) -> np.ndarray:
        """Positions (into ``ids`` and the distances) of the live rows embedded for ``task``."""
        if task not in self._task_names:
            return np.zeros(0, dtype=np.intp)
        return np.flatnonzero(self._codes[: self._n] == self._task_names.index(task))

    # -- querying ----------------------------------------------------------------------------

    def distances(self, query: np.ndarray) -> np.ndarray:
        """Cosine distance from ``query`` to every live row (float32, aligned with ``ids``)."""
        q = np.asarray(query, dtype=np.float32).reshape(1, -1).copy()
        q = _normalised(q)[0]
        out = self._rows[: self._n] @ q
        np.subtract(1.0, out, out=out)
        return out

    # -- following the database --------------------------------------------------------------

    def refresh(self, conn: Any, dim: int | None) -> None:
        """Bring the copy up to the database's state (``conn`` inside one read transaction).

        ``dim`` is the index's configured dimension (None: no model configured yet).
        """
        if dim is None:
            self._reset(0)
            return
        if dim != self.dim:
            self._reset(dim)
        # Ids above the highest one seen are exactly the rows added since (AUTOINCREMENT), so
        # the rest of the count says whether rows were deleted; count(*) alone is cheap.
        (total,) = conn.execute("SELECT count(*) FROM vectors").fetchone()
        new = _id_array(conn, "WHERE id > ?", self._max_id)
        if int(total) - len(new) != self._known:
            self._drop_deleted(conn)
        if len(new):
            start = 0 if len(new) > _FULL_SCAN_FACTOR * self._n else self._n
            if start == 0:
                self._load_all(conn, capacity=int(total))
            else:
                self._load_ids(conn, new)
            self._load_tasks(conn, start)
            self._max_id = max(self._max_id, int(new.max()))
        self._known = int(total)

    def _load_all(self, conn: Any, capacity: int) -> None:
        """Replace the copy with one full scan of the vec0 table."""
        self._n = 0
        self._reserve(capacity + capacity // 8)  # room for appends before the first regrowth
        start = 0
        for rowid, blob in conn.execute(f"SELECT rowid, embedding FROM {self._vec_table}"):
            self._reserve(self._n + 1)
            self._rows[self._n] = codes(blob)
            self._ids[self._n] = rowid
            self._n += 1
            if self._n - start >= _BLOCK:
                _normalised(self._rows[start : self._n])
                start = self._n
        _normalised(self._rows[start : self._n])
        if self._n:
            self._max_id = max(self._max_id, int(self._ids[: self._n].max()))

    def _load_ids(self, conn: Any, ids: np.ndarray) -> None:
        """Append the vec0 rows of ``ids`` (ids missing from vec0 are skipped)."""
        start = self._n
        self._reserve(self._n + len(ids))
        sql = f"SELECT embedding FROM {self._vec_table} WHERE rowid = ?"
        for vid in ids.tolist():
            row = conn.execute(sql, (vid,)).fetchone()
            if row is None:
                continue
            self._rows[self._n] = codes(row[0])
            self._ids[self._n] = vid
            self._n += 1
        _normalised(self._rows[start : self._n])

    def _load_tasks(self, conn: Any, start: int) -> None:
        """Set the task codes of rows ``start:`` (just loaded): one id list per task."""
        ids = self._ids[start : self._n]
        self._codes[start : self._n] = 0
        if not len(ids):
            return
        rows = conn.execute(
            "SELECT task, group_concat(id, ',') FROM vectors "
            "WHERE id BETWEEN ? AND ? AND task != '' GROUP BY task",
            (int(ids.min()), int(ids.max())),
        )
        for task, text in rows:
            if task not in self._task_names:
                self._task_names.append(task)
            of_task = np.isin(ids, _ids_of(text), assume_unique=True)
            self._codes[start : self._n][of_task] = self._task_names.index(task)

    def _drop_deleted(self, conn: Any) -> None:
        """Compact the matrix in place to the ids still in the ``vectors`` table."""
        present = _id_array(conn, "WHERE id <= ?", self._max_id)
        keep = np.flatnonzero(np.isin(self._ids[: self._n], present, assume_unique=True))
        # Rows before the first deleted one stay where they are. After it, keep[j] > j: moving
        # rows down block by block never overwrites a row that is still to move.
        moved = keep != np.arange(len(keep))
        first = int(np.argmax(moved)) if moved.any() else len(keep)
        for start in range(first, len(keep), _BLOCK):
            block = keep[start : start + _BLOCK]
            self._rows[start : start + len(block)] = self._rows[block]
            self._ids[start : start + len(block)] = self._ids[block]
            self._codes[start : start + len(block)] = self._codes[block]
        self._n = len(keep)
        if self._n < len(self._rows) // 2:  # give memory back after a large deletion
            self._resize(self._n + self._n // 8)

    def _reserve(self, needed: int) -> None:
        if needed > len(self._rows):
            self._resize(max(needed, len(self._rows) + len(self._rows) // 4, 1024))

    def _resize(self, capacity: int) -> None:
        rows = np.empty((capacity, self.dim), dtype=np.float32)
        ids = np.empty(capacity, dtype=np.int64)
        codes = np.zeros(capacity, dtype=np.int16)
        rows[: self._n] = self._rows[: self._n]
        ids[: self._n] = self._ids[: self._n]
        codes[: self._n] = self._codes[: self._n]
        self._rows, self._ids, self._codes = rows, ids, codes
