"""Late chunking (issue 9): chunk vectors pooled from one encoding of their whole file.

The tiny checkpoint in the jina-v4 layout (tests/jina_tiny.py), loaded through the real loader,
on the CPU with one torch thread. The references here tokenise with offsets and run the model's
forward pass themselves, one unpadded sequence at a time, and pool, normalise and truncate by
hand.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("peft")
torch = pytest.importorskip("torch")

from jina_tiny import write_tiny_checkpoint  # noqa: E402
from PIL import Image  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from codesearch.config import Settings, load_settings  # noqa: E402
from codesearch.embed.jina.build import load_jina_v4  # noqa: E402
from codesearch.embed.jina.embedder import JinaV4Embedder  # noqa: E402
from codesearch.embed.jina.late import plan_late, plan_windows  # noqa: E402
from codesearch.engine import index_repo  # noqa: E402
from codesearch.index import Indexer, char_spans, late_vector_key  # noqa: E402
from codesearch.search import Searcher, SearchOptions  # noqa: E402
from codesearch.store import Store  # noqa: E402
from codesearch.store.base import VEC_TABLE  # noqa: E402
from codesearch.store.quant import quantise  # noqa: E402
from codesearch.store.sql import key_digest  # noqa: E402
from codesearch.types import IMAGE_TASK, BadInput, Chunk, CodesearchError, FileState  # noqa: E402

PY = '''import os


def fetch_with_retry(url, attempts=5):
    """Fetch a URL, retrying with backoff."""
    for i in range(attempts):
        return http_get(url)


class UserRepository:
    def find_by_email(self, email):
        return self.db.get(email)

    def remove(self, user):
        self.db.pop(user.email)


def parse_config(path):
    return json.loads(read(path))  # é, 日本
'''

OTHER = """def fn_main():
    print("hello")


def colour_to_rgb(hex_colour):
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
"""

README = "# Demo\n\nIntro text.\n\n## Installing\n\nRun pip install codesearch to get started.\n"


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("jina") / "jina-tiny")


@pytest.fixture(scope="module")
def emb(tiny: Path) -> JinaV4Embedder:
    return load_jina_v4(tiny, device="cpu", notice=lambda _msg: None, threads=1)


@pytest.fixture(scope="module")
def tokenizer(tiny: Path) -> Tokenizer:
    return Tokenizer.from_file(str(tiny / "tokenizer.json"))


def _hidden(emb: JinaV4Embedder, ids: Sequence[int], task: str) -> torch.Tensor:
    """The last hidden state of one unpadded sequence under ``task``'s adapter."""
    with emb.session(task):  # the model to ourselves, under the task's adapter
        out = emb.module.model(input_ids=torch.tensor([list(ids)]), use_cache=False)
    return out.last_hidden_state[0].float()


def _overlapping(offsets: Sequence[tuple[int, int]], begin: int, end: int) -> list[int]:
    return [t for t, (a, b) in enumerate(offsets) if a < end and b > begin]


def _finish(pooled: np.ndarray, dim: int) -> np.ndarray:
    full = pooled / np.linalg.norm(pooled)
    return full[:dim] / np.linalg.norm(full[:dim])


def _reference(
    emb: JinaV4Embedder,
    tokenizer: Tokenizer,
    text: str,
    spans: Sequence[tuple[int, int]],
    task: str = "code",
    prefix: str = "Passage: ",
) -> np.ndarray:
    """Whole-file late vectors computed here: offsets, forward, mean over the span's tokens."""
    enc = tokenizer.encode(prefix + text)
    hidden = _hidden(emb, enc.ids, task).numpy()
    rows = []
    for begin, end in spans:
        tokens = _overlapping(enc.offsets, begin + len(prefix), end + len(prefix))
        assert tokens
        rows.append(_finish(hidden[tokens].mean(axis=0), emb.dim))
    return np.stack(rows)


def _chunks(path: str, text: str) -> list[Chunk]:
    from codesearch.chunk import chunk_file

    return chunk_file(path, text, max_tokens=1024)


# -- the embedder ------------------------------------------------------------------------------


