"""Task routing (code vs. prose vectors) and multi-vector re-ranking.

A fake task embedder (the hashing bag of words of FakeEmbedder, rolled by a per-task offset, so
vectors of one task compare like the plain fake's and vectors of two tasks are unrelated; token
vectors one-hot per word) drives the indexer, store and searcher; the last test runs the tiny
checkpoint in the jina-v4 layout end to end.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlean
import sqlite_vec
from fake_embedder import FakeEmbedder, tokenize

from codesearch.config import load_settings
from codesearch.embed import Embedder
from codesearch.index import Indexer
from codesearch.search import Fusion, Searcher, SearchOptions, late_interaction
from codesearch.store import SCHEMA_VERSION, Store
from codesearch.store.migrations import MIGRATIONS
from codesearch.store.quant import quantise
from codesearch.store.sql import body_dictionary, fts_columns, key_digest, pack_body, unpack_body
from codesearch.types import BadInput, Chunk, FileState, Filters, content_hash, vector_key

TASKS = ("retrieval", "text-matching", "code")
MULTI_DIM = 512
NO_FILTERS = Filters()
DENSE_ONLY = Fusion(lexical_weight=0.0, phrase_bonus=0.0)  # rankings by the vectors alone


class TaskFake(Embedder):
    """A deterministic embedder with tasks and token vectors; records every call in ``calls``
    as (kind, task, number of texts)."""

    max_tokens = 100_000
    task = "code"
    multi_vector_dim = MULTI_DIM

    def __init__(self, dim: int = 64, tasks: tuple[str, ...] = TASKS) -> None:
        self.base = FakeEmbedder(dim)
        self.dim = dim
        self.model_id = f"fake-tasks:{dim}"
        self.tasks = tasks
        self.calls: list[tuple[str, str, int]] = []

    def embed_batch(self, texts: Sequence[str], *, query: bool, task: str | None) -> np.ndarray:
        task = task or "code"
        self.calls.append(("queries" if query else "documents", task, len(texts)))
        return np.roll(self.base.vectors(texts), 7 * (TASKS.index(task) + 1), axis=1)

    def embed_multivector_batch(
        self, texts: Sequence[str], *, task: str | None, query: bool
    ) -> list[np.ndarray]:
        task = task or "code"
        self.calls.append(("multi-query" if query else "multi-documents", task, len(texts)))
        shift = 11 * (TASKS.index(task) + 1)
        out = []
        for text in texts:
            words = tokenize(text)
            rows = np.zeros((len(words), MULTI_DIM), dtype=np.float32)
            for i, word in enumerate(words):
                rows[i, (zlib.crc32(word.encode()) + shift) % MULTI_DIM] = 1.0
            out.append(rows)
        return out

    def count_tokens(self, text: str) -> int:
        return len(tokenize(text))

    def documents(self) -> list[tuple[str, int]]:
        return [(task, n) for kind, task, n in self.calls if kind == "documents"]


def _chunk(path: str, name: str, text: str, language: str = "python", kind: str = "function"):
    return Chunk(path, language, kind, name, 1, 1 + text.count("\n"), text, "")


def _store(path: Path, chunks: Sequence[Chunk], emb: Any, **open_kw: Any) -> Store:
    """A store holding ``chunks``, each embedded for its task (one file per chunk path)."""
    store = Store.open(path, create=True, **open_kw)
    store.configure(model_id=emb.model_id, dim=emb.dim, chunker_version="t")
    by_path: dict[str, list[Chunk]] = {}
    for c in chunks:
        by_path.setdefault(c.path, []).append(c)
    for file, items in by_path.items():
        tasks = [emb.document_task(c) for c in items]
        vectors = {}
        for c, task in zip(items, tasks, strict=True):
            embed = emb.embed_documents
            one = embed([c.embed_text()], task=task) if task else embed([c.embed_text()])
            vectors[c.vector_key(task)] = one[0]
        store.replace_file(FileState(file, 1, 1, file), items, vectors, tasks)
    return store


# a stored vector's distance from the float one it was made of (int8 storage, store/quant.py)
STORED = 2e-3


def _run(root: Path, emb: Any):
    settings = load_settings()
    with Store.open(settings.index_path(root), create=True) as store:
        return Indexer(root, store, emb, settings).run()


def _vector_rows(store: Store) -> list[tuple[str, str, str, str]]:
    """(path, language, kind, task of its vector) per chunk."""
    sql = (
        "SELECT c.path, c.language, c.kind, v.task FROM chunks c "
        "JOIN vectors v ON v.id = c.vector_id ORDER BY c.id"
    )
    return [tuple(r) for r in store._conn.execute(sql)]


# -- routing and keys -------------------------------------------------------------------------


def test_document_task_and_vector_keys() -> None:
    plain, tasks = FakeEmbedder(), TaskFake()
    code = _chunk("a.py", "f", "def f(): pass")
    section = _chunk("README.md", "Install", "# Install\npip install x", "markdown", "section")
    rst = _chunk("doc.rst", "", "Usage\n=====", "rst", "window")
    text = _chunk("notes.txt", "", "some notes", "text", "window")
    code_section = _chunk("a.py", "Notes", "# notes", "python", "section")
    assert tasks.supports_multivector and not plain.supports_multivector
    assert plain.tasks == () and tasks.tasks == TASKS
    assert {plain.document_task(c) for c in (code, section, rst, text)} == {""}
    assert [tasks.document_task(c) for c in (code, section, rst, text, code_section)] == [
        "code",
        "retrieval",
        "retrieval",
        "retrieval",
        "retrieval",
    ]
    assert TaskFake(tasks=("code",)).document_task(section) == "code"  # falls back
    # task "": exactly the content hash (indexes from before tasks stay valid)
    assert code.vector_key() == code.vector_key("") == code.content_hash
    keys = {code.vector_key(t) for t in ("", *TASKS)}
    assert len(keys) == 4 and code.vector_key("code") == f"code:{code.content_hash}"


def test_indexer_embeds_each_task_once_and_reuses_per_task(demo_repo: Path) -> None:
    emb = TaskFake()
    stats = _run(demo_repo, emb)
    assert sorted(task for task, _ in emb.documents()) == ["code", "retrieval"]  # one call each
    assert sum(n for _, n in emb.documents()) == stats.chunks_embedded > 0
    settings = load_settings()
    with Store.open(settings.index_path(demo_repo)) as store:
        assert store.tasks() == ["code", "retrieval"]
        rows = _vector_rows(store)
        assert {task for path, *_, task in rows if path == "README.md"} == {"retrieval"}
        assert {task for path, *_, task in rows if path != "README.md"} == {"code"}
        chunks = [s.chunk for s in store.all_chunks()]
        want = {c.vector_key(emb.document_task(c)) for c in chunks}
        assert store.has_vectors(want) == want
        assert store.has_vectors({c.content_hash for c in chunks}) == set()
        assert store.check() == []
    # nothing changed: nothing embedded; renamed files reuse their vectors, per task
    emb.calls.clear()
    assert _run(demo_repo, emb).chunks_embedded == 0 and emb.calls == []
    (demo_repo / "README.md").rename(demo_repo / "GUIDE.md")
    (demo_repo / "src/app/retry.py").rename(demo_repo / "src/app/backoff.py")
    stats = _run(demo_repo, emb)
    assert stats.chunks_embedded == 0 and stats.chunks_reused > 0 and emb.calls == []


def test_same_text_under_two_tasks_gets_two_vectors(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    text = "shared words in two files"
    a, b, c, d = (_chunk(p, "x", text) for p in ("a.py", "b.md", "c.py", "d.txt"))
    assert a.content_hash == b.content_hash  # the same embedded text
    va, vb = (rng.standard_normal(8).astype(np.float32) for _ in range(2))
    with Store.open(tmp_path / "i.sqlite", create=True) as store:
        store.configure(model_id="m", dim=8, chunker_version="t")
        store.replace_file(FileState("a.py", 1, 1, "a"), [a], {a.vector_key("code"): va}, ["code"])
        keys = [b.vector_key("code"), b.vector_key("retrieval"), b.content_hash]
        assert store.has_vectors(keys) == {b.vector_key("code")}
        with pytest.raises(ValueError, match="no vector"):  # another task needs its own
            store.replace_file(FileState("b.md", 1, 1, "b"), [b], {}, ["retrieval"])
        store.replace_file(
            FileState("b.md", 1, 1, "b"), [b], {b.vector_key("retrieval"): vb}, ["retrieval"]
        )
        store.replace_file(FileState("c.py", 1, 1, "c"), [c], {}, ["code"])  # reused
        store.replace_file(FileState("d.txt", 1, 1, "d"), [d], {}, ["retrieval"])  # reused
        with pytest.raises(ValueError, match="tasks"):
            store.replace_file(FileState("d.txt", 1, 1, "d"), [d], {}, [])
        assert store.stats()["vectors"] == 2
        assert store.tasks() == ["code", "retrieval"]
        paths = store.chunks(range(1, 10))

        def found(query: np.ndarray, task: str | None) -> set[str]:
            return {paths[cid].chunk.path for cid, _ in store.knn(query, 5, task=task)}

        assert found(va, "code") == {"a.py", "c.py"}
        assert found(va, "retrieval") == {"b.md", "d.txt"}
        assert found(va, "text-matching") == set() and found(va, "") == set()
        assert found(va, None) == {"a.py", "b.md", "c.py", "d.txt"}
        assert store.check() == []
        # chunks pointing at the vector of another text are damage that check() names
        key = key_digest(a.vector_key("code"))
        other = key_digest("code:" + "f" * 64)
        store._conn.execute("UPDATE vectors SET key = ? WHERE id = 1", (other,))
        assert any("2 chunks point to the vector of another key" in p for p in store.check())
        store._conn.execute("UPDATE vectors SET key = ? WHERE id = 1", (key,))
        assert store.check() == []
        store._conn.execute("UPDATE vectors SET task = 'text-matching' WHERE id = 2")
        assert [p for p in store.check() if "another key" in p] == [
            "2 chunks point to the vector of another key (chunk ids 2, 4)"
        ]


# -- migration 2 --------------------------------------------------------------------------------


def _downgrade_to_schema_1(path: Path) -> None:
    """Turn an index into what codesearch wrote before migration 2 (schema 1)."""
    _downgrade_to_schema_2(path)
    conn = sqlean.connect(str(path), isolation_level=None)
    conn.enable_load_extension(True)
    sqlite_vec.load(conn)
    conn.execute("DROP INDEX vectors_task")
    conn.execute("ALTER TABLE vectors DROP COLUMN task")
    conn.execute("PRAGMA user_version = 1")
    old = sqlean.connect(":memory:")
    for statement in MIGRATIONS[0]:
        if "fts5" not in statement and "TRIGGER" not in statement:
            old.execute(statement)
    columns = "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('vectors')"
    assert conn.execute(columns).fetchall() == old.execute(columns).fetchall()
    conn.close()


def _downgrade_to_schema_5(path: Path) -> None:
    """Turn an index into what codesearch wrote before migration 6: files keyed by path and
    chunks naming them by path, vector keys as text (recomputed from the chunks' texts; orphan
    vectors, whose text is gone, are dropped), a full-text table with ``contentless_delete``
    and the trigger that deleted from it."""
    conn = sqlean.connect(str(path), isolation_level=None)
    conn.enable_load_extension(True)
    sqlite_vec.load(conn)
    if conn.execute("PRAGMA user_version").fetchone()[0] < 6:
        conn.close()
        return
    keys: dict[int, tuple[str, str, int]] = {}
    rows = conn.execute(
        "SELECT c.vector_id, c.body, v.task, v.last_used, c.language, c.kind, c.name, c.path, "
        "c.id FROM chunks c JOIN vectors v ON v.id = c.vector_id"
    ).fetchall()
    plain: dict[int, bytes] = {}  # bodies as schema 5 packed them: no preset dictionary
    for vid, body, task, used, language, kind, name, cpath, cid in rows:
        header, text = unpack_body(body, body_dictionary(language, kind, name, cpath))
        plain[cid] = pack_body(header, text)
        embedded = f"{header}\n{text}" if header else text
        keys[vid] = (vector_key(content_hash(embedded), task), task, used)
    conn.execute("BEGIN")
    for (vid,) in conn.execute("SELECT id FROM vectors").fetchall():
        if vid not in keys:
            conn.execute("DELETE FROM vec_chunks WHERE rowid = ?", (vid,))
    conn.execute(
        "CREATE TABLE files5 (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
        "mtime_ns INTEGER NOT NULL, content_hash TEXT NOT NULL, indexed_at INTEGER NOT NULL)"
    )
    conn.execute(
        "INSERT INTO files5 SELECT path, size, mtime_ns, content_hash, indexed_at FROM files"
    )
    conn.execute(
        "CREATE TABLE vectors5 (id INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT NOT NULL UNIQUE, "
        "last_used INTEGER NOT NULL, task TEXT NOT NULL DEFAULT '')"
    )
    conn.executemany(
        "INSERT INTO vectors5(id, hash, task, last_used) VALUES (?, ?, ?, ?)",
        [(vid, key, task, used) for vid, (key, task, used) in keys.items()],
    )
    conn.execute(
        "CREATE TABLE chunks5 (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "path TEXT NOT NULL REFERENCES files(path) ON DELETE CASCADE, language TEXT NOT NULL, "
        "kind TEXT NOT NULL, name TEXT NOT NULL, start_line INTEGER NOT NULL, "
        "end_line INTEGER NOT NULL, vector_id INTEGER NOT NULL REFERENCES vectors(id), "
        "media TEXT NOT NULL DEFAULT '', def_start INTEGER NOT NULL DEFAULT 0, "
        "def_end INTEGER NOT NULL DEFAULT 0, body BLOB NOT NULL DEFAULT x'')"
    )
    conn.execute(
        "INSERT INTO chunks5 SELECT id, path, language, kind, name, start_line, end_line, "
        "vector_id, media, def_start, def_end, body FROM chunks"
    )
    conn.execute("DROP VIEW chunks")
    for table in ("chunk_rows", "vectors", "files", "chunks_fts"):
        conn.execute(f"DROP TABLE {table}")
    for old, new in (("files5", "files"), ("vectors5", "vectors"), ("chunks5", "chunks")):
        conn.execute(f"ALTER TABLE {old} RENAME TO {new}")
    for statement in (
        "CREATE INDEX vectors_last_used ON vectors(last_used)",
        "CREATE INDEX vectors_task ON vectors(task)",
        "CREATE INDEX chunks_path ON chunks(path)",
        "CREATE INDEX chunks_vector ON chunks(vector_id)",
        *(st for st in MIGRATIONS[0] if "fts5" in st or "TRIGGER" in st),
    ):
        conn.execute(statement)
    for cid, name, cpath in conn.execute("SELECT id, name, path FROM chunks").fetchall():
        conn.execute("UPDATE chunks SET body = ? WHERE id = ?", (plain[cid], cid))
        _, text = unpack_body(plain[cid])
        conn.execute(
            "INSERT INTO chunks_fts(rowid, name, path, body) VALUES (?, ?, ?, ?)",
            (cid, *fts_columns(name, cpath, text)),
        )
    conn.execute("DELETE FROM meta WHERE key IN ('fts_text', 'fts_changed')")
    conn.execute("PRAGMA user_version = 5")
    conn.execute("COMMIT")
    conn.close()


def _downgrade_to_schema_4(path: Path) -> None:
    """Turn an index into what codesearch wrote before migration 5: float32 vectors (here the
    stored int8 ones, as unit vectors: storing them again gives the same codes), each chunk's
    text and header as plain columns, and its vector's key repeated in ``chunks.hash``."""
    _downgrade_to_schema_5(path)
    conn = sqlean.connect(str(path), isolation_level=None)
    conn.enable_load_extension(True)
    sqlite_vec.load(conn)
    if conn.execute("PRAGMA user_version").fetchone()[0] >= 5:
        rows = conn.execute("SELECT rowid, embedding FROM vec_chunks").fetchall()
        dim = int(conn.execute("SELECT value FROM meta WHERE key = 'dim'").fetchone()[0])
        conn.execute("DROP TABLE vec_chunks")
        conn.execute(
            f"CREATE VIRTUAL TABLE vec_chunks USING vec0(embedding float[{dim}] "
            "distance_metric=cosine)"
        )
        for rowid, blob in rows:
            codes = np.frombuffer(blob, dtype=np.int8).astype(np.float32)
            vector = codes / max(float(np.linalg.norm(codes)), 1e-9)
            conn.execute(
                "INSERT INTO vec_chunks(rowid, embedding) VALUES (?, ?)",
                (rowid, vector.astype(np.float32).tobytes()),
            )
        for name in ("text", "header", "hash"):
            conn.execute(f"ALTER TABLE chunks ADD COLUMN {name} TEXT NOT NULL DEFAULT ''")
        rows = conn.execute(
            "SELECT c.id, c.body, v.hash FROM chunks c JOIN vectors v ON v.id = c.vector_id"
        ).fetchall()
        for cid, body, key in rows:
            header, text = unpack_body(body)
            conn.execute(
                "UPDATE chunks SET text = ?, header = ?, hash = ? WHERE id = ?",
                (text, header, key, cid),
            )
        conn.execute("CREATE INDEX chunks_hash ON chunks(hash)")
        conn.execute("ALTER TABLE chunks DROP COLUMN body")
        conn.execute("PRAGMA user_version = 4")
    conn.close()


