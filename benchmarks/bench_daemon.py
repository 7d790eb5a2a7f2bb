"""The daemon's promises, measured with a real daemon process and real file-system events.

    .venv/bin/python benchmarks/bench_daemon.py freshness REPO [--edits 50]
    .venv/bin/python benchmarks/bench_daemon.py latency REPO [--runs 40] [--home HOME]
    .venv/bin/python benchmarks/bench_daemon.py bulk REPO [--files 2000] [--home HOME]
    .venv/bin/python benchmarks/bench_daemon.py memory REPO [--configs torch,openvino]

- freshness: REPO is copied to a temporary folder and watched; each edit appends a new
  function with a unique name to a file (half in place, half as an editor's atomic save:
  write a temp file, rename it over the target), then queries through the daemon client until
  the new function comes back. Prints p50/p95 of save -> first answer with the new code.
- latency: `codesearch --json QUESTION` as a whole process (Python start, imports, socket,
  search, JSON out) against a warm daemon that already holds REPO's index (--home: the data dir
  that has it; it is indexed first when missing). Prints p50/p95 wall time.
- bulk: REPO is copied and watched; then FILES files are changed at once (a function appended
  to each), like a large `git checkout`. Prints the wall time until the daemon is idle again,
  how many index runs (batches) it took, the daemon's peak RSS (VmHWM), and the latency of
  searches (client round trips) asked every 0.5 s while the update runs, against idle.
- memory: per RUNTIME[:PRECISION] of --configs, a daemon of its own (that runtime and
  precision in its environment) indexes a copy of REPO, then answers 20 searches; prints its
  peak RSS (VmHWM) after each step.

Every mode uses the default model ("auto": MiniLM on this machine) unless --model is given.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_index import DEFAULT_QUERIES
from procstat import peak_rss

from codesearch.config import Settings
from codesearch.daemon import lifecycle
from codesearch.daemon.client import Client

QUESTIONS = DEFAULT_QUERIES[:20]

WORDS = [
    "amber",
    "basil",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "garnet",
    "harbor",
    "indigo",
    "juniper",
    "kestrel",
    "lagoon",
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Session:
    """A daemon in its own data dir, started for the benchmark and stopped after it."""

    def __init__(self, home: Path, model: str | None, env: dict[str, str] | None = None) -> None:
        self.settings = Settings(home=home)
        self.env = {**os.environ, "CODESEARCH_HOME": str(home), "CODESEARCH_DAEMON": "1"}
        self.env.update(env or {})
        if model:
            self.env["CODESEARCH_MODEL"] = model
        self.pid = 0

    def __enter__(self) -> Session:
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            self.pid = int(lifecycle.start(self.settings)["pid"])
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return self

    def __exit__(self, *exc: object) -> None:
        lifecycle.stop(self.settings)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        with Client.connect(self.settings, timeout=3600) as client:
            return client.call(method, params)

    def add(self, repo: Path) -> None:
        started = time.monotonic()
        info = self.call("add", {"path": str(repo), "wait": True})
        print(
            f"indexed {repo}: {info['files']} files, {info['chunks']} chunks "
            f"in {time.monotonic() - started:.1f} s",
            file=sys.stderr,
        )

    def peak_rss(self) -> int:
        return peak_rss(self.pid)


def _copy(repo: Path, where: Path) -> Path:
    dest = where / repo.name
    shutil.copytree(repo, dest, symlinks=True)
    return dest


def _python_files(repo: Path) -> list[Path]:
    return sorted(p for p in repo.rglob("*.py") if p.is_file() and p.stat().st_size > 200)


def _source_files(repo: Path) -> list[Path]:
    """Python files first, then other indexed text (a checkout touches every kind)."""
    others = sorted(
        p
        for suffix in ("*.js", "*.html", "*.txt")
        for p in repo.rglob(suffix)
        if p.is_file() and p.stat().st_size > 200
    )
    return _python_files(repo) + others


def freshness(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        repo = _copy(Path(args.repo).resolve(), Path(tmp))
        files = _python_files(repo)
        with Session(Path(tmp) / "home", args.model) as daemon:
            daemon.add(repo)
            times: list[float] = []
            with Client.connect(daemon.settings, timeout=60) as client:
                for i in range(args.edits):
                    target = rng.choice(files)
                    word = f"{rng.choice(WORDS)}_{rng.choice(WORDS)}"
                    name = f"freshness_probe_{i}_{word}"
                    text = target.read_text(encoding="utf-8", errors="replace")
                    text += f"\n\ndef {name}(value):\n    return value  # probe {i}\n"
                    rel = target.relative_to(repo).as_posix()
                    t0 = time.monotonic()
                    if i % 2:
                        tmp_file = target.with_name(f".{target.name}.tmp{i}")
                        tmp_file.write_text(text, encoding="utf-8")
                        os.replace(tmp_file, target)
                    else:
                        target.write_text(text, encoding="utf-8")
                    query = f"freshness probe {i} {word.replace('_', ' ')}"
                    while True:
                        answer = client.call(
                            "search", {"queries": [query], "k": 3, "repo": str(repo)}
                        )
                        hits = answer["results"][0]
                        if any(h["name"] == name and h["path"] == rel for h in hits):
                            break
                        if time.monotonic() - t0 > 30:
                            raise SystemExit(f"edit {i} not seen after 30 s")
                    times.append(time.monotonic() - t0)
                    time.sleep(0.2)  # edits a person makes are apart
    result = {
        "mode": "freshness",
        "edits": len(times),
        "p50_ms": round(pct(times, 0.5) * 1000, 1),
        "p95_ms": round(pct(times, 0.95) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "mean_ms": round(statistics.fmean(times) * 1000, 1),
    }
    return result


def latency(args: argparse.Namespace) -> dict[str, Any]:
    repo = Path(args.repo).resolve()
    home = Path(args.home or tempfile.mkdtemp(prefix="codesearch-bench-"))
    with Session(home, args.model) as daemon:
        daemon.add(repo)  # already indexed: a catch-up walk
        env = daemon.env
        command = [sys.executable, "-m", "codesearch.cli", "--json", "-k", "10"]
        # warm: the daemon opens the index and its vector cache on the first query
        subprocess.run([*command, QUESTIONS[0]], cwd=repo, env=env, capture_output=True)
        times: list[float] = []
        for i in range(args.runs):
            question = QUESTIONS[i % len(QUESTIONS)]
            t0 = time.perf_counter()
            out = subprocess.run([*command, question], cwd=repo, env=env, capture_output=True)
            times.append(time.perf_counter() - t0)
            if out.returncode != 0 or not json.loads(out.stdout)["results"]:
                raise SystemExit(f"query failed: {out.stderr.decode()[-500:]}")
        # the same against a trivial command: Python start-up + imports, no search
        base: list[float] = []
        for _ in range(10):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "codesearch.cli", "--version"], env=env)
            base.append(time.perf_counter() - t0)
        chunks = daemon.call("status", {"repo": str(repo)})["repos"][0]["chunks"]
    return {
        "mode": "latency",
        "repo": str(repo),
        "chunks": chunks,
        "runs": len(times),
        "p50_ms": round(pct(times, 0.5) * 1000, 1),
        "p95_ms": round(pct(times, 0.95) * 1000, 1),
        "startup_p50_ms": round(pct(base, 0.5) * 1000, 1),
    }


def bulk(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(args.repo).resolve()
        repo = _copy(source, Path(tmp))
        files = _source_files(repo)[: args.files]
        home = Path(tmp) / "home"
        if args.home:  # start from REPO's existing index (copytree kept the mtimes)
            seeded = Settings(home=home).index_path(repo)
            seeded.parent.mkdir(parents=True)
            shutil.copy(Settings(home=Path(args.home)).index_path(source), seeded)
        with Session(home, args.model) as daemon:
            daemon.add(repo)
            # warm: the first query opens the reader and loads its vector cache
            daemon.call("search", {"queries": [QUESTIONS[0]], "k": 10, "repo": str(repo)})
            idle_latency = _query_latencies(daemon, repo, threading.Event(), limit=20)
            before = daemon.call("status", {"repo": str(repo)})["repos"][0]
            rss_before = daemon.peak_rss()
            t0 = time.monotonic()
            for i, target in enumerate(files):
                with open(target, "a", encoding="utf-8") as handle:
                    handle.write(
                        f"\n\n# bulk change {i}\ndef bulk_change_{i}(value):\n    return {i}\n"
                    )
            written = time.monotonic() - t0
            time.sleep(0.5)  # let the first events arrive
            done = threading.Event()
            during: list[float] = []
            asker = threading.Thread(
                target=lambda: during.extend(_query_latencies(daemon, repo, done, pause=0.5))
            )
            asker.start()  # a person asking questions while the update runs
            daemon.call("wait", {"repo": str(repo), "timeout": 3600})
            wall = time.monotonic() - t0
            done.set()
            asker.join()
            after = daemon.call("status", {"repo": str(repo)})["repos"][0]
            peak = daemon.peak_rss()
    return {
        "mode": "bulk",
        "files_changed": len(files),
        "write_s": round(written, 2),
        "until_idle_s": round(wall, 1),
        "batches": after["updates"] - before["updates"],
        "chunks": after["chunks"],
        "peak_rss_mb_before": round(rss_before / 1e6),
        "peak_rss_mb": round(peak / 1e6),
        "query_ms_idle_p50_p95": [round(pct(idle_latency, q) * 1000, 1) for q in (0.5, 0.95)],
        "query_ms_during_update_p50_p95": [round(pct(during, q) * 1000, 1) for q in (0.5, 0.95)],
        "queries_during_update": len(during),
    }


def memory(args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    for config in args.configs.split(","):
        runtime, _, precision = config.partition(":")
        env = {"CODESEARCH_EMBED_RUNTIME": runtime}
        if precision:
            env["CODESEARCH_EMBED_PRECISION"] = precision
        with tempfile.TemporaryDirectory() as tmp:
            repo = _copy(Path(args.repo).resolve(), Path(tmp))
            with Session(Path(tmp) / "home", args.model, env) as daemon:
                daemon.add(repo)
                indexed = daemon.peak_rss()
                for question in QUESTIONS:
                    daemon.call("search", {"queries": [question], "k": 10, "repo": str(repo)})
                runs.append(
                    {
                        "config": config,
                        "peak_rss_mb_after_index": round(indexed / 1e6),
                        "peak_rss_mb_after_searches": round(daemon.peak_rss() / 1e6),
                    }
                )
        print(json.dumps(runs[-1]), file=sys.stderr)
    return {"mode": "memory", "repo": str(Path(args.repo).resolve()), "runs": runs}


def _query_latencies(
    daemon: Session, repo: Path, stop: threading.Event, limit: int = 10_000, pause: float = 0.0
) -> list[float]:
    """Client round trips of searches (the daemon's side of a query), until ``stop``."""
    times: list[float] = []
    with Client.connect(daemon.settings, timeout=600) as client:
        for i in range(limit):
            if stop.is_set():
                break
            t0 = time.perf_counter()
            client.call(
                "search", {"queries": [QUESTIONS[i % len(QUESTIONS)]], "k": 10, "repo": str(repo)}
            )
            times.append(time.perf_counter() - t0)
            time.sleep(pause)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("freshness", "latency", "bulk", "memory"))
    parser.add_argument("repo")
    parser.add_argument("--model", default=None)
    parser.add_argument("--edits", type=int, default=50)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument(
        "--home", default=None, help="latency, bulk: a data dir that holds REPO's index already"
    )
    parser.add_argument(
        "--configs",
        default="torch,openvino",
        help="memory: RUNTIME[:PRECISION],... (the precision the CPU picks unless given)",
    )
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    modes = {"freshness": freshness, "latency": latency, "bulk": bulk, "memory": memory}
    result = modes[args.mode](args)
    print(json.dumps(result, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