def test_a_late_vector_is_the_mean_of_its_span_in_the_file_encoding(
    emb: JinaV4Embedder, tokenizer: Tokenizer
) -> None:
    assert emb.supports_late_chunking and emb.late_chunking_id == "late-w8192-o2048"
    chunks = _chunks("a.py", PY)
    spans = char_spans(PY, chunks)
    assert len(spans) >= 4
    for chunk, (begin, end) in zip(chunks, spans, strict=True):
        assert PY[begin:end] == chunk.text  # the chunk's own source lines, nothing more
    got = emb.embed_late(PY, spans)
    assert got.shape == (len(spans), emb.dim) and got.dtype == np.float32
    np.testing.assert_allclose(got, _reference(emb, tokenizer, PY, spans), atol=1e-5)
    # a Matryoshka view truncates and normalises like every other vector
    small = emb.with_dim(16)
    np.testing.assert_allclose(
        small.embed_late(PY, spans), _reference(small, tokenizer, PY, spans), atol=1e-5
    )
    # text-matching documents carry "Query: ", like embed_documents
    odd = [(0, 9), (40, 41)]  # spans need not be lines: a prefix of a line, one character
    np.testing.assert_allclose(
        emb.embed_late(PY, odd, task="text-matching"),
        _reference(emb, tokenizer, PY, odd, "text-matching", "Query: "),
        atol=1e-5,
    )
    # files of different lengths batched together (padded) = each alone
    both = emb.embed_late_files([(PY, spans), (OTHER, [(0, 12), (13, 30)]), ("x", [])])
    np.testing.assert_allclose(both[0], got, atol=1e-5)
    np.testing.assert_allclose(both[1], emb.embed_late(OTHER, [(0, 12), (13, 30)]), atol=1e-5)
    assert both[2].shape == (0, emb.dim)
    with pytest.raises(BadInput, match="outside"):
        emb.embed_late("short", [(0, 99)])


def test_causal_context_comes_from_before_the_chunk(emb: JinaV4Embedder) -> None:
    """jina-v4 is a causal decoder: text after a chunk changes nothing in its vector, text
    before it does. So a window's context for a chunk is what precedes it (see jina_late)."""
    spans = char_spans(PY, _chunks("a.py", PY))
    whole = emb.embed_late(PY, spans)
    longer = emb.embed_late(PY + "\n\ndef appended():\n    return 1\n", spans)
    np.testing.assert_allclose(longer, whole, atol=1e-5)
    shift = len("# header\n")
    moved = emb.embed_late("# header\n" + PY, [(b + shift, e + shift) for b, e in spans])
    assert np.abs(moved - whole).max() > 1e-3
    # and the file around it matters: pooled in context != the chunk embedded alone
    alone = emb.embed_documents([PY[b:e] for b, e in spans])
    assert np.abs(alone[1:] - whole[1:]).max() > 1e-3


def test_long_files_are_encoded_in_windows_that_cover_every_chunk(
    emb: JinaV4Embedder, tokenizer: Tokenizer
) -> None:
    text = PY + "\n" + OTHER + "\n" + PY.replace("fetch", "get") + "\n" + OTHER.upper()
    lines = [line for line in text.split("\n") if line.strip()]
    spans, pos = [], 0
    for line in lines:  # every non-blank line is a chunk
        begin = text.index(line, pos)
        spans.append((begin, begin + len(line)))
        pos = begin + len(line)
    view = emb.with_late_window(128, 72)
    assert view.late_chunking_id == "late-w128-o72" != emb.late_chunking_id
    plan = plan_late(tokenizer, "Passage: ", text, spans, window=128, overlap=72)
    n = len(plan.body)
    assert n > 4 * 128 and len(plan.windows) >= 8
    assert plan.windows[0][0] == 0 and plan.windows[-1][1] == n
    for (a0, b0), (a1, b1) in zip(plan.windows, plan.windows[1:], strict=False):
        assert b0 - a0 == b1 - a1 == 128 and a0 < a1 < b0  # full-size, overlapping: no gap
    assert plan_windows(10, 64, 32) == [(0, 10)]  # a file within the budget: whole

    got = view.embed_late(text, spans)
    assert got.shape == (len(spans), emb.dim)
    states: dict[int, np.ndarray] = {}
    for i, ((first, last), owner) in enumerate(zip(plan.spans, plan.owner, strict=True)):
        start, stop = plan.windows[owner]
        assert start <= first < last <= stop, (i, plan.spans[i], plan.windows[owner])
        # the most context: causal attention sees only what precedes the chunk in its window
        holding = [a for a, b in plan.windows if a <= first and last <= b]
        assert first - start == max(first - a for a in holding)
        # pooled from that window's own encoding (the prefix, then the window), computed here
        if owner not in states:
            states[owner] = _hidden(emb, [*plan.head, *plan.body[start:stop]], "code").numpy()
        base = len(plan.head) - start
        want = _finish(states[owner][base + first : base + last].mean(axis=0), emb.dim)
        np.testing.assert_allclose(got[i], want, atol=1e-5)
    assert len(states) > 2  # the chunks really came from several windows
    # the body tokens are the whole file's tokens: windows reproduce them exactly
    assert [*plan.head, *plan.body] == tokenizer.encode("Passage: " + text).ids


