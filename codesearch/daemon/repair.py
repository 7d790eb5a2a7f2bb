"""What the daemon does about a damaged, replaced or deleted index, mixed into
:class:`~codesearch.daemon.service.Service` (the checks themselves are in integrity.py).

An index that SQLite calls damaged (in a query or an update), that fails the page check (when
its file changed behind the daemon's back, and every ``integrity.CHECK_S``), or whose file was
replaced or deleted, is no longer read (its vectors in memory are dropped) and is rebuilt in the
background; every answer says so until a whole run has repaired it.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from codesearch.daemon import integrity
from codesearch.daemon.integrity import file_id, file_stamp
from codesearch.daemon.repo_state import Repo
from codesearch.daemon.watcher import WHOLE_REPO
from codesearch.types import RepoState

if TYPE_CHECKING:
    from collections.abc import Iterable

log = logging.getLogger("codesearch.daemon")


class Repair:
    """Damage found, the index condemned and queued for a rebuild, the notice that says so."""

    repos: dict[Path, Repo]
    _lock: threading.RLock
    _wake: threading.Condition

    if TYPE_CHECKING:  # Service's (declared only: no stub may shadow it)

        def _queue(self, repo: Repo, scopes: Iterable[str]) -> None: ...

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
