"""The terminal face: parse arguments, make one engine call, format what comes back.

codesearch "where is the retry backoff computed"      # search the repo holding the cwd
codesearch index [PATH]                               # index or update a repository
codesearch search QUERY --repo PATH [-k N] [--json|--jsonl|--files-only|--vimgrep]
           [--batch FILE] [--context N] [--max-lines N]  # agent-friendly output
codesearch search QUERY [--path GLOB] [--exclude GLOB] [--no-tests] [--repo-wide]
codesearch search QUERY --repo A --repo B | --all-repos  # several repositories, one list
codesearch similar PATH:LINE [-k N] [--json|--jsonl] [--repo PATH]   # code like the one there
codesearch add PATH / remove PATH / repos             # what the daemon watches
codesearch forget PATH                                # remove it and delete its index
codesearch daemon start|stop|restart|status|logs|install
codesearch status [PATH]
codesearch models                                     # embedding backends usable here
codesearch embed "TEXT" --query|--passage [--model M] [--task T] [--dim N] [--multivector] [--json]
codesearch mcp [--repo PATH]                          # the MCP server for coding agents (stdio)

Searches go through the background daemon (started on first use) unless --no-daemon. Run
from a subfolder of a repository, a search covers that folder (--repo-wide: all of it).

This module: the parser, the dispatch and the search commands. What search and similar print
is cli_output's job; `index` is cli_index's; the daemon side (daemon, add, remove, repos,
status) is cli_daemon's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from codesearch import __version__, cli_scope, printable
from codesearch.chunk.languages import LANGUAGES
from codesearch.cli_checks import Once, count
from codesearch.cli_output import (
    SNIPPET_LINES,
    Found,
    _check_output_flags,
    _output_flags,
    _print_results,
    _print_similar,
)
from codesearch.cli_scope import filters_from, filters_wire
from codesearch.types import KINDS, BadInput, CodesearchError, Filters, Hit

if TYPE_CHECKING:
    from codesearch.config import Settings
    from codesearch.wire.daemon import SearchParams
    from codesearch.wire.hits import Source

COMMANDS = (
    "index",
    "search",
    "similar",
    "status",
    "models",
    "embed",
    "add",
    "remove",
    "forget",
    "repos",
    "daemon",
    "mcp",
)
TASKS = ("code", "retrieval", "text-matching")  # jina-v4's task adapters
DAEMON_ACTIONS = ("start", "stop", "restart", "status", "logs", "install")
TOP_LEVEL_FLAGS = ("-h", "--help", "--version")

EPILOG = """\
examples:
  codesearch index .                                   index (or update) this repository
  codesearch "where is the retry backoff computed"     ask a question about it
  codesearch search "parse config" --lang python --path 'src/' -k 5
  codesearch "retry" --path '*.py' --exclude 'tests/' --no-tests   grep-like filters
  codesearch "retry" --repo-wide                       from a subfolder: the whole repository
  codesearch "retry" --vimgrep | fzf                   path:line:col:text lines
  codesearch "open a session" --repo ~/src/app --repo ~/src/lib   several, one list
  codesearch search "open a session" --repo ~/src/app --json
  codesearch --jsonl -C 3 --max-lines 20 "where are tokens refreshed"   for agents
  codesearch --files-only "feature flags"              the files, best first
  codesearch similar src/app/auth.py:42                code like the function at that line
  codesearch similar src/app/auth.py:42 --path tests/  ... its tests, say
  codesearch add ~/src/app                             watch a repository: always fresh
  codesearch status
  codesearch daemon logs -n 50
  codesearch embed "parse config" --query --json       the vector a question gets
  codesearch embed "def parse(): ..." --passage --model jina-v4 --task code --dim 512
  codesearch mcp                                       serve coding agents (MCP over stdio)
