"""The document readers: image references in Markdown, reStructuredText and HTML.

Each reader blanks out what cannot hold a real reference (code blocks and spans, comments,
scripts), finds the headings, and yields the references as written; resolution against the
repository and the context around each reference are in :mod:`codesearch.media.refs` and
:mod:`codesearch.media.markup`.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator

from codesearch.media.markup import (
    Doc,
    Raw,
    Sections,
    blank,
    collapse,
    html_tag_refs,
    nearby,
    strip_markup,
)

__all__ = ["HtmlDoc", "MarkdownDoc", "RstDoc"]

_SPACE = re.compile(r"\s+")

# ---------------------------------------------------------------------------- Markdown

_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*")
_HTML_HEADING_LINE = re.compile(r"\s*<h([1-6])\b[^>]*>(.*?)</h\1\s*>\s*", re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)[^\n]*?(?<!`)\1(?!`)")
_LINK_TEXT = r"(?:[^\[\]\\]|\\.|\[(?:[^\[\]\\]|\\.)*\])*"
_DEST = r"<[^<>\n]*>|(?:[^\s()\\]|\\.|\((?:[^\s()\\]|\\.)*\))+"
_TITLE = r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\((?:[^()\\]|\\.)*\)"
_INLINE = re.compile(
    rf"(?P<bang>!?)\[(?P<text>{_LINK_TEXT})\]"
    rf"\(\s*(?P<dest>{_DEST})?(?:\s+(?P<title>{_TITLE}))?\s*\)"
)
_REFERENCE = re.compile(rf"(?P<bang>!?)\[(?P<text>{_LINK_TEXT})\](?:\[(?P<label>[^\[\]]*)\])?")
_DEFINITION = re.compile(
    rf"^ {{0,3}}\[(?P<label>[^\[\]]+)\]:[ \t]*\n?[ \t]*(?P<dest>{_DEST})"
    rf"(?:[ \t]+(?P<title>{_TITLE}))?[ \t]*$",
    re.MULTILINE,
)
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def _unescape_md(text: str) -> str:
    return _ESCAPE.sub(r"\1", text)


def _label(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


class MarkdownDoc(Doc):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        fence = ""
        for row, line in enumerate(self.lines):
            m = _FENCE.match(line)
            if fence:
                self.skip_rows.add(row)
                if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                    fence = ""
            elif m:
                fence = m.group(1)
                self.skip_rows.add(row)
        code = [
            (self.line_starts[r], self.line_starts[r] + len(self.lines[r])) for r in self.skip_rows
        ]
        text = blank(text, iter(code))
        text = blank(text, (m.span() for m in _COMMENT.finditer(text)))
        self.lines = text.split("\n")  # comments blanked: no headings or context from them
        for row, line in enumerate(self.lines):
            if row not in self.skip_rows:
                self._heading(row, line)
        self.clean = blank(text, (m.span() for m in _CODE_SPAN.finditer(text)))
        self.definitions: dict[str, tuple[str, str]] = {}  # label -> (destination, title)

    def _heading(self, row: int, line: str) -> None:
        atx = _ATX.fullmatch(line)
        html_heading = _HTML_HEADING_LINE.fullmatch(line)
        if atx:
            self.headings.append((row, row, len(atx.group(1)), (atx.group(2) or "").strip()))
        elif html_heading:
            title = strip_markup(html_heading.group(2))
            self.headings.append((row, row, int(html_heading.group(1)), title))
        elif (
            row + 1 < len(self.lines)
            and line.strip()
            and not line.startswith((" " * 4, "\t"))
            and not line.lstrip().startswith(("- ", "* ", "+ ", ">", "|", "<"))
            and not _SETEXT.fullmatch(line)
            and not (self.headings and self.headings[-1][1] >= row - 1)
        ):
            under = _SETEXT.fullmatch(self.lines[row + 1])
            if under:
                level = 1 if under.group(1)[0] == "=" else 2
                self.headings.append((row, row + 1, level, line.strip()))

    def raw_refs(self) -> Iterator[Raw]:
        clean = self.clean
        for m in _DEFINITION.finditer(clean):
            label = _label(m.group("label"))
            self.definitions.setdefault(label, (m.group("dest"), _title(m.group("title"))))
        taken: list[tuple[int, int]] = []
        for m in _INLINE.finditer(clean):
            taken.append(m.span())
            yield from self._nested(m)
            if m.group("dest"):
                alt = (m.group("text"), _title(m.group("title")))
                yield self._raw(m.group("dest"), alt, m.start())
        starts = [s for s, _ in taken]
        for m in _REFERENCE.finditer(clean):
            i = bisect.bisect_right(starts, m.start()) - 1
            if i >= 0 and m.start() < taken[i][1]:  # inside an inline image or link
                continue
            yield from self._reference(m)
        yield from html_tag_refs(self, clean)

    def _nested(self, m: re.Match[str]) -> Iterator[Raw]:
        """The images inside a link's text: ``[![alt](a.png)](b)``, ``[![alt][a]][b]``."""
        if m.group("bang") or "![" not in m.group("text"):
            return
        start, end = m.span("text")
        for inner in _INLINE.finditer(self.clean, start, end):
            yield from self._nested(inner)
            if inner.group("dest"):
                alt = (inner.group("text"), _title(inner.group("title")))
                yield self._raw(inner.group("dest"), alt, inner.start())
        for inner in _REFERENCE.finditer(self.clean, start, end):
            yield from self._reference(inner)

    def _reference(self, m: re.Match[str]) -> Iterator[Raw]:
        """A reference-style image or link whose label has a definition."""
        if self.clean.startswith((":", "("), m.end()):
            return  # a definition, or an inline link this parser could not read
        yield from self._nested(m)
        found = self.definitions.get(_label(m.group("label") or m.group("text")))
        if found:
            dest, title = found
            yield self._raw(dest, (m.group("text"), title), m.start())

    def _raw(self, dest: str, alt: tuple[str, ...], offset: int) -> Raw:
        return Raw(_unescape_md(dest), alt, self.row_of(offset), offset)