def _downgrade_to_schema_3(path: Path) -> None:
    """Turn an index into what codesearch wrote before migration 4 (definition ranges) and
    chunker version 3."""
    _downgrade_to_schema_4(path)
    conn = sqlean.connect(str(path), isolation_level=None)
    conn.enable_load_extension(True)
    sqlite_vec.load(conn)
    if conn.execute("PRAGMA user_version").fetchone()[0] >= 4:
        conn.execute("ALTER TABLE chunks DROP COLUMN def_start")
        conn.execute("ALTER TABLE chunks DROP COLUMN def_end")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'chunker_version'")
        conn.execute("PRAGMA user_version = 3")
    conn.close()


def _downgrade_to_schema_2(path: Path) -> None:
    """Turn an index into what codesearch wrote before migration 3 (pictures)."""
    _downgrade_to_schema_3(path)
    conn = sqlean.connect(str(path), isolation_level=None)
    conn.enable_load_extension(True)
    sqlite_vec.load(conn)
    if conn.execute("PRAGMA user_version").fetchone()[0] >= 3:
        conn.execute("DROP TABLE refs")
        conn.execute("ALTER TABLE chunks DROP COLUMN media")
        conn.execute("PRAGMA user_version = 2")
    conn.close()


def test_migration_5_makes_an_old_index_lean_without_embedding(demo_repo: Path) -> None:
    plain = FakeEmbedder()
    queries = ["retry with backoff", "price cache", "Demo shop running"]
    path = load_settings().index_path(demo_repo)
    first = _run(demo_repo, plain)
    with Store.open(path) as store:
        before = Searcher(store, plain).search_many(queries)
        codes = store._conn.execute("SELECT rowid, embedding FROM vec_chunks").fetchall()
    _downgrade_to_schema_4(path)
    conn = sqlean.connect(str(path), isolation_level=None)
    conn.execute("VACUUM")  # as an old release left it: float32 vectors, no free pages
    conn.close()
    old_size = path.stat().st_size
    with Store.open(path) as store:  # migrates and converts the vectors and the texts
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store._conn.execute("SELECT rowid, embedding FROM vec_chunks").fetchall() == codes
        columns = {r[1] for r in store._conn.execute("PRAGMA table_info(chunks)")}
        assert {"body"} <= columns and not {"text", "header", "hash"} & columns
        assert store.check() == []
        assert Searcher(store, plain).search_many(queries) == before
    assert path.stat().st_size < old_size  # the float32 pages were given back
    again = _run(demo_repo, plain)
    assert again.chunks_embedded == 0 and again.chunks_total == first.chunks_total


