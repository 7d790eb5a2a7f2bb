"""Pictures on a multimodal backend: the tiny jina-v4 checkpoint (the published layout, through
the real loader) embeds them from their pixels, in the same index and the same search as the
text; a document that changes describes its pictures again without re-embedding them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from jina_tiny import write_tiny_checkpoint  # noqa: E402
from picture_helpers import ARCHITECTURE_MD, make_picture_repo  # noqa: E402

from codesearch import pictures  # noqa: E402
from codesearch.config import load_settings  # noqa: E402
from codesearch.embed.jina.build import load_jina_v4  # noqa: E402
from codesearch.embed.jina.embedder import JinaV4Embedder  # noqa: E402
from codesearch.engine import index_status  # noqa: E402
from codesearch.index import Indexer  # noqa: E402
from codesearch.search import Searcher, SearchOptions  # noqa: E402
from codesearch.store import Store  # noqa: E402
from codesearch.store.quant import quantise  # noqa: E402
from codesearch.store.sql import key_digest  # noqa: E402
from codesearch.types import IMAGE_TASK, Filters, IndexStats  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def jina(tmp_path_factory: pytest.TempPathFactory) -> JinaV4Embedder:
    folder = write_tiny_checkpoint(tmp_path_factory.mktemp("jina-pictures") / "jina-tiny")
    return load_jina_v4(folder, device="cpu", notice=lambda _msg: None, threads=1)


def _index(root: Path, embedder: Any, scope: list[str] | None = None) -> IndexStats:
    settings = load_settings()
    with Store.open(settings.index_path(root), create=True) as store:
        return Indexer(root, store, embedder, settings).run(scope)


def test_pictures_are_embedded_from_their_pixels(tmp_path: Path, jina: JinaV4Embedder) -> None:
    root = make_picture_repo(tmp_path)
    _index(root, jina)
    settings = load_settings()
    with Store.open(settings.index_path(root)) as store:
        chunks = [c.chunk for c in store.all_chunks() if c.chunk.media is not None]
        assert len(chunks) == 6 and "image" in store.tasks()
        assert store.picture_counts() == (6, 0)  # none waits for a multimodal backend
        # the stored vector of the diagram is the embedder's vector of its pixels
        diagram = next(c for c in chunks if c.path == "docs/img/ingest-pipeline.png")
        rendered = pictures.pixels(root, diagram, jina.max_image_pixels)
        expected = jina.embed_images([rendered], task=pictures.PICTURE_TASK)[0]
        key = diagram.vector_key(IMAGE_TASK)
        (stored,) = store._conn.execute(
            "SELECT v.embedding FROM vec_chunks v JOIN vectors x ON x.id = v.rowid WHERE x.key = ?",
            (key_digest(key),),
        ).fetchone()
        codes = np.frombuffer(stored, dtype=np.int8)  # int8 storage: store/quant.py
        np.testing.assert_allclose(codes, quantise(expected), atol=1)
    status = index_status(root, settings)
    assert (status.pictures, status.pictures_waiting) == (6, 0)


def test_one_search_ranks_pictures_and_code_together(tmp_path: Path, jina: Any) -> None:
    root = make_picture_repo(tmp_path)
    _index(root, jina)
    settings = load_settings()
    with Store.open(settings.index_path(root)) as store:
        searcher = Searcher(store, jina)
        assert "image" in (searcher._routes() or [])  # questions meet pixel vectors too
        hits = searcher.search("diagram of the ingest pipeline", SearchOptions(k=20))
        kinds = {h.kind for h in hits}
        assert {"image", "pdf-page"} <= kinds and kinds & {"function", "section"}
        only = searcher.search("a picture", SearchOptions(k=10, filters=Filters(kinds=("image",))))
        assert {h.path for h in only} == {
            "docs/img/ingest-pipeline.png",
            "shots/login.jpg",
            "docs/img/rollout.gif",
        }
        diagram = next(h for h in only if h.path == "docs/img/ingest-pipeline.png")
        assert diagram.referenced_by == ("docs/architecture.md",)


def test_a_changed_document_does_not_re_embed_its_pictures(
    tmp_path: Path, jina: JinaV4Embedder
) -> None:
    root = make_picture_repo(tmp_path)
    first = _index(root, jina)
    assert first.chunks_embedded > 6
    doc = root / "docs" / "architecture.md"
    doc.write_text(ARCHITECTURE_MD.replace("ingest pipeline", "billing job"), encoding="utf-8")
    again = _index(root, jina)
    assert again.files_indexed == 2  # the document and the picture it describes
    settings = load_settings()
    with Store.open(settings.index_path(root)) as store:
        (diagram,) = [c.chunk for c in store.all_chunks("docs/img/ingest-pipeline.png")]
        assert "billing job" in diagram.text
        doc_chunks = len(store.all_chunks("docs/architecture.md"))
    # only the document's changed sections were embedded: the picture's pixel vector stayed
    assert 0 < again.chunks_embedded <= doc_chunks
