"""Load and faults (issue 19, item 7): many clients at once against one daemon, and kill -9 in
the middle of writing an index.

    .venv/bin/python benchmarks/bench_load.py load REPO [--home HOME] [--clients 200]
        [--seconds 60] [--files 500]
    .venv/bin/python benchmarks/bench_load.py kill-index REPO [--runs 20]
    .venv/bin/python benchmarks/bench_load.py kill-update REPO [--runs 20] [--home HOME]

- load: REPO is copied and added to a daemon of its own (--home: a data dir that holds REPO's
  index already; it seeds the copy's index, as `bench_daemon.py bulk` does). CLIENTS threads
  then ask for SECONDS, each request on a connection of its own (as the CLI does): a search
  (80 %, k=10) or a status (20 %). --change-at seconds in, FILES source files are changed at
  once (a function appended to each). Prints requests, errors (refused: no connection; failed:
  an error or no answer after it connected; with sample messages), p50/p95/max latency of
  search and of status, the daemon's peak RSS (VmRSS sampled every 0.2 s, and VmHWM), how long
  the update took to reach idle, and whether every change is in the index afterwards.
- kill-index: REPO is copied; a clean index of the copy is built once (`codesearch index
  --no-daemon`, timed). Each run starts that command in a fresh data dir, kills it (SIGKILL) a
  random time into it (0.5 s .. the clean build's duration), looks at what the killed index
  holds (every file it records must be complete and equal to the clean index's), runs the
  command again to completion, and compares the result with the clean index.
- kill-update: REPO is copied and indexed once (or seeded from --home). Each run restores the
  copy, starts a daemon on that index, changes 50..200 random files, kills the daemon
  (SIGKILL) a random time into the update those changes start, looks at what the killed index
  holds (every file as before or as after the change, complete), restarts the daemon, lets it
  catch up, and compares the index with a clean one: the same starting index brought up to
  date by `codesearch index --no-daemon` on the same edited files, uninterrupted. Run 0 is a
  control without the kill (its duration also sets the kill times). Each run records where
  the update stood when it was killed (status: not started, queued, indexing, done).

An index is compared with the clean one file by file: the same files with the same content
hash, the same chunks (lines, kind, name, header, text) and the same vectors; a vector may
differ in its int8 codes when it was embedded in another batch (the report gives how many are
bit-identical and the smallest cosine; --min-cosine is the bar). Every index also passes
`PRAGMA integrity_check` and the store's own check (`Store.check`: pages and the links between
tables). A run is consistent when all of that holds; it lost data when a file of the clean
index is missing or different in the finished index, or (kill-update) when the killed index
lacks a file it held before. Every mode uses the default model unless --model is given.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlean
import sqlite_vec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_daemon import WORDS, Session, _copy, _source_files, pct
from bench_index import DEFAULT_QUERIES
from procstat import status_kb

from codesearch.config import Settings
from codesearch.daemon.client import Client, DaemonBusy
from codesearch.daemon.protocol import DaemonUnavailable
from codesearch.daemon.runtime import runtime
from codesearch.store import Store
from codesearch.types import CodesearchError, IndexMissing

SAMPLES = 5  # error messages kept per kind
RSS_EVERY_S = 0.2


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _latencies(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None}
    return {
        "p50_ms": _ms(pct(values, 0.5)),
        "p95_ms": _ms(pct(values, 0.95)),
        "max_ms": _ms(max(values)),
    }


def _kill(pid: int) -> None:
    """SIGKILL ``pid`` and wait until it is gone (reaped when it is our child: a daemon that
    lifecycle.start launched is)."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:  # not ours, or reaped already
            if not Path(f"/proc/{pid}").exists():
                return
        time.sleep(0.02)
    raise SystemExit(f"process {pid} still there 30 s after SIGKILL")


def _daemon_log_problems(settings: Settings, since: int) -> list[str]:
    """WARNING/ERROR lines the daemon logged after byte ``since`` of its log (up to 10)."""
    path = runtime(settings).log
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            handle.seek(since)
            lines = handle.read().splitlines()
    except OSError:
        return []
    found = [line for line in lines if " WARNING " in line or " ERROR " in line]
    return found[:10]


