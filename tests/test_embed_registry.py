"""The embed layer's contract: the Embedder base class (declared capabilities, what it refuses),
the registry table (a backend is one entry), the generic "backend unavailable" error, and the
one Hugging Face cache lookup that every backend shares."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from fake_embedder import FakeEmbedder

from codesearch.cli import main
from codesearch.config import load_settings
from codesearch.embed import (
    Backend,
    BackendInfo,
    Embedder,
    EmbedderUnavailable,
    LoadOptions,
    Target,
    Unsupported,
    available_backends,
    load_embedder,
    register_backend,
    registry,
)
from codesearch.embed.minilm.files import packaged_minilm_dir
from codesearch.engine import RepoSearch, index_repo
from codesearch.search import SearchOptions
from codesearch.types import BadInput, Chunk, ModelUnavailable


class Shouting(Embedder):
    """The smallest backend: the core only (upper-cased text through the fake's hashing)."""

    model_id = "shouting:v1"
    dim = 8
    max_tokens = 50

    def embed_batch(self, texts: Sequence[str], *, query: bool, task: str | None) -> np.ndarray:
        return FakeEmbedder(self.dim).vectors([t.upper() for t in texts])

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def test_a_text_model_declares_nothing_more_and_the_base_refuses_the_rest() -> None:
    e = Shouting()
    assert (e.tasks, e.task, e.dims, e.max_image_pixels, e.preferred_group) == (
        (),
        None,
        (8,),
        None,
        0,
    )
    assert not (e.supports_images or e.supports_multivector or e.supports_late_chunking)
    assert e.late_chunking_id == "" and e.multi_vector_dim == 0
    assert e.embed_documents([]).shape == (0, 8) and e.embed_queries(["a b"]).shape == (1, 8)
    refused = {
        "embeds text only": lambda: e.embed_images([]),
        "one vector per text": lambda: e.embed_multivector(["x"]),
        "late chunking": lambda: e.embed_late_files([("x", [(0, 1)])]),
        "has no tasks": lambda: e.embed_documents(["x"], task="code"),
    }
    for message, call in refused.items():
        with pytest.raises(Unsupported, match=message) as info:
            call()
        assert isinstance(info.value, BadInput) and "shouting:v1" in str(info.value)
    assert e.with_dim(8) is e
    with pytest.raises(BadInput, match=r"shouting: dim 4 is not available \(valid dims: 8\)"):
        e.with_dim(4)
    chunk = Chunk("README.md", "markdown", "section", "Intro", 1, 2, "# Intro", "")
    assert e.document_task(chunk) == "" and e.resolve_task(None) is None
    assert e.dim_conflict("shouting:v0") == ""


def test_tasks_are_checked_once_by_the_base() -> None:
    class Tasked(Shouting):
        tasks = ("code", "retrieval")
        task = "code"

    e = Tasked()
    assert e.resolve_task(None) == "code" and e.resolve_task("retrieval") == "retrieval"
    with pytest.raises(BadInput, match=r"unknown shouting task 'x': use one of code, retrieval"):
        e.embed_queries(["q"], task="x")
    prose = Chunk("a.md", "markdown", "section", "A", 1, 1, "# A", "")
    code = Chunk("a.py", "python", "function", "f", 1, 1, "def f(): ...", "")
    assert (e.document_task(prose), e.document_task(code)) == ("retrieval", "code")


def _shouting_backend() -> Backend:
    def load(target: Target, options: LoadOptions) -> Embedder:
        return Shouting()

    return Backend(
        probe=lambda name: Target(name) if name == "shouting" else None,
        load=load,
        describe=lambda: BackendInfo("shouting", "upper-cased hashing", "nothing", True, ""),
    )


def test_a_backend_is_one_registry_entry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(registry, "_BACKENDS", dict(registry._BACKENDS))  # undone after the test
    with pytest.raises(ModelUnavailable, match="unknown model 'shouting'"):
        load_embedder("shouting")
    register_backend("shouting", _shouting_backend())
    assert isinstance(load_embedder("shouting"), Shouting)
    assert "shouting" in {b.name for b in available_backends()}
    with pytest.raises(ModelUnavailable, match=r"use one of auto, .*jina-v4, remote, .*shouting"):
        load_embedder("no-such-model")
    with pytest.raises(BadInput, match=r"shouting: dim 16 is not available \(valid dims: 8\)"):
        load_embedder("shouting", dim=16)
    assert main(["embed", "a question", "--query", "--model", "shouting", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["model"], out["task"], out["dim"]) == ("shouting:v1", None, 8)
    np.testing.assert_allclose(out["vector"], Shouting().embed_queries(["a question"])[0])
    # the faces learn which backends embed pictures from the table, not from a list of names
    assert registry.picture_models() == ("jina-v4",)


class Unreachable(FakeEmbedder):
    """Indexes, then cannot embed questions: a backend that is down (not only remote)."""

    def embed_batch(self, texts: Sequence[str], *, query: bool, task: str | None) -> np.ndarray:
        if query:
            raise EmbedderUnavailable("embedding backend is unavailable: down", retry_in=3.0)
        return super().embed_batch(texts, query=query, task=task)


def test_an_unavailable_backend_means_keyword_search(demo_repo: Path) -> None:
    settings = load_settings()
    embedder = Unreachable()
    index_repo(demo_repo, settings, embedder=embedder)
    with RepoSearch(demo_repo, settings, embedder=embedder) as repo:
        hits = repo.search_many(["retry backoff"], SearchOptions(k=3))[0]
        assert hits and hits[0].path == "src/app/retry.py"  # BM25 alone
        assert "unavailable: down" in repo.searcher.outage


def _cache(snapshot_of: Path, hf_home: Path, repo_id: str, *, ref: bool) -> Path:
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / "abc123"
    shutil.copytree(snapshot_of, snapshot)
    if ref:
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text("abc123")
    return snapshot


def test_one_hugging_face_cache_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cached model id is found when the cache's main revision holds it (huggingface_hub's
    rule), by every backend alike: here a BERT-like model in the cache loads as ``hf``."""
    folder = packaged_minilm_dir()
    assert folder is not None
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "CODESEARCH_JINA_V4"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    snapshot = _cache(folder, tmp_path / "hf", "someone/minilm-copy", ref=True)
    embedder = load_embedder("someone/minilm-copy")
    assert embedder.model_id.startswith("hf:someone/minilm-copy@") and embedder.dim == 384
    assert embedder.model_id == load_embedder(str(snapshot)).model_id.replace(
        "hf:abc123@", "hf:someone/minilm-copy@"
    )
    _cache(folder, tmp_path / "hf", "someone/no-main-ref", ref=False)  # a snapshot, no refs/main
    with pytest.raises(ModelUnavailable, match="not in the local Hugging Face cache"):
        load_embedder("someone/no-main-ref")