"""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"codesearch: error: {message} (see `codesearch --help`)\n")


def _engine_flags(p: argparse.ArgumentParser) -> None:
    """Which model answers, and where (search, similar)."""
    p.add_argument("--model", help="refuse to search if the index was built with another model")
    p.add_argument(
        "--no-daemon",
        action="store_true",
        help="search in this process, without the background daemon",
    )


def _filter_flags(p: argparse.ArgumentParser) -> None:
    """--lang / --path / --exclude / --kind / --no-tests (search and similar)."""
    p.add_argument(
        "--lang",
        action="append",
        default=[],
        choices=LANGUAGES,
        metavar="LANG",
        help="only this language (repeatable): " + ", ".join(LANGUAGES),
    )
    p.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="GLOB",
        help="only paths matching GLOB, gitignore-style: '*.py', 'src/', 'tests/**/test_*.py', "
        "'!vendor/' (repeatable: the last match decides; '/': the whole repository)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out paths matching GLOB (repeatable; same syntax as --path)",
    )
    p.add_argument(
        "--no-tests",
        action="store_true",
        help="leave out test code (test files by path convention, test-framework markers)",
    )
    p.add_argument(
        "--kind",
        action="append",
        default=[],
        choices=KINDS,
        help="only this kind of chunk (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="codesearch",
        description="Local semantic code search: ask where things are, get ranked code locations.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"codesearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("index", help="index a repository, or update its index")
    p.add_argument("path", nargs="?", default=".", help="repository folder (default: .)")
    p.add_argument(
        "--force", action="store_true", help="index / or your home folder itself (refused without)"
    )
    p.add_argument(
        "--model",
        help="embedding model: auto, minilm, jina-v4, a local model folder or a cached HF id",
    )
    p.add_argument(
        "--max-file-size",
        type=int,
        metavar="BYTES",
        help="skip files larger than this (default 1000000)",
    )
    p.add_argument(
        "--include-secrets",
        action="store_true",
        help="also index .env, *.pem, *.key ... (skipped by default)",
    )
    p.add_argument("--rebuild", action="store_true", help="drop the index and build it anew")
    p.add_argument(
        "--no-daemon",
        action="store_true",
        help="index in this process even when the daemon runs (else the daemon does it)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="list every skipped file")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")

    p = sub.add_parser("search", help="search an indexed repository")
    p.add_argument("query", nargs="*", help="the question (omit with --batch)")
    p.add_argument(
        "--repo",
        action="append",
        default=[],
        help="repository folder (default: the one holding .); repeat it to search several",
    )
    p.add_argument(
        "--all-repos",
        action="store_true",
        help="search every repository the daemon watches (`codesearch repos`), one list",
    )
    p.add_argument(
        "--repo-wide",
        action="store_true",
        help="from a subfolder: search the whole repository, not just the folder",
    )
    p.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    _output_flags(
        p,
        json_help="print JSON (JSON Lines with --batch)",
        jsonl_help="print one JSON line per result: its query, rank and fields (for head, jq -c)",
    )
    p.add_argument(
        "--batch",
        metavar="FILE",
        help="read one query per line from FILE ('-' = stdin); JSON Lines out",
    )
    _filter_flags(p)
    _engine_flags(p)
    p.add_argument(
        "--rerank",
        type=int,
        default=0,
        metavar="N",
        help="re-rank the top N by late interaction (multi-vector models: jina-v4)",
    )
    p.add_argument(
        "--snippet-lines",
        type=int,
        metavar="N",
        help=f"snippet lines per result in human output (default {SNIPPET_LINES}, 0 = none)",
    )

    p = sub.add_parser(
        "similar",
        help="find code like the function at PATH:LINE: duplicates, other implementations, tests",
    )
    p.add_argument(
        "location",
        metavar="PATH:LINE",
        help="a file (relative to the current folder or the repository root) and a line in it",
    )
    p.add_argument(
        "--repo",
        action=Once,
        default=None,
        help="repository folder (default: the one holding PATH); one only",
    )
    p.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    _output_flags(
        p,
        json_help='print JSON: {"source": {path, start_line, ...}, "results": [...]}',
        jsonl_help="print one JSON line per result: its source, rank and fields",
    )
    _filter_flags(p)
    _engine_flags(p)
    p.set_defaults(batch=None, snippet_lines=None)

    p = sub.add_parser("status", help="the daemon, and what is indexed: model, size, freshness")
    p.add_argument(
        "path",
        nargs="?",
        default=None,
        help="repository folder (default: the indexed one holding ., else every watched one)",
    )
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("add", help="index a repository and keep it fresh (the daemon watches it)")
    p.add_argument("path", nargs="?", default=".", help="repository folder (default: .)")
    p.add_argument(
        "--no-wait", action="store_true", help="return at once; indexing goes on in the daemon"
    )
    p.add_argument(
        "--force", action="store_true", help="add / or your home folder itself (refused without)"
    )

    p = sub.add_parser("remove", help="stop watching a repository (its index is kept)")
    p.add_argument("path", nargs="?", default=".", help="repository folder (default: .)")
    p.add_argument("--delete", action="store_true", help="also delete its index (as `forget`)")

    p = sub.add_parser("forget", help="stop watching a repository and delete its index")
    p.add_argument("path", help="repository folder (it may be gone already)")
    p.set_defaults(delete=True)

    p = sub.add_parser("repos", help="list the repositories the daemon watches")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("daemon", help="run and manage the background daemon")
    p.add_argument("action", choices=DAEMON_ACTIONS, help=" | ".join(DAEMON_ACTIONS))
    p.add_argument(
        "--foreground", action="store_true", help="start: run in this terminal (service managers)"
    )
    p.add_argument(
        "-n", "--lines", type=count, default=40, help="logs: how many lines (default 40; 0: none)"
    )
    p.add_argument("-f", "--follow", action="store_true", help="logs: keep printing new lines")

    p = sub.add_parser("models", help="list embedding backends and whether they are usable here")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--download",
        choices=("jina-v4",),
        help="fetch a model's weights into the Hugging Face cache (needs the internet)",
    )

    p = sub.add_parser("embed", help="print the vector a model gives a text (as index or search)")
    p.add_argument("text", nargs="?", help="the text to embed")
    side = p.add_mutually_exclusive_group()
    side.add_argument("--query", action="store_true", help="embed it as a search question")
    side.add_argument("--passage", action="store_true", help="embed it as an indexed chunk")
    p.add_argument("--model", help="auto (default), minilm, jina-v4, a model folder or HF id")
    p.add_argument(
        "--task",
        choices=TASKS,
        help="jina-v4's task adapter (default code; the index embeds prose with retrieval)",
    )
    p.add_argument("--dim", type=int, metavar="N", help="Matryoshka size (jina-v4: 128 ... 2048)")
    p.add_argument(
        "--multivector",
        action="store_true",
        help="jina-v4: one vector per token (late interaction)",
    )
    p.add_argument(
        "--image",
        metavar="PATH",
        help="embed a picture (image file, or a PDF's first page) from its pixels, as the index "
        "does: needs a multimodal model (jina-v4)",
    )
    p.add_argument("--json", action="store_true", help='print {"model", "task", "dim", "vector"}')
    p.add_argument(
        "--no-daemon",
        action="store_true",
        help="load the model in this process (default: a running daemon's model answers)",
    )

    p = sub.add_parser(
        "mcp",
        help="serve coding agents over MCP (stdio): search_code, find_similar, index_status, ...",
    )
    p.add_argument(
        "--repo",
        action=Once,
        default=None,
        help="the default repository (default: the one holding the current folder; "
        "registered with the daemon when it is not yet); one only",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None and first not in COMMANDS and argv[0] not in TOP_LEVEL_FLAGS:
        argv = ["search", *argv]  # the everyday form: codesearch [-k 5 --json] "QUESTION"
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 2
    try:
        return HANDLERS[args.command](args)
    except CodesearchError as exc:
        print(printable.name(f"codesearch: error: {exc}"), file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `codesearch ... | head`: an OSError, but not an error
        return 0
    except OSError as exc:  # the data dir or a file we must write: one line, no traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(printable.name(f"codesearch: error: {exc.strerror or exc}{where}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codesearch: interrupted", file=sys.stderr)
        return 130


def _settings(args: argparse.Namespace) -> Settings:
    from codesearch.config import load_settings

    settings = load_settings()
    if getattr(args, "max_file_size", None) is not None:
        if args.max_file_size <= 0:
            raise BadInput("--max-file-size must be a positive number of bytes")
        settings = replace(settings, max_file_bytes=args.max_file_size)
    if getattr(args, "include_secrets", False):
        settings = replace(settings, include_secrets=True)
    return settings


def cmd_search(args: argparse.Namespace) -> int:
    from codesearch.wire.base import parse
    from codesearch.wire.daemon import SearchParams

    if args.batch and args.query:
        raise BadInput("give a query or --batch FILE, not both (the query would be ignored)")
    if args.k <= 0:
        raise BadInput("-k must be a positive number")
    if args.rerank < 0:
        raise BadInput("--rerank must be 0 (off) or a positive number")
    _check_output_flags(args)
    queries = _read_batch(args.batch) if args.batch else [" ".join(args.query)]
    if not args.batch and not queries[0].strip():
        raise BadInput('empty query: ask a question, e.g. codesearch "where is auth handled"')
    filters = filters_from(args)
    settings = _settings(args)
    where = cli_scope.target(args)
    asked = {
        "queries": queries or ["-"],  # an empty batch: the rest is still checked
        "k": args.k,
        "rerank": args.rerank,
        "filters": filters_wire(filters),
        **where.params(),
        "model": args.model,
        "snippet_lines": args.max_lines,
    }
    # one rule, with the daemon or without: what the daemon would say
    params = parse(SearchParams, asked, BadInput, dotted=False)
    found = None
    if settings.daemon and not args.no_daemon:
        found = _search_daemon(settings, params, where)
    if found is None:
        found = _search_here(args, settings, queries, filters, where)
    return _print_results(args, queries, found)


def _search_daemon(
    settings: Settings, params: SearchParams, where: cli_scope.Target
) -> Found | None:
    """The search through the daemon, a long batch in several requests; None when no daemon
    can serve."""
    from codesearch import cli_daemon
    from codesearch.cli_checks import batches
    from codesearch.wire.daemon import SearchResult

    answers: list[SearchResult] = []
    for run in batches(params.queries):
        answer = cli_daemon.query(
            settings, params.model_copy(update={"queries": run}), SearchResult
        )
        if answer is None:
            return None
        answers.append(answer)
    merged = answers[0].model_copy(
        update={"results": [one for answer in answers for one in answer.results]}
    )
    return cli_scope.from_daemon(merged, where.multi)


def cmd_similar(args: argparse.Namespace) -> int:
    from codesearch.similar import parse_location
    from codesearch.wire.base import parse
    from codesearch.wire.daemon import SimilarParams

    if args.k <= 0:
        raise BadInput("-k must be a positive number")
    _check_output_flags(args)
    raw, line = parse_location(args.location)
    path, start = _file_argument(raw, args.repo)
    filters = filters_from(args)
    settings = _settings(args)
    found = None
    asked = {
        "path": path,
        "line": line,
        "k": args.k,
        "filters": filters_wire(filters),
        "repo": str(Path(args.repo).expanduser().absolute()) if args.repo else None,
        "cwd": str(start),
        "model": args.model,
        "snippet_lines": args.max_lines,
    }
    params = parse(SimilarParams, asked, BadInput, dotted=False)  # with the daemon or not
    if settings.daemon and not args.no_daemon:
        from codesearch import cli_daemon
        from codesearch.wire.daemon import SimilarResult

        answer = cli_daemon.query(settings, params, SimilarResult)
        if answer is not None:
            hits = [h.to_hit() for h in answer.results]
            found = Path(answer.repo), answer.source, hits
    if found is None:
        found = _similar_here(args, settings, path, line, start, filters)
    return _print_similar(args, *found)


def _file_argument(raw: str, repo: str | None) -> tuple[str, Path]:
    """PATH as the engine takes it, and the folder to look for its repository from: a path
    that names a file from the current folder becomes absolute (unless --repo names a
    repository that has it at that relative path); anything else stays relative to the
    repository root."""
    given = Path(raw).expanduser()
    here = Path.cwd()
    if given.is_absolute():
        return str(given), given.parent
    if repo is not None and (Path(repo).expanduser() / given).exists():
        return raw, here
    if (here / given).exists():
        return str(here / given), (here / given).parent
    return raw, here


def _similar_here(
    args: argparse.Namespace,
    settings: Settings,
    path: str,
    line: int,
    start: Path,
    filters: Filters,
) -> tuple[Path, Source, list[Hit]]:
    from codesearch.engine import RepoSearch, locate_repo
    from codesearch.paths import resolve_root
    from codesearch.search import SearchOptions
    from codesearch.wire.hits import Source

    root = resolve_root(Path(args.repo)) if args.repo else locate_repo(start, settings)
    with RepoSearch(root, settings, model=args.model) as repo:
        options = SearchOptions(k=args.k, filters=filters)
        if args.max_lines is not None:
            options = replace(options, snippet_lines=args.max_lines)
        source, hits = repo.similar(path, line, options)
        return root, Source.of(source), hits


def _search_here(
    args: argparse.Namespace,
    settings: Settings,
    queries: list[str],
    filters: Filters,
    where: cli_scope.Target,
) -> Found:
    """The search in this process (--no-daemon, or no daemon could serve)."""
    from codesearch.search import SearchOptions

    options = SearchOptions(k=args.k, filters=filters, rerank=args.rerank)
    if args.max_lines is not None:
        options = replace(options, snippet_lines=args.max_lines)
    return cli_scope.search_here(where, settings, queries, options, args.model)


def _read_batch(name: str) -> list[str]:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"--batch: no such file: {name}") from None
    except UnicodeDecodeError:
        raise BadInput(f"--batch: {name} is not UTF-8 text") from None
    except OSError as exc:
        raise BadInput(f"--batch: cannot read {name}: {exc.strerror}") from None
    return text.splitlines()


def cmd_status(args: argparse.Namespace) -> int:
    from codesearch import cli_daemon

    return cli_daemon.cmd_status(args, _settings(args))


def cmd_mcp(args: argparse.Namespace) -> int:
    from codesearch.mcp_server import serve

    return serve(_settings(args), args.repo)


def _command(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A handler that runs ``cmd_NAME(args, settings)`` of ``codesearch.MODULE``, imported when
    the command runs (the daemon side: cli_daemon; models and embed: cli_models)."""

    def handler(args: argparse.Namespace) -> int:
        import importlib

        command = getattr(importlib.import_module(f"codesearch.{module}"), f"cmd_{name}")
        return int(command(args, _settings(args)))

    return handler


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "index": _command("cli_index", "index"),
    "search": cmd_search,
    "similar": cmd_similar,
    "status": cmd_status,
    "models": _command("cli_models", "models"),
    "embed": _command("cli_models", "embed"),
    "add": _command("cli_daemon", "add"),
    "remove": _command("cli_daemon", "remove"),
    "forget": _command("cli_daemon", "remove"),
    "repos": _command("cli_daemon", "repos"),
    "daemon": _command("cli_daemon", "daemon"),
    "mcp": cmd_mcp,
}


if __name__ == "__main__":
    sys.exit(main())
