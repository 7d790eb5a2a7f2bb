"""The store's connection: its lock, error translation, transactions and metadata rows.

:class:`StoreBase` holds what both halves of :class:`~codesearch.store.db.Store` use: the
writes (:mod:`codesearch.store.db`) and the reads (:mod:`codesearch.store.reads`).
"""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlean

from codesearch.store.vcache import VectorCache
from codesearch.types import CodesearchError, DiskFull, IndexCorrupt, IndexLocked

VEC_TABLE = "vec_chunks"
# What SQLite (or sqlite-vec, reading a vector out of a damaged page) says about a damaged
# file, and the plain words a user gets instead.
_DAMAGE = (
    (("not a database",), "not an index file"),
    (("malformed", "corrupt"), "damaged pages"),
    (("no such table", "no such column"), "tables are missing"),
    (("could not fetch vector", "reading from blob", "sqlite-vec error"), "unreadable vectors"),
)
LOW_SPACE_BYTES = 1 << 20  # an I/O error with less free space than this is a full disk

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="StoreBase")


def damage_of(exc: Exception) -> str:
    """What damage SQLite's ``exc`` says the file has, in plain words ("" when none)."""
    lowered = str(exc).lower()
    for markers, words in _DAMAGE:
        if any(marker in lowered for marker in markers):
            return words
    return ""


def disk_full(exc: Exception, path: Path) -> bool:
    """SQLITE_FULL, or an I/O error (creating the -wal or -shm file) on a full disk."""
    name = str(getattr(exc, "sqlite_errorname", ""))
    lowered = str(exc).lower()
    if name == "SQLITE_FULL" or "disk is full" in lowered:
        return True
    if not (name.startswith("SQLITE_IOERR") or "disk i/o error" in lowered):
        return False
    try:
        return shutil.disk_usage(path.parent).free < LOW_SPACE_BYTES
    except OSError:
        return False


def _translate(exc: Exception, path: Path) -> CodesearchError:
    """The project's error for SQLite's ``exc``: never SQLite's own words for damage."""
    message = " ".join(str(exc).split())  # one line, whatever SQLite said
    lowered = message.lower()
    if disk_full(exc, path):
        return DiskFull(
            f"disk full: no space left to write the index at {path}: "
            "free some space (the index is not damaged; updates resume by themselves)"
        )
    if "locked" in lowered or "busy" in lowered:
        return IndexLocked(f"index is locked by another codesearch process: {path}")
    damage = damage_of(exc)
    if damage:
        return IndexCorrupt(
            f"index at {path} is corrupted ({damage}): "
            "delete it or run `codesearch index --rebuild`"
        )
    return CodesearchError(f"index error at {path}: {message}")


def _guarded(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    @functools.wraps(method)
    def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            try:
                return method(self, *args, **kwargs)
            except sqlean.Error as exc:
                raise _translate(exc, self.path) from exc

    return wrapper


class StoreBase:
    """The connection of one open index; see :class:`~codesearch.store.db.Store`."""

    def __init__(self, conn: Any, path: Path, *, vector_cache: bool = False) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()
        self._writes = 0  # transactions this connection wrote (data_version does not see them)
        self._cache = VectorCache(VEC_TABLE) if vector_cache else None

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

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _dim(self) -> int:
        dim = self._meta("dim")
        if dim is None:
            raise CodesearchError(f"index at {self.path} has no model configured yet")
        return int(dim)
