"""The terminal face's daemon side: `daemon start|stop|...`, `add`, `remove`, `repos`,
`status`, and searching through the daemon. Cheap to import (no torch, no numpy)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from codesearch import printable
from codesearch.config import Settings
from codesearch.daemon.client import running
from codesearch.daemon.runtime import runtime
from codesearch.types import BadInput

if TYPE_CHECKING:
    from codesearch.daemon.link import DaemonLink
    from codesearch.wire import daemon as wire
    from codesearch.wire.daemon import Params, ProgressEvent, SearchResult, SimilarResult

    Answer = TypeVar("Answer", SearchResult, SimilarResult)


def notice(message: str) -> None:
    print(printable.name(f"codesearch: {message}"), file=sys.stderr)


def link(settings: Settings, start: bool = True) -> DaemonLink:
    """The daemon, started (with a notice) when none runs and ``start``; restarted when it
    dies during a call or is another version's (daemon/link.py)."""
    from codesearch.daemon.link import DaemonLink

    return DaemonLink(settings, autostart=start, notice=notice)


def query(settings: Settings, params: Params, result: type[Answer]) -> Answer | None:
    """A query (``search``, ``similar``) through the daemon, its notices printed; None when
    no daemon can serve (the caller works in-process)."""
    from codesearch.daemon.link import NotRunning

    try:
        answer = link(settings).request(params, result)
    except NotRunning as exc:
        notice(f"{exc}; searching in-process")
        return None
    for line in answer.notices:
        notice(line)
    return answer


# ---------------------------------------------------------------------- daemon ...


def cmd_daemon(args: argparse.Namespace, settings: Settings) -> int:
    from codesearch.daemon import lifecycle

    action = args.action
    if action == "start":
        if args.foreground:
            from codesearch.daemon.server import serve

            return serve(settings, foreground=True)
        info = lifecycle.start(settings)
        state = "already running" if info.get("already_running") else "started"
        print(f"codesearch daemon {state} (pid {info['pid']}, socket {info['socket']})")
        return 0
    if action == "stop":
        stopped = lifecycle.stop(settings)
        if stopped is None:
            print("codesearch daemon was not running")
            return 0
        for root, kept in stopped.kept:
            print(printable.name(f"stopped indexing {root}: {kept} files it finished are kept"))
        print(f"stopped (pid {stopped.pid})")
        return 0
    if action == "restart":
        lifecycle.stop(settings)
        info = lifecycle.start(settings)
        print(f"codesearch daemon restarted (pid {info['pid']})")
        return 0
    if action == "status":
        info = running(settings)
        if info is None:
            print("codesearch daemon is not running (`codesearch daemon start`)")
            return 1
        print(_daemon_line(info))
        return 0
    if action == "logs":
        return _logs(settings, args.lines, args.follow)
    if action == "install":
        path, text = lifecycle.install(settings)
        print(f"wrote {path}:\n\n{text}")
        print("enable it with:\n  systemctl --user daemon-reload")
        print(f"  systemctl --user enable --now {lifecycle.UNIT_NAME}")
        return 0
    raise BadInput(f"unknown daemon action {action!r}")


def _logs(settings: Settings, lines: int, follow: bool) -> int:
    from codesearch.daemon import lifecycle

    log = runtime(settings).log
    if not log.exists():
        print(printable.name(f"no log yet at {log}"), file=sys.stderr)
        return 1
    for line in lifecycle.read_log(settings, lines):
        print(printable.line(line))
    if not follow:
        return 0
    with open(log, encoding="utf-8", errors="replace") as handle:
        handle.seek(0, 2)
        while True:
            line = handle.readline()
            if line:
                print(printable.line(line.rstrip("\n")), flush=True)
            else:
                time.sleep(0.25)


def _daemon_line(info: dict[str, Any]) -> str:
    return (
        f"daemon      running (pid {info['pid']}, up {_ago(info['uptime_s'])}, "
        f"RSS {info['rss_bytes'] / 1e6:.0f} MB, queue {info['queue_depth']}, "
        f"{info.get('repos', 0)} repositories)"
    )


def _ago(seconds: float) -> str:
    from codesearch.render import duration

    return duration(seconds)


