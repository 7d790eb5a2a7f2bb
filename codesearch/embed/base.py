"""The Embedder protocol and BackendInfo. No heavy imports here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from codesearch.types import Chunk

if TYPE_CHECKING:
    from PIL import Image

# Task routing (backends with task adapters, like jina-v4): prose chunks are embedded for
# retrieval, everything else as code. The question side uses the same task names.
CODE_TASK = "code"
# Pictures embedded from their pixels (task IMAGE_TASK) go through this adapter, the one
# trained for text-to-image search; questions meet picture vectors with its query embedding.
PICTURE_TASK = "retrieval"
PROSE_TASK = "retrieval"
PROSE_LANGUAGES = frozenset({"markdown", "rst", "text"})


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    ``model_id`` is a stable id recorded in the index (e.g. ``"minilm:all-MiniLM-L6-v2"``);
    ``dim`` is the vector size; ``max_tokens`` is what the model reads (longer inputs are
    truncated).
    """

    model_id: str
    dim: int
    max_tokens: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, rows L2-normalised, input order preserved."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Same as embed_documents, for search questions (a backend may add a prefix)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` without special tokens (fast, no model run)."""
        ...


@runtime_checkable
class TaskEmbedder(Embedder, Protocol):
    """An Embedder with task adapters (jina-v4: retrieval, text-matching, code).

    ``task=None`` means the backend's default task. Documents and questions of one task share
    a vector space; vectors of different tasks are not comparable.
    """

    tasks: tuple[str, ...]

    def embed_documents(self, texts: Sequence[str], *, task: str | None = None) -> np.ndarray:
        """(n, dim) float32, rows L2-normalised, embedded for ``task``."""
        ...

    def embed_queries(self, texts: Sequence[str], *, task: str | None = None) -> np.ndarray:
        """(n, dim) float32, rows L2-normalised, search questions for ``task``."""
        ...


@runtime_checkable
class MultiVectorEmbedder(Protocol):
    """A backend that also gives one vector per token, for late-interaction re-ranking."""

    def embed_multivector(
        self, texts: Sequence[str], task: str | None = None, query: bool = False
    ) -> list[np.ndarray]:
        """Per text an (n_tokens, d) float32 array, rows L2-normalised."""
        ...


@runtime_checkable
class LateChunkingEmbedder(Protocol):
    """A long-context backend that encodes a whole file once and gives each chunk the mean of
    its own tokens' states from that encoding, L2-normalised (late chunking: jina-v4).

    ``late_chunking_id`` names what these vectors depend on beyond the model and the task (the
    backend's windowing of long files); the index keys late vectors by it.
    """

    late_chunking_id: str

    def embed_late_files(
        self, files: Sequence[tuple[str, Sequence[tuple[int, int]]]], *, task: str | None = None
    ) -> list[np.ndarray]:
        """Per (file text, character spans [begin, end)) pair an (n_spans, dim) float32 array,
        rows L2-normalised, in the space of ``embed_documents`` for ``task``."""
        ...


def supports_late_chunking(embedder: Any) -> bool:
    """True when ``embedder`` can late-chunk (MiniLM, the remote backend and the fake cannot)."""
    return callable(getattr(embedder, "embed_late_files", None))


@runtime_checkable
class ImageEmbedder(Protocol):
    """A backend that embeds pictures into the space of its text vectors (jina-v4).

    A backend may have ``embed_images`` and still not be able to run it (a checkpoint without
    its image processor): ask ``supports_images``.
    """

    dim: int

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, dim) float32, rows L2-normalised single vectors comparable with the text
        vectors (same dim, same space), input order preserved; any PIL mode is accepted."""
        ...


def supports_images(embedder: Any) -> bool:
    """True when ``embedder`` has a working ``embed_images`` (MiniLM and the fake do not).

    A backend whose ``embed_images`` depends on its files says so with a ``supports_images``
    attribute (jina-v4: False without preprocessor_config.json).
    """
    if not callable(getattr(embedder, "embed_images", None)):
        return False
    return bool(getattr(embedder, "supports_images", True))


def embedder_tasks(embedder: Any) -> tuple[str, ...]:
    """The task names of a TaskEmbedder; () for a backend without tasks."""
    tasks = getattr(embedder, "tasks", None)
    if not tasks or isinstance(tasks, str):
        return ()
    return tuple(str(t) for t in tasks)


def document_task(embedder: Any, chunk: Chunk) -> str:
    """The task ``chunk`` is embedded with: "" for a backend without tasks (it is called as
    before, without ``task=``); else "retrieval" for prose (Markdown, RST, plain text, or any
    section) and "code" for the rest, each falling back to the backend's first task."""
    tasks = embedder_tasks(embedder)
    if not tasks:
        return ""
    prose = chunk.kind == "section" or chunk.language in PROSE_LANGUAGES
    wanted = PROSE_TASK if prose else CODE_TASK
    return wanted if wanted in tasks else tasks[0]


@dataclass(frozen=True)
class BackendInfo:
    """What `codesearch models` shows about one backend."""

    name: str  # "minilm", "jina-v4", "fake", "hf"
    description: str
    needs: str
    usable: bool
    reason: str  # why not usable, "" if usable


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation as float32; zero rows stay zero (no NaN)."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.size == 0:
        return v
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (v / norms).astype(np.float32, copy=False)
