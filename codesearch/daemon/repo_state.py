"""What the daemon knows about one registered repository, and when its pending work is due.

``Repo`` holds a repository's watcher, pending scopes, state and stores (guarded by the
service's lock). Events are debounced: :meth:`Repo.due_at` takes a batch when no event came for
``QUIET_S``, or ``MAX_DELAY_S`` after its first event, and waits longer (``BURST_QUIET_S``,
``BURST_MAX_DELAY_S``) when more than ``BURST_PATHS`` paths are pending. The service
(service.py) queues the events and runs the batches.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from codesearch.daemon.watcher import WHOLE_REPO, RepoWatcher, SkipPrefixes
from codesearch.embed import Embedder
from codesearch.engine import RepoSearch
from codesearch.index import Progress
from codesearch.store import Store
from codesearch.types import IndexStats, RepoState

QUIET_S = 0.1  # a batch is taken once events stop for this long ...
MAX_DELAY_S = 2.0  # ... or this long after its first event, whichever comes first;
BURST_PATHS = 16  # with more paths pending than this (a checkout, a build, a bulk edit)
BURST_QUIET_S, BURST_MAX_DELAY_S = 0.5, 10.0  # wait for the burst to end, within reason


@dataclass
class Repo:
    """What the daemon knows about one registered repository (guarded by Service._lock)."""

    root: Path
    index_path: Path
    skip: SkipPrefixes = field(default_factory=SkipPrefixes)
    pending: set[str] = field(default_factory=set)
    rebuild: bool = False
    first_event: float = 0.0
    last_event: float = 0.0
    state: RepoState = RepoState.QUEUED
    error: str = ""
    notice: str = ""  # while true: "the index of ... is damaged ...: rebuilding it ..."
    notice_gen: int = 0  # bumped with each new notice: a run clears only what it repaired
    condemned: tuple[int, int] | None = None  # (device, inode) of a damaged file: never read
    verified: tuple[int, ...] | None = None  # file_stamp() when the writer or a check last saw it
    next_check: float = 0.0  # monotonic time of the next periodic page check
    watcher: RepoWatcher | None = None
    watch_error: str = ""
    next_rescan: float = 0.0
    last_update: float | None = None  # wall clock of the last finished update
    last_stats: IndexStats | None = None
    updates: int = 0  # index runs (batches) since the daemon started
    failures: int = 0  # failed updates in a row (retries back off)
    paused: bool = False  # the last update stopped because the embedding server is down
    progress: Progress | None = None
    writer: Store | None = None
    embedder: Embedder | None = None
    reader: RepoSearch | None = None
    checked: bool = False  # integrity checked since the daemon started
    read_lock: threading.Lock = field(default_factory=threading.Lock)
    reader_id: tuple[int, int] | None = None  # (device, inode) of the file each store opened
    writer_id: tuple[int, int] | None = None
    running: bool = False  # the writer is running an update of it now
    model: str | None = None  # a `reindex` asked for this model: the next update switches
    runs: list[tuple[int, IndexStats]] = field(default_factory=list)  # (updates, stats), latest
    root_id: tuple[int, int] | None = None  # (device, inode) of the folder being watched

    def due_at(self) -> float:
        """When the pending batch is to be taken (monotonic clock)."""
        burst = len(self.pending) > BURST_PATHS or WHOLE_REPO in self.pending
        quiet, longest = (BURST_QUIET_S, BURST_MAX_DELAY_S) if burst else (QUIET_S, MAX_DELAY_S)
        return min(self.last_event + quiet, self.first_event + longest)

    def busy(self) -> bool:
        if self.state in (RepoState.ERROR, RepoState.PAUSED):  # retrying later: not "busy"
            return False
        return (
            bool(self.pending)
            or self.rebuild
            or self.state in (RepoState.QUEUED, RepoState.INDEXING)
        )
