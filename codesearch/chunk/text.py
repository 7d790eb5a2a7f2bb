"""Prose and other text: Markdown / reStructuredText sections, line windows for the rest."""

from __future__ import annotations

import re
from collections.abc import Sequence
from posixpath import basename

from codesearch.chunk import pieces as P
from codesearch.chunk.languages import text_guess
from codesearch.types import Chunk, Kind

_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_RST_ADORN = re.compile(r"([=\-~^\"'`#*+.:_])\1+[ \t]*")
SECTION_MAX_LINES = 60


def _markdown_headings(lines: Sequence[str]) -> list[tuple[int, int, str]]:
    """(row where the section starts, level, title) for every heading outside code fences."""
    out: list[tuple[int, int, str]] = []
    fence = ""
    for row, line in enumerate(lines):
        m = _FENCE.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = ""
            continue
        if m:
            fence = m.group(1)
            continue
        atx = _ATX.fullmatch(line)
        if atx:
            out.append((row, len(atx.group(1)), (atx.group(2) or "").strip()))
            continue
        if row + 1 < len(lines) and line.strip() and not line.startswith((" " * 4, "\t")):
            under = _SETEXT.fullmatch(lines[row + 1])
            prev_heading = out and out[-1][0] == row - 1
            if under and not prev_heading and not _looks_like_block(line):
                out.append((row, 1 if under.group(1)[0] == "=" else 2, line.strip()))
    return out


def _looks_like_block(line: str) -> bool:
    s = line.lstrip()
    return s.startswith(("- ", "* ", "+ ", ">", "|", "<")) or bool(_SETEXT.fullmatch(line))


def _rst_headings(lines: Sequence[str]) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    styles: list[tuple[str, bool]] = []
    row = 0
    n = len(lines)
    while row < n - 1:
        title = lines[row]
        under = _RST_ADORN.fullmatch(lines[row + 1])
        text = title.strip()
        if (
            under
            and text
            and not title[0].isspace()
            and not _RST_ADORN.fullmatch(title)
            and len(lines[row + 1].rstrip()) >= len(title.rstrip())
        ):
            char = under.group(1)
            over = (
                row > 0
                and lines[row - 1].strip()
                and lines[row - 1].rstrip() == lines[row + 1].rstrip()
            )
            start = row - 1 if over else row
            if out and start <= out[-1][0] + 1:
                row += 1
                continue
            style = (char, bool(over))
            if style not in styles:
                styles.append(style)
            out.append((start, styles.index(style) + 1, text))
            row += 2
            continue
        row += 1
    return out


def chunk_sections(
    path: str,
    language: str,
    lines: Sequence[str],
    max_tokens: int,
    count: P.TokenCounter,
) -> list[Chunk]:
    heads = _markdown_headings(lines) if language == "markdown" else _rst_headings(lines)
    starts = [(0, 0, basename(path))] if not heads or heads[0][0] > 0 else []
    starts += heads
    out: list[Chunk] = []
    trail: list[tuple[int, str]] = []
    for i, (row, level, title) in enumerate(starts):
        end = starts[i + 1][0] - 1 if i + 1 < len(starts) else len(lines) - 1
        if level == 0:
            name = title
        else:
            trail = [t for t in trail if t[0] < level] + [(level, title or "(untitled)")]
            name = " > ".join(t for _, t in trail)
        rng = P.trim(row, end, lines)
        if rng is None:
            continue
        header = f"{language} section {name}"
        out.extend(_section_chunks(path, language, name, header, rng, lines, max_tokens, count))
    return out


def _section_chunks(
    path: str,
    language: str,
    name: str,
    header: str,
    rng: tuple[int, int],
    lines: Sequence[str],
    max_tokens: int,
    count: P.TokenCounter,
) -> list[Chunk]:
    start, end = rng
    size = end - start + 1
    ranges = [rng]
    if size > SECTION_MAX_LINES:
        ranges = P.blocks(start, end, lines, SECTION_MAX_LINES)
    elif size > 1:
        tokens = count(header + "\n" + "\n".join(lines[start : end + 1]))
        if tokens > max_tokens:
            per = max(1, size * max_tokens // tokens)
            ranges = P.blocks(start, end, lines, per)
    return P.make_parts(path, language, Kind.SECTION, name, ranges, lines, header)


def chunk_text(path: str, language: str, lines: Sequence[str]) -> list[Chunk]:
    if language == "text":
        header = f"text window {text_guess(path)}".rstrip()
    else:  # a code or prose file whose chunker failed
        header = f"{language} window"
    return [
        P.make_chunk(path, language, Kind.WINDOW, "", s, e, lines, header)
        for s, e in P.windows(0, len(lines) - 1, lines)
    ]