def test_migration_6_keeps_an_index_of_schema_5_and_its_answers(demo_repo: Path) -> None:
    """An index written by the release before schema 6 opens, is rewritten smaller once, and
    answers exactly as before (the same chunks, vectors and BM25 scores); nothing is
    re-embedded, and later edits keep it identical to a fresh index."""
    plain = FakeEmbedder()
    queries = ["retry with backoff", "price cache", "Demo shop running"]
    path = load_settings().index_path(demo_repo)
    first = _run(demo_repo, plain)
    with Store.open(path) as store:
        before = Searcher(store, plain).search_many(queries)
        lexical = [store.bm25(q, 20, NO_FILTERS) for q in queries]
        codes = store._conn.execute("SELECT rowid, embedding FROM vec_chunks").fetchall()
        chunks = [(c.id, c.chunk) for c in store.all_chunks()]
    _downgrade_to_schema_5(path)
    conn = sqlean.connect(str(path), isolation_level=None)
    conn.execute("VACUUM")
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'chunks_fts_delete'")
    conn.close()
    with Store.open(path) as store:  # migrates
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store._conn.execute("SELECT rowid, embedding FROM vec_chunks").fetchall() == codes
        assert [(c.id, c.chunk) for c in store.all_chunks()] == chunks
        assert store.check() == []
        assert Searcher(store, plain).search_many(queries) == before
        assert [store.bm25(q, 20, NO_FILTERS) for q in queries] == lexical
        # keys of 16 bytes, chunks naming files by id (sizes: benchmarks/index_cost.py)
        assert store._conn.execute("SELECT DISTINCT length(key) FROM vectors").fetchall() == [(16,)]
        assert "path" not in {r[1] for r in store._conn.execute("PRAGMA table_info(chunk_rows)")}
    again = _run(demo_repo, plain)
    assert again.chunks_embedded == 0 and again.chunks_total == first.chunks_total


