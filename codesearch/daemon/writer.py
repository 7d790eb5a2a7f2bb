"""The daemon's writer side, mixed into :class:`~codesearch.daemon.service.Service`: the
watchers that queue changes, and the one writer thread that takes each repository's batch when
it is due and brings its index up to date.

- Events are debounced per repository (:meth:`Repo.due_at` in repo_state.py): a ``git
  checkout`` of thousands of files is one scoped update, not thousands.
- The writer embeds in small groups and waits for in-flight queries before each group
  (``_before_embed``): background indexing yields to queries. It stops there too when the
  daemon stops or the repository was removed or went missing.
- A folder that cannot be watched (the watch limit) is rescanned every ``RESCAN_S``; one moved,
  deleted or back is noticed within ``ROOT_CHECK_S``.
- A failed update is retried with back-off (nothing is lost: the same work, later); a remote
  server that is down pauses the repository until its breaker lets a trial through.
"""

from __future__ import annotations

import logging
import stat
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from codesearch.config import Settings
from codesearch.daemon import integrity
from codesearch.daemon.integrity import file_id, file_stamp
from codesearch.daemon.repo_state import Repo
from codesearch.daemon.watcher import WHOLE_REPO, RepoWatcher
from codesearch.embed import EmbedderUnavailable
from codesearch.engine import prepare_writer
from codesearch.index import Cancelled, Indexer
from codesearch.store import Store
from codesearch.store.writer_lock import delete_database, writer_lock
from codesearch.types import (
    CodesearchError,
    IndexCorrupt,
    IndexMissing,
    ModelMismatch,
    RepoState,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

log = logging.getLogger("codesearch.daemon")

RESCAN_S = 60.0  # a repository without a watcher (watch limit, gone) is rescanned this often
RETRY_S, RETRY_MAX_S = 5.0, 300.0  # a failed update is retried after 5 s, 10 s, ... 5 min
OUTAGE_RETRY_MIN_S = 1.0  # a paused update is retried when the server's breaker allows, >= this
SKIP_REASONS = ("ignored", "vendored", "vcs")  # name-based: events below them change nothing
ROOT_CHECK_S = 2.0  # every watched folder is checked this often: moved, deleted, back
KEEP_RUNS = 16  # the stats of this many latest runs per repository (what `reindex` reports)
YIELD_MAX_S = 2.0  # the writer waits at most this long for queries before each embed group


class QueryGate:
    """Queries in flight; the writer waits for them to finish before each embedder call."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0

    def __enter__(self) -> QueryGate:
        with self._cond:
            self._active += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def wait_idle(self, timeout: float = YIELD_MAX_S) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._active == 0, timeout=timeout)


class WriterLoop:
    """The watchers and the writer thread of a :class:`Service` (its state: the repositories,
    the lock and its condition, the query gate; its queue, repair and store helpers)."""

    settings: Settings
    repos: dict[Path, Repo]
    gate: QueryGate
    _lock: threading.RLock
    _wake: threading.Condition
    _stopping: threading.Event
    _stale: list[RepoWatcher]
    _next_root_check: float

    if TYPE_CHECKING:  # Service's and Repair's (declared only: no stub may shadow them)

        def notify(self, repo: Repo, scopes: Iterable[str]) -> None: ...
        def _queue(self, repo: Repo, scopes: Iterable[str]) -> None: ...
        def _detach(self, repo: Repo) -> None: ...
        def _close_stores(self, repo: Repo) -> None: ...
        def damaged(self, repo: Repo, problems: list[str], cause: object = None) -> None: ...
        def verify(self, repo: Repo, deep: bool = False) -> None: ...
        def _check_due(self, repo: Repo, now: float) -> bool: ...
        def _raise_notice(self, repo: Repo, problems: list[str], cause: object = None) -> None: ...

    def _watch(self, repo: Repo) -> None:
        repo.root_id = _dir_id(repo.root)
        if not repo.root.is_dir():
            repo.state, repo.error = RepoState.MISSING, f"repository folder is gone: {repo.root}"
            repo.next_rescan = time.monotonic() + RESCAN_S
            log.warning("%s", repo.error)
            return
        try:
            repo.watcher = RepoWatcher(repo.root, repo.skip, lambda s, r=repo: self.notify(r, s))
            repo.watch_error = ""
        except OSError as exc:
            repo.watcher = None
            repo.watch_error = (
                f"cannot watch ({exc.strerror or exc}): rescanning every {RESCAN_S:.0f} s"
            )
            repo.next_rescan = time.monotonic() + RESCAN_S
            log.warning("%s: %s", repo.root, repo.watch_error)

    def _due(self, now: float) -> Repo | None:
        """The repository whose batch is ready (lock held), else None."""
        ready = [r for r in self.repos.values() if (r.pending or r.rebuild) and r.due_at() <= now]
        if not ready:
            return None
        return min(ready, key=lambda r: r.first_event)

    def _next_wakeup(self, now: float) -> float:
        deadlines = [RESCAN_S, self._next_root_check - now]
        for r in self.repos.values():
            if r.pending or r.rebuild:
                deadlines.append(r.due_at() - now)
            if (r.watcher is None and r.state != RepoState.REMOVED) or r.state == RepoState.MISSING:
                deadlines.append(r.next_rescan - now)
            if r.state == RepoState.IDLE and r.writer is not None:
                deadlines.append(r.next_check - now)
        return max(0.01, min(deadlines))

    def _work(self) -> None:
        while not self._stopping.is_set():
            self._stop_stale()
            with self._wake:
                now = time.monotonic()
                self._check_roots(now)
                self._rescan_unwatched(now)
                repo = self._due(now)
                checks: list[Repo] = []
                if repo is None:
                    for r in self.repos.values():
                        if r.state == RepoState.QUEUED and not r.pending:
                            r.state = RepoState.IDLE
                    checks = [r for r in self.repos.values() if self._check_due(r, now)]
                    if not checks:
                        self._wake.notify_all()
                        self._wake.wait(timeout=self._next_wakeup(now))
                        continue
                else:
                    scopes, repo.pending = repo.pending, set()
                    rebuild, repo.rebuild = repo.rebuild, False
                    repo.state, repo.error = RepoState.INDEXING, ""
                    repo.running = True
            if repo is None:  # idle: the periodic page checks, outside the lock
                for r in checks:
                    self.verify(r, deep=True)
                continue
            try:
                self._update(repo, scopes, rebuild)
            except Cancelled:
                return
            except EmbedderUnavailable as exc:  # the server is down: pause, resume when it is up
                delay = max(OUTAGE_RETRY_MIN_S, exc.retry_in)
                log.warning("%s: indexing paused (retrying in %.0f s): %s", repo.root, delay, exc)
                with self._lock:
                    repo.paused = True
                    repo.error = (
                        f"{exc}; indexing paused, searches use what is indexed "
                        f"(retrying in {delay:.0f} s)"
                    )
                    if repo.state != RepoState.REMOVED:  # the same work, later
                        self._queue(repo, scopes)
                        repo.rebuild = repo.rebuild or rebuild
                        repo.first_event = repo.last_event = time.monotonic() + delay
            except Exception as exc:  # one repository's failure must not stop the daemon
                if isinstance(exc, IndexCorrupt) and not rebuild:
                    # damage found while updating: rebuild now (a failed rebuild backs off)
                    self.damaged(repo, [integrity.reason_of(exc)], cause=exc.__cause__)
                    continue
                message = str(exc) if isinstance(exc, CodesearchError) else repr(exc)
                delay = min(RETRY_MAX_S, RETRY_S * 2**repo.failures)
                repo.failures += 1
                log.error("update of %s failed (retrying in %.0f s): %s", repo.root, delay, message)
                if not isinstance(exc, CodesearchError):
                    log.debug("traceback", exc_info=True)
                with self._lock:
                    repo.paused = False
                    repo.error = f"{message} (retrying in {delay:.0f} s)"
                    if repo.state != RepoState.REMOVED:  # nothing is lost: the same work, later
                        self._queue(repo, scopes)
                        repo.rebuild = repo.rebuild or rebuild
                        repo.first_event = repo.last_event = time.monotonic() + delay
            else:
                repo.failures, repo.paused = 0, False
            finally:
                self._finish(repo)

    def _finish(self, repo: Repo) -> None:
        """After a run: the repository's new state (watchers stop outside the lock)."""
        stale: RepoWatcher | None = None
        with self._wake:
            if repo.state == RepoState.REMOVED:
                pass
            elif not repo.root.is_dir():
                repo.state, repo.error = (
                    RepoState.MISSING,
                    f"repository folder is gone: {repo.root}",
                )
                repo.next_rescan = time.monotonic() + RESCAN_S
                stale, repo.watcher = repo.watcher, None
            elif repo.error:
                repo.state = RepoState.PAUSED if repo.paused else RepoState.ERROR
            else:
                repo.state = RepoState.QUEUED if repo.pending else RepoState.IDLE
            repo.progress = None
            self._wake.notify_all()
        if repo.state == RepoState.REMOVED:
            self._detach(repo)
        elif stale is not None:
            stale.stop()
        with self._wake:  # closed when removed: `remove` may delete its files now
            repo.running = False
            self._wake.notify_all()

    def _check_roots(self, now: float) -> None:
        """Every ``ROOT_CHECK_S`` (lock held): a folder moved or deleted is missing (its
        running update stops); one back, or another in its place, is watched and reconciled."""
        if now < self._next_root_check:
            return
        self._next_root_check = now + ROOT_CHECK_S
        for repo in self.repos.values():
            if repo.state == RepoState.REMOVED:
                continue
            found = _dir_id(repo.root)
            if found is None and repo.state != RepoState.MISSING:
                repo.state, repo.error = (
                    RepoState.MISSING,
                    f"repository folder is gone: {repo.root}",
                )
                repo.next_rescan = now + RESCAN_S
                log.warning("%s", repo.error)
                if repo.watcher is not None:
                    self._stale.append(repo.watcher)
                repo.watcher = None
            elif found is not None and (repo.state == RepoState.MISSING or found != repo.root_id):
                log.info("%s is back (or replaced): watching it again", repo.root)
                if repo.watcher is not None:
                    self._stale.append(repo.watcher)
                repo.watcher = None
                repo.state, repo.error = RepoState.QUEUED, ""
                self._watch(repo)
                self._queue(repo, {WHOLE_REPO})

    def _stop_stale(self) -> None:
        with self._lock:
            stale, self._stale = self._stale, []
        for watcher in stale:
            watcher.stop()

    def _rescan_unwatched(self, now: float) -> None:
        for repo in self.repos.values():
            if (
                repo.watcher is not None
                or repo.state == RepoState.REMOVED
                or now < repo.next_rescan
            ):
                continue
            repo.next_rescan = now + RESCAN_S
            if repo.state == RepoState.MISSING and repo.root.is_dir():
                log.info("%s is back", repo.root)
                repo.state, repo.error = RepoState.QUEUED, ""
                self._watch(repo)
            if (
                repo.state != RepoState.MISSING
                and not repo.pending
                and repo.state != RepoState.INDEXING
            ):
                self._queue(repo, {WHOLE_REPO})

    def _update(self, repo: Repo, scopes: set[str], rebuild: bool) -> None:
        if not repo.root.is_dir():
            return
        repo.index_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # one writer per index (another process's run goes first), held from the deletion of
        # a rebuilt index's files to the end of the run that writes the new ones
        try:
            with writer_lock(repo.index_path, while_waiting=lambda: self._before_embed(repo)):
                self._update_locked(repo, scopes, rebuild)
        except Cancelled:  # stopped, removed or gone while another process wrote the index
            if not self._stopping.is_set():
                log.info("%s: update stopped before it began", repo.root)

    def _update_locked(self, repo: Repo, scopes: set[str], rebuild: bool) -> None:
        replaced = repo.writer is not None and file_id(repo.index_path) != repo.writer_id
        if replaced:
            log.warning("%s: the index file was replaced or deleted: reopening it", repo.root)
        model, repo.model = repo.model, None
        if rebuild or replaced or not repo.checked or model:
            self._open_writer(repo, rebuild=rebuild, model=model)
        assert repo.writer is not None and repo.embedder is not None
        notice_gen = repo.notice_gen  # a notice raised after this is not this run's to clear
        scope = None if WHOLE_REPO in scopes or replaced else sorted(scopes)
        started = time.monotonic()
        indexer = Indexer(
            repo.root,
            repo.writer,
            repo.embedder,
            self.settings,
            progress=lambda p: setattr(repo, "progress", p),
            before_embed=lambda: self._before_embed(repo),
            # a remote backend gets enough chunks per call to keep all its requests in flight
            embed_group=max(self.settings.batch_size, repo.embedder.preferred_group),
        )
        stats = indexer.run(scope)
        if stats.cancelled:
            with self._lock:
                repo.last_stats = stats
            log.info(
                "%s: update stopped, %d files it finished are kept", repo.root, stats.files_indexed
            )
            return
        skipped = [s.path for s in stats.skipped if s.reason in SKIP_REASONS]
        repo.skip.update(scopes if scope is not None else [WHOLE_REPO], skipped)
        with self._lock:
            repo.last_update = time.time()
            repo.last_stats = stats
            repo.updates += 1
            repo.runs = [*repo.runs[-(KEEP_RUNS - 1) :], (repo.updates, stats)]
            repo.verified = file_stamp(repo.index_path)  # what the writer wrote is trusted
            repo.next_check = time.monotonic() + integrity.CHECK_S
            if scope is None and repo.notice and repo.notice_gen == notice_gen:
                log.info("%s: the index is whole again", repo.root)
                repo.notice = ""  # no longer true
        if stats.files_indexed or stats.files_removed or scope is None:
            log.info(
                "%s: %s: %d files updated, %d removed, %d chunks embedded in %.2f s",
                repo.root,
                "everything" if scope is None else f"{len(scope)} paths",
                stats.files_indexed,
                stats.files_removed,
                stats.chunks_embedded,
                time.monotonic() - started,
            )

    def _before_embed(self, repo: Repo) -> None:
        """Before each embedder call: stop if the daemon stops or the repository was removed
        or went missing; else let queries in flight finish first."""
        stop = (RepoState.REMOVED, RepoState.MISSING)
        with self._lock:  # the writer is busy: folders are checked here meanwhile
            self._check_roots(time.monotonic())
        self._stop_stale()
        if self._stopping.is_set() or repo.state in stop:
            raise Cancelled
        self.gate.wait_idle()
        if self._stopping.is_set() or repo.state in stop:
            raise Cancelled

    def _open_writer(self, repo: Repo, rebuild: bool, model: str | None = None) -> None:
        """Open (or reopen) the writer, checking the index's integrity first; ``model``:
        switch the index to it (`codesearch index --model`)."""
        with self._lock:
            self._close_stores(repo)
        found: list[str] = []
        if not rebuild and repo.index_path.exists():
            try:  # a full disk or a lock is raised: no finding, never a reason to rebuild
                with Store.open(repo.index_path) as probe:
                    found = probe.check()
            except IndexCorrupt as exc:
                found = [integrity.reason_of(exc)]
            except IndexMissing:
                found = []
        if found:
            self._raise_notice(repo, found)
        if rebuild or found:
            delete_database(repo.index_path)
            repo.condemned = None  # gone (its inode number may come back for the new file)
        repo.writer = Store.open(repo.index_path, create=True)
        repo.writer_id = file_id(repo.index_path)
        repo.embedder = prepare_writer(repo.root, repo.writer, self.settings, model=model)
        conflict = repo.embedder.dim_conflict(repo.writer.get_meta("model_id"))
        # never wipe an index because a server changed behind our back (unless asked to switch)
        if conflict and model is None:
            self._close_stores(repo)
            raise ModelMismatch(conflict)
        repo.checked = True


def _dir_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the folder at ``path``; None when there is none."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None
