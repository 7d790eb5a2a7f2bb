"""The terminal face's output side for `search` and `similar`: the output flags (--json,
--jsonl, --files-only, --vimgrep, --context, --max-lines), which of them go together, and
printing what comes back as human text, JSON, JSON Lines, file paths or vimgrep lines. Cheap to
import (no torch, no numpy): the renderers are imported when results are printed.

Paths: JSON keeps them relative to the repository root (the contract); what a person reads
(human output, --files-only, --vimgrep) names them so they open from the current folder."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from codesearch import printable
from codesearch.types import CODE_KINDS, BadInput, Hit

if TYPE_CHECKING:
    from codesearch.snippets import View
    from codesearch.wire.hits import Hit as Record
    from codesearch.wire.hits import Source

SNIPPET_LINES = 6  # snippet lines per result in human output
_NOT_SIGNATURE = ("#", "//", "/*", "*", "--", ";", "@")  # comments, decorators, attributes


@dataclass(frozen=True)
class Found:
    """What a search found: per query, best first, each hit with its repository's root."""

    results: list[list[tuple[Path, Hit]]]
    multi: bool = False  # several repositories were searched: JSON names each hit's repo

    @classmethod
    def of(cls, root: Path, results: list[list[Hit]]) -> Found:
        return cls([[(root, hit) for hit in one] for one in results])


def display_path(root: Path, path: str, multi: bool = False, cwd: Path | None = None) -> str:
    """``path`` (relative to ``root``) as a person can open it from ``cwd``: relative to it
    when the file lies under it or ``cwd`` lies in the repository (like rg: ``../lib/x.py``),
    else relative to the root (one repository) or absolute (several)."""
    here = os.path.realpath(cwd or os.getcwd())
    top = os.path.realpath(root)
    full = os.path.join(top, path)
    inside = here == top or here.startswith(top.rstrip(os.sep) + os.sep)
    under = full.startswith(here.rstrip(os.sep) + os.sep)
    if under or (inside and not multi):
        return os.path.relpath(full, here)
    return full if multi else path


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
        "--vimgrep",
        action="store_true",
        help="print path:line:col:text, one line per result (fzf, Vim's quickfix)",
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
    shared = {
        "--json": args.json,
        "--jsonl": args.jsonl,
        "--context": args.context is not None,
        "--max-lines": args.max_lines is not None,
        "--snippet-lines": args.snippet_lines is not None,
    }
    if args.files_only:
        batch = args.batch is not None
        _refuse("--files-only prints file paths only", {**shared, "--batch": batch})
    if args.vimgrep:
        _refuse("--vimgrep prints one line per result", {**shared, "--files-only": args.files_only})


def _refuse(what: str, given: dict[str, bool]) -> None:
    """A one-line error naming the first flag in ``given`` that is set."""
    clash = next((flag for flag, on in given.items() if on), None)
    if clash is not None:
        raise BadInput(f"{what}: it does not go with {clash}")


def vimgrep_line(path: str, hit: Hit) -> str:
    """``path:line:col:text`` for a hit: the line of its definition's signature (the first of
    its snippet that is not blank, a comment or a decorator), the column of its first
    character, and that line."""
    path = printable.name(path)
    if hit.media is not None:  # a picture has no lines
        return f"{path}:1:1:{hit.kind} {printable.name(hit.name)}".rstrip()
    lines = hit.snippet.split("\n")
    code = hit.kind in CODE_KINDS
    pick = next(
        (i for i, line in enumerate(lines) if line.strip() and not (code and _skipped(line))),
        None,
    )
    if pick is None:
        pick = next((i for i, line in enumerate(lines) if line.strip()), 0)
    text = lines[pick].rstrip() if lines else ""
    col = len(text) - len(text.lstrip()) + 1
    return f"{path}:{hit.start_line + pick}:{col}:{printable.line(text)}"


def _skipped(line: str) -> bool:
    return line.lstrip().startswith(_NOT_SIGNATURE)


def _views(pairs: list[tuple[Path, Hit]], args: argparse.Namespace) -> list[View]:
    """The hits' views (capped snippets, context read under each hit's own root), in order."""
    from codesearch.snippets import views

    by_root: dict[Path, list[int]] = {}
    for i, (root, _) in enumerate(pairs):
        by_root.setdefault(root, []).append(i)
    out: list[View | None] = [None] * len(pairs)
    for root, where in by_root.items():
        shown = views([pairs[i][1] for i in where], root, args.max_lines, args.context)
        for i, view in zip(where, shown, strict=True):
            out[i] = view
    return [v for v in out if v is not None]


