"""The indexer with real discovery, tree-sitter and sqlite-vec, and the fake embedder:
incremental updates re-embed exactly what changed."""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_embedder import FakeEmbedder

from codesearch.config import load_settings
from codesearch.index import Indexer
from codesearch.store import Store


def run_index(
    root: Path, embedder: FakeEmbedder, scope: Collection[str] | None = None, **options: Any
):
    settings = load_settings()
    with Store.open(settings.index_path(root), create=True) as store:
        stats = Indexer(root, store, embedder, settings, **options).run(scope)
        names = {(c.chunk.path, c.chunk.name) for c in store.all_chunks()}
        states = store.file_states()
    return stats, names, states


def snapshot(root: Path) -> tuple[dict[str, str], set[tuple[str, str, int, int, str]]]:
    """What the store holds for ``root``: content hash per file, and every chunk."""
    settings = load_settings()
    with Store.open(settings.index_path(root)) as store:
        hashes = {path: state.content_hash for path, state in store.file_states().items()}
        chunks = {
            (c.path, c.name, c.start_line, c.end_line, c.content_hash)
            for c in (stored.chunk for stored in store.all_chunks())
        }
    return hashes, chunks


def only(paths: Collection[str], snap: tuple[dict[str, str], set[Any]]) -> tuple[Any, Any]:
    hashes, chunks = snap
    return (
        {p: h for p, h in hashes.items() if p in paths},
        {c for c in chunks if c[0] in paths},
    )


def test_first_index_embeds_every_chunk_once(demo_repo: Path) -> None:
    fake = FakeEmbedder()
    stats, names, states = run_index(demo_repo, fake)
    assert ("src/app/retry.py", "compute_backoff") in names
    assert ("src/app/auth.py", "PasswordHasher.verify_password") in names
    assert ("svc/mail.go", "Mailer.SendWelcome") in names
    assert ("web/cache.js", "LruCache.get") in names
    assert ("core/image.rs", "Image.thumbnail") in names
    assert set(states) == {
        "README.md",
        "core/image.rs",
        "src/app/auth.py",
        "src/app/retry.py",
        "src/app/settings.py",
        "svc/mail.go",
        "web/cache.js",
    }
    assert stats.files_indexed == 7
    assert stats.chunks_embedded == fake.documents_embedded == stats.chunks_total


def test_reindex_without_changes_embeds_nothing(demo_repo: Path) -> None:
    run_index(demo_repo, FakeEmbedder())
    fake = FakeEmbedder()
    stats, _, _ = run_index(demo_repo, fake)
    assert fake.documents_embedded == 0
    assert stats.files_indexed == 0 and stats.files_unchanged == 7


def test_edit_reembeds_only_the_changed_function(demo_repo: Path) -> None:
    run_index(demo_repo, FakeEmbedder())
    retry = demo_repo / "src/app/retry.py"
    retry.write_text(retry.read_text().replace("cap: float = 30.0", "cap: float = 60.0"))
    fake = FakeEmbedder()
    stats, names, _ = run_index(demo_repo, fake)
    assert stats.files_indexed == 1
    assert fake.documents_embedded == 1  # compute_backoff only; call_with_retries is unchanged
    assert ("src/app/retry.py", "call_with_retries") in names


def test_touch_without_change_reuses_vectors(demo_repo: Path) -> None:
    run_index(demo_repo, FakeEmbedder())
    target = demo_repo / "src/app/auth.py"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    fake = FakeEmbedder()
    _, _, states = run_index(demo_repo, fake)
    assert fake.documents_embedded == 0
    assert states["src/app/auth.py"].mtime_ns == st.st_mtime_ns + 5_000_000_000
    # the refreshed stat fields make the next run skip the file without reading it
    fake2 = FakeEmbedder()
    run_index(demo_repo, fake2)
    assert fake2.documents_embedded == 0


def test_rename_and_revert_reuse_vectors(demo_repo: Path) -> None:
    run_index(demo_repo, FakeEmbedder())
    (demo_repo / "src/app/retry.py").rename(demo_repo / "src/app/backoff.py")
    fake = FakeEmbedder()
    stats, names, states = run_index(demo_repo, fake)
    assert "src/app/retry.py" not in states and "src/app/backoff.py" in states
    assert ("src/app/backoff.py", "compute_backoff") in names
    assert ("src/app/retry.py", "compute_backoff") not in names
    assert stats.files_removed == 1
    assert fake.documents_embedded == 0  # same content, new path: nothing re-embedded

    path = demo_repo / "src/app/backoff.py"
    original = path.read_text()
    path.write_text(original.replace("full jitter", "no jitter"))
    run_index(demo_repo, FakeEmbedder())
    path.write_text(original)  # revert
    fake = FakeEmbedder()
    run_index(demo_repo, fake)
    assert fake.documents_embedded == 0


