"""Where documents point at pictures: image references in Markdown, reStructuredText and HTML.

A text-only embedder cannot see pixels, so a picture is found by the words around it: the
alt text, title or caption of every reference to it, and the section that holds the
reference. :func:`find_refs` reads one document and returns one :class:`ImageRef` per
reference to a visual file (see :func:`codesearch.media.formats.is_visual`) inside the
repository. Parsing is deliberately rough (regular expressions over the text, code blocks
and comments blanked out first): it must never fail, and a missed reference only costs
recall. No heavy import here.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from urllib.parse import unquote

from codesearch.media.documents import HtmlDoc, MarkdownDoc, RstDoc
from codesearch.media.formats import extension, is_visual
from codesearch.media.markup import Doc, cap, collapse, strip_markup
from codesearch.types import ImageRef  # the store keeps them too

__all__ = ["DOCUMENT_EXTENSIONS", "ImageRef", "find_refs", "is_document", "resolve_target"]

DOCUMENT_EXTENSIONS = frozenset({".md", ".markdown", ".rst", ".html", ".htm"})
_ALT_CHARS = 300
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


def is_document(path: str) -> bool:
    """Whether ``path`` is a document whose image references are read (by extension)."""
    return extension(path) in DOCUMENT_EXTENSIONS


def resolve_target(doc_path: str, raw: str) -> str | None:
    """The repository-relative POSIX path a reference in ``doc_path`` points at, or None.

    None for a URL (any ``scheme:``, or ``//host``), an empty target, one that climbs out of
    the repository, or one without a visual extension. Query and fragment are stripped, then
    the path is percent-decoded (and ``\\`` read as ``/``); ``/x`` is taken from the repository
    root.
    """
    target = raw.strip()
    if target.startswith("<") and target.endswith(">"):
        target = target[1:-1].strip()
    if not target or target.startswith("//") or _SCHEME.match(target):
        return None
    target = unquote(re.split(r"[?#]", target, maxsplit=1)[0]).strip().replace("\\", "/")
    if not target:
        return None
    base = "" if target.startswith("/") else posixpath.dirname(doc_path)
    path = posixpath.normpath(posixpath.join(base, target.lstrip("/")))
    if path in (".", "..") or path.startswith(("../", "/")):
        return None
    return path if is_visual(path) else None


def find_refs(doc_path: str, text: str) -> list[ImageRef]:
    """Every reference in the document ``doc_path`` (content ``text``) to a visual file.

    Markdown: ``![alt](path "title")``, ``![alt][id]`` with ``[id]: path``, links to visual
    files (``[text](file.pdf)``, alt = the link text) and HTML tags. reStructuredText:
    ``.. image::`` / ``.. figure::`` (``:alt:``, the figure's caption), ``|name|``
    substitutions defined with ``image::`` (one reference per use), ```text <file.pdf>`_``
    and ``:download:``. HTML: ``<img src srcset data-src alt title>`` (and a ``<figcaption>``),
    ``<source srcset>``, ``<object data>``, ``<embed src>``, ``<iframe src>``, ``<a href>``.
    Sorted by line; one reference per (line, target).
    """
    ext = extension(doc_path)
    if ext not in DOCUMENT_EXTENSIONS:
        return []
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if ext == ".rst":
        doc: Doc = RstDoc(text)
    elif ext in (".html", ".htm"):
        doc = HtmlDoc(text)
    else:
        doc = MarkdownDoc(text)
    found: dict[tuple[int, str], tuple[int, ImageRef]] = {}  # (row, target) -> (offset, ref)
    for raw in doc.raw_refs():
        target = resolve_target(doc_path, raw.target)
        if target is None:
            continue
        key = (raw.row, target)
        if key in found and (found[key][1].alt or not any(raw.alt)):
            continue
        section, paragraph = doc.context(raw)
        context = f"{section}: {paragraph}" if section and paragraph else section or paragraph
        alt = _join_alt(raw.alt)
        ref = ImageRef(doc_path, target, alt, cap(context), raw.row + 1, section)
        found[key] = (min(raw.offset, found[key][0]) if key in found else raw.offset, ref)
    return [ref for _, ref in sorted(found.values(), key=lambda item: (item[1].line, item[0]))]


def _join_alt(parts: Sequence[str]) -> str:
    """Alt, title and caption, cleaned, without repeats (case-insensitive), " — "-joined."""
    seen: list[str] = []
    for part in parts:
        clean = collapse(strip_markup(part))
        if clean and clean.casefold() not in (s.casefold() for s in seen):
            seen.append(clean)
    return cap(" — ".join(seen), _ALT_CHARS)