def test_migration_3_keeps_an_index_built_before_it(demo_repo: Path) -> None:
    plain = FakeEmbedder()
    settings = load_settings()
    path = settings.index_path(demo_repo)
    first = _run(demo_repo, plain)
    with Store.open(path) as store:
        before = Searcher(store, plain).search_many(["retry with backoff"])
    _downgrade_to_schema_2(path)
    with Store.open(path) as store:  # migrates: old chunks are text chunks, no references
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert all(c.chunk.media is None for c in store.all_chunks())
        assert store.check() == [] and store.picture_counts() == (0, 0)
        assert Searcher(store, plain).search_many(["retry with backoff"]) == before
    again = _run(demo_repo, plain)
    assert again.chunks_embedded == 0 and again.chunks_total == first.chunks_total


def test_migration_4_keeps_an_index_built_before_it(demo_repo: Path) -> None:
    plain = FakeEmbedder()
    plain.max_tokens = 60  # so that a long function is split into parts
    body = "".join(f"    total += step_{i}(value) * {i}\n" for i in range(30))
    (demo_repo / "long.py").write_text(f"def accumulate(value):\n    total = 0\n{body}")
    queries = ["retry with backoff", "price cache", "Demo shop running", "step_29 value"]
    path = load_settings().index_path(demo_repo)
    first = _run(demo_repo, plain)
    with Store.open(path) as store:
        before = Searcher(store, plain).search_many(queries)
        parts = [c.chunk for c in store.all_chunks() if c.chunk.is_part]
    assert parts, "the fixture repository has a split definition"
    _downgrade_to_schema_3(path)
    with Store.open(path) as store:  # migrates: every chunk reads as whole until re-chunked
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert not any(c.chunk.is_part for c in store.all_chunks())
        assert store.check() == []
        assert all(Searcher(store, plain).search_many(queries))
    again = _run(demo_repo, plain)  # chunker 2 -> 3: re-chunked, every vector reused
    assert again.rebuilt and again.chunks_embedded == 0
    assert again.chunks_total == first.chunks_total
    with Store.open(path) as store:
        assert [c.chunk for c in store.all_chunks() if c.chunk.is_part] == parts
        assert Searcher(store, plain).search_many(queries) == before


