"""The agent face: an MCP server over stdio (the official ``mcp`` SDK) in front of the daemon.

    codesearch mcp [--repo PATH]

Tools: ``search_code``, ``find_similar``, ``index_status``, ``reindex``, ``list_repos``. Each
handler is short: check the arguments (paths through the one containment check in
:mod:`codesearch.mcp_link`), one daemon call, format. Results are compact text for the model
(agents pay per token) plus the same data as structured content. This process never loads a
model or opens an index.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from codesearch import __version__
from codesearch.chunk.languages import LANGUAGES
from codesearch.config import Settings
from codesearch.mcp_link import Agent
from codesearch.snippets import views
from codesearch.types import CodesearchError, Kind
from codesearch.wire import daemon as wire
from codesearch.wire.base import Wire
from codesearch.wire.hits import Hit
from codesearch.wire.mcp import (
    ReindexOutput,
    RepoSummary,
    SearchOutput,
    SimilarOutput,
    StatusOutput,
)

DEFAULT_K = 10
MAX_K = 50
DEFAULT_MAX_LINES = 12
REINDEX_WAIT_S = 60.0
WEAK_MATCHES = (
    "All matches are weak: what you describe may not be in this repository (or try other words)."
)

INSTRUCTIONS = """\
codesearch answers questions about a local repository's code by meaning: call search_code \
with what the code does, in words, and read the files at the path:line ranges it returns; \
call find_similar with a path:line to find code that does the same thing as the function \
there. For exact identifiers, strings or every usage of a name, grep is the better tool. The \
index follows file changes by itself."""

SEARCH_DOC = """\
Find code by what it does, in a local repository: ask in plain words ("where are expired \
sessions cleaned up", "how is the retry delay computed", "parse the config file") and get the \
best-matching functions, methods and classes first (semantic + keyword search).

Each result is a line `[rank] path:start-end kind name score` followed by the first max_lines \
lines of its code; `[+N lines]` marks a cut snippet. Paths are relative to the repository \
root; lines are 1-based and inclusive: read the file at that range for the rest.

Use grep instead for an exact identifier, string or regex, or to list every caller or usage: \
this tool ranks by meaning and returns only the top k. Narrow with path_glob ('src/', '*.py', \
'src/**/test_*.py'), language or kind. repo: a registered repository or a path inside one \
(default: the one this server started in; see list_repos)."""

SIMILAR_DOC = """\
Find code that does the same thing as the function (or method, class, section) at path:line \
in a local repository: near-duplicates worth merging, other implementations of the same \
idea, and often its tests. Use it before writing a helper (does one exist already?), when \
fixing a bug (is the same code elsewhere?) or to find the tests of a function.

path: the file, relative to the repository root or absolute; line: any line inside the \
function (1-based). The answer names the source chunk it used, then the results in \
search_code's format: `[rank] path:start-end kind name score` and the first lines of each \
(`[+N lines]` when cut); the function itself and the code around or inside it are left out. \
Ranked by meaning, so different names and variables still match; for every usage of a name, \
grep is the better tool. repo: a registered repository (default: the one holding path)."""

STATUS_DOC = """\
Whether a repository's index is up to date: state (idle = fresh, queued, indexing, error, \
missing), files and chunks indexed, changes pending, files left in a running update, the \
model and the last update. The index follows saved files by itself within about a second; \
use this when results look stale or after large changes (a checkout, generated files). \
repo: default the server's repository (every registered one when it has none)."""

REINDEX_DOC = """\
Re-read a file, a folder or the whole repository into the index now, and wait (up to 60 s) \
until it is done. Rarely needed: saved changes are picked up automatically. Use it after a \
bulk change the watcher may have missed, or when index_status shows an error. path: a file \
or folder inside a registered repository, relative to the repository root or absolute \
(default: the whole default repository)."""

REPOS_DOC = """\
The repositories this server can search (registered with the codesearch daemon): root, \
state, files and chunks; the default one is marked. Paths outside them are refused."""

Query = Annotated[str, Field(description="what the code does, in plain words")]
K = Annotated[int, Field(ge=1, le=MAX_K, strict=True, description="how many results")]
MaxLines = Annotated[
    int, Field(ge=0, le=200, strict=True, description="snippet lines per result (0: none)")
]
PathGlob = Annotated[
    str | None, Field(description="only paths matching this glob: 'src/', '*.py', 'lib/**/x.go'")
]
Language = Annotated[Literal[LANGUAGES] | None, Field(description="only this language")]  # type: ignore[valid-type]
KindArg = Annotated[
    Literal[tuple(k.value for k in Kind)] | None,  # type: ignore[valid-type]
    Field(description="only this kind of chunk"),
]
Repo = Annotated[str | None, Field(description="a registered repository (default: this one)")]
IncludeTests = Annotated[
    bool,
    Field(strict=True, description="false: leave test code out (test files and test functions)"),
]
FilePath = Annotated[
    str, Field(description="the file, relative to the repository root or absolute")
]
Line = Annotated[int, Field(ge=1, strict=True, description="a line inside the function (1-based)")]
PathArg = Annotated[
    str | None, Field(description="a file or folder to re-read (default: the whole repository)")
]


