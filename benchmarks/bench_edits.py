"""Does an index grow without bound under edits? Size after many edit cycles vs a fresh index.

    .venv/bin/python benchmarks/bench_edits.py PATH [--cycles 1000] [--files 3] [--model M]
        [--json-out OUT.json]

Copies PATH (a small repository) to a temporary folder and indexes it in a temporary
CODESEARCH_HOME. Each cycle then edits --files random source files (a new function appended,
or the one appended before removed again, so the tree keeps its size) and updates the index
the way `codesearch index` does. At the end the same final tree is indexed from scratch, and
the two files are compared (bytes on disk after the last connection closed: the database and
its write-ahead log). Prints the sizes every 100 cycles, then the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

SOURCE_SUFFIXES = (".py", ".go", ".js", ".ts", ".rs", ".java", ".c", ".h")


def _bytes(index: Path) -> int:
    return sum(
        Path(f"{index}{suffix}").stat().st_size
        for suffix in ("", "-wal")
        if Path(f"{index}{suffix}").exists()
    )


def _edit(path: Path, cycle: int) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    marker = "\n# bench_edits: appended\n"
    if marker in text:
        path.write_text(text.split(marker, 1)[0], encoding="utf-8")
        return
    body = "".join(f"    total += step_{cycle}_{i}(value)\n" for i in range(12))
    extra = f"{marker}def edited_{cycle}(value):\n    total = 0\n{body}    return total\n"
    path.write_text(text + extra, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path", type=Path)
    p.add_argument("--cycles", type=int, default=1000)
    p.add_argument("--files", type=int, default=3, help="files edited per cycle")
    p.add_argument("--model", default="minilm-code")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json-out")
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-edits-"))
    os.environ["CODESEARCH_HOME"] = str(work / "home")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from codesearch.config import load_settings
    from codesearch.embed import load_embedder
    from codesearch.engine import index_repo

    repo = work / "repo"
    shutil.copytree(a.path, repo, symlinks=True)
    settings = load_settings()
    embedder = load_embedder(a.model)
    sources = sorted(f for f in repo.rglob("*") if f.is_file() and f.suffix in SOURCE_SUFFIXES)
    if not sources:
        print(f"no source files under {a.path}", file=sys.stderr)
        return 2
    rng = random.Random(a.seed)
    index = settings.index_path(repo)
    start = time.perf_counter()
    first = index_repo(repo, settings, embedder=embedder, model=a.model)
    sizes = [(0, _bytes(index))]
    print(f"fresh index: {first.chunks_total} chunks, {sizes[0][1]:,} bytes", flush=True)
    for cycle in range(1, a.cycles + 1):
        for f in rng.sample(sources, min(a.files, len(sources))):
            _edit(f, cycle)
        index_repo(repo, settings, embedder=embedder, model=a.model)
        if cycle % 100 == 0 or cycle == a.cycles:
            sizes.append((cycle, _bytes(index)))
            print(f"cycle {cycle}: {sizes[-1][1]:,} bytes", flush=True)
    edited = _bytes(index)
    fresh_home = work / "fresh"
    os.environ["CODESEARCH_HOME"] = str(fresh_home)
    fresh_settings = load_settings()
    final = index_repo(repo, fresh_settings, embedder=embedder, model=a.model)
    fresh = _bytes(fresh_settings.index_path(repo))
    result = {
        "path": str(a.path),
        "model": embedder.model_id,
        "cycles": a.cycles,
        "files_per_cycle": a.files,
        "chunks": final.chunks_total,
        "edited_bytes": edited,
        "fresh_bytes": fresh,
        "ratio": round(edited / fresh, 3),
        "sizes": sizes,
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(
        f"after {a.cycles} cycles: {edited:,} bytes; a fresh index of the same tree: "
        f"{fresh:,} bytes; ratio {result['ratio']}"
    )
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