def test_migration_2_keeps_an_index_built_before_it(demo_repo: Path) -> None:
    plain = FakeEmbedder()
    queries = ["retry with backoff", "price cache", "Demo shop running"]
    settings = load_settings()
    path = settings.index_path(demo_repo)
    first = _run(demo_repo, plain)
    with Store.open(path) as store:
        before = Searcher(store, plain).search_many(queries)
        vectors = store._conn.execute("SELECT id, key FROM vectors ORDER BY id").fetchall()
    _downgrade_to_schema_1(path)
    with Store.open(path) as store:  # migrates
        assert store._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store._conn.execute("SELECT id, key FROM vectors ORDER BY id").fetchall() == (
            vectors
        )
        assert store.tasks() == [""]
        assert store.check() == []
        assert Searcher(store, plain).search_many(queries) == before
    again = _run(demo_repo, plain)
    assert again.chunks_embedded == 0 and again.chunks_total == first.chunks_total
    # the same model gaining task routing re-embeds everything with tasks
    legacy, routed = TaskFake(tasks=()), TaskFake()
    _downgrade_to_schema_1(path)
    with Store.open(path) as store:
        store.configure(model_id=legacy.model_id, dim=legacy.dim, chunker_version="x")
    _run(demo_repo, legacy)
    assert {t for t, _ in legacy.documents()} == {"code"}  # task=None: the default
    with Store.open(path) as store:  # even a run scoped to one file redoes every file
        stats = Indexer(demo_repo, store, routed, settings).run(["README.md"])
    assert stats.rebuilt and stats.chunks_embedded == stats.chunks_total == first.chunks_total
    with Store.open(path) as store:
        assert store.tasks() == ["code", "retrieval"] and store.check() == []


