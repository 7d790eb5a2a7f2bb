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
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from codesearch import globs
from codesearch.config import Settings
from codesearch.daemon import protocol
from codesearch.daemon.protocol import ProtocolError, Request
from codesearch.daemon.runtime import Runtime, runtime, secure_dir
from codesearch.daemon.service import Service
from codesearch.datadir import private_dir, secure_home
from codesearch.paths import resolve_root
from codesearch.ranked import search_several
from codesearch.search import SNIPPET_LINES, SearchOptions
from codesearch.types import BadInput, CodesearchError, Filters
from codesearch.wire import daemon as wire
from codesearch.wire.base import Wire, parse
from codesearch.wire.hits import Hit

log = logging.getLogger("codesearch.daemon")

LOG_BYTES = 2_000_000
LOG_BACKUPS = 3
PROGRESS_EVERY_S = 0.25
LISTEN_BACKLOG = socket.SOMAXCONN  # connections the kernel queues before a client must retry
SLOT_POLL_S = 0.2  # how often a connection waiting for a free thread checks for shutdown
RECV_BYTES = 64 * 1024  # read from a client this much at a time


class AlreadyRunning(CodesearchError):
    exit_code = 1


# ---------------------------------------------------------------------- request handlers

Emit = Callable[[wire.ProgressEvent], None]


def _search_options(q: wire.QueryParams) -> SearchOptions:
    f = q.filters
    lines = SNIPPET_LINES if q.snippet_lines is None else q.snippet_lines
    filters = Filters(
        tuple(f.languages),
        tuple(f.path_globs),
        tuple(f.kinds),
        exclude_globs=tuple(f.exclude_globs),
        include_tests=f.include_tests,
    )
    return SearchOptions(k=q.k, rerank=q.rerank, snippet_lines=lines, filters=filters)


def _roots(params: wire.SearchParams, service: Service) -> list[Path] | None:
    """The repositories of a search of several (``repos``, or ``all_repos``: every watched
    one); None for a search of one (``repo`` or ``cwd``)."""
    if params.all_repos:
        if params.repos or params.repo:
            raise BadInput("'all_repos' searches every repository: give no 'repo' or 'repos'")
        roots = list(service.repos)
        if not roots:
            raise BadInput("no repositories are registered: `codesearch add PATH` registers one")
        return roots
    if params.repos is None:
        return None
    return list(dict.fromkeys(resolve_root(Path(r)) for r in params.repos))


