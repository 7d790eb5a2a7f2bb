"""The media layer's file handling: codesearch.media.formats and codesearch.media.load.

Every picture is a real file written by the test: Pillow for PNG/JPEG/WebP/GIF/BMP, SVG
markup by hand, PDFs with PDFium (pypdfium2) or written byte by byte.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw
import pytest
from PIL import Image, ImageDraw

from codesearch.media.formats import VISUAL_EXTENSIONS, MediaLimits, Visual, is_visual
from codesearch.media.load import fit_size, inspect, render, visual_text
from codesearch.types import BadInput

RED = (255, 0, 0)
WHITE = (255, 255, 255)

# ---------------------------------------------------------------------------- helpers


def picture(width: int = 300, height: int = 200) -> Image.Image:
    """Transparent left half, a red block top-left of the right half, blue elsewhere."""
    img = Image.new("RGBA", (width, height), (0, 0, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 0, width // 2 - 1, height - 1], fill=(0, 0, 0, 0))
    draw.rectangle([width // 2, 0, width // 2 + 40, 40], fill=(*RED, 255))
    return img


def save(path: Path, img: Image.Image, fmt: str, **params: object) -> Path:
    if fmt in ("JPEG", "BMP", "GIF"):
        background = Image.new("RGB", img.size, WHITE)
        background.paste(img, mask=img.getchannel("A"))
        img = background
    img.save(path, fmt, **params)
    return path


def pdf_with_pages(path: Path, sizes: list[tuple[int, int]], text_on: int = 0) -> Path:
    """A real PDF written by PDFium; page ``text_on`` (1-based) says "Login flow"."""
    doc = pdfium.PdfDocument.new()
    for number, (width, height) in enumerate(sizes, 1):
        page = doc.new_page(width, height)
        if number == text_on:
            obj = pdfium_raw.FPDFPageObj_NewTextObj(doc.raw, b"Helvetica", ctypes.c_float(12))
            buf = ctypes.create_string_buffer("Login flow\x00".encode("utf-16-le"))
            text_ptr = ctypes.cast(buf, ctypes.POINTER(pdfium_raw.FPDF_WCHAR))
            assert pdfium_raw.FPDFText_SetText(obj, text_ptr)
            pdfium_raw.FPDFPageObj_Transform(obj, 1, 0, 0, 1, 20, height / 2)
            pdfium_raw.FPDFPage_InsertObject(page.raw, obj)
            assert pdfium_raw.FPDFPage_GenerateContent(page.raw)
        page.close()
    doc.save(str(path))
    doc.close()
    return path


def handmade_pdf(*, encrypt: bool = False, rotate: int = 0) -> bytes:
    """A one-page PDF (200 x 100 pt) built byte by byte; ``encrypt`` adds a standard security
    handler whose empty user password does not match (PDFium asks for a password)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Rotate %d >>" % rotate,
    ]
    if encrypt:
        objects.append(
            b"<< /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b">"
            b" /P -4 >>"
        )
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    trailer = b"<< /Size %d /Root 1 0 R" % (len(objects) + 1)
    if encrypt:
        trailer += b" /Encrypt 4 0 R /ID [<" + b"ab" * 16 + b"> <" + b"ab" * 16 + b">]"
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def only_skip(result: tuple[list[Visual], list]) -> tuple[str, str]:
    visuals, skips = result
    assert visuals == []
    assert len(skips) == 1, skips
    detail = skips[0].detail
    assert detail and "\n" not in detail and len(detail) <= 200
    return skips[0].reason, detail


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- formats


def test_visual_extensions() -> None:
    assert {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".svg", ".pdf"} == set(
        VISUAL_EXTENSIONS
    )
    for path in ["a.png", "docs/A.PNG", "x/y.Jpeg", "d.svg", "Spec.PDF", "anim.gif", "w.webp"]:
        assert is_visual(path), path
    for path in ["a.txt", "png", ".png", "a.png.txt", "scan.tif", "docs/", "a.svgz", ""]:
        assert not is_visual(path), path


