"""How much the dev eval's MRR@10 moves by chance when the vectors carry bf16-sized noise.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/noise_floor.py [--seeds 20] [--sigma auto]
        [--queries FILE ...] [--json-out FILE]

bf16 inference (torch's autocast or OpenVINO's) gives vectors within a cosine of about 0.99999
of fp32 ones, and that is enough to swap two answers whose fused scores lie 0.2 % apart. With
12-15 hand-written questions a corpus, one such swap at rank 1 is 0.03-0.04 MRR, beyond the
0.005 of issue 17's floor. This script measures how often that happens to noise alone:

1. ``--sigma auto``: the similarity error of bf16 (question x chunk cosines of the torch bf16
   runtime against fp32, the hand-written questions against 512 chunks of the first corpus)
   gives the noise per dimension: sigma = rms / sqrt(2) (a question and a chunk each carry it).
2. Every corpus of the questions, both variants: indexed with fp32 vectors (the exact runtime),
   then again once per seed with each vector (chunks and questions) moved by Gaussian noise of
   that sigma and normalised, stored and searched as codesearch stores and searches them
   (in process, as `codesearch search --no-daemon`), and scored with run_eval.py's own metric.
   Seed 0 is the control (no noise): it must give the eval's fp32 numbers.
3. Per corpus and variant: the MRR of the control, and over the seeds the mean, lowest and
   highest MRR change and how many seeds moved it by more than 0.005; then how many seeds kept
   every corpus and variant within 0.005 (the floor as written).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(EVAL))

import corpus as corpus_mod  # noqa: E402
import run_eval  # noqa: E402
from bench_embed_runtime import chunk_texts, runtime_embedder  # noqa: E402

from codesearch.config import load_settings  # noqa: E402
from codesearch.embed import Embedder  # noqa: E402
from codesearch.engine import RepoSearch, index_repo  # noqa: E402
from codesearch.search import SearchOptions  # noqa: E402

MODEL = "minilm-code"
FLOOR = 0.005


class Noisy(Embedder):
    """The fp32 vectors of ``inner`` (each text embedded once, for every seed), each moved by
    Gaussian noise of ``sigma`` per dimension drawn from (seed, text, question or not), then
    normalised. ``sigma`` 0 gives the fp32 vectors themselves."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id, self.dim, self.max_tokens = inner.model_id, inner.dim, inner.max_tokens
        self.preferred_group = inner.preferred_group
        self.seed, self.sigma = 0, 0.0
        self._memo: dict[tuple[str, bool], np.ndarray] = {}

    def embed_batch(self, texts: Sequence[str], *, query: bool, task: str | None) -> np.ndarray:
        todo = sorted({t for t in texts if (t, query) not in self._memo})
        if todo:
            found = self.inner.embed_batch(todo, query=query, task=task)
            self._memo.update(((t, query), row) for t, row in zip(todo, found, strict=True))
        rows = np.stack([self._memo[(t, query)] for t in texts])
        if self.sigma == 0:
            return rows
        noise = np.stack([self._noise(t, query) for t in texts])
        moved = rows + noise
        return (moved / np.linalg.norm(moved, axis=1, keepdims=True)).astype(np.float32)

    def _noise(self, text: str, query: bool) -> np.ndarray:
        digest = hashlib.blake2b(f"{self.seed}\0{int(query)}\0{text}".encode(), digest_size=8)
        rng = np.random.default_rng(int.from_bytes(digest.digest(), "little"))
        return rng.standard_normal(self.dim).astype(np.float32) * self.sigma

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def similarity_rms(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """The rms difference of the question x chunk cosines of two (questions, chunks) pairs."""
    return float(np.sqrt(((a[0] @ a[1].T - b[0] @ b[1].T) ** 2).mean()))


def measure_sigma(fp32: Noisy, questions: list[str], chunks: list[str]) -> dict[str, float]:
    bf16 = runtime_embedder("torch", MODEL, "bf16")
    exact = (fp32.embed_queries(questions), fp32.embed_documents(chunks))
    rough = (bf16.embed_queries(questions), bf16.embed_documents(chunks))
    rms = similarity_rms(exact, rough)
    return {"bf16_similarity_rms": rms, "sigma": rms / math.sqrt(2)}


def run_once(tree: Path, queries: list[dict[str, Any]], embedder: Noisy) -> dict[str, Any]:
    """Index ``tree`` afresh and answer ``queries`` with ``embedder``; run_eval's metrics."""
    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(Path(home))
        index_repo(tree, settings, embedder=embedder)
        with RepoSearch(tree, settings, embedder=embedder) as repo:
            answers = repo.search_many([q["query"] for q in queries], SearchOptions(k=run_eval.K))
    results = [
        [{"path": h.path, "start_line": h.start_line, "end_line": h.end_line} for h in hits]
        for hits in answers
    ]
    return run_eval.score(queries, results)


def summarise(rows: dict[str, dict[str, Any]], seeds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"per_corpus": {}}
    within_all = [True] * seeds
    for key, row in rows.items():
        deltas = [m - row["control"] for m in row["seeds"]]
        beyond = [abs(d) > FLOOR for d in deltas]
        for i, b in enumerate(beyond):
            within_all[i] = within_all[i] and not b
        out["per_corpus"][key] = {
            "control": round(row["control"], 3),
            "delta_mean": round(float(np.mean(deltas)), 4),
            "delta_min": round(min(deltas), 3),
            "delta_max": round(max(deltas), 3),
            "seeds_beyond_floor": sum(beyond),
            "seeds_below_floor": sum(d < -FLOOR for d in deltas),
        }
    out["seeds"] = seeds
    out["seeds_within_floor_everywhere"] = sum(within_all)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--sigma", default="auto", help="noise per dimension, or auto (measured)")
    parser.add_argument(
        "--queries",
        type=Path,
        nargs="+",
        default=[EVAL / "handwritten_dev.jsonl", EVAL / "handwritten_requests.jsonl"],
    )
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    settings_toml, corpora = corpus_mod.load_corpora(str(EVAL / "corpora.toml"))
    handwritten = [q for f in args.queries for q in corpus_mod.read_jsonl(str(f))]
    names = sorted({q["corpus"] for q in handwritten})
    cache = corpus_mod.cache_dir(None)
    infos = {n: corpus_mod.prepare(corpora[n], settings_toml, cache, quiet=True) for n in names}
    embedder = Noisy(runtime_embedder("auto", MODEL, "fp32"))
    result: dict[str, Any] = {"model": MODEL, "questions": [str(f) for f in args.queries]}
    if args.sigma == "auto":
        first = Path(infos[names[0]]["unstripped"])
        texts = chunk_texts(first, MODEL)  # as the indexer hands them to the embedder
        sample = texts[:: max(1, len(texts) // 512)][:512]
        result.update(measure_sigma(embedder, [q["query"] for q in handwritten], sample))
        sigma = result["sigma"]
    else:
        sigma = result["sigma"] = float(args.sigma)
    print(f"sigma {sigma:.3g} per dimension", file=sys.stderr)
    rows: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for name in names:
        mine = [q for q in handwritten if q["corpus"] == name]
        for variant in ("stripped", "unstripped"):
            queries = run_eval.load_queries(infos[name], variant, mine)
            tree = Path(infos[name][variant])
            embedder.seed, embedder.sigma = 0, 0.0
            control = run_once(tree, queries, embedder)
            row = rows[f"{name}/{variant}"] = {"control": control["mrr"], "seeds": []}
            embedder.sigma = sigma
            for seed in range(1, args.seeds + 1):
                embedder.seed = seed
                row["seeds"].append(run_once(tree, queries, embedder)["mrr"])
            moved = [round(m - row["control"], 3) for m in row["seeds"]]
            print(
                f"{name}/{variant}: control {row['control']:.3f}, changes {moved} "
                f"({time.perf_counter() - t0:.0f} s)",
                file=sys.stderr,
            )
    result.update(summarise(rows, args.seeds))
    result["raw"] = rows
    text = json.dumps(result, indent=1)
    print(text)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
