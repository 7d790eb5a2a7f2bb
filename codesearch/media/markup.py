"""The shared machinery of the document readers: markup stripping, sections, paragraphs.

A document is read line by line (Markdown, reStructuredText) or by offset (HTML); every
reader (:mod:`codesearch.media.documents`) subclasses :class:`Doc`, yields :class:`Raw`
references, and gets from it the heading trail and the nearby paragraph text of each.
Everything is regular expressions with bounded spans: rough, never failing, never quadratic.
"""

from __future__ import annotations

import bisect
import html
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CONTEXT_CHARS",
    "Doc",
    "Raw",
    "Sections",
    "blank",
    "cap",
    "collapse",
    "html_tag_refs",
    "nearby",
    "strip_markup",
]

CONTEXT_CHARS = 600  # cap of ImageRef.context
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Raw:
    """A reference as written, before its target is resolved."""

    target: str  # as written (attribute values already HTML-unescaped)
    alt: tuple[str, ...]  # alt, title, caption: raw text, cleaned later
    row: int  # 0-based line
    offset: int  # character offset of the reference


def collapse(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def cap(text: str, limit: int = CONTEXT_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + "…"


def blank(text: str, spans: Iterator[tuple[int, int]]) -> str:
    """``text`` with the given spans replaced by spaces (newlines kept: offsets and lines hold)."""
    chars = list(text)
    for start, end in spans:
        for i in range(start, end):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)


_IMG_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)


def _img_alt(m: re.Match[str]) -> str:
    alt = _IMG_ALT.search(m.group(0))
    return f" {alt.group(1) or alt.group(2) or ''} " if alt else " "


# Every span is bounded, possessive where its end cannot be inside it, and line starts match
# [ \t]*, never \s*: no input makes these quadratic.
_STRIP_RULES: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL), " "),
    # Markdown images and links -> their text; reference definitions -> nothing
    (re.compile(r"!\[([^\]]{0,300}+)\]\([^)]{0,500}+\)"), r" \1 "),
    (re.compile(r"!\[([^\]]{0,300}+)\]\[[^\]]{0,300}+\]"), r" \1 "),
    (re.compile(r"\[([^\]]{0,300}+)\]\([^)]{0,500}+\)"), r"\1"),
    (re.compile(r"\[([^\]]{0,300}+)\]\[[^\]]{0,300}+\]"), r"\1"),
    (re.compile(r"^ {0,3}\[[^\]\n]{1,300}+\]:[ \t]*\S+.*$", re.MULTILINE), " "),
    # HTML: an image's alt text stays, other tags go
    (re.compile(r"<img\b[^>]{0,2000}+>", re.IGNORECASE), _img_alt),
    (re.compile(r"<[A-Za-z/!][^>]{0,2000}+>"), " "),
    # reStructuredText: directives, options, targets, roles, links, substitutions
    (re.compile(r"^[ \t]*\.\.[ \t]+(?:\|[^|\n]*+\|[ \t]+)?[\w:-]+::.*$", re.MULTILINE), " "),
    (re.compile(r"^[ \t]*\.\.[ \t]+_[^:\n]*+:.*$", re.MULTILINE), " "),
    (re.compile(r"^[ \t]*:[\w-]+:(?:[ \t].*)?$", re.MULTILINE), " "),
    (re.compile(r"`([^`<]{0,300}+)<[^`>]{0,500}+>`_{0,2}"), r"\1"),
    (re.compile(r":[\w:-]+:`([^`]{0,500}+)`"), r"\1"),
    (re.compile(r"::(?=\s|$)"), ":"),
    (re.compile(r"\|([^|\s][^|\n]{0,100}+)\|_{0,2}"), r"\1"),
    # line prefixes: headings, quotes, list items; table rules and pipes
    (re.compile(r"^ {0,3}#{1,6}(?=\s)", re.MULTILINE), " "),
    (re.compile(r"^[ \t]*(?:>[ \t]?)+", re.MULTILINE), " "),
    (re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+", re.MULTILINE), " "),
    (re.compile(r"^[ \t|:=+-]+$", re.MULTILINE), " "),
    (re.compile(r"\|"), " "),
    # emphasis and code marks at word edges (snake_case survives)
    (re.compile(r"(?<!\w)[*_`]+|[*_`]+(?!\w)"), ""),
    (re.compile(r"\\([!-/:-@\[-`{-~])"), r"\1"),
]


