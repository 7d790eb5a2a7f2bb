"""Pictures in the index: a picture file becomes chunks, a document's references describe them.

An image file is one chunk of kind ``image``; a PDF gives one ``pdf-page`` chunk per page (up
to ``Settings.pdf_max_pages``). A picture chunk's text is its *context*: its path and name and
what the documents that reference it say about it (alt text, the section around the
reference). That text is what BM25 and a text-only embedder see, so the CPU default finds a
diagram by the words of the Markdown that shows it. A multimodal backend (jina-v4) embeds the
picture from its pixels instead (task ``IMAGE_TASK``, keyed by the picture's own hash).

Pillow, PDFium and resvg stay in :mod:`codesearch.media`; this module only calls it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from codesearch.config import Settings
from codesearch.embed.base import PICTURE_TASK
from codesearch.media.context import context_text
from codesearch.media.formats import is_visual
from codesearch.media.load import MediaLimits, Visual, inspect, render, visual_text
from codesearch.media.refs import find_refs, is_document
from codesearch.safe_read import open_regular
from codesearch.types import BadInput, Chunk, ImageRef, Media, Skip

IMAGE_LANGUAGE = "image"
PDF_LANGUAGE = "pdf"
DEFAULT_MAX_PIXELS = 602_112  # jina-v4's image processor cap, when the backend names none
READ_BLOCK = 1 << 20

__all__ = [
    "PICTURE_TASK",
    "describe",
    "document_refs",
    "file_digest",
    "is_document",
    "is_visual",
    "limits",
    "pixels",
    "read_picture",
]


def limits(settings: Settings) -> MediaLimits:
    return MediaLimits(
        min_side=settings.image_min_side,
        max_pdf_pages=settings.pdf_max_pages,
        max_file_bytes=settings.max_image_bytes,
    )


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (read in blocks: pictures can be large). A regular file only:
    anything else is :class:`codesearch.safe_read.Refused` (an OSError), never waited on."""
    digest = hashlib.sha256()
    with open_regular(path) as fd:
        while block := os.read(fd, READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def read_picture(root: Path, path: str, settings: Settings) -> tuple[list[Visual], list[Skip]]:
    """The pictures in ``root/path`` (several for a PDF), and what was left out, with why."""
    return inspect(root / path, path, limits(settings))


def _name(visual: Visual) -> str:
    base = visual.path.rsplit("/", 1)[-1]
    return f"{base} page {visual.page}" if visual.kind == "pdf-page" else base


def describe(root: Path, visual: Visual, refs: Sequence[ImageRef]) -> Chunk:
    """The chunk of one picture, its text the context that ``refs`` give it, and the words
    the picture itself holds without OCR (a PDF page's text layer, an SVG's text)."""
    own = visual_text(root / visual.path, visual)
    return Chunk(
        path=visual.path,
        language=PDF_LANGUAGE if visual.kind == "pdf-page" else IMAGE_LANGUAGE,
        kind=visual.kind,
        name=_name(visual),
        start_line=1,
        end_line=1,
        text=context_text(visual, refs, own),
        media=Media(visual.content_hash, visual.page, visual.width, visual.height),
    )


def document_refs(path: str, text: str) -> tuple[ImageRef, ...]:
    """The pictures a document (Markdown, RST, HTML) references; () for any other file."""
    return tuple(find_refs(path, text)) if is_document(path) else ()


def pixels(root: Path, chunk: Chunk, max_pixels: int) -> Any:
    """The picture of ``chunk`` as an RGB image within ``max_pixels`` (BadInput when it can no
    longer be read)."""
    media = chunk.media
    if media is None:
        raise ValueError(f"{chunk.path} is not a picture chunk")
    visual = Visual(chunk.path, chunk.kind, media.page, media.width, media.height, media.hash)
    return render(root / chunk.path, visual, max_pixels)


def pixel_limit(max_image_pixels: int | None) -> int:
    """The most pixels a picture is rendered with for a backend: its cap, else jina-v4's."""
    return max_image_pixels or DEFAULT_MAX_PIXELS


def file_picture(abs_path: Path) -> Callable[[int | None], Any]:
    """The picture in the file at ``abs_path`` (an image, or a PDF's first page), checked now
    (BadInput, one line, for a file that is not a readable picture); called with a backend's
    pixel cap it renders it as the index renders it (an RGB image within that cap)."""
    visuals, skips = inspect(abs_path, abs_path.name)
    if not visuals:
        why = f"{skips[0].reason}: {skips[0].detail}" if skips else "no picture in it"
        raise BadInput(f"{abs_path}: {why}")
    visual = visuals[0]
    return lambda max_image_pixels: render(abs_path, visual, pixel_limit(max_image_pixels))