def _log_size(settings: Settings) -> int:
    try:
        return runtime(settings).log.stat().st_size
    except OSError:
        return 0


# ---------------------------------------------------------------------- indexes compared


@dataclass
class Snapshot:
    """What an index holds, file by file; ``problems``: what its checks found."""

    hashes: dict[str, str] = field(default_factory=dict)  # path -> content hash
    chunks: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)  # in line order
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # a row per chunk
    problems: list[str] = field(default_factory=list)
    missing: bool = False  # no index (or an empty one) at the path

    @property
    def chunk_count(self) -> int:
        return sum(len(c) for c in self.chunks.values())


def _integrity(path: Path) -> list[str]:
    conn = sqlean.connect(str(path))
    try:
        conn.enable_load_extension(True)
        sqlite_vec.load(conn)
        rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
    finally:
        conn.close()
    return [] if rows == ["ok"] else [f"integrity_check: {r}" for r in rows[:10]]


def snapshot(index: Path, *, copy_to: Path | None = None) -> Snapshot:
    """Read the index at ``index``. With ``copy_to``, a copy of it (file and WAL, as a killed
    process left them) is read instead, so that the original stays as it was for the run that
    resumes it."""
    if copy_to is not None:
        copy_to.mkdir(parents=True, exist_ok=True)
        target = copy_to / index.name
        for suffix in ("", "-wal"):
            source = Path(f"{index}{suffix}")
            if source.exists():
                shutil.copy(source, Path(f"{target}{suffix}"))
        index = target
    snap = Snapshot()
    if not index.exists():
        snap.missing = True
        return snap
    try:
        with Store.open(index) as store:
            snap.problems = store.check()
            snap.hashes = {p: s.content_hash for p, s in store.file_states().items()}
            stored = store.all_chunks()
            vectors = store.chunk_vectors([s.id for s in stored])
    except IndexMissing:
        snap.missing = True
        return snap
    except CodesearchError as exc:
        snap.problems.append(f"cannot read the index: {exc}")
        return snap
    snap.problems += _integrity(index)
    rows: dict[str, list[np.ndarray]] = {}
    for item in stored:
        c = item.chunk
        snap.chunks.setdefault(c.path, []).append(
            (c.start_line, c.end_line, str(c.kind), c.name, c.header, c.text)
        )
        vector = vectors.get(item.id, (None, ""))[0]
        if vector is None:
            snap.problems.append(f"{c.path}:{c.start_line}: a chunk without a vector")
            dim = len(next(iter(vectors.values()))[0]) if vectors else 1
            vector = np.full(dim, np.nan, dtype=np.float32)
        rows.setdefault(c.path, []).append(vector)
    snap.vectors = {p: np.stack(v) for p, v in rows.items()}
    for path in snap.chunks:
        if path not in snap.hashes:
            snap.problems.append(f"{path}: chunks of a file the index does not record")
    return snap


@dataclass
class VectorTally:
    compared: int = 0
    identical: int = 0
    min_cosine: float = 1.0

    def add(self, a: np.ndarray, b: np.ndarray) -> float:
        """Compare two files' vectors (rows in the same order); their smallest cosine."""
        self.compared += len(a)
        self.identical += int(np.all(a == b, axis=1).sum())
        cosine = float(np.min(np.sum(a * b, axis=1))) if len(a) else 1.0
        if np.isnan(cosine):
            cosine = -1.0
        self.min_cosine = min(self.min_cosine, cosine)
        return cosine

    def merge(self, other: VectorTally) -> None:
        self.compared += other.compared
        self.identical += other.identical
        self.min_cosine = min(self.min_cosine, other.min_cosine)

    def report(self) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "identical": self.identical,
            "min_cosine": round(self.min_cosine, 6),
        }


def same_file(
    snap: Snapshot, ref: Snapshot, path: str, tally: VectorTally, min_cosine: float
) -> str | None:
    """None when ``path`` is in ``snap`` as in ``ref``; else what differs."""
    if path not in snap.hashes:
        return "missing"
    if snap.hashes[path] != ref.hashes[path]:
        return "another content hash"
    if snap.chunks.get(path, []) != ref.chunks.get(path, []):
        return "other chunks"
    if path in ref.vectors and tally.add(snap.vectors[path], ref.vectors[path]) < min_cosine:
        return "vectors below the cosine bar"
    return None