def strip_markup(text: str) -> str:
    """Markdown, reStructuredText and HTML markup removed, roughly; entities decoded."""
    for pattern, repl in _STRIP_RULES:
        text = pattern.sub(repl, text)
    return html.unescape(text)


class Sections:
    """The heading trail and body of the section at any position (a row or an offset)."""

    def __init__(self, heads: Sequence[tuple[int, int, int, str]], doc_end: int) -> None:
        """``heads``: (start, body start, level, title) of each heading, in document order;
        positions run up to ``doc_end`` (exclusive)."""
        self.starts = [head[0] for head in heads]
        self.trails: list[str] = []
        self.bodies: list[tuple[int, int]] = []
        trail: list[tuple[int, str]] = []
        for i, (_, body, level, title) in enumerate(heads):
            trail = [t for t in trail if t[0] < level] + [(level, collapse(title))]
            self.trails.append(" > ".join(t for _, t in trail if t))
            self.bodies.append((body, heads[i + 1][0] if i + 1 < len(heads) else doc_end))
        self.preamble = (0, heads[0][0] if heads else doc_end)

    def at(self, pos: int) -> tuple[str, int, int]:
        """(heading trail, body start, body end) of the section that holds ``pos``."""
        i = bisect.bisect_right(self.starts, pos) - 1
        if i < 0:
            return "", *self.preamble
        return self.trails[i], *self.bodies[i]


class Doc:
    """A parsed document: its raw references, and the section and paragraph around each.

    Subclasses fill ``headings`` and ``skip_rows`` and yield :class:`Raw` references."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.line_starts = [0]
        for line in self.lines[:-1]:
            self.line_starts.append(self.line_starts[-1] + len(line) + 1)
        # (first row, last row, level, title) of each heading, in order
        self.headings: list[tuple[int, int, int, str]] = []
        self.skip_rows: set[int] = set()  # code: neither references nor context
        self._sections: Sections | None = None
        self._block_cache: dict[tuple[int, int], tuple[list[int], list[int], list[str]]] = {}

    def row_of(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset) - 1

    def raw_refs(self) -> Iterator[Raw]:
        """The document's references, as each markup finds them (every subclass defines it)."""
        raise TypeError(f"{type(self).__name__} defines no raw_refs")

    def context(self, raw: Raw) -> tuple[str, str]:
        """(heading trail, nearby paragraph text) of a reference."""
        if self._sections is None:
            heads = [(first, last + 1, level, title) for first, last, level, title in self.headings]
            self._sections = Sections(heads, len(self.lines))
        section, start, end = self._sections.at(raw.row)
        starts, ends, texts = self._blocks(start, end)
        here = bisect.bisect_right(starts, raw.row) - 1
        if here < 0 or raw.row > ends[here]:  # between blocks (a skipped row): the next one
            here = min(here + 1, len(texts) - 1)
        return section, nearby(texts, here)

    def _blocks(self, start: int, end: int) -> tuple[list[int], list[int], list[str]]:
        """The paragraphs (runs of non-blank, non-code rows) in rows start..end-1: their first
        and last rows, and their text."""
        cached = self._block_cache.get((start, end))
        if cached is not None:
            return cached
        firsts: list[int] = []
        lasts: list[int] = []
        for r in range(start, end + 1):
            inside = r < end and r not in self.skip_rows and self.lines[r].strip() != ""
            if inside and len(firsts) == len(lasts):
                firsts.append(r)
            elif not inside and len(firsts) > len(lasts):
                lasts.append(r - 1)
        texts = [
            collapse(strip_markup("\n".join(self.lines[s : e + 1])))
            for s, e in zip(firsts, lasts, strict=True)
        ]
        self._block_cache[(start, end)] = (firsts, lasts, texts)
        return firsts, lasts, texts