# ---------------------------------------------------------------------- add / remove / repos


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from codesearch.cli_checks import guard_root
    from codesearch.wire import daemon as wire
    from codesearch.wire.base import parse

    guard_root(Path(args.path), args.force)
    path = str(Path(args.path).expanduser().resolve())
    bar = _EventBar() if not args.no_wait else None
    try:
        params = parse(wire.AddParams, {"path": path, "wait": not args.no_wait}, BadInput)
        answer = link(settings).request(params, wire.AddResult, on_progress=bar)
    finally:
        if bar is not None:
            bar.close()
    verb = "watching" if answer.added else "already watching"
    print(
        printable.name(
            f"{verb} {answer.root}: {answer.files} files, {answer.chunks} chunks ({answer.state})"
        )
    )
    return 0


class _EventBar:
    """Progress events from the daemon, drawn with the CLI's progress bar."""

    def __init__(self) -> None:
        from codesearch.render import ProgressBar

        self.bar = ProgressBar()
        self.started = time.monotonic()

    def __call__(self, event: ProgressEvent) -> None:
        if event.files_total:
            self.bar(event.at(time.monotonic() - self.started))

    def close(self) -> None:
        self.bar.close()


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    """`remove [--delete]` and `forget`: stop watching; say what a running update kept and
    what was deleted."""
    from codesearch.daemon.link import NotRunning
    from codesearch.wire import daemon as wire
    from codesearch.wire.base import parse

    path = str(Path(args.path).expanduser().resolve())
    asked = parse(wire.RemoveParams, {"path": path, "delete": args.delete}, BadInput)
    try:
        answer = link(settings, start=False).request(asked, wire.RemoveResult)
    except NotRunning:
        answer = _remove_here(args, settings, path)
    index = settings.index_path(Path(answer.root))
    if answer.stopped:
        kept = answer.files_kept
        print(
            printable.name(
                f"stopped indexing {answer.root}: "
                + (
                    "it stops after its current step"
                    if kept is None
                    else f"{kept} files it finished are kept"
                )
            )
        )
    if args.delete:
        for name in answer.deleted:
            print(printable.name(f"deleted {name}"))
        print(
            printable.name(
                f"forgot {answer.root}"
                + ("" if answer.deleted else f" (it had no index at {index})")
            )
        )
        return 0
    forget = "`codesearch forget` deletes it"
    print(printable.name(f"stopped watching {answer.root} (its index stays at {index}; {forget})"))
    return 0


def _remove_here(args: argparse.Namespace, settings: Settings, path: str) -> wire.RemoveResult:
    """`remove` without a daemon: the registry (remembered as removed), the index files."""
    from codesearch.daemon import registry
    from codesearch.daemon.forget import delete_index
    from codesearch.wire import daemon as wire

    rt = runtime(settings)
    roots = registry.load(rt.repos)
    index = settings.index_path(Path(path))
    if Path(path) not in roots and not (args.delete and index.exists()):
        raise BadInput(f"not a watched repository: {args.path} (see `codesearch repos`)")
    removed = registry.load_removed(rt.repos) | {Path(path)}
    registry.save(rt.repos, [r for r in roots if r != Path(path)], removed)
    deleted = list(delete_index(index)) if args.delete else []
    return wire.RemoveResult(root=path, index=str(index), deleted=deleted)


def cmd_repos(args: argparse.Namespace, settings: Settings) -> int:
    from codesearch.daemon import registry
    from codesearch.daemon.link import NotRunning
    from codesearch.wire import daemon as wire

    try:
        listed = link(settings, start=False).request(wire.ReposParams(), wire.ReposResult).repos
        document = wire.ReposDocument(repos=listed)
    except NotRunning:
        gone = [
            wire.LocalRepo(root=str(r), state=wire.LocalState.DAEMON_DOWN)
            for r in registry.load(runtime(settings).repos)
        ]
        document = wire.ReposDocument(repos=gone)
    repos = document.dump()["repos"]
    if args.json:
        print(json.dumps({"repos": repos}, indent=2))
        return 0
    if not repos:
        print("no repositories are watched (`codesearch add PATH`)", file=sys.stderr)
        return 0
    for repo in repos:
        extra = f"  {repo['files']} files, {repo['chunks']} chunks" if "files" in repo else ""
        print(printable.name(f"{repo['root']}  [{repo['state']}]{extra}"))
    return 0