def _title(title: str | None) -> str:
    return _unescape_md(title[1:-1]) if title else ""


# ---------------------------------------------------------------------------- reStructuredText

_RST_ADORN = re.compile(r"([=\-~^\"'`#*+.:_])\1+[ \t]*")
_RST_DIRECTIVE = re.compile(
    r"(?P<indent>[ \t]*)\.\.[ \t]+(?:\|(?P<sub>[^|]+)\|[ \t]+)?(?P<name>[\w:-]+)::[ \t]*(?P<arg>.*)"
)
_RST_OPTION = re.compile(r"[ \t]+:(?P<name>[\w-]+):(?:[ \t]+(?P<value>.*))?")
_RST_LINK = re.compile(r"(?<!`)`(?P<text>[^`<]*?)\s*<(?P<target>[^`<>]+)>`_{1,2}")
_RST_DOWNLOAD = re.compile(
    r":download:`(?:(?P<text>[^`<]*?)\s*<(?P<target>[^`<>]+)>|(?P<bare>[^`]+))`"
)
_CODE_DIRECTIVES = {"code", "code-block", "sourcecode", "literalinclude", "highlight", "raw"}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


class RstDoc(Doc):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.directives: list[tuple[int, int, re.Match[str]]] = []  # (row, last body row, match)
        n = len(self.lines)
        row = 0
        while row < n:
            line = self.lines[row]
            m = _RST_DIRECTIVE.fullmatch(line)
            if m:
                last = self._body_end(row, _indent(line))
                self.directives.append((row, last, m))
                if m.group("name").lower() in _CODE_DIRECTIVES:
                    self.skip_rows.update(range(row + 1, last + 1))
                row += 1
                continue
            if line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
                last = self._body_end(row, _indent(line))  # a literal block follows
                self.skip_rows.update(range(row + 1, last + 1))
                row = last + 1
                continue
            row += 1
        self._find_headings()

    def _body_end(self, row: int, indent: int) -> int:
        """The last row of the indented block that belongs to the line at ``row``."""
        last = row
        for r in range(row + 1, len(self.lines)):
            line = self.lines[r]
            if not line.strip():
                continue
            if _indent(line) <= indent:
                break
            last = r
        return last

    def _find_headings(self) -> None:
        styles: list[tuple[str, bool]] = []
        lines = self.lines
        row = 0
        while row < len(lines) - 1:
            title, under = lines[row], _RST_ADORN.fullmatch(lines[row + 1])
            if (
                under
                and row not in self.skip_rows
                and title.strip()
                and not title[0].isspace()
                and not _RST_ADORN.fullmatch(title)
                and len(lines[row + 1].rstrip()) >= len(title.rstrip())
            ):
                over = (
                    row > 0
                    and lines[row - 1].strip() == lines[row + 1].strip()
                    and not (self.headings and self.headings[-1][1] >= row - 1)
                )
                style = (under.group(1), bool(over))
                if style not in styles:
                    styles.append(style)
                first = row - 1 if over else row
                self.headings.append((first, row + 1, styles.index(style) + 1, title.strip()))
                row += 2
                continue
            row += 1

    def raw_refs(self) -> Iterator[Raw]:
        substitutions: dict[str, tuple[str, tuple[str, ...], int]] = {}
        body_rows: set[int] = set()
        for row, last, m in self.directives:
            name = m.group("name").lower()
            if name not in ("image", "figure") or row in self.skip_rows:
                continue
            body_rows.update(range(row, last + 1))
            target, alt = self._image_directive(row, last, m)
            if not target:
                continue
            if m.group("sub"):
                substitutions[m.group("sub").strip()] = (target, alt, row)
            else:
                yield Raw(target, alt, row, self.line_starts[row])
        used: set[str] = set()
        if substitutions:
            uses = re.compile(r"\|(" + "|".join(map(re.escape, substitutions)) + r")\|")
            for row, line in enumerate(self.lines):
                if row in body_rows or row in self.skip_rows:
                    continue
                for m in uses.finditer(line):
                    target, alt, _ = substitutions[m.group(1)]
                    used.add(m.group(1))
                    yield Raw(target, (*alt, m.group(1)), row, self.line_starts[row] + m.start())
        for name, (target, alt, row) in substitutions.items():
            if name not in used:
                yield Raw(target, (*alt, name), row, self.line_starts[row])
        for row, line in enumerate(self.lines):
            if row in self.skip_rows:
                continue
            for m in _RST_LINK.finditer(line):
                yield Raw(m.group("target"), (m.group("text"),), row, self.line_starts[row])
            for m in _RST_DOWNLOAD.finditer(line):
                target = m.group("target") or m.group("bare")
                yield Raw(target, (m.group("text") or "",), row, self.line_starts[row])

    def _image_directive(
        self, row: int, last: int, m: re.Match[str]
    ) -> tuple[str, tuple[str, ...]]:
        """(target, (alt, caption)) of an image or figure directive spanning ``row..last``."""
        arg = [m.group("arg").strip()]
        options: dict[str, str] = {}
        r = row + 1
        current = ""
        while r <= last and self.lines[r].strip():  # the argument's continuation, the options
            line = self.lines[r]
            opt = _RST_OPTION.fullmatch(line)
            if opt:
                current = opt.group("name").lower()
                options[current] = (opt.group("value") or "").strip()
            elif current:
                options[current] += " " + line.strip()
            else:
                arg.append(line.strip())
            r += 1
        caption: list[str] = []
        if m.group("name").lower() == "figure":
            while r <= last and not self.lines[r].strip():
                r += 1
            while r <= last and self.lines[r].strip():
                caption.append(self.lines[r].strip())
                r += 1
        target = "".join(arg)  # a long path may be split over lines
        return target, (options.get("alt", ""), " ".join(caption))


