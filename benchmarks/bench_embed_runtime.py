"""The CPU runtimes of the default model side by side, in one run: torch (bf16 autocast where
the CPU has native bf16, batches of 32: the settings before OpenVINO) against OpenVINO (one
inference stream per core, requests of 16).

    .venv/bin/python benchmarks/bench_embed_runtime.py REPO [--sample 6144] [--index] \
        [--json-out FILE]

1. The chunk texts of REPO exactly as the indexer hands them to the embedder (an index run with
   a recording embedder), then both runtimes embed the same sample of them in groups of 256
   (the indexer's group), alternating which goes first, after a warm-up: chunks/s each, the
   ratio, and the cosine of each runtime's vectors with fp32 torch's on 512 of them.
2. ``--index``: a whole `codesearch index --no-daemon REPO` per runtime, each in a child
   process with a fresh data folder (torch first, then OpenVINO; its export is made before,
   not timed): wall time, chunks/s end to end, and the child's peak RSS.

The machine's CPU features are printed with the numbers: bf16 is native only on some CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from procstat import peak_rss  # noqa: E402

from codesearch.config import load_settings  # noqa: E402
from codesearch.embed import Embedder, load_embedder  # noqa: E402
from codesearch.engine import index_repo  # noqa: E402

GROUP = 256  # the indexer's embed group (codesearch/index.py)


class Recorder(Embedder):
    """Keeps the texts it is asked to embed; answers random unit vectors (fast)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id, self.dim, self.max_tokens = inner.model_id, inner.dim, inner.max_tokens
        self.texts: list[str] = []
        self.rng = np.random.default_rng(0)

    def embed_batch(self, texts: Sequence[str], *, query: bool, task: str | None) -> np.ndarray:
        self.texts.extend(texts)
        v = self.rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def cpu_flags() -> list[str]:
    wanted = {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8", "avx512_vnni"}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return sorted(wanted & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return []


def chunk_texts(repo: Path, model: str) -> list[str]:
    recorder = Recorder(load_embedder(model))
    with tempfile.TemporaryDirectory() as home:
        index_repo(repo, load_settings(Path(home)), embedder=recorder)
    return recorder.texts


def runtime_embedder(runtime: str, model: str, precision: str | None = None) -> Embedder:
    saved = dict(os.environ)
    os.environ["CODESEARCH_EMBED_RUNTIME"] = runtime
    if precision:
        os.environ["CODESEARCH_EMBED_PRECISION"] = precision
    try:
        return load_embedder(model, batch_size=32)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def side_by_side(
    texts: list[str], model: str, sample: int, configs: list[tuple[str, str | None]]
) -> dict[str, Any]:
    """Each (runtime, precision) of ``configs`` embeds the same sample in groups of 256, the
    configurations taking turns at going first; the ratios are against the first one."""
    rng = random.Random(0)
    start = rng.randrange(0, max(1, len(texts) - sample - 2048))
    warm = texts[start : start + 1024]
    timed = texts[start + 1024 : start + 1024 + sample]
    check = texts[start + 1024 + sample : start + 1024 + sample + 512] or timed[:512]
    runtimes = {
        f"{rt}-{precision}" if precision else rt: runtime_embedder(rt, model, precision)
        for rt, precision in configs
    }
    reference = runtime_embedder("torch", model, precision="fp32").embed_documents(check)
    result: dict[str, Any] = {"texts_total": len(texts), "sample": len(timed)}
    for name, embedder in runtimes.items():
        for i in range(0, len(warm), GROUP):
            embedder.embed_documents(warm[i : i + GROUP])
        cosine = (embedder.embed_documents(check) * reference).sum(axis=1)
        result[f"{name}_cosine_vs_fp32_mean"] = round(float(cosine.mean()), 6)
        result[f"{name}_cosine_vs_fp32_min"] = round(float(cosine.min()), 6)
        result[f"{name}_precision"] = getattr(embedder, "precision", "")
    seconds = dict.fromkeys(runtimes, 0.0)
    names = list(runtimes)
    for turn, i in enumerate(range(0, len(timed), GROUP)):
        group = timed[i : i + GROUP]
        first = turn % len(names)
        for name in names[first:] + names[:first]:
            t0 = time.perf_counter()
            runtimes[name].embed_documents(group)
            seconds[name] += time.perf_counter() - t0
    for name in names:
        result[f"{name}_chunks_per_s"] = round(len(timed) / seconds[name], 1)
    base = names[0]
    for name in names[1:]:
        result[f"speedup_{name}_vs_{base}"] = round(seconds[base] / seconds[name], 3)
    return result


def index_run(repo: Path, runtime: str, model: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "CODESEARCH_HOME": home,
            "CODESEARCH_EMBED_RUNTIME": runtime,
            "CODESEARCH_MODEL": model,
            "CODESEARCH_DAEMON": "0",
            "PYTHONPATH": str(ROOT),
        }
        command = [sys.executable, "-m", "codesearch.cli", "index", "--no-daemon"]
        t0 = time.perf_counter()
        log = Path(home) / "index.log"
        with open(log, "wb") as sink:
            child = subprocess.Popen(
                [*command, str(repo)], env=env, stdout=sink, stderr=subprocess.STDOUT
            )
        peak = 0
        while child.poll() is None:  # VmHWM of the child itself (the fork's own is the parent's)
            peak = max(peak, peak_rss(child.pid))
            time.sleep(0.2)
        wall = time.perf_counter() - t0
        out = log.read_text(encoding="utf-8", errors="replace")
        # "indexed REPO: ... files (...); N chunks (...) in ...s; model ..."
        found = re.search(r"; (\d+) chunks \(", out)
        if child.returncode != 0 or found is None:
            raise SystemExit(f"index with {runtime} failed ({child.returncode}): {out[-500:]}")
    chunks = int(found.group(1))
    return {
        "runtime": runtime,
        "wall_s": round(wall, 1),
        "chunks": chunks,
        "chunks_per_s": round(chunks / wall, 1),
        "peak_rss_mb": round(peak / 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--model", default="minilm-code")
    parser.add_argument("--sample", type=int, default=6144)
    parser.add_argument("--index", action="store_true", help="also index REPO with each runtime")
    parser.add_argument(
        "--configs",
        default="torch,openvino",
        help="RUNTIME[:PRECISION],... compared with the first (default: torch,openvino; "
        "the precision the CPU picks unless given: fp32 or bf16)",
    )
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    configs = [(c.partition(":")[0], c.partition(":")[2] or None) for c in args.configs.split(",")]
    repo = args.repo.resolve()
    result: dict[str, Any] = {
        "repo": str(repo),
        "model": args.model,
        "cpu": platform.processor() or platform.machine(),
        "cpu_flags": cpu_flags(),
        "cores": len(os.sched_getaffinity(0)),
    }
    t0 = time.perf_counter()
    texts = chunk_texts(repo, args.model)
    print(f"{len(texts)} chunk texts in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    result["embedder"] = side_by_side(texts, args.model, args.sample, configs)
    print(json.dumps(result["embedder"]), file=sys.stderr)
    if args.index:
        runs = [index_run(repo, runtime, args.model) for runtime in ("torch", "openvino")]
        result["index"] = runs
        torch_run, ov_run = result["index"]
        result["index_speedup"] = round(torch_run["wall_s"] / ov_run["wall_s"], 3)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
