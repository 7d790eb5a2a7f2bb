"""The media layer: pictures in a repository (images, SVG, PDF pages) for the vision path.

- :mod:`~codesearch.media.formats`: which files are visual; :class:`Visual`, :class:`MediaLimits`.
- :mod:`~codesearch.media.load`: :func:`inspect` a file (cheap checks, Skips for bad input) and
  :func:`render` it to an RGB ``PIL.Image`` for a pixel embedder; :func:`visual_text`.
  The only module that imports Pillow, pypdfium2 and resvg: it is loaded on first use of
  those names, so ``import codesearch.media`` stays light.
- :mod:`~codesearch.media.refs`: :func:`find_refs`, references to pictures in Markdown,
  reStructuredText and HTML documents (:class:`ImageRef`); the readers themselves are in
  :mod:`~codesearch.media.documents`, their shared parts in :mod:`~codesearch.media.markup`.
- :mod:`~codesearch.media.context`: :func:`context_text`, what a text-only embedder sees.
"""

from __future__ import annotations

from typing import Any

from codesearch.media.context import context_text, name_words
from codesearch.media.formats import VISUAL_EXTENSIONS, MediaLimits, Visual, is_visual
from codesearch.media.refs import ImageRef, find_refs, is_document

__all__ = [
    "VISUAL_EXTENSIONS",
    "ImageRef",
    "MediaLimits",
    "Visual",
    "context_text",
    "find_refs",
    "inspect",
    "is_document",
    "is_visual",
    "name_words",
    "render",
    "visual_text",
]

_HEAVY = ("inspect", "render", "visual_text")


def __getattr__(name: str) -> Any:
    if name in _HEAVY:
        from codesearch.media import load

        return getattr(load, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
