"""The terminal face's output side for `search` and `similar`: the output flags (--json,
--jsonl, --files-only, --context, --max-lines), which of them go together, and printing what
comes back as human text, JSON, JSON Lines or file paths. Cheap to import (no torch, no numpy):
the renderers are imported when results are printed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from codesearch.types import BadInput, Hit

SNIPPET_LINES = 6  # snippet lines per result in human output


def _output_flags(p: argparse.ArgumentParser, json_help: str, jsonl_help: str) -> None:
    """--json / --jsonl / --files-only / --context / --max-lines (search and similar)."""
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help=json_help)
    fmt.add_argument(
        "--jsonl",
        action="store_true",
        help=jsonl_help,
    )
    p.add_argument(
        "-l",
        "--files-only",
        action="store_true",
        help="print only the files that hold results, best first, one per line",
    )
    p.add_argument(
        "-C",
        "--context",
        type=int,
        metavar="N",
        help="also show N lines before and after each result (JSON: context_before/after)",
    )
    p.add_argument(
        "--max-lines",
        type=int,
        metavar="N",
        help="at most N snippet lines per result, in every output (JSON: truncated_lines)",
    )


def _check_output_flags(args: argparse.Namespace) -> None:
    """Bad combinations and values of the output flags: one clear line (exit 2)."""
    if args.context is not None and args.context < 0:
        raise BadInput("--context must be 0 or a positive number of lines")
    if args.max_lines is not None and args.max_lines < 0:
        raise BadInput("--max-lines must be 0 or a positive number of lines")
    if args.snippet_lines is not None and args.snippet_lines < 0:
        raise BadInput("--snippet-lines must be 0 or a positive number of lines")
    if args.snippet_lines is not None and args.max_lines is not None:
        raise BadInput("--snippet-lines and --max-lines both set the snippet length: keep one")
    if args.files_only:
        given = {
            "--json": args.json,
            "--jsonl": args.jsonl,
            "--batch": args.batch is not None,
            "--context": args.context is not None,
            "--max-lines": args.max_lines is not None,
            "--snippet-lines": args.snippet_lines is not None,
        }
        clash = next((flag for flag, on in given.items() if on), None)
        if clash is not None:
            raise BadInput(f"--files-only prints file paths only: it does not go with {clash}")


def _print_results(
    args: argparse.Namespace, queries: list[str], root: Path, results: list[list[Hit]]
) -> int:
    from codesearch.render import Style, format_hits, use_color
    from codesearch.snippets import views

    if args.files_only:
        files = list(dict.fromkeys(h.path for h in results[0]))
        for path in files:
            print(path)
        return 0 if files else 1
    shown = [views(hits, root, args.max_lines, args.context) for hits in results]
    if args.jsonl:
        for query, one in zip(queries, shown, strict=True):
            for rank, view in enumerate(one, 1):
                print(json.dumps({"query": query, "rank": rank, **view.to_json()}))
        return 0 if args.batch or any(shown) else 1
    if args.batch:
        for query, one in zip(queries, shown, strict=True):
            print(json.dumps({"query": query, "results": [v.to_json() for v in one]}))
        return 0
    hits = results[0]
    if args.json:
        out = {"query": queries[0], "results": [v.to_json() for v in shown[0]]}
        print(json.dumps(out, indent=2))
    elif hits:
        lines = args.max_lines if args.max_lines is not None else args.snippet_lines
        context = [(v.before or [], v.after or []) for v in shown[0]] if args.context else None
        style = Style(use_color(sys.stdout))
        print(format_hits(hits, style, SNIPPET_LINES if lines is None else lines, context))
    else:
        print("no results", file=sys.stderr)
    return 0 if hits else 1


def _print_similar(
    args: argparse.Namespace, root: Path, source: dict[str, object], hits: list[Hit]
) -> int:
    """Like a search's output, with the source in place of the query."""
    from codesearch.render import Style, format_hits, use_color
    from codesearch.snippets import views

    if args.files_only:
        files = list(dict.fromkeys(h.path for h in hits))
        for path in files:
            print(path)
        return 0 if files else 1
    shown = views(hits, root, args.max_lines, args.context)
    if args.jsonl:
        for rank, view in enumerate(shown, 1):
            print(json.dumps({"source": source, "rank": rank, **view.to_json()}))
    elif args.json:
        print(json.dumps({"source": source, "results": [v.to_json() for v in shown]}, indent=2))
    else:
        what = f"{source['kind']} {source['name']}" if source["name"] else source["kind"]
        style = Style(use_color(sys.stdout))
        where = f"{source['path']}:{source['start_line']}-{source['end_line']}"
        print(style("dim", f"like {where}  {what}"))
        if hits:
            lines = SNIPPET_LINES if args.max_lines is None else args.max_lines
            context = [(v.before or [], v.after or []) for v in shown] if args.context else None
            print(format_hits(hits, style, lines, context))
        else:
            print("no results", file=sys.stderr)
    return 0 if hits else 1
