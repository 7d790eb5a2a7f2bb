"""The daemon process: one per user (a held lock), a Unix socket in a private folder, one
thread per connection, every request dispatched to the :class:`Service`.

Run it with ``codesearch daemon start`` (detached) or ``--foreground``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import logging.handlers
import os
import signal
import socketserver
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from codesearch import globs
from codesearch.config import Settings
from codesearch.daemon import protocol
from codesearch.daemon.protocol import ProtocolError, Request
from codesearch.daemon.runtime import Runtime, runtime, secure_dir
from codesearch.daemon.service import Service
from codesearch.engine import merge_ranked
from codesearch.paths import resolve_root
from codesearch.search import SNIPPET_LINES, SearchOptions
from codesearch.types import KINDS, BadInput, CodesearchError, Filters

log = logging.getLogger("codesearch.daemon")

LOG_BYTES = 2_000_000
LOG_BACKUPS = 3
PROGRESS_EVERY_S = 0.25


class AlreadyRunning(CodesearchError):
    exit_code = 1


# ---------------------------------------------------------------------- request handlers


def _str_list(params: dict[str, Any], key: str) -> list[str]:
    value = params.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInput(f"'{key}' must be a list of strings")
    return value


def _opt_str(params: dict[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is not None and not isinstance(value, str):
        raise BadInput(f"'{key}' must be a string")
    return value


def _search_options(params: dict[str, Any]) -> SearchOptions:
    k = params.get("k", 10)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 1000:
        raise BadInput("'k' must be a whole number from 1 to 1000")
    filters = params.get("filters", {})
    if not isinstance(filters, dict):
        raise BadInput("'filters' must be an object")
    kinds = _str_list(filters, "kinds")
    bad = [kind for kind in kinds if kind not in KINDS]
    if bad:
        raise BadInput(f"unknown kind {bad[0]!r} (known: {', '.join(KINDS)})")
    rerank = params.get("rerank", 0)
    if not isinstance(rerank, int) or isinstance(rerank, bool) or not 0 <= rerank <= 1000:
        raise BadInput("'rerank' must be a whole number from 0 to 1000")
    lines = params.get("snippet_lines", SNIPPET_LINES)
    if not isinstance(lines, int) or isinstance(lines, bool) or not 0 <= lines <= 10_000:
        raise BadInput("'snippet_lines' must be a whole number from 0 to 10000")
    path_globs = _str_list(filters, "path_globs")
    exclude_globs = _str_list(filters, "exclude_globs")
    globs.check(path_globs, "filters.path_globs")
    globs.check(exclude_globs, "filters.exclude_globs", negation=False)
    include_tests = filters.get("include_tests", True)
    if not isinstance(include_tests, bool):
        raise BadInput("'include_tests' must be true or false")
    return SearchOptions(
        k=k,
        rerank=rerank,
        snippet_lines=lines,
        filters=Filters(
            tuple(_str_list(filters, "languages")),
            tuple(path_globs),
            tuple(kinds),
            exclude_globs=tuple(exclude_globs),
            include_tests=include_tests,
        ),
    )


def _roots(params: dict[str, Any], service: Service) -> list[Path] | None:
    """The repositories of a search of several (``repos``, or ``all_repos``: every watched
    one); None for a search of one (``repo`` or ``cwd``)."""
    if params.get("all_repos"):
        if params.get("repos") or params.get("repo"):
            raise BadInput("'all_repos' searches every repository: give no 'repo' or 'repos'")
        roots = list(service.repos)
        if not roots:
            raise BadInput("no repositories are registered: `codesearch add PATH` registers one")
        return roots
    if "repos" not in params:
        return None
    named = _str_list(params, "repos")
    if not named:
        raise BadInput("'repos' must name at least one repository")
    return list(dict.fromkeys(resolve_root(Path(r)) for r in named))


class Dispatcher:
    """Turns one request into the service call; events go out through ``send``."""

    def __init__(self, service: Service, shutdown: threading.Event) -> None:
        self.service = service
        self.shutdown = shutdown

    def handle(self, req: Request, send: Any) -> dict[str, Any]:
        handler = getattr(self, f"do_{req.method}")
        return handler(req.params, lambda name, data: send(protocol.event(req.id, name, data)))

    def do_ping(self, params: dict[str, Any], emit: Any) -> dict[str, Any]:
        return {**self.service.daemon_info(), "started": self.service.started}

    def do_search(self, params: dict[str, Any], emit: Any) -> dict[str, Any]:
        queries = _str_list(params, "queries")
        if not queries:
            raise BadInput("'queries' must hold at least one question")
        options = _search_options(params)
        model = _opt_str(params, "model")
        roots = _roots(params, self.service)
        if roots is not None:
            return self._search_several(roots, queries, options, model, params)
        root = self.service.resolve(_opt_str(params, "repo"), _opt_str(params, "cwd"))
        scope = _opt_str(params, "scope")
        if scope:  # a search from a subfolder: that folder only, patterns relative to it
            options = replace(options, filters=globs.scoped_to(options.filters, root, Path(scope)))
        results, notices = self.service.search(root, queries, options, model)
        return {"repo": str(root), "results": results, "notices": notices}

    def _search_several(
        self,
        roots: list[Path],
        queries: list[str],
        options: SearchOptions,
        model: str | None,
        params: dict[str, Any],
    ) -> dict[str, Any]:
        """One ranked list per query over several repositories; each hit names its ``repo``.
        With ``all_repos`` a repository that cannot answer (no index yet, another model) is
        skipped with a notice."""
        parts: list[tuple[Path, list[list[dict[str, Any]]]]] = []
        notices: list[str] = []
        for root in roots:
            try:
                results, said = self.service.search(root, queries, options, model)
            except BadInput:
                raise
            except CodesearchError as exc:
                if not params.get("all_repos"):
                    raise
                notices.append(f"skipped {root}: {exc}")
                continue
            notices.extend(said)
            parts.append((root, [[{**h, "repo": str(root)} for h in one] for one in results]))
        merged = merge_ranked(parts, len(queries), options.k, lambda h: float(h["score"]))
        return {
            "repo": str(roots[0]),
            "repos": [str(r) for r in roots],
            "results": [[hit for _, hit in one] for one in merged],
            "notices": notices,
        }

    def do_similar(self, params: dict[str, Any], emit: Any) -> dict[str, Any]:
        path = _opt_str(params, "path")
        if not path:
            raise BadInput("'path' is required: the file of the code to find more like")
        line = params.get("line")
        if not isinstance(line, int) or isinstance(line, bool) or line < 1:
            raise BadInput("'line' must be a whole number from 1 (lines are 1-based)")
        options = _search_options(params)
        root = self.service.resolve(_opt_str(params, "repo"), _opt_str(params, "cwd"))
        source, results, notices = self.service.similar(
            root, path, line, options, _opt_str(params, "model")
        )
        return {"repo": str(root), "source": source, "results": results, "notices": notices}

    def do_add(self, params: dict[str, Any], emit: Any) -> dict[str, Any]:
        path = _opt_str(params, "path")
        if not path:
            raise BadInput("'path' is required")
        repo, added = self.service.add(path)
        if params.get("wait"):
            self._follow(repo.root, emit)
        return {"root": str(repo.root), "added": added, **self.service.repo_status(repo)}

    def _follow(self, root: Path, emit: Any) -> None:
        while not self.service.wait(root, PROGRESS_EVERY_S):
            if self.shutdown.is_set():
                raise protocol.DaemonUnavailable("the daemon is stopping")
            repo = self.service.repos.get(root)
            if repo is None:
                return
            p = repo.progress
            emit(
                "progress",
                {
                    "root": str(root),
                    "state": repo.state,
                    "files_done": p.files_done if p else 0,
                    "files_total": p.files_total if p else 0,
                    "chunks_embedded": p.chunks_embedded if p else 0,
                },
            )

    def do_remove(self, params: dict[str, Any], emit: Any) -> dict[str, Any]:
        path = _opt_str(params, "path")
        if not path:
            raise BadInput("'path' is required")
        root = self.service.remove(path)
        return {
            "root": str(root),
            "removed": True,
            "index": str(self.service.settings.index_path(root)),
        }

    def do_repos(self, params: dict[str, Any], emit: Any) -> dict[str, Any]:
        return {"repos": self.service.status()["repos"]}

    def do_status(self, params: dict[str, Any], emit: Any) -> dict[str, Any]:
        repo = _opt_str(params, "repo")
        return self.service.status(Path(repo).expanduser().resolve() if repo else None)

    def do_hint(self, params: dict[str, Any], emit: Any) -> dict[str, Any]:
        return {"queued": self.service.hint(_str_list(params, "paths"))}

    def do_reindex(self, params: dict[str, Any], emit: Any) -> dict[str, Any]:
        path = _opt_str(params, "path")
        if not path:
            raise BadInput("'path' is required")
        root = self.service.reindex(path, bool(params.get("rebuild")))
        if params.get("wait"):
            self._follow(root, emit)
        return {"root": str(root)}

    def do_wait(self, params: dict[str, Any], emit: Any) -> dict[str, Any]:
        timeout = params.get("timeout", 60)
        if not isinstance(timeout, (int, float)) or timeout < 0:
            raise BadInput("'timeout' must be a number of seconds")
        repo = _opt_str(params, "repo")
        root = Path(repo).expanduser().resolve() if repo else None
        return {"idle": self.service.wait(root, float(timeout))}

    def do_shutdown(self, params: dict[str, Any], emit: Any) -> dict[str, Any]:
        self.shutdown.set()
        return {"pid": os.getpid()}


# ---------------------------------------------------------------------- the socket


class _Connection(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        lock = threading.Lock()

        def send(data: bytes) -> None:
            with lock:
                self.wfile.write(data)
                self.wfile.flush()

        while True:
            try:
                line = self.rfile.readline(protocol.MAX_MESSAGE_BYTES + 1)
            except OSError:
                return
            if not line:
                return
            req_id: object = None
            try:
                if len(line) > protocol.MAX_MESSAGE_BYTES:
                    raise ProtocolError("request too large")
                message = protocol.decode(line)
                req_id = message.get("id")
                req = protocol.parse_request(message)
                answer = self.server.dispatcher.handle(req, send)
                send(protocol.result(req.id, answer))
            except (BrokenPipeError, ConnectionResetError):
                return
            except CodesearchError as exc:
                send(protocol.error(req_id, exc))
            except Exception as exc:
                log.exception("request failed")
                send(protocol.error(req_id, protocol.DaemonError(f"internal error: {exc!r}")))
            if len(line) > protocol.MAX_MESSAGE_BYTES:
                return  # the rest of an oversized line cannot be resynchronised


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, path: str, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        super().__init__(path, _Connection)


# ---------------------------------------------------------------------- the process


def _hold_lock(rt: Runtime) -> IO[str]:
    """Take the per-user daemon lock (and write our pid in it), or report the running one."""
    handle = open(rt.lock, "a+", encoding="ascii")  # noqa: SIM115 (held for the process' life)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.seek(0)
        pid = handle.read().strip() or "?"
        handle.close()
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise AlreadyRunning(f"the daemon is already running (pid {pid})") from None
        raise
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _bind(rt: Runtime, dispatcher: Dispatcher) -> _Server:
    secure_dir(rt.run_dir)
    with contextlib.suppress(FileNotFoundError):
        rt.socket.unlink()  # a dead daemon's socket: we hold the lock, nobody else serves it
    old = os.umask(0o177)
    try:
        server = _Server(str(rt.socket), dispatcher)
    finally:
        os.umask(old)
    os.chmod(rt.socket, 0o600)
    return server


def _setup_logging(rt: Runtime, foreground: bool) -> None:
    rt.log_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = logging.handlers.RotatingFileHandler(
        rt.log, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(fmt)
    root.addHandler(handler)
    if foreground:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(fmt)
        root.addHandler(console)
    for noisy in ("watchdog", "transformers", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def serve(settings: Settings, foreground: bool = True) -> int:
    """Run the daemon until ``shutdown``, SIGTERM or SIGINT. Returns the exit status."""
    rt = runtime(settings)
    rt.home.mkdir(parents=True, exist_ok=True)
    lock = _hold_lock(rt)
    _setup_logging(rt, foreground)
    stop = threading.Event()
    service = Service(settings, rt)
    dispatcher = Dispatcher(service, stop)
    server = _bind(rt, dispatcher)

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=server.serve_forever, name="socket", daemon=True).start()
    try:
        service.start()
        log.info("listening on %s", rt.socket)
        while not stop.wait(0.5):
            pass
        # answer in-flight requests' final lines before the socket goes
        time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()
        with contextlib.suppress(FileNotFoundError):
            rt.socket.unlink()
        service.stop()
        lock.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    from codesearch.config import load_settings

    # before any torch import: OpenMP threads sleep rather than spin (see embed/minilm.py)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return serve(load_settings(), foreground="--detached" not in args)
    except CodesearchError as exc:
        print(f"codesearch: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
