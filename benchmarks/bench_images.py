"""Generate a repository of pictures and the documents that reference them (the vision path).

    .venv/bin/python benchmarks/bench_images.py --make DIR [--count 200] [--seed 0]

Writes into DIR (created; refused if it exists and is not empty):
- COUNT pictures: PNG architecture diagrams (boxes, arrows, labels), JPEG screenshots
  (a window with a toolbar, a sidebar and lines of text), and every 20th an SVG diagram with
  <title> and <text> labels; names in several styles (kebab-case, snake_case, camelCase);
- one 3-page PDF (docs/design/overview.pdf), two 16 x 16 icons (skipped as "icon");
- one Markdown guide per topic (docs/<topic>.md) with sections and paragraphs that reference
  most pictures: inline images with titles, reference-style images, HTML <img> tags and
  links to the PDF; about one picture in eight is referenced by no document (name only);
- a README.md and a small Python module, so the repository also has code.

Then measure indexing under the text fallback, e.g.
``time codesearch index DIR`` (or ``benchmarks/bench_index.py DIR``). Prints what it wrote.
Deterministic for a given --count and --seed.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
from collections import Counter
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

TOPICS: dict[str, list[str]] = {
    "auth": ["login", "session", "token", "password", "oauth", "logout", "two factor"],
    "billing": ["invoice", "payment", "refund", "subscription", "tax", "receipt", "plan"],
    "search": ["query", "index", "ranking", "filter", "facet", "suggest", "results"],
    "storage": ["bucket", "upload", "replica", "snapshot", "quota", "archive", "blob"],
    "messaging": ["queue", "topic", "consumer", "retry", "dead letter", "broker", "event"],
    "deploy": ["pipeline", "release", "rollback", "canary", "cluster", "container", "build"],
    "reports": ["chart", "dashboard", "export", "schedule", "metric", "trend", "summary"],
    "users": ["profile", "avatar", "settings", "team", "invite", "role", "permissions"],
}
VIEWS = ["overview", "flow", "sequence", "screen", "architecture", "states", "timeline"]
COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1"]


def file_name(rnd: random.Random, words: list[str], ext: str) -> str:
    style = rnd.randrange(3)
    if style == 0:
        return "-".join(words) + ext
    if style == 1:
        return "_".join(words) + ext
    return words[0] + "".join(w.capitalize() for w in words[1:]) + ext


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def diagram(rnd: random.Random, labels: list[str], size: tuple[int, int]) -> Image.Image:
    """Boxes with labels joined by arrows, a title on top."""
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    width, height = size
    draw.text((20, 12), " ".join(labels[:3]).title(), fill="black", font=font(22))
    boxes = []
    count = rnd.randint(3, 7)
    for i in range(count):
        bw, bh = rnd.randint(110, 200), rnd.randint(50, 80)
        x = 20 + (i % 4) * (width - 40) // 4 + rnd.randint(0, 20)
        y = 60 + (i // 4) * (height - 80) // 2 + rnd.randint(0, max(1, height // 4))
        x, y = min(x, width - bw - 5), min(y, height - bh - 5)
        draw.rounded_rectangle([x, y, x + bw, y + bh], 10, fill=rnd.choice(COLORS), outline="black")
        draw.text((x + 10, y + bh // 2 - 8), labels[i % len(labels)], fill="white", font=font(16))
        boxes.append((x + bw // 2, y + bh // 2))
    for (x1, y1), (x2, y2) in itertools.pairwise(boxes):
        draw.line([x1, y1, x2, y2], fill="black", width=2)
        draw.ellipse([x2 - 4, y2 - 4, x2 + 4, y2 + 4], fill="black")
    return img


def screenshot(rnd: random.Random, labels: list[str], size: tuple[int, int]) -> Image.Image:
    """A window: title bar, toolbar, sidebar, lines of text and a button."""
    img = Image.new("RGB", size, "#f4f4f4")
    draw = ImageDraw.Draw(img)
    width, height = size
    draw.rectangle([0, 0, width, 28], fill="#2d2d2d")
    draw.text((12, 6), f"{labels[0].title()} - Example App", fill="white", font=font(14))
    draw.rectangle([0, 28, width, 60], fill="#e0e0e0")
    for i, label in enumerate(labels[:5]):
        draw.text((12 + i * 110, 38), label.title(), fill="#333", font=font(13))
    draw.rectangle([0, 60, 160, height], fill="#ffffff", outline="#cccccc")
    for i in range(min(12, (height - 80) // 26)):
        draw.text((12, 72 + i * 26), rnd.choice(labels), fill="#555", font=font(13))
    y = 80
    while y < height - 70:
        draw.text(
            (190, y), " ".join(rnd.choices(labels, k=rnd.randint(3, 8))), fill="#222", font=font(14)
        )
        y += rnd.randint(22, 34)
    draw.rounded_rectangle([width - 160, height - 56, width - 24, height - 20], 6, fill="#4e79a7")
    draw.text((width - 140, height - 48), labels[-1].title(), fill="white", font=font(15))
    return img


def svg_diagram(rnd: random.Random, labels: list[str], title: str) -> str:
    width, height = rnd.choice([(640, 360), (800, 450), (480, 320)])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f"<title>{title}</title>",
        f'<rect width="{width}" height="{height}" fill="#fafafa"/>',
    ]
    for i, label in enumerate(labels[:5]):
        x, y = 20 + i * (width - 40) // 5, height // 2 - 30 + (i % 2) * 60 - 30
        parts.append(
            f'<rect x="{x}" y="{y}" width="{(width - 40) // 5 - 16}" height="50" rx="8" '
            f'fill="{COLORS[i % len(COLORS)]}"/>'
        )
        parts.append(f'<text x="{x + 8}" y="{y + 30}" font-size="14" fill="white">{label}</text>')
    parts.append("</svg>\n")
    return "\n".join(parts)


def sentence(rnd: random.Random, words: list[str], topic: str) -> str:
    a, b = rnd.sample(words, 2)
    templates = [
        f"The {a} step hands the request to the {b} service.",
        f"Each {a} is checked before the {b} is stored.",
        f"When the {a} fails, the {topic} module retries the {b}.",
        f"Administrators configure the {a} and the {b} from the {topic} settings.",
        f"The {b} view lists every {a} with its status.",
    ]
    return rnd.choice(templates)


def make(root: Path, count: int, seed: int) -> list[tuple[str, str]]:
    rnd = random.Random(seed)
    if root.exists() and any(root.iterdir()):
        sys.exit(f"refusing to write into a non-empty folder: {root}")
    root.mkdir(parents=True, exist_ok=True)
    written: Counter[str] = Counter()
    total_bytes = 0
    pictures: dict[str, list[tuple[str, str, str]]] = {t: [] for t in TOPICS}  # path, alt, view
    topics = list(TOPICS)
    for i in range(count):
        topic = topics[i % len(topics)]
        words = TOPICS[topic]
        view = rnd.choice(VIEWS)
        subject = rnd.choice(words)
        labels = rnd.sample(words, len(words))
        alt = f"{subject.title()} {view} of the {topic} module"
        if i % 20 == 19:
            rel = f"docs/{topic}/diagrams/" + file_name(
                rnd, [*subject.split(), view, str(i)], ".svg"
            )
            data = svg_diagram(rnd, labels, alt).encode()
            kind = "svg"
        elif i % 3 == 2:
            rel = f"docs/{topic}/screenshots/" + file_name(
                rnd, [*subject.split(), "screen", str(i)], ".jpg"
            )
            size = (rnd.randint(640, 1440), rnd.randint(400, 900))
            data = encode(screenshot(rnd, labels, size), "JPEG", quality=85)
            kind = "jpeg"
        else:
            rel = f"docs/{topic}/img/" + file_name(rnd, [*subject.split(), view, str(i)], ".png")
            size = (rnd.randint(480, 1400), rnd.randint(320, 900))
            data = encode(diagram(rnd, labels, size), "PNG", optimize=False)
            kind = "png"
        write(root / rel, data)
        written[kind] += 1
        total_bytes += len(data)
        if i % 8 != 7:  # the rest are found by name only
            pictures[topic].append((rel, alt, view))

    pdf_pages = [diagram(rnd, rnd.sample(TOPICS[t], 5), (612, 792)) for t in topics[:3]]
    pdf_path = root / "docs/design/overview.pdf"
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    pdf_pages[0].save(pdf_path, "PDF", save_all=True, append_images=pdf_pages[1:], resolution=72)
    written["pdf (3 pages)"] += 1
    total_bytes += pdf_path.stat().st_size
    for name in ("icons/close.png", "icons/menu.png"):
        data = encode(Image.new("RGBA", (16, 16), (0, 0, 0, 255)), "PNG")
        write(root / name, data)
        written["icon 16x16"] += 1
        total_bytes += len(data)

    refs = 0
    for topic, items in pictures.items():
        text, n = guide(rnd, topic, items)
        write(root / f"docs/{topic}.md", text.encode())
        refs += n
    readme = [
        "# Example product\n",
        "A generated repository for the vision-path benchmark.\n",
        "## Design\n",
        "The [design overview](docs/design/overview.pdf) has the architecture on three pages.\n",
        "## Guides\n",
    ]
    readme += [f"- [{t.title()}](docs/{t}.md)" for t in TOPICS]
    write(root / "README.md", ("\n".join(readme) + "\n").encode())
    refs += 1
    write(root / "src/app.py", b'def main() -> None:\n    print("hello")\n')
    docs = len(TOPICS) + 1

    print(f"wrote {root}")
    for kind, n in sorted(written.items()):
        print(f"  {n:5d} {kind}")
    print(f"  {docs:5d} Markdown documents with {refs} picture references")
    print(f"  {total_bytes / 1e6:.1f} MB of pictures")
    print(f"index it with: codesearch index {root}")
    return [(rel, alt) for items in pictures.values() for rel, alt, _ in items]


def guide(rnd: random.Random, topic: str, items: list[tuple[str, str, str]]) -> tuple[str, int]:
    """A Markdown guide for one topic: sections of prose around references to its pictures."""
    words = TOPICS[topic]
    lines = [f"# The {topic} module\n", sentence(rnd, words, topic) + "\n"]
    refs = 0
    definitions = []
    for j, (rel, alt, view) in enumerate(items):
        target = rel.removeprefix("docs/")  # relative to docs/<topic>.md
        if j % 3 == 0:
            lines.append(f"## {alt.split(' of ')[0]}\n")
        lines.append(" ".join(sentence(rnd, words, topic) for _ in range(rnd.randint(2, 4))) + "\n")
        style = j % 4
        if style == 0:
            lines.append(f'![{alt}]({target} "{view.title()}")\n')
        elif style == 1:
            label = f"fig{j}"
            lines.append(f"![{alt}][{label}]\n")
            definitions.append(f"[{label}]: {target}")
        elif style == 2:
            lines.append(f'<p align="center"><img src="{target}" alt="{alt}" width="600"></p>\n')
        else:
            lines.append(f"See [the {view}]({target}) for {alt.lower()}.\n")
        refs += 1
    page = rnd.randint(1, 3)
    lines.append(
        f"The full picture is in the [design overview](design/overview.pdf#page={page}).\n"
    )
    refs += 1
    lines += ["", *definitions, ""]
    return "\n".join(lines), refs


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--make", metavar="DIR", type=Path, required=True, help="folder to create")
    parser.add_argument("--count", type=int, default=200, help="number of pictures (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--index", action="store_true", help="then index it (MiniLM, CPU) and print timings"
    )
    parser.add_argument("--json-out", type=Path, help="with --index: write the numbers here")
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be at least 1")
    described = make(args.make, args.count, args.seed)
    if args.index:
        measure(args.make, described, args.json_out)


def measure(root: Path, described: list[tuple[str, str]], json_out: Path | None) -> None:
    """Index ROOT in-process with the CPU default (MiniLM, text fallback) in a fresh data dir,
    with pictures and without (the difference is what pictures cost), then ask each
    referenced picture's alt text and count how often it comes back in the top 10."""
    import json
    import os
    import tempfile
    import time

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from codesearch.config import load_settings
    from codesearch.embed import load_embedder
    from codesearch.index import Indexer
    from codesearch.search import Searcher, SearchOptions
    from codesearch.store import Store

    embedder = load_embedder("minilm")
    embedder.embed_documents(["warm up"])
    runs = {}
    for label, images in (("without pictures", "0"), ("with pictures", "1")):
        os.environ["CODESEARCH_IMAGES"] = images
        home = Path(tempfile.mkdtemp(prefix="bench-images-home-"))
        settings = load_settings(home)
        started = time.perf_counter()
        with Store.open(settings.index_path(root), create=True) as store:
            stats = Indexer(root, store, embedder, settings).run()
            pictures, waiting = store.picture_counts()
        seconds = time.perf_counter() - started
        runs[label] = {
            "seconds": round(seconds, 2),
            "files": stats.files_seen,
            "chunks": stats.chunks_total,
            "pictures": pictures,
            "skipped": len(stats.skipped),
        }
        print(
            f"{label:17} {seconds:6.1f} s  {stats.files_seen} files, "
            f"{stats.chunks_total} chunks, {pictures} pictures ({waiting} text only)"
        )
    extra = runs["with pictures"]["seconds"] - runs["without pictures"]["seconds"]
    per = extra / max(runs["with pictures"]["pictures"], 1)
    print(f"pictures cost {extra:.1f} s, {per * 1000:.0f} ms per picture")
    found, rr = 0, 0.0
    with Store.open(settings.index_path(root)) as store:
        searcher = Searcher(store, embedder)
        for rel, alt in described:
            hits = searcher.search(alt, SearchOptions(k=10))
            ranks = [i for i, h in enumerate(hits, 1) if h.path == rel]
            if ranks:
                found += 1
                rr += 1 / ranks[0]
    n = max(len(described), 1)
    print(f"alt text -> picture: {found}/{len(described)} in the top 10, MRR@10 {rr / n:.3f}")
    result = {
        "benchmark": "pictures-text-fallback",
        "model": embedder.model_id,
        "runs": runs,
        "picture_cost_s": round(extra, 2),
        "ms_per_picture": round(per * 1000, 1),
        "alt_queries": len(described),
        "alt_found_top10": found,
        "alt_mrr10": round(rr / n, 3),
        "cpus": os.cpu_count(),
    }
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