# ---------------------------------------------------------------------------- HTML documents

_HTML_HEADING_OPEN = re.compile(r"<h([1-6])\b[^>]{0,1000}>", re.IGNORECASE)
_HEADING_CHARS = 2000  # a heading's text at most this long
_HIDDEN = re.compile(
    r"<!--.*?(?:-->|\Z)|<(script|style|template)\b.*?(?:</\1\s*>|\Z)", re.IGNORECASE | re.DOTALL
)
_BLOCK_TAG = re.compile(
    r"</?(?:p|div|li|ul|ol|dl|dt|dd|figure|figcaption|table|tr|td|th|section|article|aside|"
    r"header|footer|nav|main|blockquote|pre|br|hr|h[1-6])\b[^>]*>",
    re.IGNORECASE,
)


class HtmlDoc(Doc):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.clean = blank(text, (m.span() for m in _HIDDEN.finditer(text)))
        self.html_sections = Sections(_html_headings(self.clean), len(self.clean))
        self._piece_cache: dict[tuple[int, int], tuple[list[int], list[str]]] = {}

    def raw_refs(self) -> Iterator[Raw]:
        yield from html_tag_refs(self, self.clean)

    def context(self, raw: Raw) -> tuple[str, str]:
        section, start, end = self.html_sections.at(raw.offset)
        starts, texts = self._pieces(start, end)
        here = max(0, bisect.bisect_right(starts, raw.offset) - 1)
        return section, nearby(texts, here)

    def _pieces(self, start: int, end: int) -> tuple[list[int], list[str]]:
        """The text between block-level tags in start..end: where each piece starts, its text."""
        cached = self._piece_cache.get((start, end))
        if cached is not None:
            return cached
        starts: list[int] = []
        texts: list[str] = []
        pos = start
        for m in [*_BLOCK_TAG.finditer(self.clean, start, end), None]:
            stop = m.start() if m else end
            text = collapse(strip_markup(self.clean[pos:stop]))
            if text or not starts:
                starts.append(pos)
                texts.append(text)
            pos = m.end() if m else end
        self._piece_cache[(start, end)] = (starts, texts)
        return starts, texts


def _html_headings(text: str) -> list[tuple[int, int, int, str]]:
    """(start, end, level, title) of each ``<hN>...</hN>`` element."""
    lower = text.lower()
    closes: dict[str, int] = {}  # "</h2" -> the next one after the last lookup (or -1)
    out: list[tuple[int, int, int, str]] = []
    for m in _HTML_HEADING_OPEN.finditer(text):
        close_tag = f"</h{m.group(1)}"
        close = closes.get(close_tag, -2)
        if -1 < close < m.end() or close == -2:
            close = closes[close_tag] = lower.find(close_tag, m.end())
        if close < 0 or close - m.end() > _HEADING_CHARS:
            continue
        end = text.find(">", close)
        end = len(text) if end < 0 else end + 1
        out.append((m.start(), end, int(m.group(1)), strip_markup(text[m.end() : close])))
    return out
