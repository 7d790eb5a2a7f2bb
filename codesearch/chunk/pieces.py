"""Shared helpers: line handling, chunk construction, windows and oversized splits.

Rows are 0-based and inclusive everywhere in this package; `Chunk` lines are 1-based.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from codesearch.types import Chunk, Kind

TokenCounter = Callable[[str], int]

WINDOW_LINES = 40
WINDOW_OVERLAP = 10
MODULE_MAX_LINES = 60
SPLIT_MIN_LINES = 12  # definitions this short are never split
SIG_MAX_CHARS = 120


def estimate_tokens(text: str) -> int:
    return int(len(text) / 3.2) + 1


def surely_over(text: str, max_tokens: int) -> bool:
    """True when text certainly has more than max_tokens tokens, without tokenizing it.

    Tokenizers take 2-4 non-blank characters per token on code and prose; 8 is far beyond.
    """
    blank = text.count(" ") + text.count("\n") + text.count("\t")
    return len(text) - blank > 8 * max_tokens


def split_lines(text: str) -> list[str]:
    """Lines split on "\\n" (the rows tree-sitter counts), a trailing "\\r" stripped."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def is_blank(line: str) -> bool:
    return not line.strip()


def make_chunk(
    path: str,
    language: str,
    kind: Kind,
    name: str,
    start: int,
    end: int,
    lines: Sequence[str],
    header: str,
    whole: tuple[int, int] | None = None,
) -> Chunk:
    """A chunk of rows start..end; ``whole``: the rows of the definition (or section) it is a
    part of, when it is one part of several."""
    return Chunk(
        path=path,
        language=language,
        kind=kind,
        name=name,
        start_line=start + 1,
        end_line=end + 1,
        text="\n".join(lines[start : end + 1]),
        header=header,
        def_start=whole[0] + 1 if whole else 0,
        def_end=whole[1] + 1 if whole else 0,
    )


def make_parts(
    path: str,
    language: str,
    kind: Kind,
    name: str,
    ranges: Sequence[tuple[int, int]],
    lines: Sequence[str],
    header: str,
) -> list[Chunk]:
    """The chunks of one definition (or section) cut into ``ranges``: each header marked as
    its part, each chunk knowing the whole's rows (when there are several parts)."""
    total = len(ranges)
    whole = (ranges[0][0], ranges[-1][1]) if total > 1 else None
    return [
        make_chunk(path, language, kind, name, s, e, lines, add_part(header, i, total), whole)
        for i, (s, e) in enumerate(ranges, 1)
    ]


def trim(start: int, end: int, lines: Sequence[str]) -> tuple[int, int] | None:
    """The range without blank rows at either end, or None when it is all blank."""
    while start <= end and is_blank(lines[start]):
        start += 1
    while end >= start and is_blank(lines[end]):
        end -= 1
    return (start, end) if start <= end else None


def windows(
    start: int,
    end: int,
    lines: Sequence[str],
    size: int = WINDOW_LINES,
    overlap: int = WINDOW_OVERLAP,
) -> list[tuple[int, int]]:
    """Overlapping line windows over start..end, blank edges trimmed, blank windows dropped."""
    out: list[tuple[int, int]] = []
    step = max(1, size - overlap)
    pos = start
    while pos <= end:
        stop = min(pos + size - 1, end)
        rng = trim(pos, stop, lines)
        if rng is not None and (not out or rng[1] > out[-1][1]):
            out.append(rng)
        if stop >= end:
            break
        pos += step
    return out


