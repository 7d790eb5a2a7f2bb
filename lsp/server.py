"""The editor face: a language server (pygls, stdio) over the codesearch daemon.

Every registration lives here. The server never loads a model or opens an index: it registers
the workspace folders with the daemon (starting it when needed), forwards saves as freshness
hints, and answers:

- ``codesearch/search`` ``{query, k?, filters?, folder?}`` -> ``{query, results, notices}``
- ``codesearch/similar`` ``{textDocument: {uri}, position: {line}, k?, filters?}`` ->
  ``{source, results, notices}``: code like the chunk at the cursor
- ``workspace/executeCommand``: ``codesearch.search`` ``[query, {k?, filters?, folder?}?]``
  (same answer), ``codesearch.similar`` ``[uri, line, {k?, filters?}?]`` (same answer as
  ``codesearch/similar``), ``codesearch.reindex`` ``[folderUri?]`` -> ``{roots}``,
  ``codesearch.status`` -> the daemon's status object (plus an ``lsp`` entry about this server)
- ``workspace/symbol`` from the same semantic search.

Run it as ``codesearch-lsp`` or ``python -m lsp`` (stdio; ``--stdio`` is accepted).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from codesearch import __version__
from codesearch.daemon.protocol import DaemonUnavailable
from codesearch.ranked import merge_ranked
from codesearch.types import BadInput, CodesearchError
from codesearch.wire import daemon as wire
from codesearch.wire import lsp as answers
from codesearch.wire.lsp import SearchRequest, SimilarRequest
from lsp import convert, framing
from lsp.folders import Folder, Folders, registered
from lsp.framing import FrameReader
from lsp.link import Link
from lsp.params import (
    InvalidParams,
    no_arguments,
    reindex_arguments,
    search_arguments,
    search_params,
    similar_arguments,
    similar_params,
)
from lsp.protocol import Protocol, converter

log = logging.getLogger("codesearch.lsp")

SEARCH_REQUEST = "codesearch/search"
SEARCH_COMMAND = "codesearch.search"
SIMILAR_REQUEST = "codesearch/similar"
SIMILAR_COMMAND = "codesearch.similar"
REINDEX_COMMAND = "codesearch.reindex"
STATUS_COMMAND = "codesearch.status"
WORKSPACE_SYMBOL_K = 50
# what a codesearch/similar answer says about its source chunk
SOURCE_KEYS = tuple(answers.SourceChunk.model_fields)
MAX_FOLLOWERS = 4  # folders whose indexing progress is followed at once (a thread each)
REQUEST_FAILED = types.LSPErrorCodes.RequestFailed.value

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class NoWorkspace(CodesearchError):
    """The client opened no folder, so there is nothing to search."""


class NotSearchable(CodesearchError):
    """No folder of the request could be registered with the daemon."""


class CodesearchServer(LanguageServer):
    """The language server's state: workspace folders, the daemon link, background tasks."""

    def __init__(self, link: Link | None = None) -> None:
        super().__init__(
            "codesearch",
            __version__,
            protocol_cls=Protocol,
            converter_factory=converter,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
        )
        self.folders = Folders()
        self.link = link or Link(notice=self.notice_from_thread)
        self.encoding = convert.UTF16
        self.progress_supported = False
        self.experimental = {
            "codesearch": {
                "search": True,
                "request": SEARCH_REQUEST,
                "similar": True,
                "requests": [SEARCH_REQUEST, SIMILAR_REQUEST],
                "commands": [SEARCH_COMMAND, SIMILAR_COMMAND, REINDEX_COMMAND, STATUS_COMMAND],
            }
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._followers = asyncio.Semaphore(MAX_FOLLOWERS)

    # ------------------------------------------------------------------ messages and tasks

    def log(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        """A line in the client's log for this server (``window/logMessage``)."""
        serious = kind in (types.MessageType.Error, types.MessageType.Warning)
        log.log(logging.WARNING if serious else logging.INFO, message)
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def notice_from_thread(self, message: str) -> None:
        """``log`` from a worker thread (the daemon start notice)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.log, f"codesearch: {message}")

    def spawn(self, work: Awaitable[Any]) -> None:
        """Run ``work`` in the background; its failure is logged, never raised."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                exc = finished.exception()
                self.log(f"codesearch: {exc}", types.MessageType.Error)

        task.add_done_callback(done)

    def stop_background(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve LSP over stdio, frames read by :mod:`lsp.framing` (pygls's ``start_io``
        with a reader that bounds and resynchronises frames)."""
        self._stop_event = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        frames = FrameReader(stdin or sys.stdin.buffer)
        try:
            asyncio.run(framing.serve(self._stop_event, frames, self.protocol, self.thread_pool))
        except BrokenPipeError:
            log.error("the client went away: stopping")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    # ------------------------------------------------------------------ workspace folders

    def on_initialize(self, params: types.InitializeParams) -> None:
        """Take the client's folders, capabilities and position encoding (``initialize``)."""
        self._loop = asyncio.get_running_loop()
        encoding = self.workspace.position_encoding or convert.UTF16
        self.encoding = str(getattr(encoding, "value", encoding))
        window = params.capabilities.window
        self.progress_supported = bool(window and window.work_done_progress)
        folders = list(params.workspace_folders or [])
        root_uri = params.root_uri or (
            convert.path_uri(Path(params.root_path)) if params.root_path else None
        )
        if not folders and root_uri:
            folders = [types.WorkspaceFolder(uri=root_uri, name="")]
        for folder in folders:
            added = self.folders.add(folder.uri, folder.name)
            if added is not None:  # registered now; progress is shown once initialized
                self.spawn(registered(added, self.register))

    async def register(self, folder: Folder) -> None:
        """Register ``folder`` with the daemon (``add``, starting the daemon if needed)."""
        try:
            answer = await self.link.request(wire.AddParams(path=str(folder.path)), wire.AddResult)
        except CodesearchError as exc:
            folder.error = str(exc)
            self.log(f"codesearch: cannot index {folder.path}: {exc}", types.MessageType.Warning)
            return
        folder.root, folder.error = Path(answer.root), ""
        if answer.added:
            self.log(f"codesearch: now indexing and watching {folder.root}")

    async def follow(self, folder: Folder) -> None:
        """Report the daemon's indexing of ``folder`` as work-done progress until it is idle."""
        await registered(folder, self.register)
        if folder.root is None or not self.progress_supported:
            return
        async with self._followers:
            await self._follow(folder)

    async def _follow(self, folder: Folder) -> None:
        token = f"codesearch/index/{uuid.uuid4()}"
        try:
            await self.work_done_progress.create_async(token)
        except Exception as exc:  # the client declined: index without a progress bar
            log.info("no progress token: %s", exc)
            return
        progress = self.work_done_progress
        progress.begin(
            token,
            types.WorkDoneProgressBegin(
                title=f"codesearch: indexing {folder.name}",
                message="checking for changes",
                percentage=0,
                cancellable=False,
            ),
        )
        loop = asyncio.get_running_loop()

        def report(event: wire.ProgressEvent) -> None:  # in the worker thread
            loop.call_soon_threadsafe(progress.report, token, _progress_report(event))

        message = "cancelled"
        try:
            params = wire.AddParams(path=str(folder.path), wait=True)
            answer = await self.link.request(params, wire.AddResult, on_progress=report)
            message = f"{answer.files} files, {answer.chunks} chunks indexed"
        except CodesearchError as exc:
            message = f"failed: {exc}"
            self.log(f"codesearch: indexing {folder.path} {message}", types.MessageType.Warning)
        finally:
            progress.end(token, types.WorkDoneProgressEnd(message=message))

    def targets(self, folder_uri: str | None) -> list[Folder]:
        """The workspace folders a request is about: the one named, or all of them."""
        if folder_uri is not None:
            folder = self.folders.find(folder_uri)
            if folder is None:
                raise InvalidParams(f"not a workspace folder: {folder_uri}")
            return [folder]
        folders = self.folders.all()
        if not folders:
            raise NoWorkspace("no workspace folder is open: open a folder to search it")
        return folders

    # ------------------------------------------------------------------ search

    async def search(self, params: SearchRequest) -> answers.SearchAnswer:
        """The ``codesearch/search`` answer: every target folder's repository, best first."""
        folders = self.targets(params.folder)
        await asyncio.gather(*(registered(f, self.register) for f in folders))
        roots = list(dict.fromkeys(f.root for f in folders if f.root is not None))
        notices = [f"not searched: {f.path}: {f.error}" for f in folders if f.root is None]
        if not roots:
            failed = folders[0]
            raise NotSearchable(f"cannot search {failed.path}: {failed.error}")
        found = await asyncio.gather(
            *(self._search_root(root, params) for root in roots), return_exceptions=True
        )
        parts: list[tuple[Path, list[list[answers.Result]]]] = []
        errors: list[BaseException] = []
        for root, answer in zip(roots, found, strict=True):
            if isinstance(answer, CodesearchError):
                errors.append(answer)
                notices.append(f"not searched: {root}: {answer}")
            elif isinstance(answer, BaseException):
                raise answer
            else:
                parts.append((root, [answer[0]]))
                notices.extend(answer[1])
        if errors and not parts:
            raise errors[0]
        merged = merge_ranked(parts, 1, params.k, lambda r: r.score, key=convert.place)[0]
        results = [result for _, result in merged]
        return answers.SearchAnswer(query=params.query, results=results, notices=notices)

    async def _search_root(
        self, root: Path, params: SearchRequest
    ) -> tuple[list[answers.Result], list[str]]:
        request = wire.SearchParams(
            queries=[params.query], k=params.k, filters=params.filters, repo=str(root)
        )
        answer = await self.link.request(request, wire.SearchResult)
        hits = answer.results[0] if answer.results else []
        files = self._files()
        results = await self.link.run(files.results, hits, Path(answer.repo or root))
        return results, answer.notices

    def _files(self) -> convert.Files:
        open_docs = {uri: doc.source for uri, doc in self.workspace.text_documents.items()}
        return convert.Files(open_docs, self.encoding)

    async def similar(self, params: SimilarRequest) -> answers.SimilarAnswer:
        """The ``codesearch/similar`` answer: the chunk at the position (``source``) and the
        code most like it, from the repository of the workspace folder holding the document."""
        path = convert.uri_path(params.uri)
        if path is None:
            raise InvalidParams(f"not a local file URI: {params.uri}")
        folder = self.folders.find(params.uri)
        if folder is None:
            raise NotSearchable(f"{path} is not in a workspace folder: open its folder first")
        await registered(folder, self.register)
        if folder.root is None:
            raise NotSearchable(f"cannot search {folder.path}: {folder.error}")
        request = wire.SimilarParams(
            path=str(path),
            line=params.line + 1,  # the daemon counts lines from 1
            k=params.k,
            filters=params.filters,
            repo=str(folder.root),
        )
        answer = await self.link.request(request, wire.SimilarResult)
        repo = Path(answer.repo or folder.root)
        files = self._files()
        source = await self.link.run(files.source, answer.source, repo)
        results = await self.link.run(files.results, answer.results, repo)
        return answers.SimilarAnswer(source=source, results=results, notices=answer.notices)

    async def hint(self, uris: Sequence[str]) -> None:
        """Tell the daemon these files changed (a save, a watched-file event)."""
        paths = [str(path) for uri in uris if (path := convert.uri_path(uri)) is not None]
        if not paths:
            return
        try:
            await self.link.request(wire.HintParams(paths=paths), wire.HintResult)
        except CodesearchError as exc:  # a hint is only a hint: the daemon's watcher remains
            self.log(f"codesearch: could not pass on a change: {exc}", types.MessageType.Warning)


def _progress_report(event: wire.ProgressEvent) -> types.WorkDoneProgressReport:
    done, total = event.files_done, event.files_total
    chunks = event.chunks_embedded
    if not total:
        return types.WorkDoneProgressReport(message="looking for changed files")
    return types.WorkDoneProgressReport(
        message=f"{done}/{total} files, {chunks} chunks embedded",
        percentage=min(100, done * 100 // total),
    )


# ---------------------------------------------------------------------- errors at the edge


def rpc_errors(handler: F) -> F:
    """Turn codesearch errors into JSON-RPC errors with a one-line message."""

    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await handler(*args, **kwargs)
        except InvalidParams as exc:
            raise JsonRpcInvalidParams(str(exc)) from None
        except BadInput as exc:
            raise JsonRpcInvalidParams(f"codesearch: {exc}") from None
        except DaemonUnavailable as exc:
            raise JsonRpcException(
                f"codesearch daemon unavailable: {exc}", code=REQUEST_FAILED
            ) from None
        except CodesearchError as exc:
            raise JsonRpcException(f"codesearch: {exc}", code=REQUEST_FAILED) from None

    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------------- registrations


def create_server(link: Link | None = None) -> CodesearchServer:
    """A server with every feature registered (``link``: the daemon link, for tests)."""
    server = CodesearchServer(link)

    @server.feature(types.INITIALIZE)
    def initialize(ls: CodesearchServer, params: types.InitializeParams) -> None:
        ls.on_initialize(params)

    @server.feature(types.INITIALIZED)
    def initialized(ls: CodesearchServer, params: types.InitializedParams) -> None:
        for folder in ls.folders.all():
            ls.spawn(ls.follow(folder))

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: CodesearchServer, params: Any = None) -> None:
        ls.stop_background()

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def folders_changed(
        ls: CodesearchServer, params: types.DidChangeWorkspaceFoldersParams
    ) -> None:
        for gone in params.event.removed:  # no longer searched; the index stays
            ls.folders.remove(gone.uri)
        for new in params.event.added:
            folder = ls.folders.add(new.uri, new.name)
            if folder is not None:
                ls.spawn(ls.follow(folder))

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    async def did_save(ls: CodesearchServer, params: types.DidSaveTextDocumentParams) -> None:
        await ls.hint([params.text_document.uri])

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    async def watched_files(
        ls: CodesearchServer, params: types.DidChangeWatchedFilesParams
    ) -> None:
        await ls.hint([change.uri for change in params.changes])

    @server.feature(SEARCH_REQUEST)
    @rpc_errors
    async def search_request(ls: CodesearchServer, params: Any) -> dict[str, Any]:
        return (await ls.search(search_params(params))).dump()

    @server.feature(SIMILAR_REQUEST)
    @rpc_errors
    async def similar_request(ls: CodesearchServer, params: Any) -> dict[str, Any]:
        return (await ls.similar(similar_params(params))).dump()

    @server.feature(types.WORKSPACE_SYMBOL)
    @rpc_errors
    async def workspace_symbol(
        ls: CodesearchServer, params: types.WorkspaceSymbolParams
    ) -> list[types.SymbolInformation]:
        query = params.query.strip()
        if not query:  # a client opening its symbol picker: nothing asked yet
            return []
        answer = await ls.search(SearchRequest(query=query, k=WORKSPACE_SYMBOL_K))
        return [convert.symbol(item) for item in answer.results]

    @server.command(SEARCH_COMMAND)
    @rpc_errors
    async def search_command(ls: CodesearchServer, *args: Any) -> dict[str, Any]:
        return (await ls.search(search_arguments(args))).dump()

    @server.command(SIMILAR_COMMAND)
    @rpc_errors
    async def similar_command(ls: CodesearchServer, *args: Any) -> dict[str, Any]:
        return (await ls.similar(similar_arguments(args))).dump()

    @server.command(REINDEX_COMMAND)
    @rpc_errors
    async def reindex_command(ls: CodesearchServer, *args: Any) -> dict[str, Any]:
        folders = ls.targets(reindex_arguments(args))
        roots = []
        for folder in folders:
            answer = await ls.link.request(
                wire.ReindexParams(path=str(folder.path)), wire.ReindexResult
            )
            roots.append(answer.root)
            ls.spawn(ls.follow(folder))
        return answers.ReindexAnswer(roots=roots).dump()

    @server.command(STATUS_COMMAND)
    @rpc_errors
    async def status_command(ls: CodesearchServer, *args: Any) -> dict[str, Any]:
        no_arguments(args, STATUS_COMMAND)
        in_flight = ls.link.in_flight  # before this call counts itself
        answer = await ls.link.request(wire.StatusParams(), wire.StatusResult)
        server_info = answers.ServerInfo(
            pid=os.getpid(),
            version=__version__,
            calls_in_flight=in_flight,
            position_encoding=ls.encoding,
            folders=[
                answers.FolderInfo(
                    uri=f.uri,
                    path=str(f.path),
                    root=str(f.root) if f.root else None,
                    error=f.error,
                )
                for f in ls.folders.all()
            ],
        )
        return answers.StatusAnswer(**dict(answer), lsp=server_info).dump()

    return server


# ---------------------------------------------------------------------- the entry point


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="codesearch-lsp",
        description="codesearch language server (LSP over stdio); it talks to the codesearch "
        "daemon and starts it when needed.",
    )
    parser.add_argument("--stdio", action="store_true", help="talk over stdio (the default)")
    parser.add_argument("--log-file", help="write the server's log (INFO) to this file")
    parser.add_argument("--version", action="version", version=f"codesearch-lsp {__version__}")
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # editors add their own flags (e.g. --clientProcessId): never fail on them
        print(f"codesearch-lsp: ignoring {' '.join(unknown)}", file=sys.stderr)
    return args


def _setup_logging(log_file: str | None) -> None:
    """INFO to ``log_file`` when given (and writable); else only errors, to stderr."""
    handler: logging.Handler | None = None
    if log_file:
        try:
            Path(log_file).expanduser().parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(Path(log_file).expanduser(), encoding="utf-8")
        except OSError as exc:
            print(f"codesearch-lsp: cannot write the log {log_file}: {exc}", file=sys.stderr)
    if handler is not None:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.basicConfig(level=logging.INFO, handlers=[handler])
        logging.getLogger("pygls").setLevel(logging.WARNING)
    else:  # stderr is often a pipe nobody reads: only this server's own errors
        logging.basicConfig(level=logging.ERROR, format="codesearch-lsp: %(message)s")
        logging.getLogger("pygls").setLevel(logging.CRITICAL)  # errors go back as responses


def main(argv: list[str] | None = None) -> int:
    """``codesearch-lsp``: serve LSP on stdin/stdout until the client says exit."""
    args = _parse_args(argv)
    _setup_logging(args.log_file or os.environ.get("CODESEARCH_LSP_LOG"))
    server = create_server()
    try:
        server.start_io()
    finally:
        server.link.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