# ---------------------------------------------------------------------- formatting


def _result(text: str, structured: Wire) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=structured.dump()
    )


def format_search(out: SearchOutput, filters: str) -> str:
    if not out.results:
        return (
            f"No results in {out.repo} for {out.query!r}{filters}. Try other words or fewer "
            "filters; for an exact name or string, grep is the better tool."
        )
    lines = [f"{len(out.results)} results in {out.repo} for {out.query!r}{filters}, best first:"]
    if not any(hit.confident for hit in out.results):
        lines.append(WEAK_MATCHES)
    lines.extend(_hit_lines(out.results))
    lines.extend(f"note: {n}" for n in out.notices)
    return "\n".join(lines)


def format_similar(out: SimilarOutput) -> str:
    s = out.source
    what = f"{s.kind} {s.name}" if s.name else s.kind
    like = f"{s.path}:{s.start_line}-{s.end_line} ({what})"
    if not out.results:
        lines = [f"Nothing in {out.repo} is like {like}."]
    else:
        lines = [f"{len(out.results)} results in {out.repo} like {like}, best first:"]
        lines.extend(_hit_lines(out.results))
    lines.extend(f"note: {n}" for n in out.notices)
    return "\n".join(lines)


def _hit_lines(results: list[Hit]) -> list[str]:
    lines: list[str] = []
    for rank, hit in enumerate(results, 1):
        label = f"{hit.kind} {hit.name}" if hit.name else hit.kind
        lines.append("")
        if hit.page is not None:  # a picture: no lines; its size and who shows it
            page = f" page {hit.page}" if hit.page else ""
            shown = f", shown in {', '.join(hit.referenced_by)}" if hit.referenced_by else ""
            size = f"{hit.width}x{hit.height}"
            lines.append(f"[{rank}] {hit.path} {hit.kind}{page} {size}{shown} {hit.score:.2f}")
        else:
            lines.append(
                f"[{rank}] {hit.path}:{hit.start_line}-{hit.end_line} {label} {hit.score:.2f}"
            )
        if hit.snippet:
            lines.extend(line.rstrip() for line in hit.snippet.split("\n"))
        if hit.truncated_lines:
            lines.append(f"[+{hit.truncated_lines} lines]")
    return lines


def _summary(info: wire.RepoStatus, default: Path | None) -> RepoSummary:
    return RepoSummary.of(info, default is not None and Path(info.root) == default)


def format_repo(repo: RepoSummary) -> str:
    mark = " (default)" if repo.default else ""
    state = repo.state + (", watching" if repo.watching else "")
    parts = [f"{repo.root}{mark}: {state}; {repo.files} files, {repo.chunks} chunks"]
    if repo.model:
        parts.append(f"model {repo.model} ({repo.dim} dims)")
    if repo.last_update:
        parts.append(f"updated {_ago(repo.last_update)} ago")
    if repo.pending or repo.files_left:
        parts.append(f"{repo.pending} changes queued, {repo.files_left} files left")
    text = "; ".join(parts)
    if repo.error:
        text += f"\n  error: {repo.error}"
    if repo.notice:
        text += f"\n  notice: {repo.notice}"
    return text


def _ago(when: float) -> str:
    from codesearch.render import duration

    return duration(max(time.time() - when, 0))


# ---------------------------------------------------------------------- the tools


@contextlib.contextmanager
def _tool_errors() -> Iterator[None]:
    """A codesearch error (bad argument, path outside, no index, daemon down) becomes a tool
    error with its one-line message; the server keeps serving."""
    try:
        yield
    except CodesearchError as exc:
        raise ToolError(str(exc)) from None


_PYDANTIC_ERROR = re.compile(
    r"^(\S+)\n  (.+?) \[type=[^,\]]+(?:, input_value=(.*?), input_type=\w+)?\]$", re.M
)


async def _tidy_argument_errors(ctx: Any, call_next: Any) -> Any:
    """A tool call whose arguments fail validation: the SDK's message is pydantic's report
    over several lines (with a URL per error); make it one line naming each argument."""
    result = await call_next(ctx)
    if ctx.method != "tools/call" or not isinstance(result, dict) or not result.get("isError"):
        return result
    content = result.get("content") or [{}]
    text = content[0].get("text", "") if isinstance(content[0], dict) else ""
    found = [
        f"{field}: {message}" + (f" (got {value})" if value and "required" not in message else "")
        for field, message, value in _PYDANTIC_ERROR.findall(text)
    ]
    if "validation error" not in text or not found:
        return result
    tidy = f"{text.split(':', 1)[0]}: invalid arguments: {'; '.join(found)}"
    return {**result, "content": [{**content[0], "text": tidy}]}


