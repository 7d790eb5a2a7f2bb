"""Pure conversions between the daemon's search records and LSP shapes.

The daemon reports lines (1-based, inclusive) and paths relative to a repository root; an
editor wants URIs and ranges whose columns count code units of the negotiated position
encoding (UTF-16 unless the client asked for another). Nothing here talks to the daemon or
the client: every function takes text (or reads one file) and returns plain data.

Lines are split the way the chunker splits them (on ``"\\n"``, a trailing ``"\\r"`` dropped),
so line numbers here always match the daemon's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"

Position = dict[str, int]
Range = dict[str, Position]

_SYMBOL_KINDS: dict[str, types.SymbolKind] = {
    "function": types.SymbolKind.Function,
    "method": types.SymbolKind.Method,
    "class": types.SymbolKind.Class,
    "module": types.SymbolKind.Module,
    "section": types.SymbolKind.String,  # a Markdown heading (as VS Code's own outline has it)
    "window": types.SymbolKind.File,  # a run of lines with no symbol of its own
    "image": types.SymbolKind.File,
    "pdf-page": types.SymbolKind.File,
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
    try:
        data = path.read_bytes()
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


def result(
    hit: Mapping[str, Any], root: Path, lines: Sequence[str] | None, encoding: str = UTF16
) -> dict[str, Any]:
    """One ``codesearch/search`` result from a daemon record of the repository at ``root``.

    ``range`` is the whole definition; ``selectionRange`` the lines that matched best (the
    same as ``range`` unless a part of a long definition matched). A picture (a record with
    ``page``) opens at the start of its file, and keeps its page, size and the documents that
    reference it."""
    start_line, end_line = int(hit["start_line"]), int(hit["end_line"])
    match_start = int(hit.get("match_start") or start_line)
    match_end = int(hit.get("match_end") or end_line)
    picture = {key: hit[key] for key in ("page", "width", "height", "referenced_by") if key in hit}
    where = ZERO_RANGE if picture else line_range(lines, start_line, end_line, encoding)
    if picture or (match_start, match_end) == (start_line, end_line):
        selection = where
    else:
        selection = line_range(lines, match_start, match_end, encoding)
    return {
        **picture,
        "uri": path_uri(root / str(hit["path"])),
        "range": where,
        # the lines that matched best (a part of a long definition): what an editor selects
        "selectionRange": selection,
        "match_start": match_start,
        "match_end": match_end,
        "confident": bool(hit.get("confident", True)),
        "path": hit["path"],
        "root": str(root),
        "name": hit.get("name", ""),
        "kind": hit.get("kind", ""),
        "language": hit.get("language", ""),
        "score": hit.get("score", 0.0),
        "snippet": hit.get("snippet", ""),
        "start_line": start_line,
        "end_line": end_line,
    }


def best_first(groups: Iterable[Sequence[dict[str, Any]]], k: int) -> list[dict[str, Any]]:
    """The ``k`` best results of several repositories' lists (each already best first); a
    chunk found through two nested workspace folders is kept once."""
    merged = [item for group in groups for item in group]
    merged.sort(key=lambda item: -float(item.get("score") or 0.0))  # stable: ties keep order
    seen: set[tuple[Any, Any, Any, Any]] = set()
    unique = []
    for item in merged:
        key = (item.get("uri"), item.get("start_line"), item.get("end_line"), item.get("page"))
        if key[0] is None or key not in seen:
            seen.add(key)
            unique.append(item)
    return unique[:k]


def symbol_kind(kind: str) -> types.SymbolKind:
    """The LSP symbol kind of a chunk kind."""
    return _SYMBOL_KINDS.get(kind, types.SymbolKind.Object)


def symbol(item: Mapping[str, Any]) -> types.SymbolInformation:
    """A ``workspace/symbol`` entry for a search result.

    ``name`` stays the symbol's own name (clients such as VS Code filter the list again by a
    fuzzy match of the typed text on it); a chunk without a name is named by its place.
    """
    name = item.get("name") or f"{item['path']}:{item['start_line']}"
    rng = item["range"]
    return types.SymbolInformation(
        name=str(name),
        kind=symbol_kind(str(item.get("kind", ""))),
        location=types.Location(
            uri=item["uri"],
            range=types.Range(
                start=types.Position(**rng["start"]), end=types.Position(**rng["end"])
            ),
        ),
        container_name=str(item["path"]),
    )