class Dispatcher:
    """Turns one request into the service call: its params checked against their model
    (one line for a malformed one), its answer a model; events go out through ``send``."""

    def __init__(self, service: Service, shutdown: threading.Event) -> None:
        self.service = service
        self.shutdown = shutdown

    def handle(self, req: Request, send: Callable[[bytes], None]) -> dict[str, Any]:
        params = parse(wire.CALLS[req.method].params, req.params, BadInput, dotted=False)

        def emit(event: wire.ProgressEvent) -> None:
            send(protocol.event(req.id, "progress", event.dump()))

        answer: Wire = getattr(self, f"do_{req.method}")(params, emit)
        return answer.dump()

    def do_ping(self, params: wire.PingParams, emit: Emit) -> wire.PingResult:
        return wire.PingResult(
            **self.service.daemon_info().model_dump(), started=self.service.started
        )

    def do_search(self, params: wire.SearchParams, emit: Emit) -> wire.SearchResult:
        options = _search_options(params)
        roots = _roots(params, self.service)
        if roots is not None:
            return self._search_several(roots, params, options)
        root = self.service.resolve(params.repo, params.cwd)
        if params.scope:  # a search from a subfolder: that folder only, patterns relative to it
            scoped = globs.scoped_to(options.filters, root, Path(params.scope))
            options = replace(options, filters=scoped)
        results, notices = self.service.search(root, params.queries, options, params.model)
        return wire.SearchResult(repo=str(root), results=results, notices=notices)

    def _search_several(
        self, roots: list[Path], params: wire.SearchParams, options: SearchOptions
    ) -> wire.SearchResult:
        """One ranked list per query over several repositories; each hit names its ``repo``.
        With ``all_repos`` a repository that cannot answer (no index yet, another model) is
        skipped with a notice."""
        notices: list[str] = []

        def search_one(root: Path) -> list[list[Hit]]:
            results, said = self.service.search(root, params.queries, options, params.model)
            notices.extend(said)
            return [[h.model_copy(update={"repo": str(root)}) for h in one] for one in results]

        def skipped(root: Path, exc: CodesearchError) -> None:
            notices.append(f"skipped {root}: {exc}")

        merged = search_several(
            roots,
            search_one,
            len(params.queries),
            options.k,
            lambda h: h.score,
            skipped if params.all_repos else None,
        )
        return wire.SearchResult(
            repo=str(roots[0]),
            repos=[str(r) for r in roots],
            results=[[hit for _, hit in one] for one in merged],
            notices=notices,
        )

    def do_similar(self, params: wire.SimilarParams, emit: Emit) -> wire.SimilarResult:
        root = self.service.resolve(params.repo, params.cwd)
        options = _search_options(params)
        source, results, notices = self.service.similar(
            root, params.path, params.line, options, params.model
        )
        return wire.SimilarResult(repo=str(root), source=source, results=results, notices=notices)

    def do_add(self, params: wire.AddParams, emit: Emit) -> wire.AddResult:
        repo, added = self.service.add(params.path)
        if params.wait:
            self._follow(repo.root, emit)
        return wire.AddResult(**self.service.repo_status(repo).model_dump(), added=added)

    def _follow(self, root: Path, emit: Emit) -> None:
        while not self.service.wait(root, PROGRESS_EVERY_S):
            if self.shutdown.is_set():
                raise protocol.DaemonUnavailable("the daemon is stopping")
            repo = self.service.repos.get(root)
            if repo is None:
                return
            p = repo.progress
            emit(
                wire.ProgressEvent(
                    root=str(root),
                    state=repo.state,
                    files_done=p.files_done if p else 0,
                    files_total=p.files_total if p else 0,
                    chunks_embedded=p.chunks_embedded if p else 0,
                )
            )

    def do_remove(self, params: wire.RemoveParams, emit: Emit) -> wire.RemoveResult:
        done = self.service.remove(params.path, delete=params.delete)
        return wire.RemoveResult(
            root=str(done.root),
            index=str(self.service.settings.index_path(done.root)),
            stopped=done.stopped,
            files_kept=done.files_kept,
            deleted=list(done.deleted),
        )

    def do_repos(self, params: wire.ReposParams, emit: Emit) -> wire.ReposResult:
        return wire.ReposResult(repos=self.service.status().repos)

    def do_status(self, params: wire.StatusParams, emit: Emit) -> wire.StatusResult:
        repo = params.repo
        return self.service.status(Path(repo).expanduser().resolve() if repo else None)

    def do_hint(self, params: wire.HintParams, emit: Emit) -> wire.HintResult:
        return wire.HintResult(queued=self.service.hint(params.paths))

    def do_reindex(self, params: wire.ReindexParams, emit: Emit) -> wire.ReindexResult:
        asked = self.service.reindex(params.path, params.rebuild, params.model)
        if not params.wait:
            return wire.ReindexResult(root=str(asked.root), added=asked.added)
        self._follow(asked.root, emit)
        runs = self.service.runs_since(asked.root, asked.updates)
        repo = self.service.repos.get(asked.root)
        return wire.ReindexResult(
            root=str(asked.root),
            stats=wire.RunStats.of(runs) if runs else None,
            added=asked.added,
            error=repo.error if repo is not None else "",
        )

    def do_embed(self, params: wire.EmbedParams, emit: Emit) -> wire.EmbedResult:
        from codesearch.daemon.embedding import embed

        with self.service.gate:  # the writer lets it through before its next batch
            return embed(params, self.service.settings)

    def do_wait(self, params: wire.WaitParams, emit: Emit) -> wire.WaitResult:
        root = Path(params.repo).expanduser().resolve() if params.repo else None
        return wire.WaitResult(idle=self.service.wait(root, float(params.timeout)))

    def do_shutdown(self, params: wire.ShutdownParams, emit: Emit) -> wire.ShutdownResult:
        stopped = self.service.halt()  # first: the answer says what a running update kept
        self.shutdown.set()
        return wire.ShutdownResult(
            pid=os.getpid(),
            stopped=[wire.StoppedRun(repo=str(root), files_kept=n) for root, n in stopped],
        )


# ---------------------------------------------------------------------- the socket


class _Gone(Exception):
    """The client went away (or stopped reading) while we answered it."""


class _TooLarge(Exception):
    """A request line over the limit (skipped to its end)."""


class _Lines:
    """Request lines from a socket, each to arrive whole within ``timeout`` seconds of asking
    for it: a client that trickles a byte at a time holds a thread no longer than a silent
    one. At most ``limit`` bytes of a line are held; a longer one is skipped to its end."""

    def __init__(self, sock: socket.socket, limit: int, timeout: float | None) -> None:
        self.sock, self.limit, self.timeout = sock, limit, timeout
        self.buf = bytearray()

    def next(self) -> bytes | None:
        """The next line (its newline included, or the last bytes before the end); None at
        the end. _TooLarge for a line over the limit; TimeoutError when no whole line came
        in time."""
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        skipping = False
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                line = bytes(self.buf[: end + 1])
                del self.buf[: end + 1]
                if skipping or len(line) > self.limit:
                    raise _TooLarge
                return line
            if len(self.buf) > self.limit:
                skipping = True
                self.buf.clear()
            chunk = self._recv(deadline)
            if not chunk:
                line = bytes(self.buf)
                self.buf.clear()
                return None if skipping or not line or len(line) > self.limit else line
            self.buf += chunk

    def _recv(self, deadline: float | None) -> bytes:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
        try:
            return self.sock.recv(RECV_BYTES)
        finally:
            self.sock.settimeout(self.timeout)  # answers are written under the plain timeout


