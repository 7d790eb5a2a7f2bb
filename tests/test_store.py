"""The store, for real: sqlean + sqlite-vec + FTS5 on a temporary file."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import sqlean

from codesearch.store import SCHEMA_VERSION, Store, StoredChunk
from codesearch.store.quant import quantise
from codesearch.types import (
    Chunk,
    CodesearchError,
    FileState,
    Filters,
    IndexCorrupt,
    IndexLocked,
    IndexMissing,
    ModelMismatch,
)

DIM = 8
# Vectors are stored as int8 (store/quant.py): at 8 dims a stored vector's distance from the
# float one it was made of is up to about 1e-3.
STORED = 2e-3


def unit(rng: np.random.Generator, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def chunk(
    path: str,
    name: str,
    text: str,
    *,
    language: str = "python",
    kind: str = "function",
    start: int = 1,
) -> Chunk:
    return Chunk(path, language, kind, name, start, start + text.count("\n"), text, f"# {path}")


def state(path: str, size: int = 10) -> FileState:
    return FileState(path, size, 123, f"sha-{path}-{size}")


def vecs(chunks: Sequence[Chunk], rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {c.content_hash: unit(rng) for c in chunks}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "idx" / "index.sqlite", create=True) as s:
        s.configure(model_id="test-model", dim=DIM, chunker_version="c1")
        yield s


def put(store: Store, path: str, chunks: Sequence[Chunk], rng: np.random.Generator) -> None:
    store.replace_file(state(path), chunks, vecs(chunks, rng))


def by_path(store: Store, path: str) -> list[Chunk]:
    found = store.chunks(range(1, 10_000))
    return sorted(
        (s.chunk for s in found.values() if s.chunk.path == path), key=lambda c: c.start_line
    )


# -- opening, errors ---------------------------------------------------------------------------


def test_open_missing_raises_index_missing(tmp_path: Path) -> None:
    with pytest.raises(IndexMissing, match=r"no index at .*codesearch index"):
        Store.open(tmp_path / "nope.sqlite")
    assert not (tmp_path / "nope.sqlite").exists()


def test_open_empty_file_without_create_is_missing(tmp_path: Path) -> None:
    (tmp_path / "empty.sqlite").write_bytes(b"")
    with pytest.raises(IndexMissing):
        Store.open(tmp_path / "empty.sqlite")


def test_create_makes_private_dirs_wal_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "index.sqlite"
    with Store.open(path, create=True) as s:
        assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert s._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert s._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with Store.open(path) as s:  # reopening an existing index needs no create
        assert s.get_meta("anything") is None


def test_corrupt_file_raises_index_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(IndexCorrupt, match=r"corrupted .*--rebuild"):
        Store.open(path)
    with pytest.raises(IndexCorrupt):
        Store.open(path, create=True)


def test_newer_schema_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    Store.open(path, create=True).close()
    conn = sqlean.connect(str(path))
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(IndexCorrupt, match="newer codesearch"):
        Store.open(path)


def test_locked_index_raises_index_locked(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    Store.open(path, create=True).close()
    other = sqlean.connect(str(path), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with Store.open(path, busy_timeout_ms=50) as s:  # reading works under WAL
            assert s.get_meta("x") is None
            with pytest.raises(IndexLocked, match="locked by another codesearch process"):
                s.set_meta("x", "1")
    finally:
        other.execute("ROLLBACK")
        other.close()
    with Store.open(path) as s:
        s.set_meta("x", "1")
        assert s.get_meta("x") == "1"


def test_no_raw_sqlite_error_escapes(store: Store) -> None:
    store.close()
    with pytest.raises(CodesearchError):
        store.get_meta("x")


# -- configure / model ----------------------------------------------------------------------------


def test_configure_first_same_chunker_change_and_model_change(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    with Store.open(tmp_path / "i.sqlite", create=True) as s:
        assert s.configure(model_id="m1", dim=DIM, chunker_version="c1") is False
        assert s.get_meta("model_id") == "m1"
        assert s.get_meta("dim") == str(DIM)
        assert s.configure(model_id="m1", dim=DIM, chunker_version="c1") is False
        a = [chunk("a.py", "f", "def f(): pass")]
        put(s, "a.py", a, rng)
        assert s.stats()["chunks"] == 1

        # chunker change: files and chunks go, vectors stay (reused by content hash)
        assert s.configure(model_id="m1", dim=DIM, chunker_version="c2") is True
        assert s.get_meta("chunker_version") == "c2"
        assert s.file_states() == {}
        assert s.stats()["chunks"] == 0
        assert s.has_vectors([a[0].content_hash]) == {a[0].content_hash}
        s.replace_file(state("a.py"), a, {})  # no new vector needed
        assert s.bm25("f", 5) != []

        # model change: everything goes, and the vec table takes the new dimension
        assert s.configure(model_id="m2", dim=DIM * 2, chunker_version="c2") is True
        assert s.stats() | {"bytes": 0} == {
            "files": 0,
            "chunks": 0,
            "vectors": 0,
            "orphan_vectors": 0,
            "bytes": 0,
        }
        assert s.has_vectors([a[0].content_hash]) == set()
        s.replace_file(state("a.py"), a, {a[0].content_hash: unit(rng, DIM * 2)})
        assert s.knn(unit(rng, DIM * 2), 1)[0][0] > 0

        # same model, other dimension also wipes
        assert s.configure(model_id="m2", dim=DIM, chunker_version="c2") is True
        assert s.stats()["vectors"] == 0


def test_configure_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite"
    with Store.open(path, create=True) as s:
        s.configure(model_id="m1", dim=DIM, chunker_version="c1")
    with Store.open(path) as s:
        assert s.configure(model_id="m1", dim=DIM, chunker_version="c1") is False


def test_require_model(store: Store, tmp_path: Path) -> None:
    store.require_model("test-model")
    with pytest.raises(ModelMismatch, match="built with test-model, not other"):
        store.require_model("other")
    with Store.open(tmp_path / "fresh.sqlite", create=True) as s, pytest.raises(IndexMissing):
        s.require_model("test-model")


def test_meta_round_trip(store: Store) -> None:
    store.set_meta("repo_root", "/some/where")
    store.set_meta("repo_root", "/else/where")
    assert store.get_meta("repo_root") == "/else/where"


# -- files and chunks ---------------------------------------------------------------------------


def test_round_trip_and_file_states(store: Store, rng: np.random.Generator) -> None:
    a = [
        chunk("src/a.py", "Alpha", "class Alpha:\n    pass", kind="class", start=1),
        chunk("src/a.py", "Alpha.run", "def run(self):\n    return 1", kind="method", start=3),
    ]
    store.replace_file(state("src/a.py", 42), a, vecs(a, rng))
    assert store.file_states() == {"src/a.py": state("src/a.py", 42)}
    got = store.chunks(range(1, 100))
    assert sorted((s.chunk for s in got.values()), key=lambda c: c.start_line) == a
    assert all(isinstance(s, StoredChunk) and got[s.id] is s for s in got.values())
    assert store.chunks([]) == {}
    assert store.chunk_count_by("kind") == {"class": 1, "method": 1}
    assert store.chunk_count_by("language") == {"python": 2}
    with pytest.raises(ValueError):
        store.chunk_count_by("text; DROP TABLE chunks")


def test_replace_file_replaces_old_chunks_and_fts(store: Store, rng: np.random.Generator) -> None:
    put(store, "a.py", [chunk("a.py", "alpha", "def alpha(): pass")], rng)
    new = [chunk("a.py", "beta", "def beta(): pass")]
    store.replace_file(state("a.py", 99), new, vecs(new, rng))
    assert by_path(store, "a.py") == new
    assert store.file_states()["a.py"].size == 99
    assert store.bm25("alpha", 5) == []
    assert len(store.bm25("beta", 5)) == 1
    assert store.stats()["files"] == 1


def test_replace_file_validates_before_writing(store: Store, rng: np.random.Generator) -> None:
    old = [chunk("a.py", "f", "def f(): pass")]
    put(store, "a.py", old, rng)
    new = [chunk("a.py", "g", "def g(): pass"), chunk("a.py", "h", "def h(): pass", start=2)]
    bad = vecs(new, rng)
    bad[new[1].content_hash] = np.ones(DIM + 1, dtype=np.float32)  # wrong length
    with pytest.raises(ValueError):
        store.replace_file(state("a.py", 77), new, bad)
    missing = vecs(new[:1], rng)  # second chunk has no vector
    with pytest.raises(ValueError):
        store.replace_file(state("a.py", 77), new, missing)
    with pytest.raises(ValueError):
        store.replace_file(state("b.py"), new, vecs(new, rng))  # chunks of another path
    assert by_path(store, "a.py") == old
    assert store.file_states()["a.py"].size == 10
    assert store.stats()["vectors"] == 1


def test_replace_file_failing_halfway_keeps_previous_state(
    store: Store, rng: np.random.Generator
) -> None:
    old = [chunk("a.py", "f", "def f(): pass")]
    put(store, "a.py", old, rng)
    # A real SQLite failure after the old rows were deleted and new ones partly inserted.
    store._conn.execute(
        "CREATE TEMP TRIGGER boom BEFORE INSERT ON chunk_rows WHEN new.name = 'boom' "
        "BEGIN SELECT RAISE(ABORT, 'boom'); END"
    )
    new = [chunk("a.py", "g", "def g(): pass"), chunk("a.py", "boom", "x = 1", start=5)]
    with pytest.raises(CodesearchError, match="boom"):
        store.replace_file(state("a.py", 77), new, vecs(new, rng))
    assert by_path(store, "a.py") == old
    assert store.file_states()["a.py"].size == 10
    assert store.stats()["vectors"] == 1
    assert len(store.bm25("f", 5)) == 1 and store.bm25("g", 5) == []


def test_remove_file_keeps_orphan_vectors(store: Store, rng: np.random.Generator) -> None:
    a = [chunk("a.py", "f", "def f(): pass")]
    put(store, "a.py", a, rng)
    put(store, "b.py", [chunk("b.py", "g", "def g(): pass")], rng)
    store.remove_file("a.py")
    store.remove_file("not-there.py")  # no error
    assert set(store.file_states()) == {"b.py"}
    assert by_path(store, "a.py") == []
    assert store.bm25("f", 5) == []
    stats = store.stats()
    assert (stats["files"], stats["chunks"], stats["vectors"], stats["orphan_vectors"]) == (
        1,
        1,
        2,
        1,
    )
    assert stats["bytes"] > 0
    # a revert re-uses the orphan: no vector needed
    store.replace_file(state("a.py"), a, {})
    assert store.stats()["orphan_vectors"] == 0


def test_vectors_shared_by_content_hash(store: Store, rng: np.random.Generator) -> None:
    body = "def helper():\n    return 42"
    a = chunk("a.py", "helper", body)
    b = chunk("b.py", "helper", body)
    b = Chunk(b.path, b.language, b.kind, b.name, b.start_line, b.end_line, b.text, a.header)
    assert a.content_hash == b.content_hash
    assert store.has_vectors([a.content_hash, "nope"]) == set()
    v = unit(rng)
    store.replace_file(state("a.py"), [a], {a.content_hash: v})
    assert store.has_vectors([a.content_hash, "nope"]) == {a.content_hash}
    store.replace_file(state("b.py"), [b], {})
    twin = [chunk("c.py", "x", "pass"), chunk("c.py", "y", "pass", start=2)]
    twin[1] = Chunk("c.py", "python", "function", "y", 2, 2, "pass", twin[0].header)
    store.replace_file(state("c.py"), twin, {twin[0].content_hash: unit(rng)})
    assert store.stats()["vectors"] == 2
    assert store.stats()["chunks"] == 4
    # both chunks that share the nearest vector come back, at the same distance
    hits = store.knn(v, 2)
    assert {cid for cid, _ in hits} == {
        s.id for s in store.chunks(range(1, 10)).values() if s.chunk.name == "helper"
    }
    assert hits[0][1] == pytest.approx(0.0, abs=STORED) and hits[1][1] == hits[0][1]


def test_prune_orphans_keeps_most_recently_used(store: Store, rng: np.random.Generator) -> None:
    for name in ("a", "b", "c"):
        put(store, f"{name}.py", [chunk(f"{name}.py", name, f"def {name}(): pass")], rng)
    put(store, "live.py", [chunk("live.py", "live", "def live(): pass")], rng)
    for name in ("a", "b", "c"):
        store.remove_file(f"{name}.py")
    assert store.stats()["orphan_vectors"] == 3
    assert store.prune_orphan_vectors(keep=1) == 2
    stats = store.stats()
    assert (stats["vectors"], stats["orphan_vectors"]) == (2, 1)
    kept = chunk("c.py", "c", "def c(): pass").content_hash  # removed last = used last
    assert store.has_vectors([kept]) == {kept}
    assert store.prune_orphan_vectors(keep=0) == 1
    assert store.prune_orphan_vectors(keep=0) == 0
    assert store.stats()["vectors"] == 1
    assert store.knn(unit(rng), 5)[0][0] > 0  # the vec table is consistent with `vectors`


# -- knn ---------------------------------------------------------------------------------------


def _corpus(store: Store, rng: np.random.Generator, n: int = 60) -> list[np.ndarray]:
    """n chunks over files of several languages and kinds; returns each chunk's vector."""
    vectors: list[np.ndarray] = []
    for f in range(n // 6):
        lang, ext = [("python", "py"), ("go", "go"), ("rust", "rs")][f % 3]
        path = f"{'src' if f % 2 else 'tests'}/m{f}.{ext}"
        cs = [
            chunk(
                path,
                f"f{f}_{i}",
                f"body {f} {i}",
                language=lang,
                kind="function" if i % 2 else "class",
                start=i * 3 + 1,
            )
            for i in range(6)
        ]
        vs = [unit(rng) for _ in cs]
        vectors.extend(vs)
        store.replace_file(
            state(path), cs, {c.content_hash: v for c, v in zip(cs, vs, strict=True)}
        )
    return vectors


def test_knn_nearest_first(store: Store, rng: np.random.Generator) -> None:
    vectors = _corpus(store, rng)
    all_chunks = store.chunks(range(1, 1000))
    target = 17
    query = vectors[target] + 0.05 * unit(rng)
    hits = store.knn(query, 5)
    assert len(hits) == 5
    assert all_chunks[hits[0][0]].chunk.name == "f2_5"  # the 18th chunk inserted
    assert [d for _, d in hits] == sorted(d for _, d in hits)
    expected = sorted(1 - float(np.dot(v, query) / np.linalg.norm(query)) for v in vectors)[:5]
    assert [d for _, d in hits] == pytest.approx(expected, abs=STORED)
    assert store.knn(query, 0) == []
    with pytest.raises(ValueError):
        store.knn(np.ones(DIM + 1), 3)


def _check_filtered(store: Store, query: np.ndarray, k: int, filters: Filters) -> None:
    from codesearch.globs import any_path_matches

    hits = store.knn(query, k, filters)
    chunks = store.chunks(range(1, 1000))
    ok = [
        (cid, s)
        for cid, s in chunks.items()
        if (not filters.languages or s.chunk.language in filters.languages)
        and (not filters.kinds or s.chunk.kind in filters.kinds)
        and any_path_matches(s.chunk.path, filters.path_globs)
    ]
    assert len(hits) == min(k, len(ok))
    assert {cid for cid, _ in hits} <= {cid for cid, _ in ok}
    assert [d for _, d in hits] == sorted(d for _, d in hits)


@pytest.mark.parametrize(
    "filters",
    [
        Filters(languages=("go",)),
        Filters(kinds=("class",)),
        Filters(path_globs=("tests/",)),
        Filters(path_globs=("*.rs",)),
        Filters(languages=("python", "rust"), kinds=("function",), path_globs=("src",)),
    ],
)
def test_knn_filters(store: Store, rng: np.random.Generator, filters: Filters) -> None:
    _corpus(store, rng)
    _check_filtered(store, unit(rng), 3, filters)
    _check_filtered(store, unit(rng), 200, filters)  # more than the filters leave


def test_knn_exact_fallback_when_filters_leave_too_few(
    store: Store, rng: np.random.Generator
) -> None:
    vectors = _corpus(store, rng, n=300)
    # the only "method" chunk is the farthest from the query: the over-fetched KNN pass
    # (20 vectors for k=1) cannot reach it, so only the exact scan finds it
    rare = [chunk("vendor/x.go", "Rare", "func Rare() {}", language="go", kind="method")]
    query = vectors[0]
    store.replace_file(state("vendor/x.go"), rare, {rare[0].content_hash: -query})
    nearest = store._conn.execute(
        "SELECT rowid FROM vec_chunks WHERE embedding MATCH vec_int8(?) AND k = 20",
        (quantise(query).tobytes(),),
    ).fetchall()
    assert store.stats()["vectors"] not in {r[0] for r in nearest}  # the rare vector's id
    for filters in (
        Filters(kinds=("method",)),
        Filters(path_globs=("vendor/",)),
        Filters(path_globs=("*.go",), kinds=("method", "section")),
    ):
        hits = store.knn(query, 1, filters)
        assert len(hits) == 1
        assert store.chunks([hits[0][0]])[hits[0][0]].chunk.name == "Rare"
        assert hits[0][1] == pytest.approx(2.0, abs=STORED)
    assert len(store.knn(query, 10, Filters(path_globs=("vendor/",)))) == 1
    assert store.knn(query, 3, Filters(languages=("cobol",))) == []
    assert store.knn(query, 3, Filters(path_globs=("nowhere/",))) == []


# -- bm25 ---------------------------------------------------------------------------------------


def test_bm25_identifier_aware_and_stemmed(store: Store, rng: np.random.Generator) -> None:
    docs = {
        "net/retry.py": [
            chunk(
                "net/retry.py",
                "compute_retry_backoff",
                "def compute_retry_backoff(n):\n    return 2 ** n",
            ),
            chunk(
                "net/retry.py",
                "RetryBackoff",
                "class RetryBackoff:\n    pass",
                kind="class",
                start=4,
            ),
        ],
        "net/http.py": [
            chunk(
                "net/http.py",
                "parseHTTPResponse",
                "function parseHTTPResponse(r) {}",
                language="javascript",
            ),
            chunk("net/http.py", "send", "def send():\n    # give up after 3 retries", start=3),
        ],
        "docs/readme.md": [
            chunk(
                "docs/readme.md", "Install", "pip install it", language="markdown", kind="section"
            ),
        ],
    }
    for path, cs in docs.items():
        put(store, path, cs, rng)
    names = {s.id: s.chunk.name for s in store.chunks(range(1, 100)).values()}

    def found(query: str, k: int = 10, filters: Filters | None = None) -> list[str]:
        hits = store.bm25(query, k, filters or Filters())
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        assert all(s > 0 for _, s in hits)
        return [names[cid] for cid, _ in hits]

    assert set(found("retry backoff")[:2]) == {"compute_retry_backoff", "RetryBackoff"}
    assert "send" in found("retry")  # porter: retries ~ retry
    assert "compute_retry_backoff" in found("retries")
    assert found("how to parse http response")[0] == "parseHTTPResponse"
    assert found("RetryBackoff")[0] == "RetryBackoff"
    assert found("readme") == ["Install"]  # the path is indexed
    assert found("retry", filters=Filters(kinds=("class",))) == ["RetryBackoff"]
    assert found("retry", filters=Filters(path_globs=("http.py",))) == ["send"]
    assert found("retry", filters=Filters(languages=("javascript",))) == []
    assert found("retry backoff", k=1) == found("retry backoff")[:1]
    assert store.bm25("", 5) == [] and store.bm25("  ?? ", 5) == []
    assert store.bm25("retry", 0) == []


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '""',
        'a"b',
        "*",
        "retry*",
        "-retry",
        "NEAR(retry backoff)",
        "retry AND",
        "OR",
        "NOT",
        "(",
        ")",
        "((retry",
        "col:retry",
        "^retry",
        "{name}: x",
        "+",
        "é ü 日本語",
        "\x00",
        "retry\nbackoff",
        "'; DROP TABLE chunks; --",
        "a" * 5000,
    ],
)
def test_bm25_never_raises_on_user_input(
    store: Store, rng: np.random.Generator, query: str
) -> None:
    put(store, "a.py", [chunk("a.py", "retry", "def retry(): pass # 日本語 é")], rng)
    assert isinstance(store.bm25(query, 5), list)
    assert store.stats()["chunks"] == 1


