"""What an index costs on disk, by part: bytes per chunk for vectors, text, full-text index and
metadata, measured on an index file, and what the same index would take at other vector sizes.

    .venv/bin/python benchmarks/index_cost.py INDEX.sqlite [--source-bytes N] [--json-out F]
    .venv/bin/python benchmarks/index_cost.py --repo PATH      # the index codesearch keeps for PATH
    .venv/bin/python benchmarks/index_cost.py --build PATH     # index PATH afresh, then measure

``--build`` indexes PATH in a temporary data dir with the default model's tokenizer and chunker
but random unit vectors in place of the model's: an int8 vector takes its dimension in bytes
whatever its values, so the file is the size the real index has, in a minute instead of django's
16 (`--model` picks another model's chunking and dimension). The source size for the ratio is
then the bytes of the files indexed.

Reads SQLite's page statistics (the dbstat table: every page of every table and index) and
splits them into:
- vector: the vec0 table's pages (int8 codes, or float32 in an index not converted yet);
- text: the chunk rows' share that is chunk text and header (by their bytes in the rows;
  zlib-compressed since schema 5; the table is `chunk_rows` since schema 6, `chunks` before);
- fts: the FTS5 full-text index (contentless: it holds terms and positions, not the text);
- metadata: the rest of the chunk rows (file, lines, names) and every other table and index
  (files, vector keys, their indexes).

The vector part is then re-estimated for 384, 1024 and 2048 dims at one byte per dimension plus
vec0's per-vector bookkeeping, so a user can predict the size of an index for each model:
bytes = chunks x (vector(dims) + text + fts + metadata).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

VEC0_PER_VECTOR = 8.125  # rowid and validity bit per vector in a vec0 block


def measure(index: Path) -> dict[str, Any]:
    import sqlean
    import sqlite_vec

    conn = sqlean.connect(f"file:{index}?mode=ro", uri=True)
    conn.enable_load_extension(True)
    sqlite_vec.load(conn)
    (chunks,) = conn.execute("SELECT count(*) FROM chunks").fetchone()
    (vectors,) = conn.execute("SELECT count(*) FROM vectors").fetchone()
    (dim,) = conn.execute("SELECT value FROM meta WHERE key = 'dim'").fetchone()
    (table_sql,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'vec_chunks'"
    ).fetchone()
    fmt = "int8" if "int8[" in table_sql else "float32"
    pages = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
    table = "chunk_rows" if "chunk_rows" in pages else "chunks"  # schema 6: chunks is a view
    columns = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
    if "body" in columns:  # schema 5: header and text compressed together, no key copy
        text_sql, other_sql = "length(body)", "0"
    else:
        text_sql = "length(CAST(text AS BLOB)) + length(CAST(header AS BLOB))"
        other_sql = "length(hash)"
    path_sql = "length(path)" if "path" in columns else "8"  # schema 6: a file id
    text_bytes, row_bytes = conn.execute(
        f"SELECT sum({text_sql}), sum({text_sql} + {other_sql} + {path_sql} + length(name) "
        f"+ length(language) + length(kind) + length(media) + 24) FROM {table}"
    ).fetchone()
    conn.close()
    parts = {"vector": 0, "text": 0, "fts": 0, "metadata": 0}
    for name, size in pages.items():
        if name.startswith("vec_chunks"):
            parts["vector"] += size
        elif name.startswith("chunks_fts"):
            parts["fts"] += size
        elif name == table:
            share = (text_bytes or 0) / max(row_bytes or 1, 1)
            parts["text"] += int(size * share)
            parts["metadata"] += size - int(size * share)
        else:
            parts["metadata"] += size
    n = max(int(chunks), 1)
    per_chunk = {k: round(v / n, 1) for k, v in parts.items()}
    dims = int(dim)
    bytes_per_dim = 4 if fmt == "float32" else 1
    # vec0 keeps vectors in blocks of 1,024 slots (a blob per block, 8-byte rowids, a validity
    # bit each): at scale a vector costs its bytes plus ~8; a small index carries a block's
    # empty slots, so the measured part above is larger than the prediction below
    share = int(vectors) / n  # vectors per chunk (identical chunks share one)
    rest = per_chunk["text"] + per_chunk["fts"] + per_chunk["metadata"]
    model = {str(d): round((d + VEC0_PER_VECTOR) * share + rest, 1) for d in (384, 1024, 2048)}
    overhead = per_chunk["vector"] * n / max(int(vectors), 1) - dims * bytes_per_dim
    return {
        "index": str(index),
        "chunks": int(chunks),
        "vectors": int(vectors),
        "dim": dims,
        "vector_format": fmt,
        "file_bytes": index.stat().st_size,
        "bytes_per_chunk": per_chunk,
        "total_per_chunk": round(sum(parts.values()) / n, 1),
        "vector_overhead_per_vector": round(overhead, 1),
        "predicted_bytes_per_chunk_int8": model,
    }


def _build(tree: Path, model: str) -> tuple[Path, int]:
    """Index ``tree`` in a temporary data dir with ``model``'s chunking and random vectors;
    return the index file and the bytes of the files it holds."""
    import tempfile
    import time

    import numpy as np
    import sqlean

    from codesearch.config import load_settings
    from codesearch.embed import load_embedder
    from codesearch.engine import index_repo
    from codesearch.paths import resolve_root

    embedder = load_embedder(model)
    rng = np.random.default_rng(0)

    def random_vectors(texts: Any, *, query: bool, task: Any) -> np.ndarray:
        v = rng.standard_normal((len(texts), embedder.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    embedder.embed_batch = random_vectors  # type: ignore[method-assign]
    settings = load_settings(Path(tempfile.mkdtemp(prefix="index-cost-")))
    started = time.monotonic()
    stats = index_repo(tree, settings, embedder=embedder)
    print(
        f"indexed {stats.files_indexed:,} files, {stats.chunks_total:,} chunks in "
        f"{time.monotonic() - started:.0f} s (random vectors)"
    )
    index = settings.index_path(resolve_root(tree))
    conn = sqlean.connect(str(index))
    (source,) = conn.execute("SELECT sum(size) FROM files").fetchone()
    conn.close()
    return index, int(source)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("index", nargs="?", type=Path)
    p.add_argument("--repo", type=Path, help="measure the index codesearch keeps for this repo")
    p.add_argument("--build", type=Path, help="index this tree afresh (random vectors), measure it")
    p.add_argument("--model", default="minilm-code", help="with --build: whose chunking and dim")
    p.add_argument("--source-bytes", type=int, help="indexed source size, for the ratio")
    p.add_argument("--json-out")
    a = p.parse_args(argv)
    if a.repo:
        from codesearch.config import load_settings
        from codesearch.paths import resolve_root

        a.index = load_settings().index_path(resolve_root(a.repo))
    if a.build:
        a.index, a.source_bytes = _build(a.build, a.model)
    if a.index is None or not a.index.is_file():
        print(f"no index file: {a.index}", file=sys.stderr)
        return 2
    result = measure(a.index)
    file_bytes = a.index.stat().st_size
    if a.source_bytes:
        result["source_bytes"] = a.source_bytes
        result["ratio"] = round(file_bytes / a.source_bytes, 2)
    per: dict[str, float] = result["bytes_per_chunk"]
    model: dict[str, float] = result["predicted_bytes_per_chunk_int8"]
    print(
        f"{result['chunks']:,} chunks, {result['vectors']:,} vectors of {result['dim']} dims "
        f"({result['vector_format']}), file {file_bytes:,} bytes"
    )
    parts = ", ".join(f"{k} {v}" for k, v in per.items())
    print(f"bytes per chunk: {parts}; total {result['total_per_chunk']}")
    print(
        "predicted bytes per chunk at 384 / 1024 / 2048 dims (int8): "
        + " / ".join(str(v) for v in model.values())
    )
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