def test_the_light_modules_do_not_load_the_heavy_libraries() -> None:
    code = (
        "import sys, codesearch.media, codesearch.media.refs, codesearch.media.context;"
        "from codesearch.media import Visual, find_refs, context_text;"
        "heavy = [m for m in ('PIL', 'pypdfium2', 'resvg_py', 'codesearch.media.load')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    import codesearch.media as media

    assert media.inspect is inspect and media.render is render  # loaded on first use


# ---------------------------------------------------------------------------- raster images


@pytest.mark.parametrize(
    ("ext", "fmt"),
    [("png", "PNG"), ("jpg", "JPEG"), ("jpeg", "JPEG"), ("webp", "WEBP"), ("bmp", "BMP")],
)
def test_raster_image_inspected_and_rendered(tmp_path: Path, ext: str, fmt: str) -> None:
    path = save(tmp_path / f"shot.{ext}", picture(300, 200), fmt)
    visuals, skips = inspect(path, f"docs/shot.{ext}")
    assert skips == []
    assert visuals == [Visual(f"docs/shot.{ext}", "image", 0, 300, 200, sha(path))]

    small = render(path, visuals[0], max_pixels=6000)
    assert small.mode == "RGB"
    assert small.width * small.height <= 6000
    assert abs(small.width / small.height - 1.5) < 0.05
    assert small.getpixel((5, small.height // 2)) == pytest.approx(WHITE, abs=8)  # alpha -> white

    full = render(path, visuals[0], max_pixels=10**6)  # never upscaled
    assert full.size == (300, 200)
    assert full.getpixel((160, 10)) == pytest.approx(RED, abs=12)
    assert full.getpixel((280, 180)) == pytest.approx((0, 0, 255), abs=12)


def test_animated_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (120, 80), RED), Image.new("RGB", (120, 80), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(path).n_frames == 2
    visuals, skips = inspect(path, "anim.gif")
    assert skips == [] and len(visuals) == 1
    assert (visuals[0].kind, visuals[0].page, visuals[0].width, visuals[0].height) == (
        "image",
        0,
        120,
        80,
    )
    img = render(path, visuals[0], 10**6)
    assert img.mode == "RGB" and img.size == (120, 80)
    assert img.getpixel((60, 40)) == RED


def test_transparent_gif_and_palette_png_composited_on_white(tmp_path: Path) -> None:
    img = Image.new("P", (100, 60), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    ImageDraw.Draw(img).rectangle([50, 0, 99, 59], fill=1)
    for name in ("t.gif", "t.png"):
        img.save(tmp_path / name, transparency=0)
        visuals, _ = inspect(tmp_path / name, name)
        out = render(tmp_path / name, visuals[0], 10**6)
        assert out.mode == "RGB"
        assert out.getpixel((10, 10)) == WHITE
        assert out.getpixel((70, 10)) == RED


def test_exif_orientation_gives_the_displayed_size(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees: portrait
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (200, 100), RED).save(path, "JPEG", exif=exif)
    visuals, _ = inspect(path, "photo.jpg")
    assert (visuals[0].width, visuals[0].height) == (100, 200)
    assert render(path, visuals[0], 10**6).size == (100, 200)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    img = Image.new("I;16", (64, 64), 32768)  # mid grey in 16 bits
    path = tmp_path / "depth.png"
    img.save(path)
    visuals, _ = inspect(path, "depth.png")
    grey = render(path, visuals[0], 10**6).getpixel((5, 5))
    assert 100 < grey[0] < 160 and grey[0] == grey[1] == grey[2]


def test_downscaling_respects_the_budget_and_the_aspect(tmp_path: Path) -> None:
    path = save(tmp_path / "wide.png", picture(1000, 100), "PNG")
    visuals, _ = inspect(path, "wide.png")
    for budget in (1, 50, 999, 12345, 99_999):
        img = render(path, visuals[0], budget)
        assert 1 <= img.width * img.height <= budget
        if budget >= 999:
            assert abs(img.width / img.height - 10) < 10 * 0.15
    with pytest.raises(ValueError):
        render(path, visuals[0], 0)


def test_fit_size() -> None:
    assert fit_size(300, 200, 10**6) == (300, 200)
    w, h = fit_size(3000, 2000, 60_000)
    assert w * h <= 60_000 and (w, h) == (300, 200)
    for width, height, budget in [(1, 100_000, 100), (100_000, 1, 100), (7, 13, 1), (5, 5, 24)]:
        w, h = fit_size(width, height, budget)
        assert 1 <= w * h <= budget


# ---------------------------------------------------------------------------- SVG

SVG = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="300" height="150">
  <title>Indexing pipeline</title>
  <desc>How files become vectors</desc>
  <rect x="150" y="0" width="150" height="150" fill="#ff0000"/>
  <text x="10" y="80" font-size="20">chunker &amp; embedder</text>
</svg>
"""


def test_svg_inspected_rendered_and_read(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.svg"
    path.write_text(SVG)
    visuals, skips = inspect(path, "docs/pipeline.svg")
    assert skips == []
    assert visuals == [Visual("docs/pipeline.svg", "image", 0, 300, 150, sha(path))]

    img = render(path, visuals[0], max_pixels=5000)
    assert img.mode == "RGB"
    assert img.width * img.height <= 5000
    assert abs(img.width / img.height - 2) < 0.1
    assert img.getpixel((2, 2)) == WHITE  # transparent canvas -> white
    assert img.getpixel((img.width - 3, img.height // 2)) == RED

    assert render(path, visuals[0], 10**6).size == (300, 150)  # default size, not upscaled
    text = visual_text(path, visuals[0])
    assert text == "Indexing pipeline How files become vectors chunker & embedder"


@pytest.mark.parametrize(
    ("attrs", "size"),
    [
        ('viewBox="0 0 400 100"', (400, 100)),
        ('width="200" viewBox="0 0 400 100"', (200, 50)),
        ('width="2in" height="1in"', (192, 96)),
        ('width="10em" height="5em"', (160, 80)),
    ],
)
def test_svg_default_size(tmp_path: Path, attrs: str, size: tuple[int, int]) -> None:
    path = tmp_path / "s.svg"
    path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" {attrs}><rect width="5" height="5"/></svg>'
    )
    visuals, skips = inspect(path, "s.svg")
    assert skips == []
    assert (visuals[0].width, visuals[0].height) == size


def test_svg_large_default_size_is_estimated_cheaply(tmp_path: Path) -> None:
    path = tmp_path / "poster.svg"
    path.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="20000" height="10000">'
        '<rect width="20000" height="10000" fill="red"/></svg>'
    )
    visuals, _ = inspect(path, "poster.svg")
    assert abs(visuals[0].width - 20000) <= 32 and abs(visuals[0].height - 10000) <= 32
    img = render(path, visuals[0], 20_000)
    assert img.width * img.height <= 20_000 and img.getpixel((50, 50)) == RED


def test_svg_does_not_read_files_outside_itself(tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere" / "red.png"
    secret.parent.mkdir()
    Image.new("RGB", (100, 100), RED).save(secret)
    path = tmp_path / "leak.svg"
    path.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="100" height="100"><image xlink:href="{secret}" width="100" height="100"/>'
        f"<image href='file://{secret}' width='100' height='100'/></svg>"
    )
    visuals, _ = inspect(path, "leak.svg")
    assert render(path, visuals[0], 10**6).getpixel((50, 50)) == WHITE


def test_bad_svgs(tmp_path: Path) -> None:
    cases = {
        "broken.svg": ("<svg xmlns='http://www.w3.org/2000/svg'><rect", "corrupt-image"),
        "text.svg": ("just some text", "corrupt-image"),
        "zero.svg": (
            '<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"/>',
            "corrupt-image",
        ),
        "icon.svg": ('<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24"/>', "icon"),
    }
    for name, (markup, reason) in cases.items():
        (tmp_path / name).write_text(markup)
        assert only_skip(inspect(tmp_path / name, name))[0] == reason, name
    laughs = "".join(
        f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10)
    )  # entity expansion bomb
    (tmp_path / "bomb.svg").write_text(
        f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a0 "lol">{laughs}]>'
        '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><text>&a9;</text></svg>'
    )
    assert only_skip(inspect(tmp_path / "bomb.svg", "bomb.svg"))[0] == "corrupt-image"


# ---------------------------------------------------------------------------- PDF


def test_pdf_pages_inspected_rendered_and_read(tmp_path: Path) -> None:
    path = pdf_with_pages(tmp_path / "design.pdf", [(612, 792), (400, 200), (300, 300)], 2)
    visuals, skips = inspect(path, "docs/design.pdf")
    assert skips == []
    digest = sha(path)
    assert visuals == [
        Visual("docs/design.pdf", "pdf-page", 1, 612, 792, f"{digest}:1"),
        Visual("docs/design.pdf", "pdf-page", 2, 400, 200, f"{digest}:2"),
        Visual("docs/design.pdf", "pdf-page", 3, 300, 300, f"{digest}:3"),
    ]
    assert visuals[1].file_hash == digest
    page = render(path, visuals[1], max_pixels=20_000)
    assert page.mode == "RGB"
    assert 19_000 <= page.width * page.height <= 20_000  # the budget is filled: vector
    assert abs(page.width / page.height - 2) < 0.05
    assert page.getpixel((page.width - 2, 2)) == WHITE
    big = render(path, visuals[2], max_pixels=10**8)  # at most 4x the 72-dpi size
    assert big.size == (1200, 1200)
    assert visual_text(path, visuals[1]) == "Login flow"
    assert visual_text(path, visuals[0]) == ""


def test_pdf_written_by_pillow_and_pages_beyond_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "slides.pdf"
    pages = [Image.new("RGB", (200 + 10 * i, 100), RED) for i in range(5)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    visuals, skips = inspect(path, "slides.pdf", MediaLimits(max_pdf_pages=3))
    assert [v.page for v in visuals] == [1, 2, 3]
    assert [v.width for v in visuals] == [200, 210, 220]
    assert len(skips) == 1 and skips[0].reason == "too-many-pages"
    assert "first 3 of 5 pages" in skips[0].detail
    assert render(path, visuals[2], 10_000).getpixel((20, 20)) == pytest.approx(RED, abs=3)


def test_rotated_pdf_page(tmp_path: Path) -> None:
    path = tmp_path / "rotated.pdf"
    path.write_bytes(handmade_pdf(rotate=90))
    visuals, _ = inspect(path, "rotated.pdf")
    assert (visuals[0].width, visuals[0].height) == (100, 200)
    assert render(path, visuals[0], 10**6).size == (400, 800)


def test_bad_pdfs(tmp_path: Path) -> None:
    good = pdf_with_pages(tmp_path / "good.pdf", [(200, 200), (200, 200)])
    cases = {
        "encrypted.pdf": (handmade_pdf(encrypt=True), {"encrypted-pdf"}),
        "garbage.pdf": (b"%PDF-1.4\nthis is not a pdf at all", {"corrupt-pdf"}),
        "html.pdf": (b"<html>404 not found</html>", {"corrupt-pdf"}),
        "empty.pdf": (b"", {"empty"}),
    }
    for name, (data, reasons) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert only_skip(inspect(tmp_path / name, name))[0] in reasons, name
    data = good.read_bytes()
    (tmp_path / "cut.pdf").write_bytes(data[: len(data) // 2])
    visuals, skips = inspect(tmp_path / "cut.pdf", "cut.pdf")  # PDFium may repair: no raise
    assert visuals or skips[0].reason == "corrupt-pdf"


# ---------------------------------------------------------------------------- bad input


def _png_bytes(size: tuple[int, int] = (300, 200)) -> bytes:
    buf = io.BytesIO()
    img = Image.effect_noise(size, 64).convert("RGB")  # noise: incompressible, cut = data lost
    img.save(buf, "PNG")
    return buf.getvalue()


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((300, 200), 64).convert("RGB").save(buf, "JPEG")
    return buf.getvalue()


def _gif_bytes() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((300, 200), 64).convert("P").save(buf, "GIF")
    return buf.getvalue()


def _webp_bytes() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((300, 200), 64).convert("RGB").save(buf, "WEBP")
    return buf.getvalue()


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("name", "data", "limits", "reason"),
    [
        ("junk.png", b"\x00\x01garbage bytes, not an image" * 4, None, "corrupt-image"),
        ("text.jpg", b"hello world\n" * 10, None, "corrupt-image"),
        ("cut.png", _half(_png_bytes()), None, "truncated-image"),
        ("cut.jpg", _half(_jpeg_bytes()), None, "truncated-image"),
        ("cut.gif", _half(_gif_bytes()), None, "truncated-image"),
        ("cut.webp", _half(_webp_bytes()), None, "truncated-image"),
        ("header-only.png", _png_bytes()[:40], None, "truncated-image"),
        ("zero.png", b"", None, "empty"),
        ("bomb.png", _png_bytes(), MediaLimits(max_source_pixels=300 * 200 - 1), "too-many-pixels"),
        ("icon.png", _png_bytes((16, 16)), None, "icon"),
        ("big.png", _png_bytes(), MediaLimits(max_file_bytes=1000), "too-large"),
        ("notes.txt", b"not a picture", None, "unsupported"),
    ],
    ids=lambda value: value if isinstance(value, str) and "." in value else "",
)
def test_bad_input_is_skipped_with_a_reason(
    tmp_path: Path, name: str, data: bytes, limits: MediaLimits | None, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    result = inspect(path, f"assets/{name}", limits or MediaLimits())
    assert only_skip(result)[0] == reason
    assert result[1][0].path == f"assets/{name}"


def test_icon_needs_both_sides_small(tmp_path: Path) -> None:
    (tmp_path / "bar.png").write_bytes(_png_bytes((16, 400)))  # a thin bar is not an icon
    visuals, skips = inspect(tmp_path / "bar.png", "bar.png")
    assert skips == [] and len(visuals) == 1
    visuals, skips = inspect(tmp_path / "bar.png", "bar.png", MediaLimits(min_side=500))
    assert only_skip((visuals, skips))[0] == "icon"


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    assert only_skip(inspect(tmp_path / "gone.png", "gone.png"))[0] == "vanished"
    (tmp_path / "folder.png").mkdir()
    assert only_skip(inspect(tmp_path / "folder.png", "folder.png"))[0] == "not-regular"
    os.mkfifo(tmp_path / "pipe.png")  # refused at once, never waited on
    assert only_skip(inspect(tmp_path / "pipe.png", "pipe.png")) == (
        "not-regular",
        "not a regular file (fifo)",
    )


def test_a_png_in_disguise_is_read_but_an_eps_is_not(tmp_path: Path) -> None:
    (tmp_path / "really-png.jpg").write_bytes(_png_bytes())
    visuals, skips = inspect(tmp_path / "really-png.jpg", "really-png.jpg")
    assert skips == [] and visuals[0].width == 300
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n"
    (tmp_path / "ghost.png").write_bytes(eps)
    assert only_skip(inspect(tmp_path / "ghost.png", "ghost.png"))[0] == "corrupt-image"


def test_render_fails_cleanly_when_the_file_changed(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(_png_bytes())
    visuals, _ = inspect(path, "a.png")
    path.write_bytes(_half(_png_bytes()))
    with pytest.raises(BadInput, match=r"a\.png") as err:
        render(path, visuals[0], 10_000)
    assert "\n" not in str(err.value)
    path.unlink()
    with pytest.raises(BadInput, match="disappeared"):
        render(path, visuals[0], 10_000)
    assert visual_text(path, visuals[0]) == ""
    pdf = pdf_with_pages(tmp_path / "d.pdf", [(100, 100), (100, 100)])
    pages, _ = inspect(pdf, "d.pdf")
    pdf.write_bytes(b"%PDF-1.4 broken")
    with pytest.raises(BadInput, match=r"d\.pdf"):
        render(pdf, pages[1], 10_000)
