"""Round trip of ``codesearch/search`` through the language server, measured.

    .venv/bin/python benchmarks/bench_lsp.py [--repo REPO] [--home HOME] [--queries 50] [-k 10]

A pygls ``LanguageClient`` starts ``python -m lsp`` over stdio with REPO as its workspace
folder and asks N questions (the mined queries of the eval corpus when REPO is a prepared eval
corpus, else built-in phrases), one at a time, timing each request from send to answer:
client -> language server -> daemon -> search -> ranges computed from the files -> back.
Each question is also asked of the daemon directly (its own client), right after, so the
share of the language server in the round trip is visible. Prints p50/p95 and writes
benchmarks/results/lsp.json.

The daemon of HOME is used when it runs; otherwise it is started and stopped afterwards.
Defaults: the django index of the benchmark data dir (~/.cache/codesearch-bench/home).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lsprotocol import types  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

from codesearch.config import Settings  # noqa: E402
from codesearch.daemon import lifecycle  # noqa: E402
from codesearch.daemon.client import Client, running  # noqa: E402
from lsp.convert import path_uri  # noqa: E402

DEFAULT_HOME = Path.home() / ".cache/codesearch-bench/home"
DEFAULT_REPO = Path.home() / ".cache/codesearch-eval/prepared/django/unstripped"
PHRASES = [
    "where is the database connection opened",
    "parse a date string into a datetime",
    "check the user's password",
    "render a template with a context",
    "send an email to the site admins",
    "cache a value for a few seconds",
    "validate an email address",
    "build the SQL for a join",
    "handle a file upload",
    "translate a message into the active language",
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def questions(repo: Path, n: int) -> list[str]:
    """The eval corpus's mined queries next to REPO (unstripped first), else PHRASES."""
    for name in ("queries.unstripped.jsonl", "queries.jsonl"):
        path = repo.parent / name
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            found = [json.loads(line)["query"] for line in lines if line.strip()]
            if found:
                return [found[i % len(found)] for i in range(n)]
    return [PHRASES[i % len(PHRASES)] for i in range(n)]


async def measure(
    settings: Settings, repo: Path, env: dict[str, str], asked: list[str], k: int
) -> tuple[list[float], list[float], dict[str, Any]]:
    """Each question through the language server, then straight to the daemon (interleaved,
    so both see the same machine load)."""
    client = LanguageClient("bench-lsp", "1")
    ended = asyncio.Event()

    @client.feature("window/workDoneProgress/create")
    def create(params: Any) -> None:
        return None

    @client.feature("$/progress")
    def progress(params: Any) -> None:
        value = params.value
        kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
        if kind == "end":
            ended.set()

    await client.start_io(sys.executable, "-m", "lsp", env=env, cwd=str(ROOT))
    started = time.perf_counter()
    await client.initialize_async(
        types.InitializeParams(
            process_id=os.getpid(),
            root_uri=path_uri(repo),
            workspace_folders=[types.WorkspaceFolder(uri=path_uri(repo), name=repo.name)],
            capabilities=types.ClientCapabilities(
                window=types.WindowClientCapabilities(work_done_progress=True)
            ),
        )
    )
    client.initialized(types.InitializedParams())
    await asyncio.wait_for(ended.wait(), 1800)  # the daemon's catch-up walk of REPO
    ready_s = time.perf_counter() - started
    t0 = time.perf_counter()
    await client.protocol.send_request_async("codesearch/search", {"query": asked[0], "k": k})
    warm_s = time.perf_counter() - t0
    times: list[float] = []
    direct: list[float] = []
    empty = 0
    for question in asked:
        t0 = time.perf_counter()
        answer = await client.protocol.send_request_async(
            "codesearch/search", {"query": question, "k": k}
        )
        times.append(time.perf_counter() - t0)
        empty += not answer.results
        direct.append(through_daemon(settings, repo, question, k))
    await client.shutdown_async(None)
    client.exit(None)
    await asyncio.wait_for(client.stop(), 30)
    return times, direct, {"ready_s": round(ready_s, 2), "warm_s": round(warm_s, 2), "empty": empty}


def through_daemon(settings: Settings, repo: Path, question: str, k: int) -> float:
    """Seconds for one search with the daemon's own client (a connection per call, as LSP)."""
    t0 = time.perf_counter()
    with Client.connect(settings, timeout=600) as client:
        client.call("search", {"queries": [question], "k": k, "repo": str(repo)})
    return time.perf_counter() - t0


def summary(times: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(pct(times, 0.5) * 1000, 1),
        "p95_ms": round(pct(times, 0.95) * 1000, 1),
        "mean_ms": round(statistics.fmean(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO)
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/lsp.json")
    args = parser.parse_args()
    repo, home = args.repo.expanduser().resolve(), args.home.expanduser().resolve()
    settings = Settings(home=home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODESEARCH_")}
    env["CODESEARCH_HOME"] = str(home)
    asked = questions(repo, args.queries)

    ours = running(settings) is None
    if ours:
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            lifecycle.start(settings)
        finally:
            os.environ.clear()
            os.environ.update(saved)
    try:
        lsp_times, daemon_times, facts = asyncio.run(measure(settings, repo, env, asked, args.k))
        with Client.connect(settings, timeout=60) as client:
            chunks = client.call("status", {"repo": str(repo)})["repos"][0]["chunks"]
    finally:
        if ours:
            lifecycle.stop(settings)

    lsp_summary, daemon_summary = summary(lsp_times), summary(daemon_times)
    result = {
        "benchmark": "lsp-search-round-trip",
        "repo": str(repo),
        "chunks": chunks,
        "queries": len(asked),
        "k": args.k,
        "lsp": lsp_summary,
        "daemon_direct": daemon_summary,
        "lsp_overhead_p50_ms": round(lsp_summary["p50_ms"] - daemon_summary["p50_ms"], 1),
        **facts,
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"codesearch/search via codesearch-lsp ({chunks} chunks, {len(asked)} queries, "
        f"k={args.k}): p50 {lsp_summary['p50_ms']} ms, p95 {lsp_summary['p95_ms']} ms; "
        f"daemon client directly: p50 {daemon_summary['p50_ms']} ms, "
        f"p95 {daemon_summary['p95_ms']} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