# -- the in-memory vector cache ------------------------------------------------------------------


def _same_knn(cached: Store, plain: Store, query: np.ndarray, k: int, filters: Filters) -> None:
    """The cache gives vec0's answer: same chunks in the same order, same distances."""
    want = plain.knn(query, k, filters)
    got = cached.knn(query, k, filters)
    assert [cid for cid, _ in got] == [cid for cid, _ in want]
    assert [d for _, d in got] == pytest.approx([d for _, d in want], abs=1e-5)


def _everything(cached: Store, plain: Store, rng: np.random.Generator, dim: int = DIM) -> None:
    """Both paths agree on a full ranking, so the cache holds exactly the store's vectors."""
    n = plain.stats()["chunks"] + 5
    for _ in range(3):
        _same_knn(cached, plain, unit(rng, dim), n, Filters())
    assert cached._cache is not None
    assert sorted(cached._cache.ids.tolist()) == sorted(
        r[0] for r in plain._conn.execute("SELECT id FROM vectors")
    )


KNN_FILTERS = [
    Filters(),
    Filters(languages=("go",)),
    Filters(kinds=("class",)),
    Filters(path_globs=("tests/",)),
    Filters(path_globs=("*.rs",)),
    Filters(languages=("python", "rust"), kinds=("function",), path_globs=("src",)),
    Filters(kinds=("method",)),  # only the rare far chunk: the exact second pass
    Filters(languages=("cobol",)),  # nothing
]


