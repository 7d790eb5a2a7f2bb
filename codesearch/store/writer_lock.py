"""One writer per index, across processes: an exclusive ``flock`` on ``INDEX.writer`` held for
a whole index run (the daemon's, or `codesearch index --no-daemon`'s). SQLite's own lock only
orders transactions: without this, two runs on one index embedded everything twice, side by
side. The lock goes with its process (a killed writer leaves nothing to clean up)."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

POLL_S = 0.2


def lock_path(index: Path) -> Path:
    return Path(f"{index}.writer")


@contextmanager
def writer_lock(
    index: Path,
    *,
    on_wait: Callable[[], None] | None = None,
    while_waiting: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Hold the writer lock of ``index``. When another process holds it: ``on_wait()`` once,
    then ``while_waiting()`` every 0.2 s (it may raise to give up, e.g. a cancelled run)."""
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
        yield
    finally:
        os.close(fd)  # releases the lock
