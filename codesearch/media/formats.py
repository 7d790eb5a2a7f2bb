"""Which files are visual, and the light dataclasses of the media layer.

No heavy import here: discovery, the store and the results may use :class:`Visual` and
:func:`is_visual` without loading Pillow, PDFium or resvg (those live in
:mod:`codesearch.media.load`, which re-exports these names).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from codesearch.types import Kind

RASTER_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"})
VISUAL_EXTENSIONS: frozenset[str] = RASTER_EXTENSIONS | {".svg", ".pdf"}

# Visual kinds.
IMAGE = Kind.IMAGE
PDF_PAGE = Kind.PDF_PAGE


def extension(path: str) -> str:
    """The lower-cased extension of ``path``'s last component, with its dot ("" when none)."""
    return posixpath.splitext(posixpath.basename(path.replace("\\", "/")))[1].lower()


def is_visual(path: str) -> bool:
    """Whether ``path`` names a picture codesearch can index, by extension (case-insensitive)."""
    return extension(path) in VISUAL_EXTENSIONS


@dataclass(frozen=True)
class MediaLimits:
    """What :func:`codesearch.media.load.inspect` accepts."""

    min_side: int = 48  # width AND height both below this: an icon, skipped ("icon")
    max_pdf_pages: int = 20  # the first N pages of a PDF are indexed, the rest are not
    max_file_bytes: int = 50 * 1024 * 1024
    max_source_pixels: int = 100_000_000  # decompression-bomb guard ("too-many-pixels")


@dataclass(frozen=True)
class Visual:
    """One embeddable picture: an image file, or one page of a PDF."""

    path: str  # relative to the repository root, POSIX (as given to inspect)
    kind: Kind  # IMAGE or PDF_PAGE
    page: int  # 1-based page number of a PDF page; 0 for an image
    # Pixel size: a raster image's size as displayed (EXIF orientation applied); an SVG's
    # default size (its width/height/viewBox, CSS px at 96 dpi); a PDF page's size in points,
    # i.e. rendered at 72 dpi (scale 1), rotation applied.
    width: int
    height: int
    content_hash: str  # sha256 hex of the file's bytes, + f":{page}" for a PDF page

    @property
    def file_hash(self) -> str:
        """The sha256 of the whole file (the content hash without a page suffix)."""
        return self.content_hash.partition(":")[0]