def test_vector_cache_gives_vec0_results(store: Store, rng: np.random.Generator) -> None:
    vectors = _corpus(store, rng, n=300)
    rare = [chunk("vendor/x.go", "Rare", "func Rare() {}", language="go", kind="method")]
    store.replace_file(state("vendor/x.go"), rare, {rare[0].content_hash: -vectors[0]})
    # the first chunk's text and header in another file: the two share one vector
    twin = Chunk("tests/twin.py", "python", "function", "twin", 1, 1, "body 0 0", "# tests/m0.py")
    store.replace_file(state("tests/twin.py"), [twin], {})
    store.remove_file("src/m1.go")  # orphan vectors: in the cache, but no chunk
    with Store.open(store.path, vector_cache=True) as cached:
        assert cached._cache is not None and len(cached._cache) == store.stats()["vectors"]
        for filters in KNN_FILTERS:
            for k in (1, 3, 10, 80, 400):
                _same_knn(cached, store, unit(rng), k, filters)
            _same_knn(cached, store, vectors[0], 1, filters)
        assert cached.knn(unit(rng), 0) == []
        with pytest.raises(ValueError):
            cached.knn(np.ones(DIM + 1), 3)
        near = cached.knn(vectors[0], 2)  # the vector shared by two chunks: both, tied
        assert near[0][1] == pytest.approx(0.0, abs=STORED) and near[1][1] == near[0][1]