def test_delete_removes_chunks(demo_repo: Path) -> None:
    run_index(demo_repo, FakeEmbedder())
    (demo_repo / "svc/mail.go").unlink()
    stats, names, states = run_index(demo_repo, FakeEmbedder())
    assert stats.files_removed == 1
    assert "svc/mail.go" not in states
    assert not any(path == "svc/mail.go" for path, _ in names)


def test_bad_files_are_skipped_with_reasons_and_others_indexed(demo_repo: Path) -> None:
    (demo_repo / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    (demo_repo / "latin1.py").write_bytes(b"x = '\xe9\xe8\xe0\xff\xfe'\n" * 50)
    (demo_repo / "big.txt").write_text("word " * 300_000)
    stats, _, states = run_index(demo_repo, FakeEmbedder())
    reasons = {s.path: s.reason for s in stats.skipped}
    assert reasons["blob.bin"] == "binary"
    assert reasons["latin1.py"] == "not-utf8"
    assert reasons["big.txt"] == "too-large"
    assert "src/app/retry.py" in states and "latin1.py" not in states


def test_vanished_file_between_walk_and_read(
    demo_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import codesearch.index as index_module

    real_walk = index_module.walk

    def walk_then_delete(root, settings, scope=None):
        found = real_walk(root, settings, scope)
        (demo_repo / "src/app/settings.py").unlink()
        return found

    monkeypatch.setattr(index_module, "walk", walk_then_delete)
    stats, _, states = run_index(demo_repo, FakeEmbedder())
    assert {s.path: s.reason for s in stats.skipped}["src/app/settings.py"] == "vanished"
    assert "src/app/settings.py" not in states
    assert "src/app/retry.py" in states


def test_interrupted_run_keeps_finished_files_and_resumes(
    demo_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Interrupting(FakeEmbedder):
        def embed_batch(self, texts: Any, *, query: bool, task: str | None) -> np.ndarray:
            if self.calls == 3:
                raise KeyboardInterrupt
            return super().embed_batch(texts, query=query, task=task)

    first = Interrupting()
    with pytest.raises(KeyboardInterrupt):
        run_index(demo_repo, first, embed_group=1)  # one file per embed call
    settings = load_settings()
    with Store.open(settings.index_path(demo_repo)) as store:
        kept = store.file_states()
    assert len(kept) == 3  # the three files that finished are committed

    resumed = FakeEmbedder()
    stats, _, states = run_index(demo_repo, resumed)
    assert len(states) == 7
    assert stats.files_unchanged == 3 and stats.files_indexed == 4
    # the resumed index holds exactly what a clean run (in another data dir) holds
    monkeypatch.setenv("CODESEARCH_HOME", str(settings.home / "clean"))
    fresh = FakeEmbedder()
    clean_stats, _, _ = run_index(demo_repo, fresh)
    assert stats.chunks_total == clean_stats.chunks_total
    assert first.documents_embedded + resumed.documents_embedded == fresh.documents_embedded


# ---------------------------------------------------------------------------- scoped runs


def fresh_snapshot(root: Path, monkeypatch: pytest.MonkeyPatch, name: str):
    """The store a clean full index of ``root`` builds (in another data dir)."""
    home = load_settings().home
    monkeypatch.setenv("CODESEARCH_HOME", str(home / name))
    run_index(root, FakeEmbedder())
    snap = snapshot(root)
    monkeypatch.setenv("CODESEARCH_HOME", str(home))
    return snap


def test_scoped_run_updates_only_the_scope(
    demo_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_index(demo_repo, FakeEmbedder())
    before = snapshot(demo_repo)
    # inside the scope: an edit, a deletion, a new file, a file that a rule outside the
    # scope now ignores, and one that turned binary
    retry = demo_repo / "src/app/retry.py"
    retry.write_text(retry.read_text().replace("cap: float = 30.0", "cap: float = 60.0"))
    (demo_repo / "src/app/settings.py").unlink()
    (demo_repo / "src/app/new.py").write_text("def brand_new():\n    return 42\n")
    (demo_repo / ".gitignore").write_text("auth.py\n")
    (demo_repo / "web/cache.js").write_bytes(b"\0binary now\n")
    # outside the scope: an edit, a deletion, a new file
    mail = demo_repo / "svc/mail.go"
    mail.write_text(mail.read_text() + "\n// a new comment\n")
    (demo_repo / "core/image.rs").unlink()
    (demo_repo / "svc/extra.go").write_text("package svc\n\nfunc Extra() int { return 1 }\n")

    scope = ["./src/app/", "web/cache.js", "missing/nothing.py"]
    fake = FakeEmbedder()
    stats, _, states = run_index(demo_repo, fake, scope)
    assert stats.files_seen == 2  # src/app/retry.py and src/app/new.py
    assert stats.files_indexed == 2 and stats.files_unchanged == 0
    assert stats.files_removed == 3  # settings.py, auth.py (now ignored), cache.js (binary)
    assert {s.path: s.reason for s in stats.skipped} == {
        "src/app/auth.py": "ignored",
        "web/cache.js": "binary",
    }
    assert fake.documents_embedded == 2  # compute_backoff and brand_new

    after = snapshot(demo_repo)
    outside = {"README.md", "core/image.rs", "svc/mail.go", "svc/extra.go", ".gitignore"}
    assert set(states) == {"README.md", "core/image.rs", "svc/mail.go"} | {
        "src/app/retry.py",
        "src/app/new.py",
    }
    assert only(outside, after) == only(outside, before)  # untouched, stale as they are
    fresh = fresh_snapshot(demo_repo, monkeypatch, "fresh-scoped")
    inside = {"src/app/retry.py", "src/app/new.py", "src/app/auth.py", "src/app/settings.py"}
    assert only(inside | {"web/cache.js"}, after) == only(inside | {"web/cache.js"}, fresh)

    # a later full run brings everything to what a fresh index holds
    stats, _, _ = run_index(demo_repo, FakeEmbedder())
    assert stats.files_indexed == 3  # svc/mail.go, svc/extra.go, .gitignore
    assert stats.files_removed == 1  # core/image.rs
    assert snapshot(demo_repo) == fresh


def test_scoped_run_on_a_deleted_folder_removes_its_files(demo_repo: Path) -> None:
    run_index(demo_repo, FakeEmbedder())
    for path in (demo_repo / "src/app").iterdir():
        path.unlink()
    (demo_repo / "src/app").rmdir()
    (demo_repo / "src").rmdir()
    (demo_repo / "README.md").unlink()  # outside the scope: stays in the store
    fake = FakeEmbedder()
    stats, names, states = run_index(demo_repo, fake, ["src"])
    assert stats.files_seen == 0 and stats.files_removed == 3
    assert set(states) == {"README.md", "core/image.rs", "svc/mail.go", "web/cache.js"}
    assert not any(path.startswith("src/") for path, _ in names)
    assert fake.calls == 0


def test_scoped_run_with_an_unchanged_scope_does_nothing(demo_repo: Path) -> None:
    run_index(demo_repo, FakeEmbedder())
    before = snapshot(demo_repo)
    fake = FakeEmbedder()
    stats, _, _ = run_index(demo_repo, fake, ["src/app/auth.py", "svc"])
    assert stats.files_seen == 2 and stats.files_unchanged == 2
    assert stats.files_indexed == stats.files_removed == 0
    assert fake.calls == 0
    assert snapshot(demo_repo) == before
    stats, _, _ = run_index(demo_repo, fake, [])  # an empty scope: nothing at all
    assert stats.files_seen == 0 and stats.files_removed == 0
    assert snapshot(demo_repo) == before


def test_before_embed_is_called_before_every_embedder_call(demo_repo: Path) -> None:
    events: list[str] = []

    class Recording(FakeEmbedder):
        def embed_batch(self, texts: Any, *, query: bool, task: str | None) -> np.ndarray:
            events.append("embed")
            return super().embed_batch(texts, query=query, task=task)

    fake = Recording()
    stats, _, _ = run_index(
        demo_repo, fake, before_embed=lambda: events.append("yield"), embed_group=1
    )
    assert fake.calls == stats.files_indexed == 7  # one file per embedder call
    assert events == ["yield", "embed"] * 7

    events.clear()
    retry = demo_repo / "src/app/retry.py"
    retry.write_text(retry.read_text().replace("cap: float = 30.0", "cap: float = 60.0"))
    (demo_repo / "README.md").write_text((demo_repo / "README.md").read_text() + "\nMore.\n")
    run_index(demo_repo, Recording(), before_embed=lambda: events.append("yield"))
    assert events == ["yield", "embed"]  # the default group takes both files in one call


def test_a_first_index_says_the_model_is_loading_before_the_bar(demo_repo: Path) -> None:
    """Loading a model takes seconds on a CPU: the first thing a progress display hears is
    that, then the files; the bar writes the phase on its line."""
    import io

    from codesearch.engine import index_repo
    from codesearch.render import ProgressBar

    events: list[Any] = []
    index_repo(demo_repo, load_settings(), progress=events.append, model="fake")
    assert events[0].phase == "loading the embedding model (fake)"
    assert events[-1].phase == "" and events[-1].files_done == events[-1].files_total > 0

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    bar = ProgressBar(screen)
    for event in events:
        bar(event)
    bar.close()
    text = screen.getvalue()
    assert text.startswith("\rloading the embedding model (fake) ...")
    assert f"{events[-1].files_total}/{events[-1].files_total} files" in text
