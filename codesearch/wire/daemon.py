"""Every request and answer on the daemon's socket (the envelope is daemon/protocol.py's).

Each request's params are a model with its ``method``; :data:`CALLS` pairs it with the
model of its answer. The daemon validates what it is sent against these (a malformed request
is answered with one line, e.g. ``'k' must be a whole number from 1 to 1000``), and the one
client (daemon/link.py) reads the answers with them.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Annotated, Any, ClassVar, NamedTuple

from pydantic import AfterValidator, Field, StrictBool, StrictInt, StrictStr, field_validator

from codesearch import globs, types
from codesearch.types import Kind, RepoState
from codesearch.wire.base import Closed, Maybe, Says, Wire, omitted
from codesearch.wire.hits import Hit, Source


class Method(StrEnum):
    PING = "ping"
    SEARCH = "search"
    SIMILAR = "similar"
    ADD = "add"
    REMOVE = "remove"
    REPOS = "repos"
    STATUS = "status"
    HINT = "hint"
    REINDEX = "reindex"
    WAIT = "wait"
    SHUTDOWN = "shutdown"
    EMBED = "embed"


class Envelope(Wire):
    """A request line: ``{"v": 2, "id": 7, "method": "search", "params": {...}}``."""

    v: int
    id: Annotated[
        StrictInt | StrictStr, Says("malformed request: 'id' must be a number or a string")
    ]
    method: Method
    params: Annotated[dict[str, Any], Says("malformed request: 'params' must be an object")] = (
        Field(default_factory=dict)
    )


MAX_PATH_CHARS = 4096  # Linux's PATH_MAX
MAX_QUERY_CHARS = 4096  # a question, many times what MiniLM reads (256 tokens)
MAX_LINE = 100_000_000
MAX_WAIT_S = 86_400.0


def _path_text(value: str) -> str:
    if "\0" in value:
        raise ValueError("must not hold a NUL byte")
    if len(value) > MAX_PATH_CHARS:
        raise ValueError(f"is too long: {len(value)} characters (at most {MAX_PATH_CHARS})")
    return value


def _absolute(value: str) -> str:
    _path_text(value)
    if not os.path.isabs(value):
        raise ValueError(f"must be an absolute path (the daemon has no current folder): {value!r}")
    return value


Strings = list[StrictStr]
# A path from a face: absolute (the daemon runs in /), no NUL byte, at most PATH_MAX long.
Location = Annotated[StrictStr, AfterValidator(_absolute)]
# A path that may be relative to a repository root (similar's file, search's scope).
RelativeOk = Annotated[StrictStr, AfterValidator(_path_text)]
Query = Annotated[
    StrictStr,
    Field(max_length=MAX_QUERY_CHARS),
    Says(long="a query is too long: more than {max} characters (ask a shorter question)"),
]


class Filters(Closed):
    """What a search keeps; empty fields do not filter. Path patterns are gitignore-style
    (``codesearch.globs``), relative to the repository root."""

    noun: ClassVar[str] = "filter"

    languages: Strings = Field(default_factory=list)
    path_globs: Strings = Field(default_factory=list, description="keep paths matching any")
    kinds: list[Kind] = Field(default_factory=list)
    exclude_globs: Strings = Field(default_factory=list, description="drop paths matching any")
    include_tests: StrictBool = Field(default=True, description="false: leave test code out")

    @field_validator("path_globs")
    @classmethod
    def _keep(cls, value: list[str]) -> list[str]:
        globs.check(value, "filters.path_globs")  # BadInput, one line
        return value

    @field_validator("exclude_globs")
    @classmethod
    def _drop(cls, value: list[str]) -> list[str]:
        globs.check(value, "filters.exclude_globs", negation=False)
        return value


class Params(Wire):
    """A request's params (unknown keys are ignored)."""

    method: ClassVar[Method]


class QueryParams(Params):
    """What ``search`` and ``similar`` share: how many, how ranked, how long, which."""

    k: Annotated[StrictInt, Field(ge=1, le=1000)] = 10
    rerank: Annotated[StrictInt, Field(ge=0, le=1000)] = 0
    snippet_lines: Maybe[Annotated[StrictInt, Field(ge=0, le=10_000)]] = omitted(
        "snippet lines per hit (default: the engine's, 12 and a line '...')"
    )
    filters: Filters = Filters()
    model: Maybe[StrictStr] = omitted("the model the index must have been built with")
    repo: Maybe[Location] = omitted("the repository (a path inside one)")
    cwd: Maybe[Location] = omitted("without repo: the folder whose repository is searched")


class SearchParams(QueryParams):
    method: ClassVar[Method] = Method.SEARCH

    queries: Annotated[
        Annotated[list[Query], Field(min_length=1)],
        Says(
            empty="'queries' must hold at least one question",
            long="a query is too long: more than {max} characters (ask a shorter question)",
        ),
    ]
    scope: Maybe[RelativeOk] = omitted("a subfolder: search that folder only")
    repos: Annotated[
        Maybe[Annotated[list[Location], Field(min_length=1)]],
        Says(empty="'repos' must name at least one repository"),
    ] = omitted("several repositories: one list, each hit with its repo")
    all_repos: StrictBool = Field(default=False, description="every registered repository")