def test_vector_cache_follows_another_connection(store: Store, rng: np.random.Generator) -> None:
    _corpus(store, rng, n=60)
    cached = Store.open(store.path, vector_cache=True)
    try:
        _everything(cached, store, rng)
        # appended: a new file, and a changed file (new vectors; its old ones become orphans)
        put(store, "new.py", [chunk("new.py", "n", "def n(): pass")], rng)
        changed = [chunk("src/m1.go", "g", "func g() {}", language="go")]
        put(store, "src/m1.go", changed, rng)
        _everything(cached, store, rng)
        store.remove_file("tests/m0.py")
        _everything(cached, store, rng)
        # deleted: orphans pruned, also rows in the middle of the cached matrix
        assert store.prune_orphan_vectors(keep=0) > 0
        _everything(cached, store, rng)
        put(store, "after.py", [chunk("after.py", "a", "def a(): pass")], rng)
        _everything(cached, store, rng)
        # a new chunker: chunks go, vectors stay
        assert store.configure(model_id="test-model", dim=DIM, chunker_version="c2") is True
        assert cached.knn(unit(rng), 5) == []
        _everything(cached, store, rng)
        # a new model of the same dimension, then of another dimension
        assert store.configure(model_id="m2", dim=DIM, chunker_version="c2") is True
        assert len(cached._cache or ()) == 0 or cached.knn(unit(rng), 5) == []
        _everything(cached, store, rng)
        put(store, "m2.py", [chunk("m2.py", "x", "x = 2")], rng)
        _everything(cached, store, rng)
        assert store.configure(model_id="m3", dim=DIM * 2, chunker_version="c2") is True
        big = [chunk("big.py", "b", "b = 1"), chunk("big.py", "c", "c = 1", start=2)]
        store.replace_file(state("big.py"), big, {c.content_hash: unit(rng, DIM * 2) for c in big})
        _everything(cached, store, rng, dim=DIM * 2)
        with pytest.raises(ValueError):
            cached.knn(unit(rng), 3)  # the old dimension
    finally:
        cached.close()