# ---------------------------------------------------------------------- status


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from codesearch.daemon import registry
    from codesearch.daemon.link import NotRunning
    from codesearch.wire import daemon as wire
    from codesearch.wire.base import parse

    root = _status_root(args, settings)
    info = None
    if settings.daemon:
        try:
            params = parse(wire.StatusParams, {"repo": str(root) if root else None}, BadInput)
            info = link(settings, start=False).request(params, wire.StatusResult)
        except NotRunning:
            info = None
    repos: list[wire.RepoStatus | wire.LocalRepo] = list(info.repos) if info else []
    watched = registry.load(runtime(settings).repos)
    if root is not None and not repos:
        repos = [_local_status(root, settings, root in watched and info is None)]
    if root is None and info is None:
        repos = [_local_status(r, settings, True) for r in watched]
    document = wire.StatusDocument(daemon=info.daemon if info else None, repos=repos).dump()
    daemon = document["daemon"]
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print(_daemon_line(daemon) if daemon else "daemon      not running (`codesearch daemon start`)")
    if not document["repos"]:
        print("no repositories are watched (`codesearch add PATH`)")
    for repo in document["repos"]:
        print(_repo_lines(repo))
    return 0


def _status_root(args: argparse.Namespace, settings: Settings) -> Path | None:
    """The repository `status` is about: PATH, else the indexed one around the cwd, else all."""
    if args.path is not None:
        from codesearch.paths import resolve_root

        return resolve_root(Path(args.path))
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if settings.index_path(folder).exists():
            return folder
    return None


def _local_status(root: Path, settings: Settings, registered: bool) -> wire.LocalRepo:
    """What the index of ``root`` holds, read in-process (no daemon, or not watched)."""
    from codesearch.engine import index_status
    from codesearch.types import IndexMissing
    from codesearch.wire import daemon as wire

    state = wire.LocalState.REGISTERED if registered else wire.LocalState.NOT_WATCHED
    try:
        st = index_status(root, settings)
    except IndexMissing:
        return wire.LocalRepo(root=str(root), state=wire.LocalState.NOT_INDEXED, files=0, chunks=0)
    return wire.LocalRepo(
        root=str(root),
        state=state,
        index=str(st.index_path),
        files=st.files,
        chunks=st.chunks,
        vectors=st.vectors,
        model=st.model_id,
        dim=st.dim,
        index_bytes=st.bytes,
        languages=st.languages,
        kinds=st.kinds,
        pictures=st.pictures,
        pictures_waiting=st.pictures_waiting,
    )


def _repo_lines(repo: dict[str, Any]) -> str:
    """One repository's status for a person (names and messages escaped)."""
    shown = {k: printable.name(v) if isinstance(v, str) else v for k, v in repo.items()}
    return "\n".join(_status_lines(shown))


def _status_lines(repo: dict[str, Any]) -> list[str]:
    state = repo["state"] + (", watching" if repo.get("watching") else "")
    lines = [f"repository  {repo['root']} ({state})"]
    if "index" in repo:
        lines.append(f"  index     {repo['index']} ({repo.get('index_bytes', 0) / 1e6:.1f} MB)")
    if repo.get("model"):
        lines.append(f"  model     {repo['model']} ({repo.get('dim', 0)} dims)")
    lines.append(f"  files     {repo.get('files', 0)}, chunks {repo.get('chunks', 0)}")
    if repo.get("pictures"):
        waiting = repo.get("pictures_waiting", 0)
        why = (
            f", {waiting} described by text only (they wait for a multimodal model: jina-v4)"
            if waiting
            else ", embedded from their pixels"
        )
        lines.append(f"  pictures  {repo['pictures']}{why}")
    if repo.get("pending") or repo.get("progress"):
        p = repo.get("progress") or {}
        left = max(p.get("files_total", 0) - p.get("files_done", 0), 0)
        queued = repo.get("pending", 0)
        lines.append(f"  pending   {queued} changes queued, {left} files in progress")
    if repo.get("last_update"):
        lines.append(f"  updated   {_ago(time.time() - repo['last_update'])} ago")
    for key, label in (("error", "error"), ("index_error", "error"), ("notice", "notice")):
        if repo.get(key):
            lines.append(f"  {label:9} {repo[key]}")
    return lines