class SimilarParams(QueryParams):
    method: ClassVar[Method] = Method.SIMILAR

    path: Annotated[
        RelativeOk, Says(empty="'path' is required: the file of the code to find more like")
    ] = Field(min_length=1, description="relative to the repository root, or absolute")
    line: Annotated[
        StrictInt,
        Field(ge=1, le=MAX_LINE),
        Says("'line' must be a whole number from 1 (lines are 1-based)"),
    ]


class PingParams(Params):
    method: ClassVar[Method] = Method.PING


class AddParams(Params):
    method: ClassVar[Method] = Method.ADD

    path: Annotated[Location, Says(empty="'{name}' is required")] = Field(min_length=1)
    wait: StrictBool = Field(default=False, description="progress events until it is indexed")


class RemoveParams(Params):
    method: ClassVar[Method] = Method.REMOVE

    path: Annotated[Location, Says(empty="'{name}' is required")] = Field(min_length=1)
    delete: StrictBool = Field(
        default=False, description="also delete its index files (`codesearch forget`)"
    )


class ReposParams(Params):
    method: ClassVar[Method] = Method.REPOS


class StatusParams(Params):
    method: ClassVar[Method] = Method.STATUS

    repo: Maybe[Location] = omitted("one repository (default: every registered one)")


class HintParams(Params):
    method: ClassVar[Method] = Method.HINT

    paths: list[Location] = Field(
        default_factory=list, description="absolute paths a face saw change"
    )


class ReindexParams(Params):
    method: ClassVar[Method] = Method.REINDEX

    path: Annotated[Location, Says(empty="'{name}' is required")] = Field(min_length=1)
    rebuild: StrictBool = False
    wait: StrictBool = False
    model: Maybe[StrictStr] = omitted("switch the index to this model (it is rebuilt)")


class WaitParams(Params):
    method: ClassVar[Method] = Method.WAIT

    repo: Maybe[Location] = omitted("one repository (default: all)")
    timeout: Annotated[
        float,
        Field(ge=0, le=MAX_WAIT_S, allow_inf_nan=False),
        Says(f"'timeout' must be a number of seconds from 0 to {MAX_WAIT_S:.0f}"),
    ] = 60


class ShutdownParams(Params):
    method: ClassVar[Method] = Method.SHUTDOWN


class EmbedParams(Params):
    """One text embedded by the daemon's (warm) model, as `codesearch embed` shows it."""

    method: ClassVar[Method] = Method.EMBED

    text: StrictStr
    query: StrictBool = Field(description="true: as a search question; false: as a chunk")
    model: Maybe[StrictStr] = omitted("the model (default: the configured one)")
    task: Maybe[StrictStr] = omitted("a task adapter (jina-v4)")
    dim: Maybe[Annotated[StrictInt, Field(ge=1, le=100_000)]] = omitted("Matryoshka size")
    multivector: StrictBool = False


# ---------------------------------------------------------------------- answers


class DaemonInfo(Wire):
    pid: int
    version: str
    schema_version: int = Field(alias="schema")
    uptime_s: float
    rss_bytes: int
    queue_depth: int = Field(description="changes queued plus files left in running updates")
    repos: int
    socket: str
    log: str
    embedders: list[dict[str, Any]] = Field(description="remote embedding servers and health")


class PingResult(DaemonInfo):
    started: float = Field(description="when the daemon started (Unix time)")


class Progress(Wire):
    files_done: int
    files_total: int
    chunks_embedded: int

    def at(self, elapsed: float) -> types.Progress:
        """The engine's snapshot (for a progress bar), ``elapsed`` seconds in."""
        counts = self.model_dump(include=set(Progress.model_fields))
        return types.Progress(**counts, elapsed=elapsed)


class ProgressEvent(Progress):
    """The ``progress`` event of ``add`` / ``reindex`` with ``wait``."""

    root: str
    state: RepoState


class RepoStatus(Wire):
    root: str
    state: RepoState
    watching: bool
    pending: int
    last_update: float | None = Field(description="Unix time of the last finished update")
    updates: int
    index: str
    error: str
    notice: str
    progress: Maybe[Progress] = omitted("the running update")
    files: int
    chunks: int
    model: str
    dim: int
    index_bytes: int
    pictures: Maybe[int] = omitted()
    pictures_waiting: Maybe[int] = omitted("pictures described by text only (no pixel model)")
    index_error: Maybe[str] = omitted("the index cannot be read")


class AddResult(RepoStatus):
    added: bool = Field(description="false: it was registered already")


class SearchResult(Wire):
    repo: str
    repos: Maybe[list[str]] = omitted("with repos / all_repos: the repositories searched")
    results: list[list[Hit]] = Field(description="per query, best first")
    notices: list[str] = Field(default_factory=list)


class SimilarResult(Wire):
    repo: str
    source: Source
    results: list[Hit]
    notices: list[str] = Field(default_factory=list)