# -- the index ---------------------------------------------------------------------------------


def _repo(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text(PY)
    (root / "pkg" / "b.py").write_text(OTHER)
    (root / "README.md").write_text(README + "\n![diagram](diagram.png)\n")
    Image.new("RGB", (64, 64), (200, 30, 30)).save(root / "diagram.png")
    return root


def _settings(late: bool) -> Settings:
    return replace(load_settings(), late_chunking=late)


def _rows(store: Store) -> list[dict[str, Any]]:
    sql = (
        f"SELECT c.path, c.start_line, c.end_line, v.key, c.vector_id, v.task, e.embedding "
        f"FROM chunks c JOIN vectors v ON v.id = c.vector_id JOIN {VEC_TABLE} e "
        "ON e.rowid = c.vector_id ORDER BY c.path, c.start_line"
    )
    keys = ("path", "start", "end", "key", "vector_id", "task", "vector")
    out = []
    for row in store._conn.execute(sql):
        item = dict(zip(keys, row, strict=True))
        item["vector"] = np.frombuffer(item["vector"], dtype=np.int8).astype(np.float32)
        out.append(item)
    return out


class Spy:
    """Counts the embedder's late calls (files per call) and forward passes (rows)."""

    def __init__(self, emb: JinaV4Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
        self.view = copy.copy(emb)
        self.late: list[list[str]] = []
        self.rows = 0
        late, forward = self.view.embed_late_files, self.view.forward

        def embed_late_files(files: Any, *, task: str | None = None) -> list[np.ndarray]:
            self.late.append([text for text, _ in files])
            return late(files, task=task)

        def counted(rows: list[list[int]], width: int) -> Any:
            self.rows += len(rows)
            return forward(rows, width)

        monkeypatch.setattr(self.view, "embed_late_files", embed_late_files)
        monkeypatch.setattr(self.view, "forward", counted)

    def reset(self) -> None:
        self.late, self.rows = [], 0


def test_indexing_pools_each_chunk_from_its_file(
    tmp_path: Path, emb: JinaV4Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _repo(tmp_path / "repo")
    spy = Spy(emb, monkeypatch)
    settings = _settings(True)
    stats = index_repo(root, settings, embedder=spy.view)
    assert stats.files_indexed == 4 and not stats.skipped
    # one late call per task (code, retrieval), each file encoded once (one window each)
    assert sorted(len(files) for files in spy.late) == [1, 2]
    with Store.open(settings.index_path(root)) as store:
        assert store.get_meta("late_chunking") == "1"
        assert store.check() == []
        rows = _rows(store)
        chunks = {c.chunk.path: [] for c in store.all_chunks()}
        for c in store.all_chunks():
            chunks[c.chunk.path].append(c.chunk)
    by_path: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_path.setdefault(row["path"], []).append(row)
    for path, task in (("pkg/a.py", "code"), ("pkg/b.py", "code"), ("README.md", "retrieval")):
        text = (root / path).read_text()
        spans = char_spans(text, chunks[path])
        want = emb.embed_late(text, spans, task=task)
        got = np.stack([row["vector"] for row in by_path[path]])
        # stored as int8 codes (store/quant.py): the same codes, up to one rounding step
        np.testing.assert_allclose(got, quantise(np.asarray(want)), atol=1)
        for row, chunk in zip(by_path[path], chunks[path], strict=True):
            digest = _file_hash(root / path)
            late_key = late_vector_key(digest, chunk, task, emb.late_chunking_id)
            assert row["task"] == task and late_key.startswith(f"{task}:late")
            assert row["key"] == key_digest(late_key)  # stored as its digest
    # the picture keeps its per-chunk (pixel) vector
    (picture,) = by_path["diagram.png"]
    (pixels,) = chunks["diagram.png"]
    assert picture["task"] == IMAGE_TASK
    assert picture["key"] == key_digest(pixels.vector_key(IMAGE_TASK))


def _file_hash(path: Path) -> str:
    from codesearch.types import content_hash

    return content_hash(path.read_text())


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))


def test_an_edit_re_encodes_its_file_once_and_renews_every_chunk(
    tmp_path: Path, emb: JinaV4Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _repo(tmp_path / "repo")
    spy = Spy(emb, monkeypatch)
    settings = _settings(True)
    index_repo(root, settings, embedder=spy.view)
    with Store.open(settings.index_path(root)) as store:
        before = {(r["path"], r["start"]): r for r in _rows(store)}

    writes: list[tuple[str, int, int]] = []
    replace_file = Store.replace_file

    def spy_replace(self: Store, state: FileState, chunks: Any, vectors: Any, *a: Any, **kw: Any):
        writes.append((state.path, len(chunks), len(vectors)))
        return replace_file(self, state, chunks, vectors, *a, **kw)

    monkeypatch.setattr(Store, "replace_file", spy_replace)
    spy.reset()
    _edit(root / "pkg" / "a.py", "return json.loads", "return yaml.safe_load")  # the last one
    st = (root / "pkg" / "b.py").stat()  # touched, not changed: not re-encoded
    os.utime(root / "pkg" / "b.py", ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    stats = index_repo(root, settings, embedder=spy.view)

    assert spy.late == [[(root / "pkg" / "a.py").read_text()]] and spy.rows == 1
    n_a = sum(1 for path, _ in before if path == "pkg/a.py")
    assert writes == [("pkg/a.py", n_a, n_a)]  # every chunk's new vector, in its one write
    assert stats.chunks_embedded == n_a and stats.files_indexed == 1
    with Store.open(settings.index_path(root)) as store:
        after = {(r["path"], r["start"]): r for r in _rows(store)}
        assert store.check() == []
    assert after.keys() == before.keys()
    for where, row in after.items():
        changed = where[0] == "pkg/a.py"
        assert (row["key"] != before[where]["key"]) == changed, where
        assert (row["vector_id"] != before[where]["vector_id"]) == changed, where
    # causal: the chunks before the edit keep their vectors' values (new keys, same numbers)
    first = min(where for where in after if where[0] == "pkg/a.py")
    np.testing.assert_allclose(after[first]["vector"], before[first]["vector"], atol=1e-5)

    # a revert finds its vectors again (keyed by the file's content): nothing is encoded
    spy.reset()
    _edit(root / "pkg" / "a.py", "return yaml.safe_load", "return json.loads")
    stats = index_repo(root, settings, embedder=spy.view)
    assert spy.late == [] and spy.rows == 0 and stats.chunks_reused == n_a
    with Store.open(settings.index_path(root)) as store:
        assert {(r["path"], r["start"]): r["key"] for r in _rows(store)} == {
            where: row["key"] for where, row in before.items()
        }


def _plain_keys(store: Store) -> set[bytes]:
    """The stored keys each chunk's vector has without late chunking (its text and task)."""
    task = {(r["path"], r["start"]): r["task"] for r in _rows(store)}
    return {
        key_digest(c.chunk.vector_key(task[(c.chunk.path, c.chunk.start_line)]))
        for c in store.all_chunks()
    }


def test_the_option_is_recorded_and_toggling_it_rebuilds(
    tmp_path: Path, emb: JinaV4Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _repo(tmp_path / "repo")
    (root / "README.md").write_text(README)
    (root / "diagram.png").unlink()
    spy = Spy(emb, monkeypatch)
    path = _settings(False).index_path(root)

    plain = index_repo(root, _settings(False), embedder=spy.view)
    assert spy.late == [] and not plain.rebuilt
    with Store.open(path) as store:
        assert store.get_meta("late_chunking") == "0"
        per_chunk = {r["key"] for r in _rows(store)}
        assert per_chunk == _plain_keys(store)  # each chunk's own text's key

    late = index_repo(root, _settings(True), embedder=spy.view)
    assert late.rebuilt and late.files_indexed == 3 and late.chunks_reused == 0
    with Store.open(path) as store:
        assert store.get_meta("late_chunking") == "1"
        keys = {r["key"] for r in _rows(store)}
        assert keys and keys.isdisjoint(_plain_keys(store)) and not keys & per_chunk

    again = index_repo(root, _settings(True), embedder=spy.view)
    assert not again.rebuilt and again.files_indexed == 0
    with Store.open(path) as store:  # re-ranking recomputes token vectors per chunk: unchanged
        searcher = Searcher(store, spy.view)
        plain_hits = searcher.search("find a user by email", SearchOptions(k=4))
        reranked = searcher.search("find a user by email", SearchOptions(k=4, rerank=4))
    assert plain_hits and reranked

    back = index_repo(root, _settings(False), embedder=spy.view)
    assert back.rebuilt and back.files_indexed == 3
    with Store.open(path) as store:
        assert store.get_meta("late_chunking") == "0"
        assert {r["key"] for r in _rows(store)} == per_chunk
        # the searcher and late-interaction re-ranking work on either kind of index
        hits = Searcher(store, spy.view).search("retry fetch", SearchOptions(k=3, rerank=3))
    assert hits

    monkeypatch.setenv("CODESEARCH_LATE_CHUNKING", "1")
    assert load_settings().late_chunking is True


def test_a_backend_without_late_chunking_is_a_clear_error(tmp_path: Path, minilm: Any) -> None:
    root = _repo(tmp_path / "repo")
    settings = _settings(True)
    assert not minilm.supports_late_chunking
    with Store.open(settings.index_path(root), create=True) as store:
        with pytest.raises(BadInput) as info:
            Indexer(root, store, minilm, settings).run()
        assert store.get_meta("model_id") is None  # nothing was touched
    message = str(info.value)
    assert "\n" not in message and "late_chunking" in message and "jina-v4" in message


def test_the_gpu_benchmark_compares_late_and_per_chunk_encoding(tmp_path: Path) -> None:
    """benchmarks/gpu_jina_v4.py's late-chunking step, in-process on its --tiny model (the whole
    script runs in tests/test_gpu_bench.py)."""
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_jina_v4.py"
    spec = importlib.util.spec_from_file_location("gpu_jina_v4_bench", script)
    assert spec is not None and spec.loader is not None
    bench_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_module)
    out = tmp_path / "bench.json"
    args = ["--tiny", "--device", "cpu", "--json-out", str(out), "--late-files", "8"]
    bench = bench_module.Bench(bench_module.parse_args([*args, "--late-long-files", "1"]))
    bench.build()
    bench.corpus()
    bench.late_chunking()
    bench.save()
    late = json.loads(out.read_text())["late_chunking"]
    assert late["window"] == 256 and late["overlap"] == 64
    assert [p["label"] for p in late["points"]] == ["files", "long-files"]
    for point in late["points"]:
        assert point["status"] == "ok" and point["finite"] and point["unit_norm"], point
        for way in ("per_chunk", "late"):
            for key in ("seconds", "tokens", "files_per_s", "chunks_per_s", "tokens_per_s"):
                assert point[way][key] > 0, (way, key)
    long = late["points"][1]
    assert long["files"] == 1 and long["late_windows"] >= 3  # about three windows


def test_out_of_memory_halves_the_budget_and_retries(
    emb: JinaV4Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [(PY, char_spans(PY, _chunks("a.py", PY))), (OTHER, [(0, 12)])]
    want = emb.embed_late_files(files)
    view = copy.copy(emb)
    view.batch_tokens = 100_000
    forward, failures = view.forward, [1]

    def flaky(rows: list[list[int]], width: int) -> Any:
        if failures and len(rows) > 1:
            failures.pop()
            raise torch.OutOfMemoryError("simulated")
        return forward(rows, width)

    monkeypatch.setattr(view, "forward", flaky)
    got = view.embed_late_files(files)
    assert view.batch_tokens < 100_000 and not failures
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)

    def always(rows: list[list[int]], width: int) -> Any:
        raise torch.OutOfMemoryError("simulated")

    monkeypatch.setattr(view, "forward", always)
    with pytest.raises(CodesearchError, match="late-chunking window"):
        view.embed_late_files(files)
