"""The daemon's engine owner: registered repositories, their watchers, the one writer thread
that keeps every index fresh, and the query side that never waits for it. This module holds
their state, the lifecycle and the requests; the watchers and the writer thread are writer.py,
what is done about a damaged or replaced index is repair.py.

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
from codesearch.daemon.integrity import Rebuilding, file_id
from codesearch.daemon.protocol import SCHEMA_VERSION
from codesearch.daemon.repair import Repair
from codesearch.daemon.repo_state import Repo
from codesearch.daemon.runtime import Runtime
from codesearch.daemon.watcher import WHOLE_REPO, RepoWatcher
from codesearch.daemon.writer import QueryGate, WriterLoop
from codesearch.engine import META_MODEL_SPEC, RepoSearch, locate_repo
from codesearch.paths import resolve_root
from codesearch.search import SearchOptions
from codesearch.types import (
    BadInput,
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
FRESH_WAIT_S = 1.0  # a query waits this long at most for small pending changes to land
STOP_WAIT_S = 30.0  # `remove` waits at most this long for a running update to stop
HALT_WAIT_S = 8.0  # `daemon stop` waits this long to say what a running update kept


class Reindexed(NamedTuple):
    root: Path
    added: bool  # it was not watched: it is now
    updates: int  # its runs finished before the request


class Service(WriterLoop, Repair):
    """The repositories, their watchers and writer (writer.py), their repair (repair.py), and
    the requests the server hands in: add, remove, search, status."""

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

    # ------------------------------------------------------------------ stores

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
