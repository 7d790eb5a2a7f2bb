"""The remote backend against a real OpenAI-compatible server: infinity-emb serving the packaged
all-MiniLM-L6-v2 on CPU, on loopback, started once for this module (tests/infinity_server.py;
installed by tests/infinity/setup.sh). Index and search through it, the CLI included; a wrong
key and a dimension the server cannot give; and the server killed in the middle of a daemon's
indexing and restarted: the daemon pauses, answers queries from what is indexed, resumes, and
ends with the same index as a clean run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from infinity_server import MODEL_NAME, InfinityServer

from codesearch import engine
from codesearch.config import load_settings
from codesearch.daemon.runtime import runtime
from codesearch.daemon.service import Service
from codesearch.embed import load_embedder
from codesearch.embed.remote import policy
from codesearch.embed.remote.embedder import RemoteEmbedder
from codesearch.search import SearchOptions
from codesearch.store import Store
from codesearch.types import BadInput, ModelUnavailable

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
KEY = "inf-key-7Hq2-wmZ"


@pytest.fixture(scope="module")
def infinity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfinityServer]:
    log = tmp_path_factory.mktemp("infinity") / "infinity.log"
    server = InfinityServer(log, api_key=KEY).start()
    yield server
    server.stop()


@pytest.fixture
def remote(infinity: InfinityServer, monkeypatch: pytest.MonkeyPatch) -> InfinityServer:
    """This test's environment points at the server; no model or breaker from another test."""
    policy.reset_breakers()
    monkeypatch.setattr(engine, "_LOADED", {})
    monkeypatch.setenv("CODESEARCH_REMOTE_URL", infinity.url)
    monkeypatch.setenv("CODESEARCH_REMOTE_MODEL", MODEL_NAME)
    monkeypatch.setenv("CODESEARCH_REMOTE_API_KEY", KEY)
    return infinity


def _generated_repo(root: Path, files: int) -> Path:
    shutil.copytree(FIXTURES / "repo", root)
    for i in range(files):
        body = "\n\n".join(
            f"def step_{i}_{j}(value):\n"
            f'    """Stage {j} of pipeline {i}: scale the value by {i * 7 + j}."""\n'
            f"    return value * {i * 7 + j} + {j}"
            for j in range(3)
        )
        (root / "gen" / f"mod_{i:03d}.py").parent.mkdir(exist_ok=True)
        (root / "gen" / f"mod_{i:03d}.py").write_text(body + "\n")
    return root


def _snapshot(index_path: Path) -> dict[tuple[str, int, int, str], np.ndarray]:
    """Every chunk of an index (path, lines, embedded text's hash) with its vector."""
    with Store.open(index_path) as store:
        rows = store._conn.execute(
            "SELECT c.path, c.start_line, c.end_line, x.key, v.embedding FROM chunks c "
            "JOIN vectors x ON x.id = c.vector_id JOIN vec_chunks v ON v.rowid = c.vector_id"
        ).fetchall()
    # int8 codes (store/quant.py)
    return {
        (r[0], r[1], r[2], r[3]): np.frombuffer(r[4], dtype=np.int8).astype(np.float32)
        for r in rows
    }


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


# ---------------------------------------------------------------------- index and search


def test_index_and_search_a_repository_through_the_server(
    remote: InfinityServer, demo_repo: Path, minilm: Any
) -> None:
    emb = load_embedder("remote")
    assert isinstance(emb, RemoteEmbedder)
    assert (emb.dim, emb.model_id) == (384, f"remote:{MODEL_NAME}@384")
    # the same model as the in-process one: the same vectors, to float precision
    texts = ["def add(a, b):\n    return a + b", "where is the retry logic", "x"]
    cosines = (emb.embed_documents(texts) * minilm.embed_documents(texts)).sum(axis=1)
    assert cosines.min() > 0.999

    settings = load_settings()
    stats = engine.index_repo(demo_repo, settings, model="remote")
    assert stats.files_indexed == 7 and stats.chunks_embedded == stats.chunks_total > 0
    with engine.RepoSearch(demo_repo, settings) as searcher:
        assert searcher.embedder.model_id == f"remote:{MODEL_NAME}@384"
        hits = searcher.search_many(
            ["retry a request with exponential backoff"], SearchOptions(k=3)
        )[0]
        assert searcher.searcher.outage == ""
    assert hits[0].path == "src/app/retry.py"


def test_the_cli_indexes_and_searches_through_the_server(
    remote: InfinityServer, demo_repo: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "CODESEARCH_DAEMON": "0", "CODESEARCH_MODEL": "remote"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "codesearch.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=ROOT,
        )

    done = cli("index", str(demo_repo))
    assert done.returncode == 0, done.stderr
    found = cli("search", "send an email message", "--repo", str(demo_repo), "-k", "3", "--json")
    assert found.returncode == 0, found.stderr
    results = json.loads(found.stdout)["results"]
    assert results[0]["path"] == "svc/mail.go"
    assert KEY not in done.stdout + done.stderr + found.stdout + found.stderr