# -- knn per task, vec0 and the vector cache ---------------------------------------------------


@pytest.fixture
def mixed(tmp_path: Path) -> Iterator[tuple[Store, dict[int, tuple[str, np.ndarray]]]]:
    """A store of random vectors over four tasks ("" too); chunk id -> (task, vector)."""
    rng = np.random.default_rng(11)
    truth: dict[int, tuple[str, np.ndarray]] = {}
    with Store.open(tmp_path / "m.sqlite", create=True) as store:
        store.configure(model_id="m", dim=8, chunker_version="t")
        for f in range(40):
            task = ("", "code", "retrieval", "code")[f % 4]
            lang = "markdown" if task == "retrieval" else ("python", "go")[f % 2]
            path = f"{'docs' if f % 3 else 'src'}/f{f}.x"
            cs = [_chunk(path, f"n{f}_{i}", f"body {f} {i}", lang) for i in range(5)]
            vs = [rng.standard_normal(8).astype(np.float32) for _ in cs]
            store.replace_file(
                FileState(path, 1, 1, path),
                cs,
                {c.vector_key(task): v for c, v in zip(cs, vs, strict=True)},
                [task] * len(cs),
            )
            start = max(truth, default=0)
            for i, v in enumerate(vs):
                truth[start + i + 1] = (task, v / np.linalg.norm(v))
        yield store, truth


def unit_codes(vector: np.ndarray) -> np.ndarray:
    codes = quantise(vector).astype(np.float32)
    return codes / np.linalg.norm(codes)


def _expected(
    truth: dict[int, tuple[str, np.ndarray]],
    store: Store,
    q: np.ndarray,
    k: int,
    task: str | None,
    filters: Filters,
) -> list[int]:
    """The k nearest chunk ids by brute force over the vectors as stored (int8 codes:
    store/quant.py) (the filters used here: language, "src/")."""
    chunks = store.chunks(list(truth))
    q = q / np.linalg.norm(q)
    ok = [
        (1.0 - float(unit_codes(v) @ q), cid)
        for cid, (t, v) in truth.items()
        if (task is None or t == task)
        and (not filters.languages or chunks[cid].chunk.language in filters.languages)
        and (not filters.path_globs or chunks[cid].chunk.path.startswith("src/"))
    ]
    return [cid for _, cid in sorted(ok)[:k]]