def blocks(
    start: int, end: int, lines: Sequence[str], max_lines: int, breaks: Sequence[int] = ()
) -> list[tuple[int, int]]:
    """Non-overlapping pieces of at most max_lines rows, cut at a break row or a blank row."""
    out: list[tuple[int, int]] = []
    cuts = sorted(set(breaks))
    pos = start
    while pos <= end:
        rng = trim(pos, end, lines)
        if rng is None:
            break
        pos = rng[0]
        if end - pos + 1 <= max_lines:
            out.append((pos, rng[1]))
            break
        limit = pos + max_lines  # first row of the next piece at the latest
        floor = pos + max_lines // 3
        cut = next((c for c in reversed(cuts) if floor < c <= limit), None)
        if cut is None:
            cut = next((r for r in range(limit, floor, -1) if is_blank(lines[r - 1])), limit)
        piece = trim(pos, cut - 1, lines)
        if piece is not None:
            out.append(piece)
        pos = cut
    return out


def split_by_units(
    start: int,
    end: int,
    units: Sequence[tuple[int, int]],
    lines: Sequence[str],
    count: TokenCounter,
    budget: int,
) -> list[tuple[int, int]]:
    """Split start..end into parts at unit (statement) boundaries, each under budget tokens.

    The first part starts at `start` (signature, doc comment); later parts start at their first
    unit; every row of start..end lies in a part. A unit larger than 4x budget becomes line
    windows of its own.
    """
    units = [(s, min(e, end)) for s, e in units if start <= s <= end]
    if not units:
        units = [(start, end)]
    first = units[0][0]
    starts = [start]
    cur = count("\n".join(lines[start:first])) if first > start else 0
    cur_units = 0
    for us, ue in units:
        tokens = count("\n".join(lines[us : ue + 1]))
        if us <= starts[-1] and cur_units > 0:
            cur += tokens
            continue
        if tokens > 4 * budget and ue > us:
            step = max(1, math.ceil((ue - us + 1) * budget / tokens))
            for row in range(us, ue + 1, step):
                if row > starts[-1]:
                    starts.append(row)
            cur, cur_units = math.inf, 1  # whatever follows starts a new part
            continue
        if cur_units > 0 and cur + tokens > budget and us > starts[-1]:
            starts.append(us)
            cur, cur_units = tokens, 1
        else:
            cur += tokens
            cur_units += 1
    parts: list[tuple[int, int]] = []
    for i, s in enumerate(starts):
        e = starts[i + 1] - 1 if i + 1 < len(starts) else end
        rng = trim(s, e, lines)
        if rng is not None:
            parts.append(rng)
    return fold_small(parts, lines, count, budget) or [(start, end)]


def fold_small(
    parts: Sequence[tuple[int, int]],
    lines: Sequence[str],
    count: TokenCounter,
    budget: int,
) -> list[tuple[int, int]]:
    """Parts that say almost nothing on their own (a lone ``return x``, a closing ``}``, a
    few short lines: see :func:`_small`) join the part before them (the first part takes the
    one after it). The joined part may run a little over the budget: the model reads its
    start, BM25 all of it."""
    out: list[tuple[int, int]] = []
    for s, e in parts:
        if out and _small(s, e, lines, count, budget):
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    if len(out) > 1 and _small(*out[0], lines, count, budget):
        out[0:2] = [(out[0][0], out[1][1])]
    return out


PART_MIN_SHARE = 0.25  # a part under this share of the token budget is folded
LINE_MIN_SHARE = 0.5  # ... and a one-line part under this share


def _small(start: int, end: int, lines: Sequence[str], count: TokenCounter, budget: int) -> bool:
    rows = [line for line in lines[start : end + 1] if line.strip()]
    tokens = count("\n".join(rows))
    share = LINE_MIN_SHARE if len(rows) <= 1 else PART_MIN_SHARE
    return tokens < share * budget


# What add_part writes, for readers that need to see which chunks are parts of one definition.
PART_MARKER = re.compile(r" \(part \d+/\d+\)")


def add_part(header: str, index: int, total: int) -> str:
    """Mark a header as part index/total (on its first line)."""
    if total <= 1:
        return header
    first, sep, rest = header.partition("\n")
    return f"{first} (part {index}/{total}){sep}{rest}"