class _Connection(socketserver.StreamRequestHandler):
    """One client's requests, in order. A line over :data:`protocol.MAX_REQUEST_BYTES` is
    skipped unread and answered with one line; a connection that sends no whole request for
    the idle timeout is told so and closed."""

    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.idle_timeout  # StreamRequestHandler applies it to the socket
        super().setup()
        self._lock = threading.Lock()
        self._lines = _Lines(self.connection, protocol.MAX_REQUEST_BYTES, self.timeout)

    def send(self, data: bytes) -> None:
        try:
            with self._lock:
                self.wfile.write(data)
                self.wfile.flush()
        except OSError as exc:  # a broken pipe, or a client that reads nothing (the timeout)
            raise _Gone() from exc

    def handle(self) -> None:
        with contextlib.suppress(_Gone):
            while (line := self._read()) is not None:
                self._answer(line)

    def _read(self) -> bytes | None:
        """The next request line (empty: one too large, answered here); None when the client
        is gone or sent no whole request for too long."""
        try:
            return self._lines.next()
        except _TooLarge:
            limit = protocol.MAX_REQUEST_BYTES
            too_large = (
                f"request too large: more than {limit} bytes (the limit is {limit // 1024} KiB)"
            )
            self.send(protocol.error(None, ProtocolError(too_large)))
            return b""
        except TimeoutError:
            self.send(protocol.error(None, ProtocolError(self._idle())))
            return None
        except OSError:
            return None

    def _idle(self) -> str:
        return (
            f"no whole request for {self.server.idle_timeout:g} s: the daemon closed the connection"
        )

    def _answer(self, line: bytes) -> None:
        if not line:
            return  # an oversized line, already answered
        req_id: object = None
        try:
            message = protocol.decode(line)
            req_id = message.get("id")
            req = protocol.parse_request(message)
            answer = self.server.dispatcher.handle(req, self.send)
            self.send(protocol.result(req.id, answer))
        except _Gone:
            raise
        except CodesearchError as exc:
            self.send(protocol.error(req_id, exc))
        except Exception as exc:
            log.exception("request failed")
            self.send(protocol.error(req_id, protocol.DaemonError(f"internal error: {exc!r}")))


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The socket: a listen queue sized for bursts of clients, and at most ``max_connections``
    served at once (a thread each); the others wait in the queue until a thread is free."""

    daemon_threads = True
    allow_reuse_address = False
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self, path: str, dispatcher: Dispatcher, idle_timeout: float | None, max_connections: int
    ) -> None:
        self.dispatcher = dispatcher
        self.idle_timeout = idle_timeout
        self.closing = threading.Event()
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(path, _Connection)

    def process_request(self, request: Any, client_address: Any) -> None:
        while not self._slots.acquire(timeout=SLOT_POLL_S):
            if self.closing.is_set():
                self.shutdown_request(request)
                return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[misc]
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed: a client that hung up (before its answer, or an error
        reply) is no error of ours and says nothing; anything else goes to the log."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        log.exception("connection failed")


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
        settings = dispatcher.service.settings
        idle = settings.daemon_idle_timeout or None  # 0: never
        server = _Server(str(rt.socket), dispatcher, idle, settings.daemon_max_connections)
    finally:
        os.umask(old)
    os.chmod(rt.socket, 0o600)
    return server


def _setup_logging(rt: Runtime, foreground: bool) -> None:
    """The log: rotated, private (what the daemon creates is 0600, its folders 0700, and an
    earlier version's looser ones are tightened). Warnings and the tracebacks of uncaught
    exceptions in threads go to it too, not to daemon.out (the detached daemon's stderr, which
    nothing rotates while it runs: it keeps only what comes before this, and a last error)."""
    os.umask(0o077)
    secure_home(rt.home)
    private_dir(rt.log_dir)
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
    logging.captureWarnings(True)

    def uncaught(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        where = args.thread.name if args.thread is not None else "a thread"
        exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
        log.error("uncaught exception in %s", where, exc_info=exc_info)

    threading.excepthook = uncaught


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
        server.closing.set()
        server.shutdown()
        server.server_close()
        with contextlib.suppress(FileNotFoundError):
            rt.socket.unlink()
        service.stop()
        lock.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    from codesearch.config import load_settings

    # before any torch import: OpenMP threads sleep rather than spin (see embed/minilm/embedder.py)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return serve(load_settings(), foreground="--detached" not in args)
    except CodesearchError as exc:
        print(f"codesearch: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
