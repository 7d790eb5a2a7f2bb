"""Pictures in the index (issue 7): real image files and a real PDF, real discovery, the real
store, and the packaged MiniLM (text only: pictures are found by the documents that show
them); the multimodal path runs in tests/test_pictures_jina.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_helpers import Daemon
from picture_helpers import ARCHITECTURE_MD, make_picture_repo

from codesearch.config import load_settings
from codesearch.engine import index_status
from codesearch.index import Indexer
from codesearch.search import Searcher, SearchOptions
from codesearch.store import Store
from codesearch.types import Filters
from codesearch.wire.hits import Hit as WireHit


@pytest.fixture
def picture_repo(tmp_path: Path) -> Path:
    return make_picture_repo(tmp_path)


def _index(root: Path, embedder: object, scope: list[str] | None = None):
    settings = load_settings()
    with Store.open(settings.index_path(root), create=True) as store:
        return Indexer(root, store, embedder, settings).run(scope)  # type: ignore[arg-type]


def _search(root: Path, embedder: object, query: str, **kw: object):
    settings = load_settings()
    with Store.open(settings.index_path(root)) as store:
        options = SearchOptions(**kw)  # type: ignore[arg-type]
        return Searcher(store, embedder).search(query, options)  # type: ignore[arg-type]


def test_pictures_are_indexed_with_their_context_and_bad_ones_skipped(
    picture_repo: Path, minilm: object
) -> None:
    stats = _index(picture_repo, minilm)
    reasons = {s.path: s.reason for s in stats.skipped}
    assert reasons["assets/favicon.png"] == "icon"
    assert reasons["broken/zero.png"] == "empty"
    assert reasons["broken/garbage.png"] == "corrupt-image"
    assert reasons["broken/truncated.png"] == "truncated-image"
    settings = load_settings()
    with Store.open(settings.index_path(picture_repo)) as store:
        chunks = [c.chunk for c in store.all_chunks()]
    pictures = {(c.path, c.kind, c.media.page if c.media else -1) for c in chunks if c.media}
    assert pictures == {
        ("docs/img/ingest-pipeline.png", "image", 0),
        ("shots/login.jpg", "image", 0),
        ("docs/img/rollout.gif", "image", 0),
        ("docs/design.pdf", "pdf-page", 1),
        ("docs/design.pdf", "pdf-page", 2),
        ("docs/design.pdf", "pdf-page", 3),
    }
    ingest = next(c for c in chunks if c.path == "docs/img/ingest-pipeline.png")
    assert ingest.media is not None and (ingest.media.width, ingest.media.height) == (320, 200)
    assert "diagram of the ingest pipeline" in ingest.text
    assert "Ingest pipeline" in ingest.text  # the section around the reference
    rollout = next(c for c in chunks if c.path == "docs/img/rollout.gif")
    assert "blue green deployment" in rollout.text  # an RST figure's :alt:
    # the code is indexed as before
    assert any(c.name == "queue_pieces" for c in chunks)


def test_a_text_question_finds_the_diagram_by_the_words_that_show_it(
    picture_repo: Path, minilm: object
) -> None:
    _index(picture_repo, minilm)
    hits = _search(picture_repo, minilm, "diagram of the ingest pipeline", k=5)
    top = hits[0]
    assert (top.path, top.kind) == ("docs/img/ingest-pipeline.png", "image")
    assert top.referenced_by == ("docs/architecture.md",)
    record = WireHit.of(top).dump()
    assert (record["page"], record["width"], record["height"]) == (0, 320, 200)
    assert record["referenced_by"] == ["docs/architecture.md"]
    hits = _search(picture_repo, minilm, "screenshot of the login page", k=3)
    assert hits[0].path == "shots/login.jpg"
    # --kind image: only pictures; code results carry no picture fields
    only = _search(
        picture_repo, minilm, "split files into pieces", k=10, filters=Filters(kinds=("image",))
    )
    assert only and all(h.kind == "image" for h in only)
    code = _search(picture_repo, minilm, "split files and queue the pieces", k=1)[0]
    assert code.name == "queue_pieces" and "page" not in WireHit.of(code).dump()


def test_a_changed_document_describes_its_pictures_again(
    picture_repo: Path, minilm: object
) -> None:
    _index(picture_repo, minilm)
    doc = picture_repo / "docs" / "architecture.md"
    doc.write_text(
        ARCHITECTURE_MD.replace("diagram of the ingest pipeline", "flowchart of the billing job"),
        encoding="utf-8",
    )
    stats = _index(picture_repo, minilm, scope=["docs/architecture.md"])  # a scoped update
    assert stats.files_indexed == 2  # the document, and the picture it describes
    top = _search(picture_repo, minilm, "flowchart of the billing job", k=3)[0]
    assert top.path == "docs/img/ingest-pipeline.png"
    # the document is deleted: the picture keeps only its own name as description
    doc.unlink()
    _index(picture_repo, minilm)
    settings = load_settings()
    with Store.open(settings.index_path(picture_repo)) as store:
        (chunk,) = [c.chunk for c in store.all_chunks("docs/img/ingest-pipeline.png")]
        assert "billing" not in chunk.text and "ingest pipeline" in chunk.text  # its file name
        assert store.refs_to(["docs/img/ingest-pipeline.png"]) == {}


def test_a_picture_that_turns_corrupt_leaves_the_index(picture_repo: Path, minilm: object) -> None:
    _index(picture_repo, minilm)
    (picture_repo / "shots" / "login.jpg").write_bytes(b"\xff\xd8\xff garbage")
    stats = _index(picture_repo, minilm)
    assert {s.path: s.reason for s in stats.skipped}["shots/login.jpg"] == "corrupt-image"
    assert stats.files_removed == 1
    settings = load_settings()
    with Store.open(settings.index_path(picture_repo)) as store:
        assert store.all_chunks("shots/login.jpg") == []
        assert store.check() == []


def test_status_counts_the_pictures_that_wait_for_a_multimodal_model(
    picture_repo: Path, minilm: object
) -> None:
    _index(picture_repo, minilm)
    status = index_status(picture_repo, load_settings())
    assert (status.pictures, status.pictures_waiting) == (6, 6)


CLI = (sys.executable, "-m", "codesearch.cli")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODESEARCH_DAEMON": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [*CLI, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_cli_shows_pictures_with_size_and_the_documents_that_show_them(
    picture_repo: Path,
) -> None:
    repo = str(picture_repo)
    done = _cli("index", repo)
    assert done.returncode == 0, done.stderr
    done = _cli("search", "diagram of the ingest pipeline", "--repo", repo, "-k", "3")
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("docs/img/ingest-pipeline.png  image 320x200")
    assert "shown in docs/architecture.md" in done.stdout
    done = _cli("search", "design pages", "--repo", repo, "--kind", "pdf-page", "--json")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert sorted(r["page"] for r in results) == [1, 2, 3]
    assert all(r["kind"] == "pdf-page" and r["path"] == "docs/design.pdf" for r in results)
    done = _cli("status", repo)
    assert "pictures  6, 6 described by text only" in done.stdout, done.stdout


def test_pictures_through_the_daemon_keep_their_fields(
    tmp_path: Path, picture_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The everyday path: `codesearch "Q"` asks the daemon, which answers with the JSON
    records; a picture keeps its page, size and referencing documents on the way."""
    home = tmp_path / "daemon-home"
    monkeypatch.setenv("CODESEARCH_HOME", str(home))
    daemon = Daemon(home).start()
    try:
        daemon.add(picture_repo)
        answer = daemon.call(
            "search",
            {"queries": ["diagram of the ingest pipeline"], "k": 3, "repo": str(picture_repo)},
        )
        top = answer["results"][0][0]
        assert (top["path"], top["width"], top["height"]) == (
            "docs/img/ingest-pipeline.png",
            320,
            200,
        )
        assert top["referenced_by"] == ["docs/architecture.md"]
        hit = WireHit.model_validate(top).to_hit()
        assert hit.media is not None and hit.referenced_by == ("docs/architecture.md",)
        env = {**os.environ, "CODESEARCH_HOME": str(home), "CODESEARCH_DAEMON": "1"}
        question = ["search", "diagram of the ingest pipeline", "--repo", str(picture_repo)]
        done = subprocess.run(
            [*CLI, *question, "--jsonl", "-k", "1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        line = json.loads(done.stdout.splitlines()[0])
        assert (line["kind"], line["page"], line["width"]) == ("image", 0, 320)
        status = daemon.call("status", {"repo": str(picture_repo)})["repos"][0]
        assert (status["pictures"], status["pictures_waiting"]) == (6, 6)
    finally:
        daemon.stop()


def test_a_long_pdf_keeps_its_first_pages_run_after_run(
    picture_repo: Path, minilm: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODESEARCH_PDF_MAX_PAGES", "2")
    for run in range(2):  # the second run must not drop the PDF for its left-out page
        stats = _index(picture_repo, minilm)
        if run == 0:
            skip = next(s for s in stats.skipped if s.path == "docs/design.pdf")
            assert skip.reason == "too-many-pages" and "2 of 3" in skip.detail
        else:
            assert stats.files_removed == 0
        settings = load_settings()
        with Store.open(settings.index_path(picture_repo)) as store:
            pages = [
                c.chunk.media.page for c in store.all_chunks("docs/design.pdf") if c.chunk.media
            ]
        assert sorted(pages) == [1, 2]