def build_server(agent: Agent) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer(
        "codesearch",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",
        middleware=[_tidy_argument_errors],
    )
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(description=SEARCH_DOC, annotations=read_only)
    def search_code(
        query: Query,
        k: K = DEFAULT_K,
        path_glob: PathGlob = None,
        language: Language = None,
        kind: KindArg = None,
        repo: Repo = None,
        max_lines: MaxLines = DEFAULT_MAX_LINES,
        include_tests: IncludeTests = True,
    ) -> Annotated[CallToolResult, SearchOutput]:
        with _tool_errors():
            if not query.strip():
                raise ToolError("query is empty: say what the code does, e.g. 'retry delay'")
            root = agent.repo_root(repo)
            globs = [agent.check_glob(root, path_glob)] if path_glob else []
            filters = wire.Filters(
                languages=[language] if language else [],
                path_globs=globs,
                kinds=[kind] if kind else [],
                include_tests=include_tests,
            )
            params = wire.SearchParams(
                queries=[query], k=k, filters=filters, snippet_lines=max_lines
            )
            answer = agent.search(root, params)
            hits = [h.to_hit() for h in answer.results[0]]
            out = SearchOutput(
                repo=str(root),
                query=query,
                results=[v.record() for v in views(hits, root, max_lines)],
                notices=answer.notices,
            )
            said = [
                f"in {path_glob}" if path_glob else "",
                f"{language or ''} {kind or ''}",
                "" if include_tests else "no tests",
            ]
            shown = ", ".join(s.strip() for s in said if s.strip())
            text = format_search(out, f" ({shown})" if shown else "")
            return _result(text, out)

    @server.tool(description=SIMILAR_DOC, annotations=read_only)
    def find_similar(
        path: FilePath, line: Line, k: K = DEFAULT_K, repo: Repo = None
    ) -> Annotated[CallToolResult, SimilarOutput]:
        with _tool_errors():
            base = agent.repo_root(repo) if repo is not None else None
            root, rel = agent.contain(path, "path", base=base)
            if base is not None and root != base:
                raise ToolError(f"path {path!r} is not in the repository {base}")
            if rel == ".":
                raise ToolError(f"path {path!r} is a repository, not a file: give a file")
            params = wire.SimilarParams(path=rel, line=line, k=k, snippet_lines=DEFAULT_MAX_LINES)
            answer = agent.similar(root, params)
            hits = [h.to_hit() for h in answer.results]
            out = SimilarOutput(
                repo=str(root),
                source=answer.source,
                results=[v.record() for v in views(hits, root, DEFAULT_MAX_LINES)],
                notices=answer.notices,
            )
            return _result(format_similar(out), out)

    @server.tool(description=STATUS_DOC, annotations=read_only)
    def index_status(repo: Repo = None) -> Annotated[CallToolResult, StatusOutput]:
        with _tool_errors():
            root = agent.contain(repo, "repo")[0] if repo is not None else agent.default()
            infos = agent.statuses(root)
            out = StatusOutput(repos=[_summary(i, agent.default()) for i in infos])
            text = "\n".join(format_repo(r) for r in out.repos) or "no repository is registered"
            return _result(text, out)

    @server.tool(
        description=REINDEX_DOC,
        annotations=ToolAnnotations(read_only_hint=False, idempotent_hint=True),
    )
    def reindex(path: PathArg = None) -> Annotated[CallToolResult, ReindexOutput]:
        with _tool_errors():
            root, rel = agent.contain(path, "path") if path else (agent.require_default(), ".")
            if rel == ".":
                agent.link.request(wire.ReindexParams(path=str(root)), wire.ReindexResult)
            else:
                agent.link.request(wire.HintParams(paths=[str(root / rel)]), wire.HintResult)
            done = agent.wait(root, REINDEX_WAIT_S)
            info = agent.status(root)
            state = _summary(info, agent.default()) if info else None
            out = ReindexOutput(root=str(root), path=rel, done=done, repo=state)
            what = "the whole repository" if rel == "." else rel
            head = (
                f"Re-read {what} in {root}: up to date."
                if done
                else f"Re-reading {what} in {root} goes on in the background (searches answer "
                "from the index as it is meanwhile; index_status follows it)."
            )
            return _result(head + ("\n" + format_repo(state) if state else ""), out)

    @server.tool(description=REPOS_DOC, annotations=read_only)
    def list_repos() -> Annotated[CallToolResult, StatusOutput]:
        with _tool_errors():
            infos = agent.link.request(wire.ReposParams(), wire.ReposResult).repos
            out = StatusOutput(repos=[_summary(i, agent.default()) for i in infos])
            text = "\n".join(format_repo(r) for r in out.repos) or (
                "no repository is registered (a person adds one with `codesearch add PATH`)"
            )
            return _result(text, out)

    return server


def serve(settings: Settings, repo: str | None = None) -> int:
    """Run the MCP server on stdin/stdout until the client goes away."""
    agent = Agent(settings, repo, Path.cwd())
    agent.setup()
    build_server(agent).run("stdio")
    return 0
