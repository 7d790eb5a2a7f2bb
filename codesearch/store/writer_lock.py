"""One writer per index, across processes: an exclusive ``flock`` on ``INDEX.writer`` held for
a whole index run (the daemon's, or `codesearch index --no-daemon`'s). SQLite's own lock only
orders transactions: without this, two runs on one index embedded everything twice, side by
side. The lock goes with its process (a killed writer leaves nothing to clean up). A thread
that holds it may take it again (a rebuild holds it from the deletion of the old files to the
end of the run that writes the new ones)."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

POLL_S = 0.2

_held: set[tuple[str, int]] = set()  # (lock file, thread) pairs held in this process


def lock_path(index: Path) -> Path:
    return Path(f"{index}.writer")


def delete_database(index: Path) -> None:
    """Delete the database of ``index`` and its write-ahead log and shared memory, to build
    it anew (the caller holds the writer lock; the lock file stays, it is held)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)


@contextmanager
def writer_lock(
    index: Path,
    *,
    on_wait: Callable[[], None] | None = None,
    while_waiting: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Hold the writer lock of ``index``. When another process holds it: ``on_wait()`` once,
    then ``while_waiting()`` every 0.2 s (it may raise to give up, e.g. a cancelled run).
    Held by this thread already: held on, and released by the outer holder."""
    key = (os.path.realpath(lock_path(index)), threading.get_ident())
    if key in _held:
        yield
        return
    fd = os.open(lock_path(index), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
                if while_waiting is not None:
                    while_waiting()
                time.sleep(POLL_S)
        _held.add(key)
        try:
            yield
        finally:
            _held.discard(key)
    finally:
        os.close(fd)  # releases the lock