def compare(
    snap: Snapshot, ref: Snapshot, min_cosine: float, tally: VectorTally
) -> dict[str, list[str]]:
    """Files of ``ref`` that ``snap`` lacks or holds otherwise, and files only ``snap`` has."""
    wrong: dict[str, list[str]] = {}
    for path in ref.hashes:
        why = same_file(snap, ref, path, tally, min_cosine)
        if why is not None:
            wrong.setdefault(why, []).append(path)
    extra = sorted(set(snap.hashes) - set(ref.hashes))
    if extra:
        wrong["not in the clean index"] = extra
    return wrong


def _examples(wrong: dict[str, list[str]]) -> dict[str, Any]:
    return {why: {"files": len(paths), "e.g.": sorted(paths)[:3]} for why, paths in wrong.items()}


# ---------------------------------------------------------------------- the CLI


def _env(home: Path, model: str | None) -> dict[str, str]:
    env = {**os.environ, "CODESEARCH_HOME": str(home), "CODESEARCH_DAEMON": "0"}
    if model:
        env["CODESEARCH_MODEL"] = model
    return env


def _index_command(repo: Path) -> list[str]:
    return [sys.executable, "-m", "codesearch.cli", "index", str(repo), "--no-daemon", "-q"]


def index_once(repo: Path, home: Path, model: str | None) -> float:
    """`codesearch index --no-daemon` to completion; its wall time. Fails loudly."""
    t0 = time.monotonic()
    out = subprocess.run(
        _index_command(repo), env=_env(home, model), capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"index of {repo} failed ({out.returncode}): {out.stderr[-2000:]}")
    return time.monotonic() - t0


def _seed(index: Path, home: Path, repo: Path) -> Path:
    """Copy the index file ``index`` to where ``home`` keeps ``repo``'s index."""
    target = Settings(home=home).index_path(repo)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(index, target)
    return target


# ---------------------------------------------------------------------- load


@dataclass
class Tally:
    """One client thread's requests."""

    times: dict[str, list[float]] = field(default_factory=lambda: {"search": [], "status": []})
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    empty: int = 0  # searches answered with no hit

    def merge(self, other: Tally) -> None:
        for kind, values in other.times.items():
            self.times[kind].extend(values)
        self.refused += other.refused
        self.failed += other.failed
        self.empty += other.empty


def _samples(messages: list[str]) -> list[str]:
    return list(dict.fromkeys(messages))[:SAMPLES]


def _client(
    settings: Settings,
    repo: Path,
    stop: threading.Event,
    seed: int,
    timeout: float,
    tally: Tally,
) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        kind = "search" if rng.random() < 0.8 else "status"
        t0 = time.perf_counter()
        try:
            client = Client.connect(settings, timeout=timeout)
        except (DaemonUnavailable, DaemonBusy, OSError) as exc:
            tally.refused.append(f"{kind}: {type(exc).__name__}: {exc}")
            time.sleep(0.05)
            continue
        try:
            with client:
                if kind == "search":
                    question = rng.choice(DEFAULT_QUERIES)
                    answer = client.call(
                        "search", {"queries": [question], "k": 10, "repo": str(repo)}
                    )
                    if not answer["results"][0]:
                        tally.empty += 1
                else:
                    client.call("status", {"repo": str(repo)})
        except Exception as exc:  # anything after the connection counts: that is the point
            tally.failed.append(f"{kind}: {type(exc).__name__}: {exc}")
            continue
        tally.times[kind].append(time.perf_counter() - t0)


def _sample_rss(pid: int, stop: threading.Event, peak: list[int]) -> None:
    """Peak VmRSS and peak RssAnon (the process' own memory, not mapped library files)."""
    while not stop.wait(RSS_EVERY_S):
        peak[0] = max(peak[0], status_kb(pid, "VmRSS"))
        peak[1] = max(peak[1], status_kb(pid, "RssAnon"))


