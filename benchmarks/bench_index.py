"""Indexing and query speed on one repository, with the embedder's share separated out.

    .venv/bin/python benchmarks/bench_index.py PATH [--model minilm] [--sample N] [--queries FILE]

Prints, for a fresh index of PATH (in a temporary CODESEARCH_HOME):
- end-to-end chunks/s and files/s, and the time spent inside the embedder;
- the pipeline's cost on top of the embedder (walk, read, chunk, hash, store), in % of the
  embedder's time;
- the embedder's raw chunks/s on a random sample of the same chunks (no pipeline around it);
- p50/p95 latency of warm in-process searches (the model already loaded);
- index size on disk against the size of the indexed source files.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from codesearch.embed import Embedder

DEFAULT_QUERIES = [
    "where is the database connection opened",
    "parse a date from a string",
    "validate an email address",
    "render a template with a context",
    "handle a file upload",
    "hash a password",
    "migrate the database schema",
    "send an email",
    "cache a value with a timeout",
    "check user permissions",
    "serialize an object to json",
    "escape html in user input",
    "build the sql for a join",
    "read settings from environment",
    "paginate a list of results",
    "compress the response with gzip",
    "set a cookie on the response",
    "translate a message into the active language",
    "where are signals sent after saving a model",
    "format a number with thousands separators",
]


class TimedEmbedder(Embedder):
    """Wraps an embedder (as a plain text model: no tasks, no pictures) and adds up the wall
    time spent embedding documents."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.max_tokens = inner.max_tokens
        self.seconds = 0.0
        self.documents = 0

    def embed_batch(self, texts: Sequence[str], *, query: bool, task: str | None) -> np.ndarray:
        if query:
            return self.inner.embed_queries(texts)
        start = time.perf_counter()
        out = self.inner.embed_documents(texts)
        self.seconds += time.perf_counter() - start
        self.documents += len(texts)
        return out

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("path", type=Path)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--sample", type=int, default=2000, help="chunks for the raw embedder run")
    ap.add_argument("--queries", type=Path, help="one query per line (default: a built-in set)")
    ap.add_argument("--repeat", type=int, default=5, help="passes over the queries")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="codesearch-bench-"))
    os.environ["CODESEARCH_HOME"] = str(home)
    from codesearch.config import load_settings
    from codesearch.embed import load_embedder
    from codesearch.engine import RepoSearch, index_repo
    from codesearch.search import SearchOptions
    from codesearch.store import Store

    settings = load_settings()
    t0 = time.perf_counter()
    embedder = TimedEmbedder(load_embedder(args.model))
    load_s = time.perf_counter() - t0

    print(f"indexing {args.path} with {embedder.model_id} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    stats = index_repo(args.path, settings, embedder=embedder)
    total_s = time.perf_counter() - t0
    pipeline_s = total_s - embedder.seconds

    root = args.path.resolve()
    index_path = settings.index_path(root)
    with Store.open(index_path) as store:
        source_bytes = sum(s.size for s in store.file_states().values())
        texts = list({c.chunk.embed_text() for c in store.all_chunks()})
    index_bytes = sum(
        Path(f"{index_path}{s}").stat().st_size
        for s in ("", "-wal", "-shm")
        if Path(f"{index_path}{s}").exists()
    )

    rng = random.Random(0)
    sample = rng.sample(texts, min(args.sample, len(texts)))
    t0 = time.perf_counter()
    embedder.inner.embed_documents(sample)
    raw_s = time.perf_counter() - t0

    queries = (
        [q for q in args.queries.read_text().splitlines() if q.strip()]
        if args.queries
        else DEFAULT_QUERIES
    )
    latencies: list[float] = []
    with RepoSearch(root, settings, embedder=embedder.inner) as repo:
        repo.search_many([queries[0]], SearchOptions())  # warm up
        for _ in range(args.repeat):
            for q in queries:
                t0 = time.perf_counter()
                repo.search_many([q], SearchOptions(k=10))
                latencies.append((time.perf_counter() - t0) * 1000)
    latencies.sort()

    result = {
        "repo": str(root),
        "model": embedder.model_id,
        "model_load_s": round(load_s, 2),
        "files": stats.files_seen,
        "skipped": len(stats.skipped),
        "chunks": stats.chunks_total,
        "chunks_embedded": stats.chunks_embedded,
        "index_s": round(total_s, 1),
        "embed_s": round(embedder.seconds, 1),
        "pipeline_s": round(pipeline_s, 1),
        "pipeline_overhead_pct": round(100 * pipeline_s / max(embedder.seconds, 1e-9), 1),
        "end_to_end_chunks_per_s": round(stats.chunks_embedded / total_s, 2),
        "embedder_in_pipeline_chunks_per_s": round(embedder.documents / embedder.seconds, 2)
        if embedder.seconds
        else None,
        "raw_embedder_sample": len(sample),
        "raw_embedder_chunks_per_s": round(len(sample) / raw_s, 2) if raw_s else None,
        "query_p50_ms": round(statistics.median(latencies), 1),
        "query_p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
        "queries_timed": len(latencies),
        "source_mb": round(source_bytes / 1e6, 2),
        "index_mb": round(index_bytes / 1e6, 2),
        "index_to_source": round(index_bytes / max(source_bytes, 1), 2),
    }
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
