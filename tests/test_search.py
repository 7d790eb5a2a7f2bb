"""The searcher over a real store: fusion, the phrase bonus, collapsing split parts, filters."""

from __future__ import annotations

from pathlib import Path

from fake_embedder import FakeEmbedder

from codesearch.chunk import chunk_file
from codesearch.search import Fusion, Searcher, SearchOptions, fuse, fuse_scores
from codesearch.store import Store
from codesearch.types import Chunk, FileState, Filters


def _store(tmp_path: Path, chunks: list[Chunk], embedder: FakeEmbedder) -> Store:
    store = Store.open(tmp_path / "index.sqlite", create=True)
    store.configure(model_id=embedder.model_id, dim=embedder.dim, chunker_version="t")
    by_path: dict[str, list[Chunk]] = {}
    for c in chunks:
        by_path.setdefault(c.path, []).append(c)
    for path, items in by_path.items():
        vectors = embedder.embed_documents([c.embed_text() for c in items])
        store.replace_file(
            FileState(path, 1, 1, path),
            items,
            {c.content_hash: v for c, v in zip(items, vectors, strict=True)},
        )
    return store


def _chunk(path: str, name: str, start: int, text: str, **kw: str) -> Chunk:
    end = start + text.count("\n")
    return Chunk(
        path,
        kw.get("language", "python"),
        kw.get("kind", "function"),
        name,
        start,
        end,
        text,
        kw.get("header", f"python function {name}"),
    )


def test_fuse_scores_normalises_each_ranker() -> None:
    fused = fuse_scores([[(1, 0.9), (2, 0.5)], [(2, 12.0), (3, 2.0)]], [1.0, 1.0])
    assert fused == {1: 1.0, 2: 1.0, 3: 0.0}
    assert fuse([[1, 2], [2, 3]], [1.0, 1.0], rrf_k=0) == {1: 1.0, 2: 1.5, 3: 1 / 2}


def test_phrase_bonus_puts_a_verbatim_comment_first(tmp_path: Path) -> None:
    fake = FakeEmbedder()
    # the same words, so the bag-of-words vectors and BM25 cannot tell them apart
    chunks = [
        _chunk("a.py", "noise", 1, "def f():\n    # cache entries: the stale removes from\n"),
        _chunk("b.py", "target", 1, "def f():\n    # removes stale entries from the cache\n"),
        _chunk("c.py", "other", 1, "def other():\n    # unrelated words about parsing\n"),
    ]
    with _store(tmp_path, chunks, fake) as store:
        query = "removes stale entries from the cache"
        hits = {h.name: h.score for h in Searcher(store, fake).search(query)}
        plain = {
            h.name: h.score for h in Searcher(store, fake, Fusion(phrase_bonus=0.0)).search(query)
        }
    assert abs(plain["target"] - plain["noise"]) < 1e-6
    assert hits["target"] > hits["noise"] + 0.5


def test_split_parts_show_once_but_overloads_stay(tmp_path: Path) -> None:
    fake = FakeEmbedder()
    chunks = [
        _chunk(
            "m.py",
            "big",
            1,
            "def big():\n    parse the token stream",
            header="python function big (part 1/2)\ndef big():",
        ),
        _chunk(
            "m.py",
            "big",
            3,
            "    parse more token stream\n    return",
            header="python function big (part 2/2)\ndef big():",
        ),
        _chunk("m.py", "get", 10, "@overload\ndef get(x: int) -> int: parse token"),
        _chunk("m.py", "get", 13, "def get(x):\n    parse token stream"),
    ]
    with _store(tmp_path, chunks, fake) as store:
        hits = Searcher(store, fake).search("parse token stream", SearchOptions(k=10))
    names = [(h.name, h.start_line) for h in hits]
    assert sum(1 for n, _ in names if n == "big") == 1
    assert ("get", 10) in names and ("get", 13) in names


LONG_DEF = """import os


@cached
def fuse_rankings(rankings, weights):
    \"\"\"Merge several rankings into one.\"\"\"
    scores = {}
    for ranking, weight in zip(rankings, weights):
        for rank, cid in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + weight / (60 + rank)
    normalised = {cid: value / len(rankings) for cid, value in scores.items()}
    ordered = sorted(normalised.items(), key=lambda item: -item[1])
    pruned = [(cid, value) for cid, value in ordered if value > 0.001]
    tallied = {cid: value for cid, value in pruned}
    reciprocal_harmonic_blend = {cid: 1 / value for cid, value in tallied.items()}
    return reciprocal_harmonic_blend


def other():
    return os.getcwd()
"""


def test_a_part_is_reported_as_its_whole_definition(tmp_path: Path) -> None:
    fake = FakeEmbedder()
    chunks = chunk_file("m.py", LONG_DEF, max_tokens=40, count_tokens=lambda t: len(t.split()))
    parts = [c for c in chunks if c.name == "fuse_rankings"]
    assert len(parts) > 1 and parts[-1].start_line > 6
    with _store(tmp_path, chunks, fake) as store:
        (hit,) = Searcher(store, fake).search("reciprocal harmonic blend", SearchOptions(k=1))
    assert (hit.name, hit.start_line, hit.end_line) == ("fuse_rankings", 4, 16)
    assert hit.snippet.split("\n")[:2] == ["@cached", "def fuse_rankings(rankings, weights):"]
    # the lines that matched are the last part, inside the definition
    assert hit.match_range == (parts[-1].start_line, parts[-1].end_line)
    assert 4 < hit.match_start <= hit.match_end == 16
    record = hit.to_json()
    assert (record["match_start"], record["match_end"]) == hit.match_range
    # a whole definition matches as a whole
    with _store(tmp_path / "w", chunks, fake) as store:
        (hit,) = Searcher(store, fake).search("getcwd", SearchOptions(k=1))
    assert (hit.name, hit.match_range) == ("other", (hit.start_line, hit.end_line))
    assert (hit.to_json()["match_start"], hit.to_json()["match_end"]) == (19, 20)


def test_filters_apply_to_every_ranker(tmp_path: Path) -> None:
    fake = FakeEmbedder()
    chunks = [
        _chunk("src/a.py", "load_config", 1, "def load_config():\n    read the config file\n"),
        _chunk(
            "web/a.js",
            "loadConfig",
            1,
            "function loadConfig() {\n  read the config file\n}",
            language="javascript",
            header="javascript function loadConfig",
        ),
    ]
    with _store(tmp_path, chunks, fake) as store:
        searcher = Searcher(store, fake)
        only_js = searcher.search(
            "read the config file", SearchOptions(filters=Filters(languages=("javascript",)))
        )
        only_src = searcher.search(
            "read the config file", SearchOptions(filters=Filters(path_globs=("src/",)))
        )
    assert [h.path for h in only_js] == ["web/a.js"]
    assert [h.path for h in only_src] == ["src/a.py"]


def test_empty_queries_give_empty_results(tmp_path: Path) -> None:
    fake = FakeEmbedder()
    with _store(tmp_path, [_chunk("a.py", "f", 1, "def f(): pass")], fake) as store:
        results = Searcher(store, fake).search_many(["", "  ", "f"])
    assert results[0] == [] and results[1] == [] and results[2][0].name == "f"
