"""Opening pictures: check a visual file (:func:`inspect`) and turn it into pixels (:func:`render`).

The only module that imports Pillow, pypdfium2 and resvg (the last two lazily, on first use).
Bad input never raises from :func:`inspect`: a corrupt, truncated, empty, encrypted or
oversized file becomes a :class:`~codesearch.types.Skip` with a one-line detail. Reasons:
``empty``, ``too-large``, ``vanished``, ``unreadable``, ``unsupported``, ``corrupt-image``,
``truncated-image``, ``icon``, ``too-many-pixels``, ``corrupt-pdf``, ``encrypted-pdf``, and
``too-many-pages`` (which comes *with* the visuals of the first ``max_pdf_pages`` pages).
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import threading
import zlib
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from codesearch.media.formats import (
    IMAGE,
    PDF_PAGE,
    RASTER_EXTENSIONS,
    MediaLimits,
    Visual,
    extension,
)
from codesearch.safe_read import Refused, read_regular
from codesearch.types import BadInput, Skip

__all__ = ["DEFAULT_LIMITS", "MediaLimits", "Visual", "inspect", "render", "visual_text"]

DEFAULT_LIMITS = MediaLimits()
# Pillow may only use these decoders (no EPS/Ghostscript, PSD, ... behind a .png name);
# MPO (multi-picture JPEG) is its own plugin before Pillow 12 and part of JPEG after.
Image.init()
_RASTER_FORMATS = tuple(
    f for f in ("PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "DIB") if f in Image.OPEN
)
# A PDF page fills the pixel budget, up to this many times its 72-dpi size (288 dpi).
MAX_PDF_SCALE = 4.0
# SVG default sizes up to this many pixels are measured exactly (one render at zoom 1);
# larger ones are estimated from a render at 1/_SVG_PROBE_ZOOM (to within that many px).
_SVG_EXACT_PIXELS = 2_000_000
_SVG_PROBE_ZOOM = 32
_SVG_DPI = 96.0  # resvg-py's default dpi (0) turns absolute units (in, cm, pt) into size 0
_WHITE = (255, 255, 255)
# PDFium is not thread-safe: one document operation at a time in this process.
_PDF_LOCK = threading.Lock()
_PDF_ERR_PASSWORD = 4
_PDF_ERR_SECURITY = 5
# <image>/<feImage> references to anything but a data: URI (resvg would read any local file).
_SVG_EXTERNAL_HREF = re.compile(
    r"(<(?:[\w.-]+:)?(?:image|feImage)\b[^>]*?\s(?:[\w.-]+:)?href\s*=\s*)"
    r"(\"|')(?!\s*data:)[^\"']*\2",
    re.IGNORECASE,
)


class _Reject(Exception):
    """Internal: the file is skipped with this reason and detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------------------- inspect


def inspect(
    abs_path: Path, rel_path: str, limits: MediaLimits = DEFAULT_LIMITS
) -> tuple[list[Visual], list[Skip]]:
    """The embeddable pictures in one visual file, and why (parts of) it were left out.

    An image gives one :class:`Visual`; a PDF one per page (the first ``max_pdf_pages``).
    Every raster image is fully decoded once, so a truncated file is caught here and not at
    render time. Never raises on bad input.
    """
    ext = extension(rel_path)
    try:
        if ext not in RASTER_EXTENSIONS and ext not in (".svg", ".pdf"):
            raise _Reject("unsupported", f"not a visual file type: {ext or '(no extension)'}")
        data = _read(abs_path, limits.max_file_bytes)
        if ext == ".pdf":
            return _inspect_pdf(data, rel_path, limits)
        if ext == ".svg":
            return [_inspect_svg(data, rel_path, limits)], []
        return [_inspect_raster(data, rel_path, limits)], []
    except _Reject as rej:
        return [], [Skip(rel_path, rej.reason, rej.detail)]
    except Exception as exc:  # a decoder bug must not stop an index run
        reason = "corrupt-pdf" if ext == ".pdf" else "corrupt-image"
        return [], [Skip(rel_path, reason, _one_line(f"{type(exc).__name__}: {exc}"))]


