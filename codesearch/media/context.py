"""The text a text-only embedder (and BM25) sees for a picture.

MiniLM cannot look at pixels, so a picture is described by its path, the words of its file
and folder names, what it says itself where that needs no OCR (an SVG's labels, a PDF page's
text layer: :func:`codesearch.media.load.visual_text`), and the alt text and section of every
document that references it (:func:`codesearch.media.refs.find_refs`). No heavy import here.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

from codesearch.media.formats import PDF_PAGE, Visual
from codesearch.media.refs import ImageRef

__all__ = ["CONTEXT_MAX_CHARS", "MAX_REFS", "context_text", "name_words"]

CONTEXT_MAX_CHARS = 2000
MAX_REFS = 8
OWN_TEXT_CHARS = 800

_WORD = re.compile(r"[^\W_]+")
# lowerUpper, digit|Letter, Letter|digit, and the last capital of an acronym before a word
_CAMEL = re.compile(
    r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])|(?<=[A-Z])(?=[A-Z][a-z])"
)
_SPACE = re.compile(r"\s+")


def name_words(path: str) -> str:
    """The words of a file name, lower-cased: ``docs/img/loginScreen_v2.png`` -> "login
    screen v 2" (extension dropped; ``-``, ``_``, ``.``, spaces and camelCase split)."""
    name = posixpath.basename(path.replace("\\", "/").rstrip("/"))
    stem, ext = posixpath.splitext(name)
    if not stem:  # ".png": a name that is all extension
        stem = ext
    words: list[str] = []
    for token in _WORD.findall(stem):
        words.extend(_CAMEL.sub(" ", token).split())
    return " ".join(w.lower() for w in words)


def context_text(visual: Visual, refs: Sequence[ImageRef], own_text: str = "") -> str:
    """The text embedded (and indexed for BM25) for ``visual`` under a text-only model.

    Lines: ``image PATH`` (or ``PDF page N of PATH``); the file name's words; ``folders: ...``;
    ``text: ...`` (``own_text``, what the picture itself says, at most ~800 chars); then, for
    at most ``MAX_REFS`` references (sorted by document and line, duplicates dropped),
    ``alt: ...`` and ``in DOC (SECTION): PARAGRAPH``. ``refs`` are the references that point
    at this visual (the caller matches ``ImageRef.target`` to ``Visual.path``). Deterministic;
    at most ``CONTEXT_MAX_CHARS`` characters.
    """
    if visual.kind == PDF_PAGE:
        lines = [f"PDF page {visual.page} of {visual.path}"]
    else:
        lines = [f"image {visual.path}"]
    words = name_words(visual.path)
    if words:
        lines.append(words)
    folders = [name_words(part) for part in posixpath.dirname(visual.path).split("/")]
    folders = [f for f in folders if f]
    if folders:
        lines.append("folders: " + " / ".join(folders))
    own = _SPACE.sub(" ", own_text).strip()
    if own:
        lines.append("text: " + _cut(own, OWN_TEXT_CHARS))
    seen: set[str] = set(lines)
    for ref in _unique(refs)[:MAX_REFS]:
        for line in _ref_lines(ref):
            if line not in seen:
                seen.add(line)
                lines.append(line)
    return _cut("\n".join(lines), CONTEXT_MAX_CHARS)


def _unique(refs: Sequence[ImageRef]) -> list[ImageRef]:
    """Sorted by (document, line, ...); one per (document, alt, context)."""
    out: list[ImageRef] = []
    seen: set[tuple[str, str, str]] = set()
    for ref in sorted(refs, key=lambda r: (r.doc_path, r.line, r.target, r.alt, r.context)):
        key = (ref.doc_path, ref.alt, ref.context)
        if key not in seen:
            seen.add(key)
            out.append(ref)
    return out


def _ref_lines(ref: ImageRef) -> list[str]:
    lines = [f"alt: {ref.alt}"] if ref.alt else []
    paragraph = ref.context
    if ref.section and paragraph.startswith(ref.section):
        paragraph = paragraph[len(ref.section) :].lstrip(": ")
    where = f"in {ref.doc_path} ({ref.section})" if ref.section else f"in {ref.doc_path}"
    lines.append(f"{where}: {paragraph}" if paragraph else where)
    return lines


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    return (cut[:space] if space > limit // 2 else cut).rstrip() + "…"
