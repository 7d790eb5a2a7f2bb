"""An index kept up to date through many edits answers exactly as a fresh index of the same tree.

A repository of 33 files is indexed once, then edited and reverted round after round (functions
changed, added and removed again, a file deleted and restored, a file renamed and back), the
index updated after each step as `codesearch index` does. A second index is built from scratch
on the final tree (byte-identical to the first tree). The two must hold the same chunks and give
the same BM25 scores and the same ranked answers, to 1e-6: the full-text index must not keep
statistics of deleted rows, and ties must not be broken by chunk ids, which differ.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from fake_embedder import FakeEmbedder

from codesearch.config import load_settings
from codesearch.index import Indexer
from codesearch.search import Searcher
from codesearch.store import Store

WORDS = [
    "retry",
    "backoff",
    "cache",
    "price",
    "order",
    "invoice",
    "payment",
    "token",
    "session",
    "user",
    "account",
    "parse",
    "render",
    "template",
    "query",
    "filter",
    "sort",
    "page",
    "limit",
    "offset",
    "stream",
    "buffer",
    "socket",
    "timeout",
    "connect",
    "close",
    "open",
    "read",
    "write",
    "flush",
    "lock",
    "mutex",
    "queue",
    "worker",
    "schedule",
    "job",
    "task",
    "event",
    "signal",
    "handler",
    "route",
    "request",
    "response",
    "header",
    "cookie",
    "auth",
    "login",
    "logout",
    "password",
    "hash",
]
QUESTIONS = (
    "retry the request after a timeout",
    "parse the session cookie",
    "flush the write buffer",
    "schedule a worker job",
    "password hash for login",
)
ROUNDS = 30


def _function(rng: random.Random, name: str) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 14))]
    body = "".join(f"    {w}_{i} = {rng.choice(WORDS)}({w})\n" for i, w in enumerate(words))
    doc = " ".join(rng.choice(WORDS) for _ in range(5))
    return f'def {name}(value):\n    """{doc.capitalize()}."""\n{body}    return value\n'


def _make_repo(root: Path) -> None:
    rng = random.Random(17)
    for f in range(33):
        folder = root / ("src" if f % 3 else "lib")
        folder.mkdir(parents=True, exist_ok=True)
        parts = [_function(rng, f"{rng.choice(WORDS)}_{f}_{i}") for i in range(4)]
        (folder / f"mod{f}.py").write_text("\n\n".join(parts), encoding="utf-8")


def _index(root: Path, home: Path) -> None:
    settings = load_settings(home)
    with Store.open(settings.index_path(root), create=True) as store:
        Indexer(root, store, FakeEmbedder(), settings).run()


def _answers(root: Path, home: Path) -> tuple[list[tuple[object, ...]], list[object]]:
    """Every chunk (path, lines, name, text), and per question its BM25 top 10 and its ranked
    hits, each named by place and scored."""
    settings = load_settings(home)
    with Store.open(settings.index_path(root)) as store:
        chunks = sorted(
            (c.chunk.path, c.chunk.start_line, c.chunk.end_line, c.chunk.name, c.chunk.text)
            for c in store.all_chunks()
        )
        answers: list[object] = []
        for question in QUESTIONS:
            lexical = store.bm25(question, 10)
            found = store.chunks([cid for cid, _ in lexical])
            answers.append(
                sorted(
                    (round(score, 6), found[cid].chunk.path, found[cid].chunk.start_line)
                    for cid, score in lexical
                )
            )
        for hits in Searcher(store, FakeEmbedder()).search_many(list(QUESTIONS)):
            answers.append([(h.path, h.start_line, h.end_line, round(h.score, 6)) for h in hits])
    return chunks, answers


def _edit_round(root: Path, rng: random.Random, step: int) -> list[tuple[Path, str]]:
    """Change ten files (a function rewritten, one added); return what to put back."""
    files = sorted(root.rglob("*.py"))
    saved: list[tuple[Path, str]] = []
    for path in rng.sample(files, 10):
        text = path.read_text(encoding="utf-8")
        saved.append((path, text))
        head, _, _ = text.partition("\n\n\ndef ")
        extra = _function(rng, f"edited_{step}_{path.stem}")
        path.write_text(f"{head}\n\n\n{extra}\n\n\n{_function(rng, 'added')}", encoding="utf-8")
    return saved


@pytest.mark.parametrize("rounds", [ROUNDS])
def test_an_updated_index_answers_as_a_fresh_one(tmp_path: Path, rounds: int) -> None:
    root = tmp_path / "repo"
    _make_repo(root)
    edited_home, clean_home = tmp_path / "edited", tmp_path / "clean"
    _index(root, edited_home)
    first = _answers(root, edited_home)
    rng = random.Random(3)
    for step in range(rounds):
        saved = _edit_round(root, rng, step)
        _index(root, edited_home)
        for path, text in saved:
            path.write_text(text, encoding="utf-8")
        # one file leaves and comes back, one is renamed and back, between two updates
        sources = sorted((root / "src").glob("*.py"))
        gone = sources[step % len(sources)]
        kept = gone.read_text(encoding="utf-8")
        gone.unlink()
        moved = root / "lib" / "mod0.py"
        shutil.move(moved, root / "lib" / "renamed.py")
        _index(root, edited_home)
        gone.write_text(kept, encoding="utf-8")
        shutil.move(root / "lib" / "renamed.py", moved)
        _index(root, edited_home)
    _index(root, clean_home)
    edited, clean = _answers(root, edited_home), _answers(root, clean_home)
    assert edited[0] == clean[0]  # the same chunks
    for got, want, question in zip(edited[1], clean[1], QUESTIONS * 2, strict=True):
        assert got == want, question
    assert edited == first  # and the tree is the first one again
    # and it has not grown: deleted full-text entries merged away, vec0 holes refilled
    sizes = [
        load_settings(home).index_path(root).stat().st_size for home in (edited_home, clean_home)
    ]
    assert sizes[0] <= 1.15 * sizes[1], sizes
