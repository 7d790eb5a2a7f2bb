"""Picture fixtures: a repository with real images, a real PDF and the documents that show
them (shared by tests/test_pictures.py and tests/test_pictures_jina.py)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ARCHITECTURE_MD = """\
# Architecture

Some words about the project as a whole.

## Ingest pipeline

Files are read, split into pieces and queued for the workers.

![diagram of the ingest pipeline](img/ingest-pipeline.png "Ingest")

## Login

The sign-in form asks for an e-mail address and a password.

<img src="../shots/login.jpg" alt="screenshot of the login page">
"""

GUIDE_RST = """\
Deployment
==========

How the services are rolled out to the cluster.

.. figure:: img/rollout.gif
   :alt: rollout sequence of the blue green deployment

   Blue-green rollout, step by step.
"""


def _picture(path: Path, size: tuple[int, int], fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([4, 4, size[0] - 5, size[1] - 5], outline="black", width=3)
    draw.line([0, 0, size[0], size[1]], fill="navy", width=2)
    if fmt == "GIF":
        second = image.copy()
        ImageDraw.Draw(second).ellipse([10, 10, 40, 40], fill="red")
        image.save(path, fmt, save_all=True, append_images=[second])
    else:
        image.save(path, fmt)


def _pdf(path: Path, pages: int) -> None:
    frames = [Image.new("RGB", (300, 200), color) for color in ("white", "gray", "yellow")]
    frames[0].save(path, "PDF", save_all=True, append_images=frames[1:pages])


def make_picture_repo(tmp_path: Path) -> Path:
    """Pictures (3 images, a 3-page PDF), an icon, 3 broken pictures, 2 documents, code."""
    root = tmp_path / "pics"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "architecture.md").write_text(ARCHITECTURE_MD, encoding="utf-8")
    (root / "docs" / "guide.rst").write_text(GUIDE_RST, encoding="utf-8")
    _picture(root / "docs" / "img" / "ingest-pipeline.png", (320, 200), "PNG")
    _picture(root / "shots" / "login.jpg", (400, 300), "JPEG")
    _picture(root / "docs" / "img" / "rollout.gif", (160, 120), "GIF")
    _picture(root / "assets" / "favicon.png", (16, 16), "PNG")  # an icon: skipped
    _pdf(root / "docs" / "design.pdf", 3)
    (root / "src").mkdir()
    (root / "src" / "ingest.py").write_text(
        "def queue_pieces(files):\n    '''Split files and queue the pieces.'''\n"
        "    return [f.split() for f in files]\n",
        encoding="utf-8",
    )
    # Bad pictures: each is skipped with its reason, the rest of the index is whole.
    (root / "broken").mkdir()
    (root / "broken" / "zero.png").write_bytes(b"")
    (root / "broken" / "garbage.png").write_bytes(b"this is not a png at all" * 20)
    good = root / "docs" / "img" / "ingest-pipeline.png"
    data = good.read_bytes()
    (root / "broken" / "truncated.png").write_bytes(data[: len(data) // 2])
    return root
