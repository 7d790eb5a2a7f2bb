"""The MCP server's side of the daemon: calls over the socket, the default repository, and the
one containment check every path argument of a tool goes through.

No SDK, no model, no index here: the daemon does the work, this module decides *where*.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TypeVar

from codesearch.config import Settings
from codesearch.daemon.link import DaemonLink
from codesearch.daemon.protocol import DaemonUnavailable
from codesearch.paths import find_repo_root, is_inside, relpath, resolve_root
from codesearch.types import BadInput, CodesearchError, IndexMissing, NotARepository, RepoState
from codesearch.wire import daemon as wire
from codesearch.wire.base import Wire

R = TypeVar("R", bound=Wire)

FIRST_INDEX_WAIT_S = 30.0  # a search of a repository still being indexed waits this long


class OutsideRepositories(BadInput):
    """A path argument that lies outside every registered repository."""


def notice(message: str) -> None:
    """stdout is the MCP channel: everything for people goes to stderr."""
    print(f"codesearch mcp: {message}", file=sys.stderr, flush=True)


class Link:
    """Requests to the daemon through the one client (daemon/link.py: started when none runs,
    restarted and the request retried once when it dies or is another version's)."""

    def __init__(self, settings: Settings) -> None:
        self.daemon = DaemonLink(settings, autostart=True, notice=notice)

    def request(self, params: wire.Params, result: type[R]) -> R:
        try:
            return self.daemon.request(params, result)
        except DaemonUnavailable as exc:
            raise DaemonUnavailable(
                f"the codesearch daemon is not available ({exc}); see `codesearch daemon logs`"
            ) from None


class Agent:
    """What the tools share: the daemon link, the server's working folder and its default
    repository (the one holding ``--repo`` or the working folder, registered at start)."""

    def __init__(self, settings: Settings, repo: str | None, cwd: Path) -> None:
        self.link = Link(settings)
        self.settings = settings
        self.repo_arg = repo
        self.cwd = cwd.resolve()
        self._default: Path | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ repositories

    def roots(self) -> list[Path]:
        """The registered repositories (the daemon's list)."""
        return [Path(r.root) for r in self.link.request(wire.ReposParams(), wire.ReposResult).repos]

    def setup(self) -> Path | None:
        """Find (and register when needed) the default repository. With ``--repo`` a failure is
        an error; without, it is a notice and the tools ask for ``repo``."""
        try:
            return self.default()
        except CodesearchError as exc:
            if self.repo_arg is not None:
                raise
            notice(f"no default repository: {exc}")
            return None

    def default(self) -> Path | None:
        """The default repository, registered with the daemon; None when the server was started
        outside any repository (and without ``--repo``)."""
        with self._lock:
            if self._default is not None:
                return self._default
            start = resolve_root(Path(self.repo_arg)) if self.repo_arg else self.cwd
            holding = [r for r in self.roots() if is_inside(r, start)]
            if holding:
                self._default = max(holding, key=lambda r: len(r.parts))
                return self._default
            target = start if self.repo_arg else self._repo_around(start)
            if target is None:
                return None
            answer = self.link.request(wire.AddParams(path=str(target)), wire.AddResult)
            if answer.added:
                notice(f"registered {answer.root} with the daemon (indexing in the background)")
            self._default = Path(answer.root)
            return self._default

    def _repo_around(self, start: Path) -> Path | None:
        """The nearest folder above ``start`` that has an index, else its git repository."""
        for folder in (start, *start.parents):
            if self.settings.index_path(folder).exists():
                return folder
        try:
            return find_repo_root(start)
        except NotARepository:
            return None

    def require_default(self) -> Path:
        root = self.default()
        if root is None:
            raise BadInput(
                f"this server was started outside any repository ({self.cwd}): pass repo "
                "(one of list_repos), or start it with `codesearch mcp --repo PATH`"
            )
        return root

    # ------------------------------------------------------------------ containment

    def contain(self, raw: str, what: str, base: Path | None = None) -> tuple[Path, str]:
        """THE check for every path argument: the registered repository that holds ``raw``
        (symlinks followed; a relative path is taken from ``base``, else from the default
        repository, else from the server's folder) and the path relative to it ("." for the
        root). OutsideRepositories when no registered repository holds it."""
        if not raw.strip() or "\x00" in raw:
            raise BadInput(f"{what} must be a non-empty path")
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = (base or self.default() or self.cwd) / path
        roots = self.roots()
        holding = [r for r in roots if is_inside(r, path)]
        if not holding:
            known = ", ".join(str(r) for r in roots) or "none"
            raise OutsideRepositories(
                f"{what} {raw!r} is outside the registered repositories ({known}): only "
                "those can be searched or indexed (a person adds one with `codesearch add PATH`)"
            )
        root = max(holding, key=lambda r: len(r.parts))
        return root, relpath(root, path)

    def repo_root(self, repo: str | None) -> Path:
        """The repository a tool is about: the registered one holding ``repo``, else the
        default one."""
        return self.contain(repo, "repo")[0] if repo is not None else self.require_default()

    def check_glob(self, root: Path, glob: str) -> str:
        """A path_glob filter must stay inside the repository it filters (same check)."""
        held, _ = self.contain(glob, "path_glob", base=root)
        if held != root:
            raise OutsideRepositories(f"path_glob {glob!r} leaves the repository {root}")
        return glob

    # ------------------------------------------------------------------ daemon calls

    def search(self, root: Path, params: wire.SearchParams) -> wire.SearchResult:
        """Search ``root``; a repository still being indexed for the first time is waited for
        (up to FIRST_INDEX_WAIT_S)."""
        return self._query(root, params, wire.SearchResult)

    def similar(self, root: Path, params: wire.SimilarParams) -> wire.SimilarResult:
        """The code of ``root`` most like the chunk at ``params`` path:line (path already
        through :meth:`contain`); waits for a first index like :meth:`search`."""
        return self._query(root, params, wire.SimilarResult)

    def _query(self, root: Path, params: wire.Params, result: type[R]) -> R:
        params = params.model_copy(update={"repo": str(root)})
        try:
            return self.link.request(params, result)
        except IndexMissing:
            repo = self.status(root)
            if repo is None or repo.state not in (RepoState.QUEUED, RepoState.INDEXING):
                raise
        self.wait(root, FIRST_INDEX_WAIT_S)
        try:
            return self.link.request(params, result)
        except IndexMissing:
            repo = self.status(root)
            p = repo.progress if repo is not None else None
            done = f" ({p.files_done}/{p.files_total} files)" if p else ""
            raise IndexMissing(
                f"{root} is being indexed for the first time{done}: ask again in a minute "
                "(grep works meanwhile)"
            ) from None

    def wait(self, root: Path, timeout: float) -> bool:
        """Whether ``root`` has no pending work, after waiting up to ``timeout`` seconds."""
        return self.link.request(
            wire.WaitParams(repo=str(root), timeout=timeout), wire.WaitResult
        ).idle

    def statuses(self, root: Path | None) -> list[wire.RepoStatus]:
        """The daemon's status of ``root`` (every registered repository when None)."""
        params = wire.StatusParams(repo=str(root) if root is not None else None)
        return self.link.request(params, wire.StatusResult).repos

    def status(self, root: Path) -> wire.RepoStatus | None:
        repos = self.statuses(root)
        return repos[0] if repos else None
