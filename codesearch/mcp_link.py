"""The MCP server's side of the daemon: calls over the socket, the default repository, and the
one containment check every path argument of a tool goes through.

No SDK, no model, no index here: the daemon does the work, this module decides *where*.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from codesearch.config import Settings
from codesearch.daemon.protocol import DaemonUnavailable, SchemaMismatch
from codesearch.paths import find_repo_root, is_inside, relpath, resolve_root
from codesearch.types import BadInput, CodesearchError, IndexMissing, NotARepository

FIRST_INDEX_WAIT_S = 30.0  # a search of a repository still being indexed waits this long


class OutsideRepositories(BadInput):
    """A path argument that lies outside every registered repository."""


def notice(message: str) -> None:
    """stdout is the MCP channel: everything for people goes to stderr."""
    print(f"codesearch mcp: {message}", file=sys.stderr, flush=True)


class Link:
    """Requests to the daemon, each on a fresh connection (the daemon may be restarted under a
    long-lived MCP server); the daemon is started when none runs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        from codesearch.daemon import lifecycle

        try:
            with lifecycle.connect(self.settings, autostart=True, notice=notice) as client:
                return client.call(method, params or {})
        except SchemaMismatch:  # a daemon left running by another version of codesearch
            notice("the running daemon is from another codesearch version: restarting it")
            lifecycle.stop(self.settings)
            with lifecycle.connect(self.settings, autostart=True, notice=notice) as client:
                return client.call(method, params or {})
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
        return [Path(r["root"]) for r in self.link.call("repos")["repos"]]

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
            answer = self.link.call("add", {"path": str(target), "wait": False})
            if answer.get("added"):
                notice(f"registered {answer['root']} with the daemon (indexing in the background)")
            self._default = Path(answer["root"])
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

    def search(self, root: Path, params: dict[str, Any]) -> dict[str, Any]:
        """Search ``root``; a repository still being indexed for the first time is waited for
        (up to FIRST_INDEX_WAIT_S)."""
        return self._query("search", root, params)

    def similar(self, root: Path, params: dict[str, Any]) -> dict[str, Any]:
        """The code of ``root`` most like the chunk at ``params`` path:line (path already
        through :meth:`contain`); waits for a first index like :meth:`search`."""
        return self._query("similar", root, params)

    def _query(self, method: str, root: Path, params: dict[str, Any]) -> dict[str, Any]:
        params = {**params, "repo": str(root)}
        try:
            return self.link.call(method, params)
        except IndexMissing:
            repo = self.status(root)
            if repo is None or repo.get("state") not in ("queued", "indexing"):
                raise
        self.link.call("wait", {"repo": str(root), "timeout": FIRST_INDEX_WAIT_S})
        try:
            return self.link.call(method, params)
        except IndexMissing:
            repo = self.status(root) or {}
            p = repo.get("progress") or {}
            done = f" ({p.get('files_done', 0)}/{p.get('files_total', 0)} files)" if p else ""
            raise IndexMissing(
                f"{root} is being indexed for the first time{done}: ask again in a minute "
                "(grep works meanwhile)"
            ) from None

    def status(self, root: Path) -> dict[str, Any] | None:
        repos = self.link.call("status", {"repo": str(root)})["repos"]
        return repos[0] if repos else None
