"""How the chunker cuts a tree: chunks, parts of split definitions, one-line and small parts.

    .venv/bin/python benchmarks/chunk_stats.py TREE [TREE ...] [--model minilm]

Chunks every file the indexer would read (same discovery, same token counter as the model's),
without embedding anything, and prints per tree: chunks, definitions split into parts, the
share of chunks that are parts, parts of one line, and parts under the fold threshold of
``codesearch.chunk.pieces`` (what ``fold_small`` joins to a neighbour). Run it with
``PYTHONPATH`` pointing at another checkout to compare two chunkers on the same trees.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path


def stats(root: Path, embedder: object) -> dict[str, float]:
    from codesearch.chunk import chunk_file
    from codesearch.config import load_settings
    from codesearch.paths import walk

    settings = load_settings()
    max_tokens = int(embedder.max_tokens)  # type: ignore[attr-defined]
    count = embedder.count_tokens  # type: ignore[attr-defined]
    chunks = []
    for source in walk(root, settings).files:
        try:
            text = source.abs_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        chunks.extend(chunk_file(source.path, text, max_tokens=max_tokens, count_tokens=count))
    parts = [c for c in chunks if "(part " in c.header.split("\n", 1)[0]]
    split = Counter((c.path, c.name, c.header.split("\n", 1)[-1]) for c in parts)
    one_line = [c for c in parts if c.start_line == c.end_line]
    budget = max_tokens * 0.25
    small = [c for c in parts if count(c.text) < budget]
    return {
        "chunks": len(chunks),
        "split definitions": len(split),
        "parts": len(parts),
        "parts %": round(100 * len(parts) / max(len(chunks), 1), 1),
        "one-line parts": len(one_line),
        "parts < 1/4 budget": len(small),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs="+", type=Path)
    ap.add_argument("--model", default="minilm")
    args = ap.parse_args(argv)
    from codesearch.embed import load_embedder

    embedder = load_embedder(args.model)
    rows = [(tree, stats(tree, embedder)) for tree in args.trees]
    keys = list(rows[0][1])
    print("| tree | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for tree, row in rows:
        print(
            f"| {tree.name if tree.name not in ('unstripped', 'stripped') else tree.parent.name}"
            f" | " + " | ".join(str(row[k]) for k in keys) + " |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
