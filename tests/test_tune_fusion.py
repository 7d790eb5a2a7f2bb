"""benchmarks/tune_fusion.py: its cached search path gives what the searcher gives, and the
leave-one-corpus-out selection picks each fold's best on the other corpora."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

from codesearch.config import load_settings
from codesearch.engine import RepoSearch, index_repo
from codesearch.search import Fusion, Searcher, SearchOptions

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "tune_fusion.py"
RUN_EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval" / "run_eval.py"

pytestmark = pytest.mark.skipif(not RUN_EVAL.exists(), reason="needs ../shared/eval")


@pytest.fixture(scope="module")
def tune():
    spec = importlib.util.spec_from_file_location("tune_fusion", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cached_store_searches_like_the_store(tune, demo_repo: Path) -> None:
    settings = load_settings()
    index_repo(demo_repo, settings, model="fake")
    questions = ["retry with backoff", "verify a password hash", "send welcome mail", "lru cache"]
    grid = [*tune.build_grid("small"), Fusion(mode="z", candidates=2, test_weight=0.5)]
    options = SearchOptions(k=10)
    with RepoSearch(demo_repo.resolve(), settings, model="fake") as repo:
        cached = Searcher(tune.CachedStore(repo.store, 200), repo.embedder)
        vectors = repo.embedder.embed_queries(questions)
        for fusion in grid:
            repo.searcher.fusion = cached.fusion = fusion
            live = [tune.as_results(h) for h in repo.search_many(questions, options)]
            ours = [
                tune.as_results(cached._one(q, {None: v}, options))
                for q, v in zip(questions, vectors, strict=True)
            ]
            assert ours == live, fusion
            assert any(ours)


def test_leave_one_corpus_out_picks_on_the_other_corpora(tune) -> None:
    def cells(**mrr: float) -> dict:
        return {(c, v): {"mined": m, "hand": m} for c, m in mrr.items() for v in tune.VARIANTS}

    # setting 0 (the default) is fair everywhere, 1 wins on a and b only, 2 on c only
    table = [cells(a=0.5, b=0.5, c=0.5), cells(a=0.9, b=0.9, c=0.1), cells(a=0.1, b=0.1, c=0.9)]
    cv = tune.cross_validate(table, ["a", "b", "c"])
    assert [f["choice"] for f in cv["folds"]] == [0, 0, 1]
    assert cv["choice"] == 1
    verdict = tune.verdict(table, ["a", "b", "c"], cv)
    assert verdict["agree"] == 1 and not verdict["adopt"]
    assert verdict["cv"] == pytest.approx((0.5 + 0.5 + 0.1) / 3)
    assert tune.objective(table[1], ["a", "b", "c"]) == pytest.approx(1.9 / 3)


def test_the_grid_starts_with_the_default_and_has_no_repeats(tune) -> None:
    for size in ("small", "full"):
        grid = tune.build_grid(size)
        assert grid[0] == Fusion() and len(set(grid)) == len(grid) <= 300
    assert replace(Fusion(), vector_weight=2.0) in tune.build_grid("full")