def test_vector_cache_sees_its_own_writes(store: Store, rng: np.random.Generator) -> None:
    with Store.open(store.path, vector_cache=True) as cached:
        assert cached.knn(unit(rng), 5) == []
        many = [chunk("a.py", f"f{i}", f"def f{i}(): pass", start=i + 1) for i in range(30)]
        cached.replace_file(state("a.py"), many, vecs(many, rng))
        _everything(cached, store, rng)
        one = [chunk("b.py", "g", "def g(): pass")]
        put(cached, "b.py", one, rng)  # a few rows: appended one by one
        _everything(cached, store, rng)
        cached.remove_file("a.py")
        assert cached.prune_orphan_vectors(keep=3) == 27
        _everything(cached, store, rng)
        # no change: no refresh (the stamp still matches)
        stamp = cached._cache.stamp if cached._cache else None
        cached.knn(unit(rng), 5)
        assert cached._cache is not None and cached._cache.stamp == stamp


def test_vector_cache_on_an_unconfigured_index(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "i.sqlite"
    with Store.open(path, create=True, vector_cache=True) as cached:
        with pytest.raises(CodesearchError, match="no model configured"):
            cached.knn(unit(rng), 3)
        cached.configure(model_id="m", dim=DIM, chunker_version="c")
        assert cached.knn(unit(rng), 3) == []
        put(cached, "a.py", [chunk("a.py", "f", "def f(): pass")], rng)
        assert len(cached.knn(unit(rng), 3)) == 1


def test_zero_vectors_are_orthogonal_to_everything(store: Store, rng: np.random.Generator) -> None:
    a = [chunk("a.py", "zero", "def zero(): pass")]
    store.replace_file(state("a.py"), a, {a[0].content_hash: np.zeros(DIM, dtype=np.float32)})
    put(store, "b.py", [chunk("b.py", "b", "def b(): pass")], rng)
    with Store.open(store.path, vector_cache=True) as cached:
        for s in (store, cached):
            hits = s.knn(unit(rng), 5)
            assert len(hits) == 2 and 1.0 in [d for _, d in hits]
            assert [d for _, d in s.knn(np.zeros(DIM), 5)] == [1.0, 1.0]


# -- check -------------------------------------------------------------------------------------


def test_check_is_empty_when_healthy(
    store: Store, rng: np.random.Generator, tmp_path: Path
) -> None:
    assert store.check() == []
    _corpus(store, rng, n=30)
    store.remove_file("tests/m0.py")  # orphan vectors are fine
    assert store.check() == []
    with Store.open(tmp_path / "fresh.sqlite", create=True) as fresh:
        assert fresh.check() == []


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (
            ["DELETE FROM vectors WHERE id = 3"],
            [
                "1 chunks point to no vectors row (chunk ids 3)",
                "1 rows of vec_chunks have no vectors row (ids 3)",
            ],
        ),
        (
            ["DELETE FROM vec_chunks WHERE rowid = 3"],
            ["chunks point to no row of vec_chunks", "vectors rows have no row in vec_chunks"],
        ),
        (
            ["INSERT INTO vec_chunks(rowid, embedding) VALUES (999, vec_int8(zeroblob(8)))"],
            ["1 rows of vec_chunks have no vectors row (ids 999)"],
        ),
        (
            # a contentless table forgets a row when told its text (here a wrong one)
            [
                "INSERT INTO chunks_fts(chunks_fts, rowid, name, path, body) "
                "VALUES ('delete', 2, '', '', '')"
            ],
            ["1 chunks are missing from the full-text"],
        ),
        (
            ["INSERT INTO chunks_fts(rowid, name, path, body) VALUES (777, 'x', 'y', 'z')"],
            ["1 full-text index rows have no chunk (rowids 777)"],
        ),
        (
            ["DELETE FROM files WHERE path = 'tests/m0.py'"],
            ["6 chunks belong to 1 files with no files row (file ids "],
        ),
        (["DELETE FROM meta WHERE key = 'dim'"], ["meta has no dim but 18 chunks exist"]),
        (
            ["DELETE FROM meta WHERE key IN ('dim', 'model_id')"],
            ["meta has no model_id or dim"],
        ),
        (["DROP TABLE vec_chunks"], ["the vector table vec_chunks is missing"]),
        (
            ["UPDATE meta SET value = '9' WHERE key = 'dim'"],
            ["vector table holds 8-dim vectors, meta says 9"],
        ),
    ],
)
def test_check_reports_each_kind_of_damage(
    store: Store, rng: np.random.Generator, damage: list[str], expected: list[str]
) -> None:
    _corpus(store, rng, n=18)
    store._conn.execute("PRAGMA foreign_keys = OFF")  # the damage the constraints would stop
    for sql in damage:
        store._conn.execute(sql)
    problems = store.check()
    assert problems, damage
    text = "\n".join(problems)
    for part in expected:
        assert part in text
    assert all("\n" not in p for p in problems)