def _change(files: list[Path], tag: str) -> list[str]:
    """Append a function with a unique name to each file; the names, in order."""
    names = []
    for i, target in enumerate(files):
        name = f"{tag}_probe_{i}_{WORDS[i % len(WORDS)]}_{WORDS[i // len(WORDS) % len(WORDS)]}"
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(f"\n\n# {tag} change {i}\ndef {name}(value):\n    return value + {i}\n")
        names.append(name)
    return names


def load(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="codesearch-load-") as tmp:
        source = Path(args.repo).resolve()
        repo = _copy(source, Path(tmp))
        home = Path(tmp) / "home"
        if args.home:  # start from REPO's index (copytree kept the mtimes)
            _seed(Settings(home=Path(args.home)).index_path(source), home, repo)
        files = _source_files(repo)[: args.files]
        with Session(home, args.model) as daemon:
            log_start = _log_size(daemon.settings)
            t0 = time.monotonic()
            daemon.add(repo)
            add_s = time.monotonic() - t0
            daemon.call("search", {"queries": [DEFAULT_QUERIES[0]], "k": 10, "repo": str(repo)})
            before = daemon.call("status", {"repo": str(repo)})["repos"][0]
            rss_before_kb = status_kb(daemon.pid, "VmRSS")

            stop, rss_stop = threading.Event(), threading.Event()
            peak = [rss_before_kb, status_kb(daemon.pid, "RssAnon")]
            sampler = threading.Thread(target=_sample_rss, args=(daemon.pid, rss_stop, peak))
            sampler.start()
            tallies = [Tally() for _ in range(args.clients)]
            threads = [
                threading.Thread(
                    target=_client,
                    args=(daemon.settings, repo, stop, rng.random(), args.timeout, tally),
                    daemon=True,
                )
                for tally in tallies
            ]
            print(f"{args.clients} clients for {args.seconds} s ...", file=sys.stderr)
            started = time.monotonic()
            for thread in threads:
                thread.start()
            time.sleep(args.change_at)
            changed_at = time.monotonic()
            names = _change(files, "load")
            print(f"changed {len(files)} files", file=sys.stderr)
            time.sleep(1.0)  # the burst is taken after 0.5 s of quiet
            idle_box: list[float | None] = [None]

            def until_idle() -> None:
                answer = daemon.call("wait", {"repo": str(repo), "timeout": args.settle})
                if answer["idle"]:
                    idle_box[0] = time.monotonic() - changed_at

            waiter = threading.Thread(target=until_idle, daemon=True)
            waiter.start()
            time.sleep(max(0.0, started + args.seconds - time.monotonic()))
            stop.set()
            for thread in threads:
                thread.join(timeout=args.timeout + 10)
            wall = time.monotonic() - started
            hung = sum(thread.is_alive() for thread in threads)
            waiter.join(timeout=args.settle)
            rss_stop.set()
            sampler.join()
            hwm_kb = status_kb(daemon.pid, "VmHWM")
            after = daemon.call("status", {"repo": str(repo)})["repos"][0]
            probes = rng.sample(range(len(names)), min(10, len(names)))
            found = 0
            for i in probes:
                rel = files[i].relative_to(repo).as_posix()
                answer = daemon.call(
                    "search",
                    {"queries": [names[i].replace("_", " ")], "k": 10, "repo": str(repo)},
                )
                found += any(
                    h["name"] == names[i] and h["path"] == rel for h in answer["results"][0]
                )
            log_problems = _daemon_log_problems(daemon.settings, log_start)
        index = Settings(home=home).index_path(repo)
        in_index = 0
        with Store.open(index) as store:
            problems = store.check()
            for target, name in zip(files, names, strict=True):
                rel = target.relative_to(repo).as_posix()
                in_index += any(s.chunk.name == name for s in store.all_chunks(rel))
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    requests = sum(len(v) for v in total.times.values()) + len(total.refused) + len(total.failed)
    return {
        "mode": "load",
        "repo": str(source),
        "clients": args.clients,
        "seconds": round(wall, 1),
        "add_s": round(add_s, 1),
        "requests": requests,
        "requests_per_s": round(requests / wall, 1),
        "searches": len(total.times["search"]),
        "statuses": len(total.times["status"]),
        "errors": {
            "refused": len(total.refused),
            "failed": len(total.failed),
            "refused_samples": _samples(total.refused),
            "failed_samples": _samples(total.failed),
        },
        "clients_still_waiting_at_end": hung,
        "empty_search_answers": total.empty,
        "search": _latencies(total.times["search"]),
        "status": _latencies(total.times["status"]),
        "rss_mb_before_load": round(rss_before_kb / 1024),
        "peak_rss_mb": round(peak[0] / 1024),
        "peak_rss_anon_mb": round(peak[1] / 1024),
        "vm_hwm_mb": round(hwm_kb / 1024),
        "files_changed": len(files),
        "update_until_idle_s": None if idle_box[0] is None else round(idle_box[0], 1),
        "state_after": after["state"],
        "chunks_before": before["chunks"],
        "chunks_after": after["chunks"],
        "files_after": after["files"],
        "updates": after["updates"] - before["updates"],
        "probes_found_by_search": f"{found}/{len(probes)}",
        "changes_in_index": f"{in_index}/{len(files)}",
        "index_problems": problems,
        "daemon_log_warnings": log_problems,
    }