def _read(abs_path: Path, limit: int | None) -> bytes:
    """The file's bytes; _Reject when it is missing, unreadable, not a regular file, empty or
    over ``limit``."""
    try:  # a regular file only: a FIFO or a device is refused, never waited on
        data = read_regular(abs_path, limit)
    except Refused as exc:
        raise _Reject(exc.reason, exc.detail) from None
    if not data:
        raise _Reject("empty", "zero-byte file")
    return data


def _inspect_raster(data: bytes, rel_path: str, limits: MediaLimits) -> Visual:
    img = _open_raster(data, limits.max_source_pixels)
    width, height = _displayed_size(img)
    if width < limits.min_side and height < limits.min_side:
        raise _Reject("icon", f"{width}x{height} px, both sides below {limits.min_side}")
    if img.format == "JPEG":  # decode at 1/8 scale: enough to read every byte, 64x cheaper
        img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
    try:
        img.load()  # the full decode: Pillow is lazy, a truncated file fails only here
    except Exception as exc:
        raise _decode_error(exc, data) from None
    return Visual(rel_path, IMAGE, 0, width, height, _sha256(data))


def _open_raster(data: bytes, max_pixels: int) -> Image.Image:
    """Open the header (no decode), checking the pixel count before Pillow's own bomb check."""
    try:
        img = Image.open(io.BytesIO(data), formats=_RASTER_FORMATS)
    except UnidentifiedImageError:
        if _short_png(data):
            raise _Reject("truncated-image", "PNG data ends inside its header") from None
        raise _Reject(
            "corrupt-image", "not a PNG, JPEG, WebP, GIF or BMP image (unrecognised header)"
        ) from None
    except Image.DecompressionBombError as exc:
        raise _Reject("too-many-pixels", _one_line(str(exc))) from None
    except Exception as exc:
        raise _decode_error(exc, data) from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise _Reject("corrupt-image", f"invalid size {width}x{height}")
    if width * height > max_pixels:
        raise _Reject(
            "too-many-pixels", f"{width}x{height} = {width * height} px > limit {max_pixels}"
        )
    return img


def _displayed_size(img: Image.Image) -> tuple[int, int]:
    """The size once the EXIF orientation is applied (a portrait photo stored sideways)."""
    width, height = img.size
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block does not make a broken image
        orientation = 1
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _decode_error(exc: Exception, data: bytes) -> _Reject:
    msg = _one_line(str(exc) or type(exc).__name__)
    short = _short_riff(data) or _short_png(data)
    if "truncated" in msg.lower() or isinstance(exc, EOFError) or short:
        return _Reject("truncated-image", f"image data ends early ({msg})")
    if isinstance(exc, Image.DecompressionBombError):
        return _Reject("too-many-pixels", msg)
    return _Reject("corrupt-image", f"cannot decode image ({msg})")


def _short_riff(data: bytes) -> bool:
    """A WebP (RIFF) file shorter than its header says (libwebp only says "decoder error")."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return False
    return int.from_bytes(data[4:8], "little") + 8 > len(data)


def _short_png(data: bytes) -> bool:
    """A PNG file whose chunks run past its end before the IEND chunk."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        if data[pos + 4 : pos + 8] == b"IEND":
            return False
        pos += 12 + length  # length, type, data, CRC
    return True


def _inspect_svg(data: bytes, rel_path: str, limits: MediaLimits) -> Visual:
    text = _svg_text(data, limits.max_file_bytes)
    width, height = _svg_default_size(text)
    if width < limits.min_side and height < limits.min_side:
        raise _Reject("icon", f"{width}x{height} px SVG, both sides below {limits.min_side}")
    return Visual(rel_path, IMAGE, 0, width, height, _sha256(data))


def _svg_text(data: bytes, limit: int) -> str:
    """The SVG markup as text (an .svgz-style gzip body is inflated, up to ``limit`` bytes),
    with external image references removed."""
    if data[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(wbits=31)
        try:
            data = inflater.decompress(data, limit + 1)
        except zlib.error as exc:
            raise _Reject("corrupt-image", f"broken gzip-compressed SVG ({exc})") from None
        if len(data) > limit or inflater.unconsumed_tail:
            raise _Reject("too-large", f"SVG inflates to more than {limit} bytes")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text = data.decode("utf-16", "replace")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    return _SVG_EXTERNAL_HREF.sub(r"\1\2\2", text)


def _resvg(text: str, **size: Any) -> Image.Image:
    """Rasterise SVG markup with resvg; _Reject("corrupt-image") when it cannot."""
    import resvg_py

    try:
        png = resvg_py.svg_to_bytes(svg_string=text, dpi=_SVG_DPI, **size)
    except BaseException as exc:  # a Rust panic arrives as pyo3's PanicException
        if isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError):
            raise
        raise _Reject("corrupt-image", f"invalid SVG ({_one_line(str(exc))})") from None
    return Image.open(io.BytesIO(bytes(png)), formats=("PNG",))