# ---------------------------------------------------------------------- clear errors


def test_a_wrong_key_and_an_impossible_dimension_are_clear_errors(
    remote: InfinityServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODESEARCH_REMOTE_API_KEY", "not-the-key")
    with pytest.raises(
        ModelUnavailable, match=r"rejected the API key in \$CODESEARCH_REMOTE_API_KEY"
    ) as e:
        load_embedder("remote")
    assert "not-the-key" not in str(e.value) and "\n" not in str(e.value)
    monkeypatch.delenv("CODESEARCH_REMOTE_API_KEY")
    with pytest.raises(ModelUnavailable, match=r"wants an API key \(HTTP 401\)"):
        load_embedder("remote")
    monkeypatch.setenv("CODESEARCH_REMOTE_API_KEY", KEY)
    # Matryoshka dimensions pass through (infinity cuts the vector) ...
    monkeypatch.setenv("CODESEARCH_EMBED_DIM", "128")
    small = load_embedder("remote")
    assert (small.dim, small.model_id) == (128, f"remote:{MODEL_NAME}@128")
    assert small.embed_queries(["parse a config file"]).shape == (1, 128)
    # ... but it cannot give more than the model has
    monkeypatch.setenv("CODESEARCH_EMBED_DIM", "512")
    with pytest.raises(BadInput, match=r"vectors of 384 dims, not the 512 set by embed_dim") as e:
        load_embedder("remote")
    assert "matryoshka_dim=512 is not in a valid range" in str(e.value)


# ---------------------------------------------------------------------- an outage


def test_a_server_killed_mid_index_pauses_the_daemon_which_resumes_to_a_clean_result(
    remote: InfinityServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _generated_repo(tmp_path / "repo", files=60)
    monkeypatch.setenv("CODESEARCH_REMOTE_RETRIES", "1")
    monkeypatch.setenv("CODESEARCH_REMOTE_BACKOFF", "0.05")
    monkeypatch.setenv("CODESEARCH_REMOTE_BATCH_SIZE", "8")
    monkeypatch.setenv("CODESEARCH_REMOTE_CONCURRENCY", "2")
    monkeypatch.setattr(policy, "COOLDOWN_S", 1.0)
    monkeypatch.setattr(policy, "COOLDOWN_MAX_S", 2.0)

    # the clean run, in its own data folder
    monkeypatch.setenv("CODESEARCH_HOME", str(tmp_path / "clean"))
    clean_settings = load_settings()
    clean = engine.index_repo(repo, clean_settings, model="remote")
    want = _snapshot(clean_settings.index_path(repo))
    assert len(want) == clean.chunks_total > 150

    monkeypatch.setenv("CODESEARCH_HOME", str(tmp_path / "daemon"))
    monkeypatch.setattr(engine, "_LOADED", {})  # a fresh embedder: no vectors remembered
    monkeypatch.setenv("CODESEARCH_MODEL", "remote")
    settings = load_settings()
    svc = Service(settings, runtime(settings))
    groups = {"n": 0}
    before_embed = svc._before_embed

    def kill_at_the_third_group(repo: Any) -> None:  # the writer thread, before an embed call
        groups["n"] += 1
        if groups["n"] == 3:
            remote.kill()
        before_embed(repo)

    monkeypatch.setattr(svc, "_before_embed", kill_at_the_third_group)
    svc.start()
    try:
        svc.add(str(repo))

        def state() -> dict[str, Any]:
            return svc.status(repo).repos[0].dump()

        _wait_for(lambda: state()["state"] == "paused", 60, "indexing did not pause")
        info = state()
        assert "indexing paused, searches use what is indexed" in info["error"]
        assert 0 < info["files"] < 67  # what was finished before the kill is kept
        _wait_for(
            lambda: svc.status().daemon.embedders[0]["state"] == "down",
            30,
            "the breaker did not open",
        )
        # queries keep working on what is indexed: keywords while the server is down
        results, notices = svc.search(repo, ["step_0_1"], SearchOptions(k=3), None)
        assert results[0] and results[0][0].name == "step_0_1"
        assert any("keywords only" in n for n in notices)
        remote.start()  # the same port
        _wait_for(
            lambda: state()["state"] == "idle" and svc.wait(repo, 0.1),
            60,
            "indexing did not resume",
        )
        assert state()["error"] == "" and state()["files"] == 67
        results, notices = svc.search(repo, ["scale the value"], SearchOptions(k=3), None)
        assert notices == [] and results[0]
    finally:
        svc.stop()
    got = _snapshot(settings.index_path(repo))
    assert got.keys() == want.keys()  # nothing lost, nothing twice
    assert max(float(np.abs(got[k] - want[k]).max()) for k in want) <= 1  # one rounding step