@pytest.mark.parametrize("cached", [False, True])
def test_knn_per_task(mixed: tuple[Store, dict[int, Any]], cached: bool) -> None:
    plain, truth = mixed
    rng = np.random.default_rng(3)
    assert plain.tasks() == ["", "code", "retrieval"]
    store = Store.open(plain.path, vector_cache=True) if cached else plain
    try:
        for task in (None, "", "code", "retrieval", "text-matching"):
            for filters in (Filters(), Filters(languages=("go",)), Filters(path_globs=("src/",))):
                for k in (1, 5, 300):
                    q = rng.standard_normal(8).astype(np.float32)
                    hits = store.knn(q, k, filters, task=task)
                    assert [cid for cid, _ in hits] == _expected(truth, store, q, k, task, filters)
                    if cached:
                        want = plain.knn(q, k, filters, task=task)
                        assert [d for _, d in hits] == pytest.approx([d for _, d in want], abs=1e-5)
        if cached:
            # the cache follows new rows of a new task, and deletions (compaction)
            extra = [_chunk("new.txt", "t", "a new text")]
            vec = rng.standard_normal(8).astype(np.float32)
            plain.replace_file(
                FileState("new.txt", 1, 1, "n"),
                extra,
                {extra[0].vector_key("text-matching"): vec},
                ["text-matching"],
            )
            hits = store.knn(vec, 3, task="text-matching")
            assert len(hits) == 1 and hits[0][1] == pytest.approx(0.0, abs=STORED)
            for f in range(0, 40, 3):
                plain.remove_file(f"src/f{f}.x" if f % 3 == 0 else f"docs/f{f}.x")
            assert plain.prune_orphan_vectors(keep=0) > 0
            live = {cid: truth[cid] for cid in plain.chunks(list(truth))}
            for task in ("", "code", "retrieval"):
                q = rng.standard_normal(8).astype(np.float32)
                hits = store.knn(q, 50, task=task)
                assert [cid for cid, _ in hits] == _expected(live, plain, q, 50, task, Filters())
            assert store.knn(vec, 3, task="text-matching")[0][1] == pytest.approx(0.0, abs=STORED)
    finally:
        if cached:
            store.close()


# -- the searcher ------------------------------------------------------------------------------


def _docs_repo(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "README.md").write_text(
        "# Demo\n\nIntro.\n\n## Installing\n\nInstall the package with pip and a wheel.\n"
    )
    (root / "pkg" / "retry.py").write_text(
        "def compute_backoff(attempt):\n    return min(30, 2 ** attempt) * jitter()\n"
    )
    return root


def test_search_embeds_each_task_once_and_merges(tmp_path: Path, monkeypatch: Any) -> None:
    root = _docs_repo(tmp_path / "repo")
    emb = TaskFake()
    _run(root, emb)
    with Store.open(load_settings().index_path(root)) as store:
        seen: list[tuple[str | None, list[int]]] = []
        knn = store.knn

        def spy(query: np.ndarray, k: int, filters: Filters = NO_FILTERS, task: Any = None):
            hits = knn(query, k, filters, task=task)
            seen.append((task, [cid for cid, _ in hits]))
            return hits

        monkeypatch.setattr(store, "knn", spy)
        emb.calls.clear()
        questions = ["install the package with pip", "compute backoff attempt", "   "]
        section, function, empty = Searcher(store, emb, DENSE_ONLY).search_many(questions)
        assert emb.calls == [("queries", "code", 2), ("queries", "retrieval", 2)]
        assert empty == []
        assert (section[0].path, section[0].name) == ("README.md", "Demo > Installing")
        assert (function[0].path, function[0].name) == ("pkg/retry.py", "compute_backoff")
        by_task: dict[str | None, set[int]] = {}
        for task, ids in seen:
            by_task.setdefault(task, set()).update(ids)
        chunks = {s.id: s.chunk for s in store.all_chunks()}
        assert {chunks[c].path for c in by_task["retrieval"]} == {"README.md"}
        assert {chunks[c].path for c in by_task["code"]} == {"pkg/retry.py"}


def test_search_without_tasks_takes_the_plain_path(tmp_path: Path, monkeypatch: Any) -> None:
    root = _docs_repo(tmp_path / "repo")
    plain = FakeEmbedder()
    _run(root, plain)
    with Store.open(load_settings().index_path(root)) as store:
        calls: list[tuple[Any, ...]] = []
        knn = store.knn
        monkeypatch.setattr(store, "knn", lambda *a, **kw: calls.append((a[1:], kw)) or knn(*a))
        monkeypatch.setattr(store, "tasks", lambda: pytest.fail("tasks() asked"))
        hits = Searcher(store, plain).search("install the package")
        assert hits and plain.calls == 2  # documents + one query call
        assert calls == [((100, Filters()), {})]  # no task argument


def _rerank_store(tmp_path: Path, emb: TaskFake) -> Store:
    chunks = [
        _chunk("x.py", "x", "retry retry retry retry retry"),
        _chunk("y.py", "y", "retry backoff delay alpha beta gamma delta epsilon zeta eta theta"),
        _chunk(
            "doc.md",
            "Retrying",
            "retry backoff delay " + " ".join(f"word{i}" for i in range(20)),
            "markdown",
            "section",
        ),
        _chunk("w.py", "w", "retry backoff delay " + " ".join(f"other{i}" for i in range(30))),
    ]
    return _store(tmp_path / "r.sqlite", chunks, emb)