def _svg_default_size(text: str) -> tuple[int, int]:
    """The size resvg gives the SVG by default (it may come from the drawing's bounding box,
    so resvg is asked rather than the attributes parsed)."""
    try:
        probe = _resvg(text, zoom=1 / _SVG_PROBE_ZOOM)
    except _Reject as rej:
        if "scaled size" not in rej.detail:  # else: below 1 px at that zoom, i.e. small
            raise
    else:
        width, height = probe.width * _SVG_PROBE_ZOOM, probe.height * _SVG_PROBE_ZOOM
        if width * height > _SVG_EXACT_PIXELS:
            return width, height
    return _resvg(text).size


def _inspect_pdf(
    data: bytes, rel_path: str, limits: MediaLimits
) -> tuple[list[Visual], list[Skip]]:
    pdfium = _pdfium()
    file_hash = _sha256(data)
    visuals: list[Visual] = []
    skips: list[Skip] = []
    with _PDF_LOCK:
        doc = _open_pdf(pdfium, data)
        try:
            count = len(doc)
            if count == 0:
                raise _Reject("corrupt-pdf", "PDF has no pages")
            for index in range(min(count, limits.max_pdf_pages)):
                width, height = doc.get_page_size(index)
                if not (width >= 1 and height >= 1):  # also NaN
                    skips.append(Skip(rel_path, "corrupt-pdf", f"page {index + 1} has no size"))
                    continue
                page = index + 1
                visuals.append(
                    Visual(
                        rel_path,
                        PDF_PAGE,
                        page,
                        round(width),
                        round(height),
                        f"{file_hash}:{page}",
                    )
                )
        finally:
            doc.close()
    if count > limits.max_pdf_pages:
        detail = f"only the first {limits.max_pdf_pages} of {count} pages are indexed"
        skips.append(Skip(rel_path, "too-many-pages", detail))
    return visuals, skips


def _pdfium() -> Any:
    import pypdfium2

    return pypdfium2


def _open_pdf(pdfium: Any, data: bytes) -> Any:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code in (_PDF_ERR_PASSWORD, _PDF_ERR_SECURITY):
            raise _Reject("encrypted-pdf", "the PDF is password-protected") from None
        raise _Reject("corrupt-pdf", f"cannot open PDF ({_one_line(str(exc))})") from None


# ---------------------------------------------------------------------------- render


