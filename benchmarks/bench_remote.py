"""Throughput of the remote backend against the same model in-process, on the same chunks.

    .venv/bin/python benchmarks/bench_remote.py [--corpus DIR] [--chunks 3000]
        [--concurrency 1,2,4] [--batch 32] [--url URL --model NAME] [--out FILE]

The corpus is chunked once with the in-process all-MiniLM-L6-v2's tokenizer and each chunk cut
to its first ``--tokens`` tokens (the local backend reads 128 with the special tokens, infinity
256), so both sides embed exactly the same texts and neither truncates them.
Then: chunks/s of the packaged MiniLM in this process (as the local backend runs it: bf16 where
the CPU has native bf16, and in fp32 like the server), and chunks/s of ``remote`` against
infinity-emb serving the same folder on CPU in fp32 (started here from .venv-infinity, see
tests/infinity/setup.sh), once per concurrency; each remote run uses a fresh embedder, so
nothing comes from its cache. The vectors of both sides are compared (cosine). With ``--url``
an already running server is measured instead (its key in $CODESEARCH_REMOTE_API_KEY).

On one machine client and server share the CPU: this measures the protocol's overhead and the
server's batching, not a GPU box's speed (docs/scale.md has the arithmetic for that).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from codesearch.config import Settings  # noqa: E402
from codesearch.embed import load_embedder  # noqa: E402
from codesearch.embed.minilm.embedder import TransformersEmbedder  # noqa: E402
from codesearch.embed.minilm.files import MINILM_MAX_TOKENS, packaged_minilm_dir  # noqa: E402
from codesearch.embed.remote.backend import load_remote  # noqa: E402
from codesearch.embed.remote.embedder import RemoteEmbedder  # noqa: E402
from codesearch.embed.remote.transport import display_url  # noqa: E402
from codesearch.index import prepare_chunks  # noqa: E402
from codesearch.paths import read_source, walk  # noqa: E402

DEFAULT_CORPUS = Path.home() / ".cache/codesearch-eval/prepared/django/unstripped"
WARMUP = [f"def warmup_{i}(x):\n    return x + {i}" for i in range(64)]


def cut(text: str, embedder: Any, tokens: int) -> str:
    """``text`` up to the end of its ``tokens``-th token (the MiniLM tokenizer's offsets)."""
    offsets = embedder._counter.encode(text, add_special_tokens=False).offsets
    return text if len(offsets) <= tokens else text[: offsets[tokens - 1][1]]


def corpus_texts(root: Path, limit: int, embedder: Any, tokens: int) -> list[str]:
    """The embed texts of the first ``limit`` chunks of ``root`` (files in path order)."""
    settings = Settings(home=Path(tempfile.mkdtemp()))
    texts: list[str] = []
    for source in sorted(walk(root, settings).files, key=lambda f: f.path):
        text, _ = read_source(root, source.path, settings)
        if text is None:
            continue
        chunks = prepare_chunks(source.path, text, embedder)
        texts.extend(cut(c.embed_text(), embedder, tokens) for c in chunks)
        if len(texts) >= limit:
            break
    return list(dict.fromkeys(texts))[:limit]  # distinct: the remote cache never helps


def timed(embed: Any, texts: list[str]) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    vectors = embed(texts)
    return time.perf_counter() - start, vectors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--chunks", type=int, default=3000)
    ap.add_argument("--concurrency", default="1,2,4")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=120, help="each chunk cut to this many tokens")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (slices)")
    ap.add_argument("--url", default="", help="measure this server instead of a local infinity")
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/remote.json")
    args = ap.parse_args()

    os.environ["CODESEARCH_HOME"] = tempfile.mkdtemp()
    local = load_embedder("minilm", batch_size=args.batch)
    texts = corpus_texts(args.corpus, args.chunks, local, args.tokens)
    tokens = sum(local.count_tokens(t) for t in texts)
    print(f"{len(texts)} chunks, {tokens} tokens ({tokens / len(texts):.0f} per chunk)")

    fp32 = TransformersEmbedder(
        packaged_minilm_dir() or "",
        batch_size=args.batch,
        precision="fp32",
        max_tokens=MINILM_MAX_TOKENS,
    )
    server = None
    url = args.url
    if not url:
        from infinity_server import InfinityServer

        log = Path(tempfile.mkdtemp()) / "infinity.log"
        started = time.perf_counter()
        server = InfinityServer(log).start()
        url = server.url
        print(f"infinity started in {time.perf_counter() - started:.1f} s at {url}")
    os.environ["CODESEARCH_REMOTE_URL"] = url
    os.environ["CODESEARCH_REMOTE_MODEL"] = args.model
    os.environ["CODESEARCH_REMOTE_BATCH_SIZE"] = str(args.batch)
    levels = [int(c) for c in args.concurrency.split(",")]

    def remote(concurrency: int) -> RemoteEmbedder:
        """A fresh remote embedder (an empty cache), made before the clock starts."""
        os.environ["CODESEARCH_REMOTE_CONCURRENCY"] = str(concurrency)
        made = load_remote("remote", batch_size=args.batch)
        assert isinstance(made, RemoteEmbedder)
        return made

    configs: dict[str, Callable[[], Any]] = {
        f"in-process {local.precision}": lambda: local,
        "in-process fp32": lambda: fp32,
        **{f"remote c={c}": partial(remote, c) for c in levels},
    }
    counts = dict.fromkeys(configs, 0)
    seconds = dict.fromkeys(configs, 0.0)
    vectors: dict[str, list[np.ndarray]] = {name: [] for name in configs}
    # interleaved: every configuration embeds each slice in turn, so load from other work on
    # the machine falls on all of them alike
    slices = [texts[i :: args.rounds] for i in range(args.rounds)]
    try:
        for make in configs.values():
            make().embed_documents(WARMUP)
        for n, part in enumerate(slices, 1):
            for name, make in configs.items():
                embedder = make()
                took, got = timed(embedder.embed_documents, part)
                seconds[name] += took
                vectors[name].append(got)
                if isinstance(embedder, RemoteEmbedder):
                    counts[name] += embedder.requests - 1  # not the probe
                    embedder.close()
            print(
                f"round {n}/{args.rounds}: "
                + ", ".join(f"{name} {len(part) / (seconds[name] / n):.1f}" for name in configs)
            )
    finally:
        if server is not None:
            server.stop()

    rate = {name: round(len(texts) / seconds[name], 1) for name in configs}
    reference = np.concatenate(vectors["in-process fp32"])
    runs = []
    for c in levels:
        name = f"remote c={c}"
        cosine = (np.concatenate(vectors[name]) * reference).sum(axis=1)
        runs.append(
            {
                "concurrency": c,
                "batch": args.batch,
                "seconds": round(seconds[name], 2),
                "chunks_per_s": rate[name],
                "requests": counts[name],
                "cosine_to_in_process_fp32_min": round(float(cosine.min()), 6),
            }
        )
        print(f"{name}: {rate[name]} chunks/s, cosine to in-process fp32 min {cosine.min():.5f}")
    for name in list(configs)[:2]:
        print(f"{name}: {rate[name]} chunks/s")
    best = max(runs, key=lambda r: r["chunks_per_s"])
    result = {
        "corpus": str(args.corpus),
        "chunks": len(texts),
        "tokens": tokens,
        "tokens_per_chunk_max": args.tokens,
        "rounds": args.rounds,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (client and server share them)",
        "server": "infinity-emb 0.0.78, --engine torch --device cpu (fp32)"
        if server
        else display_url(url),
        "in_process": {
            "precision": local.precision,
            "chunks_per_s": rate[f"in-process {local.precision}"],
            "fp32_chunks_per_s": rate["in-process fp32"],
        },
        "remote": runs,
        "best_remote_vs_in_process_fp32": round(best["chunks_per_s"] / rate["in-process fp32"], 2),
        "best_remote_vs_in_process": round(
            best["chunks_per_s"] / rate[f"in-process {local.precision}"], 2
        ),
        "note": "one shared 2-core machine: client and server compete for the CPU, and other "
        "work ran on it; the configurations are interleaved in rounds to share that load",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