class RemoveResult(Wire):
    root: str
    removed: bool = True
    index: str = Field(description="the index, left in place unless `deleted` names it")
    stopped: bool = Field(default=False, description="an update of it was running: it stopped")
    files_kept: Maybe[int] = omitted("files the stopped update finished, kept in the index")
    deleted: list[str] = Field(default_factory=list, description="index files deleted")


class ReposResult(Wire):
    repos: list[RepoStatus]


class StatusResult(Wire):
    daemon: DaemonInfo
    repos: list[RepoStatus]


class HintResult(Wire):
    queued: int


class Skipped(Wire):
    path: str
    reason: str
    detail: str = ""


class RunStats(Wire):
    """What the index runs a `reindex` with ``wait`` followed did (summed over them)."""

    files_seen: int
    files_indexed: int
    files_unchanged: int
    files_removed: int
    chunks_total: int
    chunks_embedded: int
    chunks_reused: int
    seconds: float
    rebuilt: bool
    skipped: list[Skipped] = Field(default_factory=list, description="of the last whole pass")

    @classmethod
    def of(cls, runs: list[types.IndexStats]) -> RunStats:
        last = runs[-1]
        total = {k: sum(getattr(r, k) for r in runs) for k in ("files_indexed", "files_removed")}
        return cls(
            files_seen=last.files_seen,
            files_unchanged=last.files_unchanged,
            chunks_total=last.chunks_total,
            chunks_embedded=sum(r.chunks_embedded for r in runs),
            chunks_reused=sum(r.chunks_reused for r in runs),
            seconds=round(sum(r.seconds for r in runs), 3),
            rebuilt=any(r.rebuilt for r in runs),
            skipped=[Skipped(path=s.path, reason=s.reason, detail=s.detail) for s in last.skipped],
            **total,
        )

    def to_stats(self) -> types.IndexStats:
        fields = self.model_dump(exclude={"skipped"})
        skips = tuple(types.Skip(s.path, s.reason, s.detail) for s in self.skipped)
        return types.IndexStats(**fields, skipped=skips)


class ReindexResult(Wire):
    root: str
    stats: Maybe[RunStats] = omitted("with wait: what the runs it waited for did")
    added: bool = Field(default=False, description="it was not watched: it is now")
    error: str = Field(default="", description="the last update failed: why (it is retried)")


class EmbedResult(Wire):
    model: str
    task: str | None
    dim: int
    vectors: list[list[float]] = Field(description="one vector, or one per token (multivector)")
    multivector: bool = False


class WaitResult(Wire):
    idle: bool


class StoppedRun(Wire):
    repo: str
    files_kept: int = Field(description="files the stopped update finished, kept in the index")


class ShutdownResult(Wire):
    pid: int
    stopped: list[StoppedRun] = Field(
        default_factory=list, description="updates that were running: each stopped"
    )


# ---------------------------------------------------------------------- the CLI's status


class LocalState(StrEnum):
    """A repository as the CLI sees it without the daemon's word."""

    NOT_INDEXED = "not indexed"
    NOT_WATCHED = "not watched"
    REGISTERED = "registered, daemon not running"
    DAEMON_DOWN = "daemon not running"


class LocalRepo(Wire):
    """A repository read in-process (``codesearch status`` / ``repos`` without a daemon)."""

    root: str
    state: LocalState
    watching: bool = False
    index: Maybe[str] = omitted()
    files: Maybe[int] = omitted()
    chunks: Maybe[int] = omitted()
    vectors: Maybe[int] = omitted()
    model: Maybe[str] = omitted()
    dim: Maybe[int] = omitted()
    index_bytes: Maybe[int] = omitted()
    languages: Maybe[dict[str, int]] = omitted("chunks per language")
    kinds: Maybe[dict[str, int]] = omitted("chunks per kind")
    pictures: Maybe[int] = omitted()
    pictures_waiting: Maybe[int] = omitted()


class StatusDocument(Wire):
    """``codesearch status --json``."""

    daemon: DaemonInfo | None = Field(description="null: the daemon is not running")
    repos: list[RepoStatus | LocalRepo]


class ReposDocument(Wire):
    """``codesearch repos --json``."""

    repos: list[RepoStatus | LocalRepo]


class Call(NamedTuple):
    params: type[Params]
    result: type[Wire]


CALLS: dict[Method, Call] = {
    Method.PING: Call(PingParams, PingResult),
    Method.SEARCH: Call(SearchParams, SearchResult),
    Method.SIMILAR: Call(SimilarParams, SimilarResult),
    Method.ADD: Call(AddParams, AddResult),
    Method.REMOVE: Call(RemoveParams, RemoveResult),
    Method.REPOS: Call(ReposParams, ReposResult),
    Method.STATUS: Call(StatusParams, StatusResult),
    Method.HINT: Call(HintParams, HintResult),
    Method.REINDEX: Call(ReindexParams, ReindexResult),
    Method.WAIT: Call(WaitParams, WaitResult),
    Method.SHUTDOWN: Call(ShutdownParams, ShutdownResult),
    Method.EMBED: Call(EmbedParams, EmbedResult),
}
