"""The indexer with real discovery, tree-sitter and sqlite-vec, and the fake embedder:
incremental updates re-embed exactly what changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codesearch.config import load_settings
from codesearch.embed import FakeEmbedder
from codesearch.index import Indexer
from codesearch.store import Store


def run_index(root: Path, embedder: FakeEmbedder):
    settings = load_settings()
    with Store.open(settings.index_path(root), create=True) as store:
        stats = Indexer(root, store, embedder, settings).run()
        names = {(c.chunk.path, c.chunk.name) for c in store.all_chunks()}
        states = store.file_states()
    return stats, names, states


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

    def walk_then_delete(root, settings):
        found = real_walk(root, settings)
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
    import codesearch.index as index_module

    monkeypatch.setattr(index_module, "EMBED_GROUP", 1)  # one file per embed call

    class Interrupting(FakeEmbedder):
        def embed_documents(self, texts):  # type: ignore[no-untyped-def]
            if self.calls == 3:
                raise KeyboardInterrupt
            return super().embed_documents(texts)

    first = Interrupting()
    with pytest.raises(KeyboardInterrupt):
        run_index(demo_repo, first)
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
