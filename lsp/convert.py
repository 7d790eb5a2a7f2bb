"""Pure conversions between the daemon's hits and the language server's answers
(:mod:`codesearch.wire.lsp`).

The daemon reports lines (1-based, inclusive) and paths relative to a repository root; an
editor wants URIs and ranges whose columns count code units of the negotiated position
encoding (UTF-16 unless the client asked for another). Nothing here talks to the daemon or
the client: every function takes text (or reads one file) and returns data.

Lines are split the way the chunker splits them (on ``"\\n"``, a trailing ``"\\r"`` dropped),
so line numbers here always match the daemon's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path

from codesearch.safe_read import read_regular
from codesearch.types import Kind
from codesearch.wire.hits import Hit, Source
from codesearch.wire.lsp import Result, SourceChunk

MAX_READ_BYTES = 16_000_000  # ranges are computed from files this size at most

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"

Position = dict[str, int]
Range = dict[str, Position]

_SYMBOL_KINDS: dict[str, types.SymbolKind] = {
    Kind.FUNCTION: types.SymbolKind.Function,
    Kind.METHOD: types.SymbolKind.Method,
    Kind.CLASS: types.SymbolKind.Class,
    Kind.MODULE: types.SymbolKind.Module,
    Kind.SECTION: types.SymbolKind.String,  # a Markdown heading (as VS Code's own outline has it)
    Kind.WINDOW: types.SymbolKind.File,  # a run of lines with no symbol of its own
    Kind.IMAGE: types.SymbolKind.File,
    Kind.PDF_PAGE: types.SymbolKind.File,
}


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` as the chunker counts them (``"\\n"``, a trailing ``"\\r"`` cut)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def units(text: str, encoding: str = UTF16) -> int:
    """How many code units ``text`` takes in ``encoding`` (an LSP position encoding)."""
    if encoding == UTF8:
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == UTF32:
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def first_non_blank(line: str) -> int:
    """The code-point index of the first non-blank character (0 for a blank line)."""
    stripped = line.lstrip()
    return len(line) - len(stripped) if stripped else 0


def line_range(
    lines: Sequence[str] | None, start_line: int, end_line: int, encoding: str = UTF16
) -> Range:
    """The LSP range of lines ``start_line``..``end_line`` (1-based, inclusive).

    It starts at the first non-blank character of the start line and ends at the end of the
    end line. A line the text does not have (a missing file, a file that shrank since it was
    indexed) falls back to whole lines: character 0 of the start line, and the start of the
    line after the end line.
    """
    start = max(start_line, 1) - 1
    end = max(end_line, start_line, 1) - 1
    if lines is not None and start < len(lines):
        line = lines[start]
        start_pos = {"line": start, "character": units(line[: first_non_blank(line)], encoding)}
    else:
        start_pos = {"line": start, "character": 0}
    if lines is not None and end < len(lines):
        end_pos = {"line": end, "character": units(lines[end], encoding)}
    else:
        end_pos = {"line": end + 1, "character": 0}
    return {"start": start_pos, "end": end_pos}


def read_lines(path: Path) -> list[str] | None:
    """The lines of the file at ``path`` (UTF-8, undecodable bytes replaced), None if unreadable."""
    try:  # a regular file only, capped: a FIFO or a device is never waited on
        data = read_regular(path, MAX_READ_BYTES)
    except OSError:
        return None
    return split_lines(data.decode("utf-8", errors="replace"))


def path_uri(path: Path) -> str:
    """The ``file://`` URI of an absolute path."""
    return str(from_fs_path(str(path)))


def uri_path(uri: str) -> Path | None:
    """The absolute path of a ``file://`` URI; None for other schemes or relative paths."""
    if not isinstance(uri, str):
        return None
    raw = to_fs_path(uri)
    if not raw:
        return None
    path = Path(raw)
    return path if path.is_absolute() else None


ZERO_RANGE = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}


def result(hit: Hit, root: Path, lines: Sequence[str] | None, encoding: str = UTF16) -> Result:
    """One ``codesearch/search`` result from a daemon hit of the repository at ``root``.

    ``range`` is the whole definition; ``selectionRange`` the lines that matched best (the
    same as ``range`` unless a part of a long definition matched). A picture (a hit with a
    ``page``) opens at the start of its file, and keeps its page, size and the documents that
    reference it."""
    picture = hit.page is not None
    where = ZERO_RANGE if picture else line_range(lines, hit.start_line, hit.end_line, encoding)
    if picture or (hit.match_start, hit.match_end) == (hit.start_line, hit.end_line):
        selection = where
    else:
        selection = line_range(lines, hit.match_start, hit.match_end, encoding)
    located = {"uri": path_uri(root / hit.path), "root": str(root)}
    return Result(**dict(hit), **located, range=where, selectionRange=selection)


def source(
    chunk: Source, root: Path, lines: Sequence[str] | None, encoding: str = UTF16
) -> SourceChunk:
    """The ``source`` of a ``codesearch/similar`` answer: the chunk at the position."""
    where = line_range(lines, chunk.start_line, chunk.end_line, encoding)
    located = {"uri": path_uri(root / chunk.path), "root": str(root)}
    return SourceChunk(**dict(chunk), **located, range=where)


def place(item: Result) -> tuple[str, int, int, int | None]:
    """What makes two results the same chunk (one found through two nested folders)."""
    return item.uri, item.start_line, item.end_line, item.page


def symbol_kind(kind: str) -> types.SymbolKind:
    """The LSP symbol kind of a chunk kind."""
    return _SYMBOL_KINDS.get(kind, types.SymbolKind.Object)


def symbol(item: Result) -> types.SymbolInformation:
    """A ``workspace/symbol`` entry for a search result.

    ``name`` stays the symbol's own name (clients such as VS Code filter the list again by a
    fuzzy match of the typed text on it); a chunk without a name is named by its place.
    """
    name = item.name or f"{item.path}:{item.start_line}"
    rng = item.range
    return types.SymbolInformation(
        name=name,
        kind=symbol_kind(item.kind),
        location=types.Location(
            uri=item.uri,
            range=types.Range(
                start=types.Position(line=rng.start.line, character=rng.start.character),
                end=types.Position(line=rng.end.line, character=rng.end.character),
            ),
        ),
        container_name=item.path,
    )


class Files:
    """The lines of the files hits are in, for their ranges: an open document's text (the
    editor's, maybe unsaved), else the file on disk; each read once. Used in a worker thread."""

    def __init__(self, open_docs: Mapping[str, str], encoding: str) -> None:
        self.encoding = encoding
        self._texts: dict[str, str] = {}
        for uri, text in open_docs.items():
            path = uri_path(uri)
            if path is not None:
                self._texts[os.path.realpath(path)] = text
        self._cache: dict[str, list[str] | None] = {}

    def lines(self, full: Path) -> list[str] | None:
        key = os.path.realpath(full)
        if key not in self._cache:
            text = self._texts.get(key)
            self._cache[key] = split_lines(text) if text is not None else read_lines(full)
        return self._cache[key]

    def results(self, hits: Sequence[Hit], root: Path) -> list[Result]:
        return [
            # a picture has no lines to read
            result(
                hit,
                root,
                None if hit.page is not None else self.lines(root / hit.path),
                self.encoding,
            )
            for hit in hits
        ]

    def source(self, chunk: Source, root: Path) -> SourceChunk:
        return source(chunk, root, self.lines(root / chunk.path), self.encoding)
