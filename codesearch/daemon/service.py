"""The daemon's engine owner: registered repositories, their watchers, the one writer thread
that keeps every index fresh, and the query side that never waits for it.

- Events are debounced per repository: a batch is taken when no event came for ``QUIET_S``,
  or ``MAX_DELAY_S`` after its first event (longer for a burst of many paths, see
  :meth:`Repo.due_at` in repo_state.py), so a ``git checkout`` of thousands of files is one
  scoped update, not thousands. Pending work is a set of scopes (paths), capped at
  ``MAX_PENDING_SCOPES`` (beyond that: one whole-repository reconcile), so the queue is bounded.
- One writer (the worker thread) per daemon; every query reads through its own connection
  (WAL: readers never wait for the writer). The writer embeds in small groups and waits for
  in-flight queries before each group: background indexing yields to queries.
- On start every repository is integrity-checked and reconciled with the disk (size + mtime,
  then content hash), so changes made while the daemon was down are picked up.
- Integrity is checked, not assumed (integrity.py): an index that SQLite calls damaged (in a
  query or an update), that fails the page check (when its file changed behind the daemon's
  back, and every ``CHECK_S``), or whose file was replaced or deleted, is no longer read (its
  vectors in memory are dropped) and is rebuilt in the background; every answer says so
  until it is done. A full disk is a full disk (``DiskFull``): updates retry, nothing is
  rebuilt.
- A remote embedding server that is down (its circuit breaker open, see embed/remote/policy.py)
  pauses indexing ("paused" in the status, with the reason) until the breaker lets a trial
  through; queries keep answering from what is indexed (keywords only while the question
  cannot be embedded). The unfinished work stays queued: nothing is lost or indexed twice.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from codesearch import __version__
from codesearch.config import Settings
from codesearch.daemon import integrity, registry
from codesearch.daemon.facts import embedder_facts, index_facts, rss_bytes
from codesearch.daemon.forget import Removed, delete_index
from codesearch.daemon.integrity import Rebuilding, file_id, file_stamp
from codesearch.daemon.protocol import SCHEMA_VERSION
from codesearch.daemon.repo_state import Repo
from codesearch.daemon.runtime import Runtime
from codesearch.daemon.watcher import WHOLE_REPO, RepoWatcher
from codesearch.embed import EmbedderUnavailable
from codesearch.engine import META_MODEL_SPEC, RepoSearch, locate_repo, prepare_writer
from codesearch.index import Cancelled, Indexer
from codesearch.paths import resolve_root
from codesearch.search import SearchOptions
from codesearch.store import Store
from codesearch.store.writer_lock import delete_database, writer_lock
from codesearch.types import (
    BadInput,
    CodesearchError,
    IndexCorrupt,
    IndexMissing,
    IndexStats,
    ModelMismatch,
    RepoState,
)
from codesearch.wire.daemon import DaemonInfo, Progress, RepoStatus, StatusResult
from codesearch.wire.hits import Hit, Source

log = logging.getLogger("codesearch.daemon")

MAX_PENDING_SCOPES = 2000  # more pending paths than this: reconcile the whole repository
RESCAN_S = 60.0  # a repository without a watcher (watch limit, gone) is rescanned this often
FRESH_WAIT_S = 1.0  # a query waits this long at most for small pending changes to land
YIELD_MAX_S = 2.0  # the writer waits at most this long for queries before each embed group
RETRY_S, RETRY_MAX_S = 5.0, 300.0  # a failed update is retried after 5 s, 10 s, ... 5 min
OUTAGE_RETRY_MIN_S = 1.0  # a paused update is retried when the server's breaker allows, >= this
SKIP_REASONS = ("ignored", "vendored", "vcs")  # name-based: events below them change nothing
ROOT_CHECK_S = 2.0  # every watched folder is checked this often: moved, deleted, back
STOP_WAIT_S = 30.0  # `remove` waits at most this long for a running update to stop
HALT_WAIT_S = 8.0  # `daemon stop` waits this long to say what a running update kept
KEEP_RUNS = 16  # the stats of this many latest runs per repository (what `reindex` reports)


class Reindexed(NamedTuple):
    root: Path
    added: bool  # it was not watched: it is now
    updates: int  # its runs finished before the request


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


class Service:
    def __init__(self, settings: Settings, rt: Runtime) -> None:
        self.settings = settings
        self.rt = rt
        self.started = time.time()
        self.repos: dict[Path, Repo] = {}
        self.removed: set[Path] = set()  # `codesearch remove`d: a search does not re-add them
        self._next_root_check = 0.0
        self._stale: list[RepoWatcher] = []  # watchers of folders gone, stopped outside the lock
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self.gate = QueryGate()
        self._readers = threading.Lock()  # opening readers (model loads) one at a time
        self._worker = threading.Thread(target=self._work, name="writer", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.removed = registry.load_removed(self.rt.repos)
        for root in registry.load(self.rt.repos):
            self._attach(root)
        self._worker.start()
        log.info(
            "daemon %s started (pid %d), %d repositories", __version__, os.getpid(), len(self.repos)
        )

    def halt(self) -> list[tuple[Path, int]]:
        """Stop indexing (the daemon is stopping): a running update stops before its next
        embedder call. The repositories whose update stopped, each with the files it kept
        (within :data:`HALT_WAIT_S`; a later stop is only logged)."""
        self._stopping.set()
        with self._wake:
            running = [(r, r.last_stats) for r in self.repos.values() if r.running]
            self._wake.notify_all()
            self._wake.wait_for(lambda: not any(r.running for r, _ in running), HALT_WAIT_S)
            return [
                (r.root, r.last_stats.files_indexed)
                for r, before in running
                if not r.running
                and r.last_stats is not before  # this run's (a failed run leaves none)
                and r.last_stats is not None
                and r.last_stats.cancelled
            ]

    def stop(self) -> None:
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        self._worker.join(timeout=30)
        with self._lock:
            repos = list(self.repos.values())
        for repo in repos:  # outside the lock: a watcher's last event may be waiting for it
            self._detach(repo)
        log.info("daemon stopped")

    def _attach(self, root: Path) -> Repo:
        """Start following ``root`` (lock held or not yet shared): watch it, queue catch-up."""
        with self._lock:
            repo = Repo(root=root, index_path=self.settings.index_path(root))
            self.repos[root] = repo
            self._watch(repo)
            self._queue(repo, {WHOLE_REPO})
            self._wake.notify_all()
            return repo

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

    def _detach(self, repo: Repo) -> None:
        """Stop watching and close the stores; call it without holding the lock."""
        watcher, repo.watcher = repo.watcher, None
        if watcher is not None:
            watcher.stop()
        self._close_stores(repo)

    # ------------------------------------------------------------------ requests

    def add(self, path: str) -> tuple[Repo, bool]:
        root = resolve_root(Path(path))
        with self._lock:
            if root in self.repos:
                return self.repos[root], False
            repo = self._attach(root)
            self.removed.discard(root)
            registry.save(self.rt.repos, list(self.repos), self.removed)
            log.info("added %s", root)
            return repo, True

    def remove(self, path: str, delete: bool = False) -> Removed:
        """Stop watching ``path`` (remembered until `add`); a running update of it stops
        before its next embedder call, keeping the files it finished; ``delete``: then
        delete its index (also of a repository not watched)."""
        root = Path(path).expanduser().resolve()
        index = self.settings.index_path(root)
        with self._wake:
            repo = self.repos.pop(root, None)
            if repo is None and not (delete and index.exists()):
                raise BadInput(f"not a watched repository: {path} (see `codesearch repos`)")
            self.removed.add(root)
            registry.save(self.rt.repos, list(self.repos), self.removed)
            stopped = repo is not None and repo.running
            if repo is not None:
                repo.pending.clear()
                repo.rebuild = False
                repo.state = RepoState.REMOVED  # the running update stops; the writer closes it
                self._wake.notify_all()
            if repo is not None and stopped:
                self._wake.wait_for(lambda: not repo.running, timeout=STOP_WAIT_S)
        kept = None
        if repo is not None and not repo.running:
            self._detach(repo)
            stats = repo.last_stats
            kept = stats.files_indexed if stopped and stats is not None and stats.cancelled else 0
        deleted = delete_index(index) if delete else ()
        log.info("removed %s%s", root, f" and deleted {len(deleted)} index files" if delete else "")
        return Removed(root, stopped=stopped, files_kept=kept, deleted=deleted)

    def notify(self, repo: Repo, scopes: Iterable[str]) -> None:
        """Paths (scopes) changed in ``repo``: queue them; the writer takes them debounced."""
        with self._wake:
            if self.repos.get(repo.root) is not repo:
                return
            self._queue(repo, scopes)
            self._wake.notify_all()

    def _queue(self, repo: Repo, scopes: Iterable[str]) -> None:
        now = time.monotonic()
        if not repo.pending:
            repo.first_event = now
        repo.last_event = now
        if WHOLE_REPO in repo.pending:
            return
        scopes = set(scopes)
        if WHOLE_REPO in scopes or len(repo.pending) + len(scopes) > MAX_PENDING_SCOPES:
            repo.pending = {WHOLE_REPO}
        else:
            repo.pending |= scopes

    def hint(self, paths: Iterable[str]) -> int:
        """A face saw these files change (an editor save): queue them now."""
        queued = 0
        with self._lock:
            repos = list(self.repos.values())
        for raw in paths:
            path = Path(raw).expanduser().absolute()
            for repo in repos:
                if path == repo.root or repo.root in path.parents:
                    rel = path.relative_to(repo.root).as_posix()
                    self.notify(repo, {"" if rel == "." else rel})
                    queued += 1
                    break
        return queued

    def reindex(self, path: str, rebuild: bool, model: str | None = None) -> Reindexed:
        """Queue a whole pass over ``path`` (watched from now on), a rebuild, a model switch;
        the runs that finish after this (the one running now included) are its work."""
        root = resolve_root(Path(path))
        with self._wake:
            repo = self.repos.get(root)
            added = repo is None
            if repo is None:
                repo = self._attach(root)
                self.removed.discard(root)
                registry.save(self.rt.repos, list(self.repos), self.removed)
            self._queue(repo, {WHOLE_REPO})
            repo.rebuild = repo.rebuild or rebuild
            repo.model = model or repo.model
            self._wake.notify_all()
            return Reindexed(root, added, repo.updates)

    def runs_since(self, root: Path, updates: int) -> list[IndexStats]:
        """The stats of the runs of ``root`` that finished after its ``updates``-th."""
        with self._lock:
            repo = self.repos.get(root)
            return [] if repo is None else [s for n, s in repo.runs if n > updates]

    def resolve(self, repo: str | None, cwd: str | None) -> Path:
        if repo:
            gone = self.repos.get(Path(repo).expanduser().resolve())
            if gone is not None and gone.state == RepoState.MISSING:
                raise BadInput(f"{gone.error} (moved or deleted? `codesearch status` shows it)")
            return resolve_root(Path(repo))
        return locate_repo(Path(cwd or "."), self.settings)

    def search(
        self,
        root: Path,
        queries: list[str],
        options: SearchOptions,
        model: str | None,
    ) -> tuple[list[list[Hit]], list[str]]:
        notices: list[str] = []
        repo = self._queried(root, notices)
        outage = ""
        try:
            with self.gate, repo.read_lock:
                reader = self._reader(repo, model)
                hits = reader.search_many(queries, options)
                outage = reader.searcher.outage
        except (IndexCorrupt, Rebuilding) as exc:
            self._unreadable(repo, exc, notices)
            hits = [[] for _ in queries]
        if outage:
            notices.append(f"{outage}: these results match keywords only")
        self._index_notices(repo, notices)
        return [[Hit.of(h) for h in one] for one in hits], notices

    def similar(
        self,
        root: Path,
        path: str,
        line: int,
        options: SearchOptions,
        model: str | None,
    ) -> tuple[Source, list[Hit], list[str]]:
        """The chunk at ``path:line`` and the chunks most like it (codesearch.similar)."""
        notices: list[str] = []
        repo = self._queried(root, notices)
        try:
            with self.gate, repo.read_lock:
                source, hits = self._reader(repo, model).similar(path, line, options)
        except (IndexCorrupt, Rebuilding) as exc:
            self._unreadable(repo, exc, notices)
            self._index_notices(repo, notices)
            raise IndexMissing(  # no chunk to start from: the notice says why
                "; ".join(notices) or f"the index of {repo.root} cannot be read now"
            ) from None
        self._index_notices(repo, notices)
        return Source.of(source), [Hit.of(h) for h in hits], notices

    def _queried(self, root: Path, notices: list[str]) -> Repo:
        """The repository a query is about (registered now if it has an index but was not),
        with small pending changes landed first."""
        with self._lock:
            repo = self.repos.get(root)
        if repo is None and root in self.removed:
            raise BadInput(
                f"{root} was removed with `codesearch remove`: `codesearch add {root}` "
                "indexes and watches it again"
            )
        if repo is None:
            if not self.settings.index_path(root).exists():
                raise IndexMissing(
                    f"no index for {root}: run `codesearch add {root}` to index and watch it"
                )
            repo, _ = self.add(str(root))
            notices.append(f"now watching {root} for changes (`codesearch remove` stops it)")
        if repo.pending and WHOLE_REPO not in repo.pending and repo.last_update is not None:
            # a save just before the question: answer about the code as it is now
            self.wait(root, FRESH_WAIT_S)
        self.verify(repo)
        return repo

    def _unreadable(self, repo: Repo, exc: Exception, notices: list[str]) -> None:
        """A query found the index damaged (or being rebuilt): no hits, and a notice why."""
        if isinstance(exc, IndexCorrupt):
            self.damaged(repo, [integrity.reason_of(exc)], cause=exc.__cause__)
        elif str(exc) and not repo.notice:
            notices.append(str(exc))

    def _index_notices(self, repo: Repo, notices: list[str]) -> None:
        """What a query's answer says about the index: an update running, damage being
        repaired (for as long as it is true: the status says the same)."""
        with self._lock:
            p = repo.progress
            if repo.state == RepoState.MISSING:
                notices.append(f"{repo.error}: these results are from its index as it was")
            if repo.state == RepoState.INDEXING and p is not None and p.files_total > p.files_done:
                # only when files are really being re-indexed (not a catch-up that finds none)
                left = p.files_total - p.files_done
                notices.append(f"the index of {repo.root} is being updated: {left} files left")
            if repo.notice:
                notices.append(repo.notice)

    def _reader(self, repo: Repo, model: str | None) -> RepoSearch:
        with self._readers:  # one model load at a time
            fid = file_id(repo.index_path)
            if repo.reader is not None and (fid != repo.reader_id or fid == repo.condemned):
                repo.reader.close()  # replaced, deleted or damaged: its copy in memory goes too
                repo.reader = None
            if repo.reader is None:
                busy = repo.busy() or bool(repo.notice)
                if fid is None or fid == repo.condemned:
                    if busy:
                        raise Rebuilding(integrity.building_notice(repo.root))
                    raise IndexMissing(
                        f"{repo.root} is not indexed yet: wait for `codesearch status` to show "
                        "it idle (or `codesearch add --wait`)"
                    )
                try:
                    reader = RepoSearch(repo.root, self.settings, vector_cache=True)
                except IndexMissing:  # created, not written yet: the writer is building it
                    if busy:
                        raise Rebuilding(integrity.building_notice(repo.root)) from None
                    raise
                repo.reader, repo.reader_id = reader, fid
            spec = repo.reader.store.get_meta(META_MODEL_SPEC) or ""
            if model and model not in ("auto", spec):
                raise ModelMismatch(
                    f"index of {repo.root} was built with model {spec!r}, not {model!r}: "
                    f"rebuild it with `codesearch index --rebuild --model {model}`"
                )
            return repo.reader

    def wait(self, root: Path | None, timeout: float) -> bool:
        """Block until ``root`` (every repository when None) has no pending work."""

        def idle() -> bool:
            repos = [self.repos[root]] if root in self.repos else []
            if root is None:
                repos = list(self.repos.values())
            return not any(r.busy() for r in repos)

        with self._wake:
            return self._wake.wait_for(idle, timeout=timeout)

    # ------------------------------------------------------------------ the writer

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

    # ------------------------------------------------------------------ integrity

    def _raise_notice(self, repo: Repo, problems: list[str], cause: object = None) -> None:
        """Say (in the status and every answer, until a whole run repairs it) that the index
        is damaged; the details go to the log."""
        with self._lock:
            log.error(
                "%s: index damaged: rebuilding it: %s%s",
                repo.root,
                "; ".join(problems),
                f" (SQLite: {cause})" if cause else "",
            )
            repo.notice = integrity.damaged_notice(repo.root, integrity.summary(problems))
            repo.notice_gen += 1

    def damaged(self, repo: Repo, problems: list[str], cause: object = None) -> None:
        """The index of ``repo`` is damaged: stop reading it, rebuild it in the background."""
        with self._wake:
            fid = file_id(repo.index_path)
            if repo.state == RepoState.REMOVED or (repo.rebuild and repo.condemned == fid):
                return  # known already
            self._raise_notice(repo, problems, cause)
            repo.condemned = fid  # queries stop reading it (and drop its vectors in memory)
            repo.rebuild = True
            self._queue(repo, {WHOLE_REPO})
            if repo.state == RepoState.IDLE:
                repo.state = RepoState.QUEUED
            self._wake.notify_all()

    def verify(self, repo: Repo, deep: bool = False) -> None:
        """Check that the index file is the one the writer wrote: its identity (replaced,
        deleted) and, when it changed behind the writer's back (or ``deep``), its pages."""
        with self._wake:
            if (
                repo.writer is None
                or repo.rebuild
                or repo.state in (RepoState.INDEXING, RepoState.REMOVED, RepoState.MISSING)
            ):
                return  # not opened yet, or being written: the writer checks it itself
            stamp = file_stamp(repo.index_path)
            if stamp == repo.verified and not deep:
                return
            fid = None if stamp is None else (stamp[0], stamp[1])
        if fid != repo.writer_id:
            self._replaced(repo, fid)
            return
        problems = integrity.page_problems(repo.index_path)  # outside the lock: reads the file
        with self._wake:
            repo.next_check = time.monotonic() + integrity.CHECK_S
            if problems is not None and not problems and file_stamp(repo.index_path) == stamp:
                repo.verified = stamp
        if problems:
            self.damaged(repo, problems)

    def _replaced(self, repo: Repo, fid: tuple[int, int] | None) -> None:
        """The index file was replaced or deleted behind the writer's back: an index of
        another repository is rebuilt, anything else is brought up to date with the files."""
        other = None if fid is None else integrity.root_of(repo.index_path)
        if other is not None and other != str(repo.root):
            self.damaged(repo, [f"the file was replaced by the index of {other}"])
            return
        with self._wake:
            if repo.notice and WHOLE_REPO in repo.pending:
                return  # known already
            what = "deleted" if fid is None else "replaced"
            log.warning("%s: the index file was %s: updating it", repo.root, what)
            repo.notice = integrity.replaced_notice(repo.root, what)
            repo.notice_gen += 1
            self._queue(repo, {WHOLE_REPO})
            if repo.state == RepoState.IDLE:
                repo.state = RepoState.QUEUED
            self._wake.notify_all()

    def _check_due(self, repo: Repo, now: float) -> bool:
        """The periodic page check of ``repo`` is due (lock held)."""
        return (
            repo.state == RepoState.IDLE
            and repo.writer is not None
            and not repo.pending
            and now >= repo.next_check
        )

    def _close_stores(self, repo: Repo) -> None:
        with repo.read_lock:  # never under a query that is reading
            if repo.reader is not None:
                repo.reader.close()
            repo.reader = None
        if repo.writer is not None:
            repo.writer.close()
        repo.writer = None

    # ------------------------------------------------------------------ status

    def repo_status(self, repo: Repo) -> RepoStatus:
        p = repo.progress
        facts = index_facts(repo.index_path)
        if repo.notice:  # it says what is wrong and that it is being repaired
            facts.pop("index_error", None)
        return RepoStatus(
            root=str(repo.root),
            state=repo.state,
            watching=repo.watcher is not None,
            pending=len(repo.pending) + (1 if repo.rebuild else 0),
            last_update=repo.last_update,
            updates=repo.updates,
            index=str(repo.index_path),
            error=repo.error or repo.watch_error,
            notice=repo.notice,
            progress=None
            if p is None
            else Progress(
                files_done=p.files_done,
                files_total=p.files_total,
                chunks_embedded=p.chunks_embedded,
            ),
            **facts,
        )

    def status(self, root: Path | None = None) -> StatusResult:
        with self._lock:
            repos = [r for r in self.repos.values() if root is None or r.root == root]
        for repo in repos:
            self.verify(repo)
        with self._lock:
            queue = sum(len(r.pending) for r in self.repos.values())
            running = [r for r in self.repos.values() if r.state == RepoState.INDEXING]
            left = sum(
                max(r.progress.files_total - r.progress.files_done, 0)
                for r in running
                if r.progress is not None
            )
        return StatusResult(
            daemon=self.daemon_info(queue + left), repos=[self.repo_status(r) for r in repos]
        )

    def daemon_info(self, queue_depth: int | None = None) -> DaemonInfo:
        if queue_depth is None:
            with self._lock:
                queue_depth = sum(len(r.pending) for r in self.repos.values())
        return DaemonInfo(
            pid=os.getpid(),
            version=__version__,
            schema=SCHEMA_VERSION,
            uptime_s=round(time.time() - self.started, 1),
            rss_bytes=rss_bytes(),
            queue_depth=queue_depth,
            repos=len(self.repos),
            socket=str(self.rt.socket),
            log=str(self.rt.log),
            embedders=embedder_facts(),
        )


def _dir_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the folder at ``path``; None when there is none."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None