def _real_index(path: Path, rng: np.random.Generator) -> None:
    """An index of a few hundred pages: vectors, texts, FTS."""
    with Store.open(path, create=True) as s:
        s.configure(model_id="m", dim=64, chunker_version="c")
        for f in range(90):
            cs = [
                chunk(f"f{f}.py", f"fn{f}_{i}", f"def fn{f}_{i}(): return {i}\n" * 12, start=i * 12)
                for i in range(8)
            ]
            s.replace_file(state(f"f{f}.py"), cs, {c.content_hash: unit(rng, 64) for c in cs})


def _overwrite(path: Path, offset: int, length: int) -> None:
    garbage = np.random.default_rng(7).integers(0, 256, length, dtype=np.uint8).tobytes()
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(garbage)


def _one_line_corrupt(path: Path, **kwargs: bool) -> None:
    with pytest.raises(IndexCorrupt, match=r"corrupted .*--rebuild") as info:
        Store.open(path, **kwargs)
    assert "\n" not in str(info.value)


def test_damaged_files_raise_index_corrupt_on_open(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    good = tmp_path / "good.sqlite"
    _real_index(good, rng)
    size = good.stat().st_size
    assert size > 100 * 4096
    cases = {
        "garbage with a SQLite header": lambda p: p.write_bytes(
            b"SQLite format 3\x00" + os.urandom(8192)
        ),
        "first page overwritten after the header": lambda p: _overwrite(p, 100, 3000),
        "truncated": lambda p: os.truncate(p, size // 2),
    }
    for name, spoil in cases.items():
        path = tmp_path / f"{name}.sqlite"
        path.write_bytes(good.read_bytes())
        spoil(path)
        _one_line_corrupt(path)
    # an SQLite file of another program, and one that lost a table
    other = tmp_path / "other.sqlite"
    conn = sqlean.connect(str(other))
    conn.execute("CREATE TABLE notes(x)")
    conn.commit()
    conn.close()
    _one_line_corrupt(other)
    _one_line_corrupt(other, create=True)
    assert (
        sqlean.connect(str(other)).execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 1
    )
    lost = tmp_path / "lost.sqlite"
    lost.write_bytes(good.read_bytes())
    conn = sqlean.connect(str(lost))
    conn.execute("DROP TABLE files")
    conn.commit()
    conn.close()
    _one_line_corrupt(lost)


def test_pages_overwritten_in_the_middle(tmp_path: Path, rng: np.random.Generator) -> None:
    """Opening reads only the schema, so damage further in is found when it is read: every
    operation either works or raises IndexCorrupt, and check() reports the damage."""
    path = tmp_path / "index.sqlite"
    _real_index(path, rng)
    pages = path.stat().st_size // 4096
    _overwrite(path, (pages // 2) * 4096, 4 * 4096)
    _one_line_corrupt(path, vector_cache=True)  # loading every vector reads the damage
    with Store.open(path) as s:
        problems = s.check()
        assert problems and all("\n" not in p for p in problems)
        operations = [
            lambda: s.stats(),
            lambda: s.knn(unit(rng, 64), 5),
            lambda: s.knn(unit(rng, 64), 5, Filters(kinds=("method",))),
            lambda: s.bm25("fn3", 5),
            lambda: s.all_chunks(),
            lambda: s.file_states(),
            lambda: s.chunks(range(1, 500)),
            lambda: s.replace_file(
                state("new.py"),
                [new := chunk("new.py", "n", "def n(): pass")],
                {new.content_hash: unit(rng, 64)},
            ),
        ]
        for op in operations:
            try:
                op()
            except IndexCorrupt as exc:
                assert "\n" not in str(exc)


def test_a_full_disk_is_disk_full_and_vec0_damage_is_plain_words(tmp_path: Path) -> None:
    """SQLITE_FULL is its own error (never IndexCorrupt), and sqlite-vec's words for a damaged
    vector are IndexCorrupt in plain words, without SQLite's own."""
    from codesearch.store.base import _translate
    from codesearch.store.check import find_problems
    from codesearch.types import DiskFull

    full = _translate(sqlean.OperationalError("database or disk is full"), tmp_path / "i.sqlite")
    assert isinstance(full, DiskFull) and str(full).startswith("disk full:")
    vec = _translate(
        sqlean.OperationalError("Could not fetch vector data for 60, reading from blob failed"),
        tmp_path / "i.sqlite",
    )
    assert isinstance(vec, IndexCorrupt) and "could not fetch" not in str(vec).lower()

    class Full:  # a connection whose every read meets a full disk (a temp file for the check)
        def execute(self, *args: object) -> None:
            raise sqlean.OperationalError("database or disk is full")

    with pytest.raises(sqlean.OperationalError):  # no finding about the file: raised
        find_problems(Full(), "vec_chunks")