def nearby(texts: Sequence[str], here: int, limit: int = CONTEXT_CHARS) -> str:
    """The text of block ``here``, widened by its neighbours (before, after, ...) to ``limit``."""
    if not texts or here < 0:
        return ""
    chosen = {here}
    total = len(texts[here])
    before, after = here - 1, here + 1
    while total < limit and (before >= 0 or after < len(texts)):
        for i in (before, after):
            if 0 <= i < len(texts) and total < limit:
                chosen.add(i)
                total += len(texts[i]) + 1 if texts[i] else 0
        before, after = before - 1, after + 1
    return cap(" ".join(texts[i] for i in sorted(chosen) if texts[i]), limit)


# ---------------------------------------------------------------------------- HTML tags

_TAG_NAMES = "img|source|object|embed|iframe|a"
_HTML_TAG = re.compile(rf"<(?P<name>{_TAG_NAMES})\b", re.IGNORECASE)
# The rest of a tag up to its ">", quoted values skipped; scanned at most _TAG_CHARS far.
_TAG_REST = re.compile(r"(?:[^>\"']++|\"[^\"]*+\"|'[^']*+')*+>")
_TAG_CHARS = 4096
_ATTR = re.compile(r"([A-Za-z_:][-\w:.]*)\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+)")
_A_END = re.compile(r"</a\s*>", re.IGNORECASE)
_FIGCAPTION = re.compile(r"<figcaption\b[^>]*>(.*?)</figcaption\s*>", re.IGNORECASE | re.DOTALL)
_FIGURE_END = re.compile(r"</figure\s*>", re.IGNORECASE)


def _attrs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in _ATTR.findall(text):
        if value[:1] in "\"'":
            value = value[1:-1]
        out.setdefault(name.lower(), html.unescape(value))
    return out


def _srcset(value: str) -> list[str]:
    """The URLs of a ``srcset`` ("a.png 1x, b.png 2x")."""
    urls = []
    for candidate in value.split(","):
        words = candidate.split()
        if words:
            urls.append(words[0])
    return urls


def html_tag_refs(doc: Doc, text: str) -> Iterator[Raw]:
    """References in HTML tags of ``text`` (a blanked copy of ``doc.text``)."""
    next_gt = -1
    for m in _HTML_TAG.finditer(text):
        if next_gt < m.end():  # the first ">" after the name, found once for many tags
            next_gt = text.find(">", m.end())
            if next_gt < 0:
                return  # no tag can close any more
        if next_gt - m.end() > _TAG_CHARS:
            continue
        tag_end = next_gt + 1
        if "'" in text[m.end() : next_gt] or '"' in text[m.end() : next_gt]:
            rest = _TAG_REST.match(text, m.end(), m.end() + _TAG_CHARS)  # a ">" in quotes
            if rest is None:
                continue
            tag_end = rest.end()
        name = m.group("name").lower()
        attrs = _attrs(text[m.end() : tag_end - 1])
        row = doc.row_of(m.start())
        alt: tuple[str, ...] = (attrs.get("alt", ""), attrs.get("title", ""))
        if name == "img":
            alt = (*alt, _figcaption(text, m.start(), tag_end))
            targets = [attrs.get("src", ""), attrs.get("data-src", "")]
            targets += _srcset(attrs.get("srcset", ""))
        elif name == "source":
            targets = [*_srcset(attrs.get("srcset", "")), attrs.get("src", "")]
        elif name == "object":
            targets = [attrs.get("data", "")]
        elif name in ("embed", "iframe"):
            targets = [attrs.get("src", "")]
        else:  # <a href>: the link text is the alt
            end = _A_END.search(text, tag_end, tag_end + _TAG_CHARS)
            inner = text[tag_end : end.start()] if end else ""
            alt = (inner, attrs.get("title", ""))
            targets = [attrs.get("href", "")]
        for target in targets:
            if target:
                yield Raw(target, alt, row, m.start())


def _figcaption(text: str, start: int, end: int) -> str:
    """The caption of the ``<figure>`` that holds the tag at ``start:end``, if any."""
    opened = text.rfind("<figure", max(0, start - 2000), start)
    if opened < 0 or _FIGURE_END.search(text, opened, start):
        return ""
    closed = _FIGURE_END.search(text, end, end + 4000)
    stop = closed.start() if closed else end
    caption = _FIGCAPTION.search(text, opened, stop)
    return caption.group(1) if caption else ""