def _record(view: View, root: Path, multi: bool) -> Record:
    return view.record(str(root) if multi else None)


def _print_results(args: argparse.Namespace, queries: list[str], found: Found) -> int:
    from codesearch.render import Style, format_hits, use_color
    from codesearch.wire.hits import HitLine, SearchDocument

    multi = found.multi
    results = found.results

    def shown_path(root: Path, hit: Hit) -> str:
        return display_path(root, hit.path, multi)

    if args.files_only:
        files = list(dict.fromkeys(shown_path(root, hit) for root, hit in results[0]))
        for path in files:
            print(printable.name(path))
        return 0 if files else 1
    if args.vimgrep:
        lines = [vimgrep_line(shown_path(r, h), h) for one in results for r, h in one]
        for line in lines:
            print(line)
        return 0 if lines else 1
    shown = [_views(one, args) for one in results]
    roots = [[root for root, _ in one] for one in results]
    if args.jsonl:
        for query, one, where in zip(queries, shown, roots, strict=True):
            for rank, (view, root) in enumerate(zip(one, where, strict=True), 1):
                record = _record(view, root, multi)
                print(json.dumps(HitLine(query=query, rank=rank, **dict(record)).dump()))
        return 0 if args.batch or any(shown) else 1
    if args.batch:
        for query, one, where in zip(queries, shown, roots, strict=True):
            records = [_record(v, r, multi) for v, r in zip(one, where, strict=True)]
            print(json.dumps(SearchDocument(query=query, results=records).dump()))
        return 0
    pairs = results[0]
    if args.json:
        records = [_record(v, r, multi) for v, r in zip(shown[0], roots[0], strict=True)]
        print(json.dumps(SearchDocument(query=queries[0], results=records).dump(), indent=2))
    elif pairs:
        hits = [replace(hit, path=shown_path(root, hit)) for root, hit in pairs]
        lines = args.max_lines if args.max_lines is not None else args.snippet_lines
        context = [(v.before or [], v.after or []) for v in shown[0]] if args.context else None
        style = Style(use_color(sys.stdout))
        print(format_hits(hits, style, SNIPPET_LINES if lines is None else lines, context))
        if not any(hit.confident for hit in hits):  # below the calibrated bar (search.py)
            print("all matches are weak: this may not be in the repository", file=sys.stderr)
    else:
        print("no results", file=sys.stderr)
    return 0 if pairs else 1


def _print_similar(args: argparse.Namespace, root: Path, source: Source, hits: list[Hit]) -> int:
    """Like a search's output, with the source in place of the query."""
    from codesearch.render import Style, format_hits, use_color
    from codesearch.snippets import views
    from codesearch.wire.hits import SimilarDocument, SimilarHitLine

    if args.files_only:
        files = list(dict.fromkeys(h.path for h in hits))
        for path in files:
            print(printable.name(path))
        return 0 if files else 1
    if args.vimgrep:
        for hit in hits:
            print(vimgrep_line(hit.path, hit))
        return 0 if hits else 1
    shown = views(hits, root, args.max_lines, args.context)
    if args.jsonl:
        for rank, view in enumerate(shown, 1):
            line = SimilarHitLine(source=source, rank=rank, **dict(view.record()))
            print(json.dumps(line.dump()))
    elif args.json:
        document = SimilarDocument(source=source, results=[v.record() for v in shown])
        print(json.dumps(document.dump(), indent=2))
    else:
        what = f"{source.kind} {source.name}" if source.name else source.kind
        style = Style(use_color(sys.stdout))
        where = f"{source.path}:{source.start_line}-{source.end_line}"
        print(style("dim", printable.name(f"like {where}  {what}")))
        if hits:
            lines = SNIPPET_LINES if args.max_lines is None else args.max_lines
            context = [(v.before or [], v.after or []) for v in shown] if args.context else None
            print(format_hits(hits, style, lines, context))
        else:
            print("no results", file=sys.stderr)
    return 0 if hits else 1