def render(abs_path: Path, visual: Visual, max_pixels: int) -> Image.Image:
    """The picture as an RGB image (alpha composited on white), at most ``max_pixels`` pixels.

    A raster image is downscaled (aspect kept, LANCZOS), never upscaled; an SVG is rasterised
    by resvg at its default size, or smaller to fit; a PDF page is rendered by PDFium at the
    scale that fills ``max_pixels`` (at most ``MAX_PDF_SCALE`` times its 72-dpi size).
    Raises BadInput when the file can no longer be read or decoded, or changed since
    :func:`inspect` (its pixels would be stored under the old content hash).
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, not {max_pixels}")
    try:
        data = _read(abs_path, None)
        if _sha256(data) != visual.file_hash:
            raise _Reject("changed", "the file changed since it was inspected")
        if visual.kind == PDF_PAGE:
            img = _render_pdf_page(data, visual.page, max_pixels)
        elif extension(visual.path) == ".svg":
            img = _render_svg(data, visual, max_pixels)
        else:
            img = _render_raster(data, max_pixels)
    except _Reject as rej:
        raise BadInput(f"cannot render {visual.path}: {rej.detail}") from None
    except BadInput:
        raise
    except Exception as exc:
        msg = _one_line(f"{type(exc).__name__}: {exc}")
        raise BadInput(f"cannot render {visual.path}: {msg}") from None
    return _fit(img, max_pixels)


def _render_raster(data: bytes, max_pixels: int) -> Image.Image:
    img = _open_raster(data, 1 << 62)
    if img.format == "JPEG":  # let libjpeg do most of the downscaling
        width, height = fit_size(img.width, img.height, max_pixels)
        img.draft("RGB", (width, height))
    try:
        img.load()  # GIF, WebP: the first frame
        img = ImageOps.exif_transpose(img) or img
    except Exception as exc:
        raise _decode_error(exc, data) from None
    return _to_rgb(img)


def _render_svg(data: bytes, visual: Visual, max_pixels: int) -> Image.Image:
    text = _svg_text(data, max(len(data), 50 * 1024 * 1024))
    width, height = fit_size(visual.width, visual.height, max_pixels)
    # resvg fits the drawing into the box, keeping its aspect ratio.
    img = _resvg(text, width=width, height=height, background="white")
    img.load()
    return _to_rgb(img)


def _render_pdf_page(data: bytes, page: int, max_pixels: int) -> Image.Image:
    pdfium = _pdfium()
    with _PDF_LOCK:
        doc = _open_pdf(pdfium, data)
        try:
            if not 1 <= page <= len(doc):
                raise _Reject("corrupt-pdf", f"the PDF has no page {page}")
            pdf_page = doc[page - 1]
            try:
                width, height = pdf_page.get_size()
                scale = min(MAX_PDF_SCALE, math.sqrt(max_pixels / max(width * height, 1e-6)))
                bitmap = pdf_page.render(scale=scale, fill_color=(255, 255, 255, 255))
                img = bitmap.to_pil().convert("RGB")  # a copy: the bitmap's memory is freed
                bitmap.close()
            finally:
                pdf_page.close()
        finally:
            doc.close()
    return img


def fit_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """``(width, height)`` scaled down (aspect kept, never up) so the product is <= max_pixels."""
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    new_w = max(1, math.floor(width * scale))
    new_h = max(1, math.floor(height * scale))
    if new_w * new_h > max_pixels:  # a sliver (1 x 100000): keep the long side within budget
        if new_w == 1:
            new_h = max_pixels
        else:
            new_w = max_pixels // new_h
    return new_w, new_h


def _fit(img: Image.Image, max_pixels: int) -> Image.Image:
    size = fit_size(img.width, img.height, max_pixels)
    if size != img.size:
        img = img.resize(size, Image.Resampling.LANCZOS)
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB, transparency composited on white; 16-bit and float greys scaled to 8 bits."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        img = img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode in ("P", "L", "RGB") and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


# ---------------------------------------------------------------------------- text


_SVG_TEXT = re.compile(
    r"<(?:[\w.-]+:)?(title|desc|text)\b[^>]*>(.*?)</(?:[\w.-]+:)?\1\s*>", re.IGNORECASE | re.DOTALL
)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def visual_text(abs_path: Path, visual: Visual, max_chars: int = 1500) -> str:
    """The words inside a picture that need no OCR: a PDF page's text layer, an SVG's
    ``<title>``, ``<desc>`` and ``<text>`` (whitespace collapsed, at most ``max_chars``).
    "" for a raster image, or when the file cannot be read; never raises on bad input."""
    import html

    is_svg = visual.kind != PDF_PAGE and extension(visual.path) == ".svg"
    if visual.kind != PDF_PAGE and not is_svg:
        return ""
    try:
        data = _read(abs_path, None)
        if is_svg:
            svg = _svg_text(data, max(len(data), 50 * 1024 * 1024))
            parts = [_TAG.sub(" ", m.group(2)) for m in _SVG_TEXT.finditer(svg)]
            text = html.unescape(" ".join(parts))
        else:
            text = _pdf_page_text(data, visual.page)
    except Exception:
        return ""
    text = _SPACE.sub(" ", text).strip()
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0]
    return text


def _pdf_page_text(data: bytes, page: int) -> str:
    pdfium = _pdfium()
    with _PDF_LOCK:
        doc = _open_pdf(pdfium, data)
        try:
            if not 1 <= page <= len(doc):
                return ""
            pdf_page = doc[page - 1]
            try:
                textpage = pdf_page.get_textpage()
                try:
                    return str(textpage.get_text_range())
                finally:
                    textpage.close()
            finally:
                pdf_page.close()
        finally:
            doc.close()


# ---------------------------------------------------------------------------- helpers


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
