"""KNN latency of the store: vec0's brute-force scan against the in-memory vector cache.

    .venv/bin/python benchmarks/bench_knn.py [--n 75000] [--dim 384] [--queries 200] [--k 10]

Builds a synthetic index of N random unit vectors (one chunk each, 50 chunks per file, through
``Store.replace_file``) in a temporary folder, then prints p50/p95 milliseconds of
``Store.knn`` without and with ``vector_cache``, unfiltered and with a language filter, the
cache's load time and size, and the cost of the refresh after another connection writes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from codesearch.store import Store
from codesearch.types import Chunk, FileState, Filters

LANGUAGES = ("python", "go", "rust", "typescript")
PER_FILE = 50


def build(path: Path, n: int, dim: int, rng: np.random.Generator) -> None:
    with Store.open(path, create=True) as store:
        store.configure(model_id="bench", dim=dim, chunker_version="bench")
        for f in range(0, n, PER_FILE):
            add_file(store, f"src/m{f // PER_FILE}.py", f, min(PER_FILE, n - f), dim, rng)


def add_file(
    store: Store, rel: str, first: int, count: int, dim: int, rng: np.random.Generator
) -> None:
    language = LANGUAGES[(first // PER_FILE) % len(LANGUAGES)]
    chunks = [
        Chunk(rel, language, "function", f"f{first + i}", i + 1, i + 1, f"def f{first + i}(): ...")
        for i in range(count)
    ]
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    state = FileState(rel, 1, 1, f"{rel}-{first}")
    store.replace_file(
        state, chunks, {c.content_hash: v for c, v in zip(chunks, vectors, strict=True)}
    )


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def percentiles(ms: list[float]) -> str:
    p95 = statistics.quantiles(ms, n=20)[-1] if len(ms) > 1 else ms[0]
    return f"p50 {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=75_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index.sqlite"
        ms = timed(lambda: build(path, args.n, args.dim, rng))
        print(f"built {args.n} x {args.dim} in {ms / 1000:.1f} s")
        queries = rng.standard_normal((args.queries, args.dim)).astype(np.float32)

        plain = Store.open(path)
        start = time.perf_counter()
        cached = Store.open(path, vector_cache=True)
        load_ms = (time.perf_counter() - start) * 1000
        cache = cached._cache
        assert cache is not None
        mib = cache.nbytes / 2**20
        print(f"cache: loaded {len(cache)} vectors in {load_ms:.0f} ms, {mib:.0f} MiB")

        for label, filters in (
            ("unfiltered", Filters()),
            ("language filter", Filters(languages=("go",))),
        ):
            for q in queries[:3]:  # the same answers (ties aside)
                a = plain.knn(q, args.k, filters)
                b = cached.knn(q, args.k, filters)
                assert [c for c, _ in a] == [c for c, _ in b], (a, b)
                assert np.allclose([d for _, d in a], [d for _, d in b], atol=1e-5)
            for name, store in (("vec0 ", plain), ("cache", cached)):
                ms_list = []
                for q in queries:
                    start = time.perf_counter()
                    store.knn(q, args.k, filters)
                    ms_list.append((time.perf_counter() - start) * 1000)
                print(f"knn k={args.k} {label:15} {name}  {percentiles(ms_list)}")

        writer = Store.open(path)
        add_file(writer, "src/new.py", args.n, PER_FILE, args.dim, rng)
        ms = timed(lambda: cached.knn(queries[0], args.k))
        print(f"first knn after another connection added {PER_FILE} vectors: {ms:.1f} ms")
        writer.remove_file("src/new.py")
        writer.prune_orphan_vectors(keep=0)
        ms = timed(lambda: cached.knn(queries[0], args.k))
        print(f"first knn after another connection deleted {PER_FILE} vectors: {ms:.1f} ms")
        for store in (writer, plain, cached):
            store.close()


if __name__ == "__main__":
    main()