# ---------------------------------------------------------------------- kill -9 while indexing


def kill_index(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="codesearch-kill-index-"))
    try:
        repo = _copy(Path(args.repo).resolve(), tmp)
        clean_home = tmp / "clean"
        full_s = index_once(repo, clean_home, args.model)
        clean = snapshot(Settings(home=clean_home).index_path(repo))
        print(
            f"clean index: {len(clean.hashes)} files, {clean.chunk_count} chunks in {full_s:.1f} s",
            file=sys.stderr,
        )
        runs = [_kill_index_run(i, repo, tmp, clean, full_s, rng, args) for i in range(args.runs)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _summary("kill-index", args, runs, clean, {"clean_index_s": round(full_s, 1)})


def _kill_index_run(
    i: int,
    repo: Path,
    tmp: Path,
    clean: Snapshot,
    full_s: float,
    rng: random.Random,
    args: argparse.Namespace,
) -> dict[str, Any]:
    home = tmp / f"run-{i}"
    index = Settings(home=home).index_path(repo)
    delay = rng.uniform(0.5, full_s)
    proc = subprocess.Popen(
        _index_command(repo),
        env=_env(home, args.model),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    t0 = time.monotonic()
    try:
        proc.wait(timeout=delay)
        killed = False  # it finished first
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = True
    kill_s = time.monotonic() - t0
    tally = VectorTally()
    at_kill = snapshot(index, copy_to=tmp / f"run-{i}-killed")
    wrong_at_kill: dict[str, list[str]] = {}
    for path in at_kill.hashes:  # every file it records must be whole and right
        why = (
            same_file(at_kill, clean, path, tally, args.min_cosine)
            if path in clean.hashes
            else ("not in the clean index")
        )
        if why is not None:
            wrong_at_kill.setdefault(why, []).append(path)
    resume_s = index_once(repo, home, args.model)
    final = snapshot(index)
    wrong = compare(final, clean, args.min_cosine, tally)
    lost = sorted({p for paths in wrong.values() for p in paths if p in clean.hashes})
    done_then_lost = [p for p in lost if p in at_kill.hashes]
    run = {
        "run": i,
        "kill_at_s": round(kill_s, 2),
        "killed": killed,
        "files_done_at_kill": len(at_kill.hashes),
        "problems_at_kill": at_kill.problems,
        "wrong_at_kill": _examples(wrong_at_kill),
        "resume_s": round(resume_s, 1),
        "problems": final.problems,
        "differs_from_clean": _examples(wrong),
        "files_lost": len(lost),
        "files_done_then_lost": len(done_then_lost),
        "vectors": tally.report(),
    }
    run["consistent"] = not (at_kill.problems or wrong_at_kill or final.problems or wrong)
    run["data_lost"] = bool(lost)
    print(json.dumps(_brief(run)), file=sys.stderr)
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(tmp / f"run-{i}-killed", ignore_errors=True)
    return run


def _brief(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("run", "kill_at_s", "killed", "files_done_at_kill", "state_at_kill", "files_changed")
    return {
        **{k: run[k] for k in keys if k in run},
        "consistent": run["consistent"],
        "data_lost": run["data_lost"],
    }


def _summary(
    mode: str,
    args: argparse.Namespace,
    runs: list[dict[str, Any]],
    clean: Snapshot,
    extra: dict[str, Any],
) -> dict[str, Any]:
    vectors = VectorTally()
    for run in runs:
        vectors.compared += run["vectors"]["compared"]
        vectors.identical += run["vectors"]["identical"]
        vectors.min_cosine = min(vectors.min_cosine, run["vectors"]["min_cosine"])
    return {
        "mode": mode,
        "repo": str(Path(args.repo).resolve()),
        "files": len(clean.hashes),
        "chunks": clean.chunk_count,
        **extra,
        "runs": len(runs),
        "killed": sum(bool(r.get("killed", True)) for r in runs),
        "consistent": sum(r["consistent"] for r in runs),
        "data_lost": sum(r["data_lost"] for r in runs),
        "min_cosine_bar": args.min_cosine,
        "vectors": vectors.report(),
        "kill_at_s": [r["kill_at_s"] for r in runs],
        "inconsistent_runs": [r["run"] for r in runs if not r["consistent"] or r["data_lost"]],
        "per_run": runs,
    }


# ---------------------------------------------------------------------- kill -9 while updating


def kill_update(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="codesearch-kill-update-"))
    try:
        source = Path(args.repo).resolve()
        repo = _copy(source, tmp)
        base_home = tmp / "base"
        if args.home:
            base_index = _seed(Settings(home=Path(args.home)).index_path(source), base_home, repo)
            index_once(repo, base_home, args.model)  # a catch-up walk: nothing to do
        else:
            full_s = index_once(repo, base_home, args.model)
            print(f"base index in {full_s:.1f} s", file=sys.stderr)
            base_index = Settings(home=base_home).index_path(repo)
        base = snapshot(base_index)
        files = _source_files(repo)
        low, high = (min(n, len(files)) for n in (args.min_files, args.max_files))
        control = _kill_update_run(0, source, repo, tmp, base, base_index, high, None, args)
        until_idle = control["update_s"]
        print(f"control update of {high} files: {until_idle:.1f} s to idle", file=sys.stderr)
        runs = []
        for i in range(1, args.runs + 1):
            n = rng.randint(low, high)
            # until_idle: the debounce (0.1-0.5 s), the update, and the control's 1 s pause
            delay = rng.uniform(0.3, max(1.0, until_idle * n / high))
            runs.append(
                _kill_update_run(i, source, repo, tmp, base, base_index, n, delay, args, rng)
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    extra = {"control": _brief(control) | {"update_s": control["update_s"]}}
    states = [r["state_at_kill"] for r in runs]
    extra["state_at_kill"] = {s: states.count(s) for s in sorted(set(states))}
    return _summary("kill-update", args, runs, base, extra)


def _restore(source: Path, repo: Path) -> None:
    shutil.rmtree(repo)
    shutil.copytree(source, repo, symlinks=True)


def _kill_update_run(
    i: int,
    source: Path,
    repo: Path,
    tmp: Path,
    base: Snapshot,
    base_index: Path,
    n: int,
    delay: float | None,
    args: argparse.Namespace,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """One run; ``delay`` None: the control, not killed."""
    _restore(source, repo)
    home = tmp / f"run-{i}"
    index = _seed(base_index, home, repo)
    files = _source_files(repo)
    chosen = sorted((rng or random.Random(0)).sample(files, n))
    daemon = Session(home, args.model)
    daemon.__enter__()
    log_start = _log_size(daemon.settings)
    killed = False
    progress: dict[str, Any] = {}
    try:
        daemon.add(repo)  # nothing to catch up on
        updates = daemon.call("status", {"repo": str(repo)})["repos"][0]["updates"]
        _change(chosen, f"update{i}")
        t0 = time.monotonic()
        state = "control"
        if delay is None:
            time.sleep(1.0)  # the burst is taken after 0.5 s of quiet
            daemon.call("wait", {"repo": str(repo), "timeout": 3600})
        else:
            time.sleep(delay)
            status = daemon.call("status", {"repo": str(repo)})["repos"][0]
            state, progress = status["state"], status.get("progress") or {}
            if state == "idle":  # finished already, or the events not in yet
                state = "done" if status["updates"] > updates else "not started"
            _kill(daemon.pid)
            killed = True
        update_s = time.monotonic() - t0
    finally:
        if not killed:
            daemon.__exit__()
    tally = VectorTally()
    clean_home = tmp / f"run-{i}-clean"
    _seed(base_index, clean_home, repo)
    index_once(repo, clean_home, args.model)
    clean = snapshot(Settings(home=clean_home).index_path(repo))
    wrong_at_kill: dict[str, list[str]] = {}
    at_kill = Snapshot()
    if delay is not None:
        at_kill = snapshot(index, copy_to=tmp / f"run-{i}-killed")
        for path in base.hashes | clean.hashes:  # each file as before or as after, complete
            if path not in at_kill.hashes:
                wrong_at_kill.setdefault("missing", []).append(path)
                continue
            ref = base if at_kill.hashes[path] == base.hashes.get(path) else clean
            why = same_file(at_kill, ref, path, tally, args.min_cosine)
            if why is not None:
                wrong_at_kill.setdefault(why, []).append(path)
        with Session(home, args.model) as again:  # restarted: it catches up by itself
            again.add(repo)
            again.call("wait", {"repo": str(repo), "timeout": 3600})
            restarted = again.call("status", {"repo": str(repo)})["repos"][0]
            log_problems = _daemon_log_problems(again.settings, log_start)
    else:
        restarted = {}
        log_problems = _daemon_log_problems(daemon.settings, log_start)
    final = snapshot(index)
    wrong = compare(final, clean, args.min_cosine, tally)
    lost = sorted({p for paths in wrong.values() for p in paths if p in clean.hashes})
    changed = {f.relative_to(repo).as_posix() for f in chosen}
    run = {
        "run": i,
        "files_changed": n,
        "kill_at_s": None if delay is None else round(update_s, 2),
        "state_at_kill": state,
        "progress_at_kill": progress,
        "update_s": round(update_s, 1),
        "files_new_at_kill": sum(
            at_kill.hashes.get(p) == clean.hashes.get(p) for p in changed if p in at_kill.hashes
        ),
        "problems_at_kill": at_kill.problems,
        "wrong_at_kill": _examples(wrong_at_kill),
        "after_restart": {k: restarted.get(k) for k in ("state", "error", "notice", "chunks")},
        "problems": final.problems,
        "differs_from_clean": _examples(wrong),
        "files_lost": len(lost),
        "files_lost_at_kill": len(wrong_at_kill.get("missing", [])),
        "daemon_log_warnings": log_problems,
        "vectors": tally.report(),
    }
    run["consistent"] = not (at_kill.problems or wrong_at_kill or final.problems or wrong)
    run["data_lost"] = bool(lost or wrong_at_kill.get("missing"))
    print(json.dumps(_brief(run)), file=sys.stderr)
    for path in (home, clean_home, tmp / f"run-{i}-killed"):
        shutil.rmtree(path, ignore_errors=True)
    return run


# ---------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("load", "kill-index", "kill-update"))
    parser.add_argument("repo")
    parser.add_argument("--model", default=None)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument(
        "--home", default=None, help="load, kill-update: a data dir that holds REPO's index"
    )
    load_args = parser.add_argument_group("load")
    load_args.add_argument("--clients", type=int, default=200)
    load_args.add_argument("--seconds", type=float, default=60.0)
    load_args.add_argument("--files", type=int, default=500, help="files changed during the load")
    load_args.add_argument("--change-at", type=float, default=5.0, help="seconds into the load")
    load_args.add_argument(
        "--timeout", type=float, default=60.0, help="a request unanswered this long failed"
    )
    load_args.add_argument(
        "--settle", type=float, default=1800.0, help="how long to wait for the update to end"
    )
    kill_args = parser.add_argument_group("kill-index, kill-update")
    kill_args.add_argument("--runs", type=int, default=20)
    kill_args.add_argument("--min-cosine", type=float, default=0.999)
    kill_args.add_argument("--min-files", type=int, default=50, help="kill-update: files changed")
    kill_args.add_argument("--max-files", type=int, default=200)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()
    modes: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
        "load": load,
        "kill-index": kill_index,
        "kill-update": kill_update,
    }
    result = modes[args.mode](args)
    print(json.dumps(result, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