def test_rerank_reorders_the_top_by_maxsim(tmp_path: Path) -> None:
    emb = TaskFake(dim=256)
    with _rerank_store(tmp_path, emb) as store:
        searcher = Searcher(store, emb, DENSE_ONLY)
        query = "retry backoff delay"

        def names(rerank: int) -> list[str]:
            emb.calls.clear()
            return [h.name for h in searcher.search(query, SearchOptions(k=4, rerank=rerank))]

        assert names(0) == ["x", "y", "Retrying", "w"]  # by bag-of-words cosine
        assert [c for c in emb.calls if c[0].startswith("multi")] == []
        # x matches one question word of three (1/3); the others all three (1.0; ties keep
        # their fused order); what lies beyond `rerank` keeps its order after them
        assert names(2) == ["y", "x", "Retrying", "w"]
        assert emb.calls[2:] == [("multi-query", "code", 1), ("multi-documents", "code", 2)]
        assert names(4) == ["y", "Retrying", "w", "x"]
        multi = sorted(c for c in emb.calls if c[0].startswith("multi"))
        assert multi == [
            ("multi-documents", "code", 3),
            ("multi-documents", "retrieval", 1),
            ("multi-query", "code", 1),
            ("multi-query", "retrieval", 1),
        ]
        hits = searcher.search(query, SearchOptions(k=4, rerank=4))
        assert [h.score for h in hits] == pytest.approx([1.0, 1.0, 1.0, 1 / 3])
        assert names(1) == names(0)  # one candidate: nothing to reorder


def test_rerank_needs_a_multivector_model(tmp_path: Path) -> None:
    plain = FakeEmbedder()
    with _store(tmp_path / "p.sqlite", [_chunk("a.py", "f", "def f(): pass")], plain) as store:
        searcher = Searcher(store, plain)
        with pytest.raises(BadInput, match=r"multi-vector model such as jina-v4 .*fake:hash-64"):
            searcher.search("f", SearchOptions(rerank=5))
        with pytest.raises(BadInput, match="rerank"):
            searcher.search_many([], SearchOptions(rerank=-1))
        assert searcher.search("f", SearchOptions(rerank=0))


def test_late_interaction_matches_maxsim() -> None:
    rng = np.random.default_rng(0)
    q = rng.standard_normal((4, 16)).astype(np.float32)
    docs = [rng.standard_normal((n, 16)).astype(np.float32) for n in (3, 0, 1, 7)]
    got = late_interaction(q, docs)
    want = [float((q @ d.T).max(axis=1).sum()) / len(q) if len(d) else 0.0 for d in docs]
    assert got.tolist() == pytest.approx(want, rel=1e-5)
    assert late_interaction(q[:0], docs).tolist() == [0.0] * 4
    assert late_interaction(q, []).tolist() == []


# -- the tiny jina-v4 checkpoint, end to end ---------------------------------------------------


def test_tiny_jina_routes_tasks_and_reranks(demo_repo: Path, tmp_path: Path) -> None:
    pytest.importorskip("peft")
    torch = pytest.importorskip("torch")
    from jina_tiny import write_tiny_checkpoint

    from codesearch.embed.jina.build import load_jina_v4
    from codesearch.embed.jina.embedder import maxsim

    threads = torch.get_num_threads()
    try:
        folder = write_tiny_checkpoint(tmp_path / "jina-tiny")
        emb = load_jina_v4(folder, device="cpu", notice=lambda _msg: None, threads=1)
        stats = _run(demo_repo, emb)
        assert stats.chunks_embedded == stats.chunks_total > 0
        with Store.open(load_settings().index_path(demo_repo)) as store:
            assert store.tasks() == ["code", "retrieval"]
            assert store.check() == []
            rows = _vector_rows(store)
            assert {t for path, *_, t in rows if path.endswith(".md")} == {"retrieval"}
            assert {t for path, *_, t in rows if not path.endswith(".md")} == {"code"}
            # each chunk's stored vector is the one of its task
            section = next(s for s in store.all_chunks() if s.chunk.kind == "section")
            text = section.chunk.embed_text()
            own = emb.embed_documents([text], task="retrieval")[0]
            other = emb.embed_documents([text], task="code")[0]
            assert store.knn(own, 1, task="retrieval") == [
                (section.id, pytest.approx(0, abs=STORED))
            ]
            assert store.knn(other, 1, task="retrieval")[0][1] > 1e-3

            searcher = Searcher(store, emb)
            question = "cache the price of an item"
            plain = searcher.search(question, SearchOptions(k=5))
            reranked = searcher.search(question, SearchOptions(k=5, rerank=5))
            assert len(plain) == 5
            key = {(h.path, h.start_line) for h in plain}
            assert {(h.path, h.start_line) for h in reranked} == key
            scores = [h.score for h in reranked]
            assert scores == sorted(scores, reverse=True)
            chunks = {(s.chunk.path, s.chunk.start_line): s.chunk for s in store.all_chunks()}
            for hit in reranked:
                chunk = chunks[(hit.path, hit.start_line)]
                task = emb.document_task(chunk)
                q = emb.embed_multivector([question], task=task, query=True)[0]
                d = emb.embed_multivector([chunk.embed_text()], task=task)[0]
                assert hit.score == pytest.approx(maxsim(q, d) / len(q), rel=1e-4, abs=1e-5)
    finally:
        torch.set_num_threads(threads)
