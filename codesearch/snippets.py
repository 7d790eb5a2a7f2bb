"""Snippets for the agent-facing outputs (the CLI's JSON and the MCP server): capped by lines,
with the lines around a hit read from the file on disk. Cheap to import: no torch, no numpy.

Field names (the record is :class:`codesearch.wire.hits.Hit`; docs/search-result.schema.json):
- ``snippet``: the hit's code, at most ``max_lines`` lines when a cap is asked for;
- ``truncated_lines``: how many lines of the hit's span (start_line..end_line) the snippet
  does not show (present whenever a cap is asked for);
- ``context_before`` / ``context_after``: up to N lines just above / below the hit (present
  whenever context is asked for; "" at the top or bottom of a file, or when it cannot be read).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from codesearch.paths import is_inside
from codesearch.safe_read import read_text
from codesearch.types import Hit
from codesearch.wire import hits

MAX_FILE_BYTES = 4_000_000  # context is read from files this size at most


def cap(hit: Hit, max_lines: int | None) -> tuple[str, int]:
    """The hit's snippet cut to ``max_lines`` lines (None: as the engine gave it), and how many
    lines of the hit's span (start_line..end_line) it does not show.

    Ask the engine for ``snippet_lines=max_lines``: it then returns at most that many lines
    plus its own "..." marker, which is dropped here (``truncated_lines`` says it instead)."""
    if max_lines is None:
        return hit.snippet, 0
    lines = hit.snippet.split("\n")[:max_lines] if max_lines > 0 else []
    span = hit.end_line - hit.start_line + 1
    return "\n".join(lines), max(span - len(lines), 0)


@dataclass
class FileLines:
    """The lines of files under one repository root, each file read once.

    Only paths inside ``root`` are read (the one containment check, symlinks followed)."""

    root: Path
    _cache: dict[str, list[str] | None] = field(default_factory=dict)

    def lines(self, path: str) -> list[str] | None:
        if path not in self._cache:
            self._cache[path] = self._read(path)
        return self._cache[path]

    def _read(self, path: str) -> list[str] | None:
        if os.path.isabs(path) or not is_inside(self.root, Path(path)):
            return None
        try:  # a regular file only, capped: a FIFO or a device is never waited on
            text = read_text(self.root / path, MAX_FILE_BYTES)
        except OSError:
            return None
        return text.split("\n")

    def around(self, hit: Hit, n: int) -> tuple[list[str], list[str]]:
        """Up to ``n`` lines before and after the hit's span (1-based, inclusive lines)."""
        if hit.media is not None or n <= 0:  # a picture has no lines around it
            return [], []
        lines = self.lines(hit.path)
        if lines is None:
            return [], []
        if lines and lines[-1] == "":  # the file's final newline is no line of its own
            lines = lines[:-1]
        first = max(hit.start_line - 1 - n, 0)
        before = lines[first : max(hit.start_line - 1, 0)]
        after = lines[hit.end_line : hit.end_line + n]
        return [line.rstrip("\r") for line in before], [line.rstrip("\r") for line in after]


@dataclass(frozen=True)
class View:
    """One hit as an agent-facing output shows it."""

    hit: Hit
    snippet: str
    truncated_lines: int | None = None  # None: no cap was asked for
    before: list[str] | None = None  # None: no context was asked for
    after: list[str] | None = None

    def record(self, repo: str | None = None) -> hits.Hit:
        """The hit as the JSON outputs carry it (``repo``: with several repositories)."""
        shown: dict[str, object] = {"snippet": self.snippet, "repo": repo}
        if self.truncated_lines is not None:
            shown["truncated_lines"] = self.truncated_lines
        if self.before is not None:
            shown["context_before"] = "\n".join(self.before)
            shown["context_after"] = "\n".join(self.after or [])
        return hits.Hit.of(self.hit).model_copy(update=shown)


def views(
    hits: list[Hit],
    root: Path | None,
    max_lines: int | None = None,
    context: int | None = None,
) -> list[View]:
    """The hits with their snippets capped at ``max_lines`` and ``context`` lines around them
    (read from the files under ``root``)."""
    files = FileLines(root) if root is not None and context else None
    out = []
    for hit in hits:
        snippet, cut = cap(hit, max_lines)
        before: list[str] | None = None
        after: list[str] | None = None
        if context is not None:
            before, after = files.around(hit, context) if files is not None else ([], [])
        out.append(
            View(hit, snippet, cut if max_lines is not None else None, before, after),
        )
    return out
