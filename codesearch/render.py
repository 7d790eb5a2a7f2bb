"""Terminal rendering for the CLI: colored hits, the progress bar, summaries."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, TextIO

from codesearch import printable
from codesearch.types import Hit, IndexStats

if TYPE_CHECKING:  # the client path must stay light: no numpy, no tree-sitter
    from codesearch.index import Progress

_CODES = {
    "path": "35",
    "line": "32",
    "kind": "36",
    "name": "1",
    "dim": "2",
    "score": "33",
    "match": "1",
}


def use_color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream.isatty()


class Style:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, role: str, text: str) -> str:
        if not self.enabled:
            return text
        return f"\x1b[{_CODES[role]}m{text}\x1b[0m"


def format_hits(
    hits: list[Hit],
    style: Style,
    snippet_lines: int,
    context: list[tuple[list[str], list[str]]] | None = None,
) -> str:
    """`path:line` first so terminals make it clickable, then kind, name, score, snippet;
    with ``context`` (lines before and after each hit) those lines too, numbered, dimmed.
    The lines that matched best (``Hit.match_range``, when a part of the hit) are marked: a
    ``>`` in the gutter, and bold when colour is on. Names and lines are shown with their
    control characters escaped (:mod:`codesearch.printable`)."""
    out: list[str] = []
    for i, hit in enumerate(hits):
        if hit.media is not None:
            out.extend(_picture(hit, style, snippet_lines))
            continue
        path = printable.name(hit.path)
        location = f"{style('path', path)}:{style('line', str(hit.start_line))}"
        span = style("dim", f"-{hit.end_line}")
        label = (
            f"{style('kind', hit.kind)} {style('name', printable.name(hit.name))}"
            if hit.name
            else style("kind", hit.kind)
        )
        out.append(f"{location}{span}  {label}  {style('score', f'{hit.score:.4f}')}")
        before, after = context[i] if context is not None else ([], [])
        before, after = [printable.line(x) for x in before], [printable.line(x) for x in after]
        lines = hit.snippet.split("\n")[:snippet_lines] if snippet_lines > 0 else []
        lines = [printable.line(x) for x in lines]
        if not (lines or before or after):
            continue
        first = hit.start_line - len(before)
        last = hit.end_line + len(after) if after else hit.start_line + len(lines)
        width = len(str(last))

        def number(n: int, width: int = width) -> str:
            return style("dim", str(n).rjust(width))

        for offset, line in enumerate(before):
            out.append(f"  {number(first + offset)}  {style('dim', line.rstrip())}")
        best = _best_lines(hit)
        for offset, line in enumerate(lines):
            n = hit.start_line + offset
            if best[0] <= n <= best[1]:
                out.append(f"{style('match', '>')} {number(n)}  {style('match', line.rstrip())}")
            else:
                out.append(f"  {number(n)}  {line.rstrip()}")
        if after:
            if hit.start_line + len(lines) <= hit.end_line:  # a gap: the snippet was cut
                out.append(f"  {style('dim', '...'.rjust(width))}")
            for offset, line in enumerate(after):
                out.append(f"  {number(hit.end_line + 1 + offset)}  {style('dim', line.rstrip())}")
        out.append("")
    return "\n".join(out).rstrip("\n")


def _best_lines(hit: Hit) -> tuple[int, int]:
    """The lines to mark: the best-matching ones when they are a proper part of the hit, else
    none ((0, -1))."""
    first, last = hit.match_range
    whole = (hit.start_line, hit.end_line)
    if (first, last) == whole or not (whole[0] <= first <= last <= whole[1]):
        return 0, -1
    return first, last


def _picture(hit: Hit, style: Style, snippet_lines: int) -> list[str]:
    """A picture: its path (no line), kind, page and size, the documents that show it, and
    the first lines of its description."""
    media = hit.media
    assert media is not None
    page = f" page {media.page}" if media.page else ""
    size = style("dim", f"{media.width}x{media.height}")
    out = [
        f"{style('path', printable.name(hit.path))}  {style('kind', hit.kind)}{page} {size}  "
        f"{style('score', f'{hit.score:.4f}')}"
    ]
    if hit.referenced_by:
        shown_in = ", ".join(printable.name(p) for p in hit.referenced_by)
        out.append(f"  {style('dim', 'shown in')} {shown_in}")
    lines = hit.snippet.split("\n")[1 : 1 + max(snippet_lines - 1, 0)]  # after the title line
    lines = [printable.line(x) for x in lines]
    out.extend(f"  {style('dim', line.rstrip())}" for line in lines if line.strip())
    out.append("")
    return out


class ProgressBar:
    """files done/total, chunks/s and ETA on one self-rewriting stderr line (terminals only)."""

    def __init__(self, stream: TextIO | None = None, min_interval: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.min_interval = min_interval
        self._last = 0.0
        self._shown = False

    def __call__(self, p: Progress) -> None:
        if not self.enabled:
            return
        if p.phase:
            self.stream.write(f"\r{p.phase} ...".ljust(100))
            self.stream.flush()
            self._shown = True
            return
        now = time.monotonic()
        final = p.files_done >= p.files_total
        if not final and now - self._last < self.min_interval:
            return
        self._last = now
        total = max(p.files_total, 1)
        frac = min(p.files_done / total, 1.0)
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        rate = p.chunks_embedded / p.elapsed if p.elapsed > 0 else 0.0
        eta = ""
        if 0 < p.files_done < p.files_total and p.elapsed > 1:
            remaining = p.elapsed / p.files_done * (p.files_total - p.files_done)
            eta = f"  ETA {duration(remaining)}"
        line = (
            f"\rindexing [{bar}] {p.files_done}/{p.files_total} files"
            f"  {p.chunks_embedded} chunks embedded  {rate:.1f} chunks/s{eta}"
        )
        self.stream.write(line.ljust(100))
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()


def duration(seconds: float) -> str:
    """12s, 3m04s, 2h05m, 3d04h."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def format_summary(stats: IndexStats, root: str) -> str:
    skipped = len(stats.skipped)
    note = ""
    if stats.rebuilt:
        note = " (rebuilt: the model, chunker or indexing rules changed since the last run)"
    return (
        f"indexed {printable.name(root)}: {stats.files_seen} files ({stats.files_indexed} updated, "
        f"{stats.files_unchanged} unchanged, {stats.files_removed} removed, {skipped} skipped); "
        f"{stats.chunks_total} chunks ({stats.chunks_embedded} embedded, "
        f"{stats.chunks_reused} reused) in {stats.seconds:.1f}s{note}"
    )


def format_skips(stats: IndexStats) -> str:
    """Every skip with its reason (verbose output), then counts by reason."""
    lines = [
        printable.name(f"skipped {s.path}: {s.reason}" + (f" ({s.detail})" if s.detail else ""))
        for s in stats.skipped
    ]
    counts = Counter(s.reason for s in stats.skipped)
    if counts:
        lines.append("skips by reason: " + ", ".join(f"{r}={n}" for r, n in sorted(counts.items())))
    return "\n".join(lines)
