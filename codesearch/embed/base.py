"""The Embedder base class: one small abstract core, declared capabilities, and the methods
callers use implemented once over them. No heavy imports here.

A backend implements ``embed_batch`` and ``count_tokens`` and sets ``model_id``, ``dim`` and
``max_tokens``. What else it can do it declares (class attributes, or properties where the
answer depends on its files), and it implements the hook of each capability it declares:

- ``tasks`` / ``task`` (default ``()`` / None: no task adapters): the checked task reaches
  ``embed_batch``
- ``dims`` (default ``(dim,)``): several for a Matryoshka model, which overrides ``with_dim``
- ``supports_images`` (False) and ``max_image_pixels`` (None): hook ``embed_image_batch``
- ``multi_vector_dim`` (0: one vector per text): hook ``embed_multivector_batch``
- ``late_chunking_id`` ("": cannot late-chunk): hook ``embed_late_batch``
- ``preferred_group`` (0): documents per call that keep the backend busy
- ``dim_conflict``: why an index it would rebuild must be kept (remote: a server that changed)

Callers use ``embed_documents`` / ``embed_queries`` / ``embed_images`` / ``embed_multivector``
/ ``embed_late_files``: they check the task, answer an empty input, and raise ``Unsupported``
(a one-line BadInput) for what the backend did not declare. Callers read the flags; nothing
outside this class asks an embedder what it has (no ``getattr`` probing).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from codesearch.types import BadInput, Chunk, CodesearchError, ModelUnavailable, Task

if TYPE_CHECKING:
    from PIL import Image

# Task routing (backends with task adapters, like jina-v4): prose chunks are embedded for
# retrieval, everything else as code. The question side uses the same task names.
CODE_TASK = Task.CODE
# Pictures embedded from their pixels (task IMAGE_TASK) go through this adapter, the one
# trained for text-to-image search; questions meet picture vectors with its query embedding.
PICTURE_TASK = Task.RETRIEVAL
PROSE_TASK = Task.RETRIEVAL
PROSE_LANGUAGES = frozenset({"markdown", "rst", "text"})

# A file's text and the character spans [begin, end) of its chunks (late chunking).
LateFile = tuple[str, Sequence[tuple[int, int]]]


class EmbedderUnavailable(ModelUnavailable):
    """The backend cannot answer now (an embedding server that is down, overloaded or
    unreachable): a pause, not a failure. ``retry_in``: when to try again (seconds)."""

    def __init__(self, message: str, retry_in: float = 0.0) -> None:
        super().__init__(message)
        self.retry_in = retry_in


class Unsupported(BadInput):
    """A backend was asked for something it did not declare (pictures from a text model)."""


class Embedder(ABC):
    """Turns texts (and, where declared, pictures) into L2-normalised float32 vectors.

    ``model_id`` is the stable id an index records (e.g. ``"minilm:all-MiniLM-L6-v2"``), ``dim``
    the vector size, ``max_tokens`` what the model reads (longer inputs are truncated).
    """

    model_id: str
    dim: int
    max_tokens: int

    tasks: tuple[str, ...] = ()  # task adapters; vectors of different tasks do not compare
    task: str | None = None  # the default task (None without tasks)
    max_image_pixels: int | None = None  # the most pixels a picture is resized to
    multi_vector_dim: int = 0  # size of the per-token vectors (0: none)
    preferred_group: int = 0  # documents per embed call that keep the backend busy (0: any)

    # -- the core: what every backend implements ---------------------------------------------

    @abstractmethod
    def embed_batch(self, texts: Sequence[str], *, query: bool, task: str | None) -> np.ndarray:
        """(len(texts), dim) float32, rows L2-normalised, input order kept. ``texts`` is not
        empty; ``task`` is checked (None for a backend without tasks); ``query``: search
        questions (a backend may add a prefix), else indexed documents."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` without special tokens (fast, no model run)."""

    # -- declared capabilities -----------------------------------------------------------------

    @property
    def dims(self) -> tuple[int, ...]:
        """The vector sizes this model gives (Matryoshka models: several, see ``with_dim``)."""
        return (self.dim,)

    @property
    def supports_images(self) -> bool:
        """Whether ``embed_images`` works here (a multimodal model with its files)."""
        return False

    @property
    def supports_multivector(self) -> bool:
        return self.multi_vector_dim > 0

    @property
    def late_chunking_id(self) -> str:
        """What late-chunked vectors depend on beyond the model and the task (the backend's
        windowing of long files); "" when the backend cannot late-chunk."""
        return ""

    @property
    def supports_late_chunking(self) -> bool:
        return bool(self.late_chunking_id)

    # -- what callers use ----------------------------------------------------------------------

    def embed_documents(self, texts: Sequence[str], *, task: str | None = None) -> np.ndarray:
        """(n, dim) float32, rows L2-normalised: indexed chunks, embedded for ``task``."""
        return self._texts(texts, query=False, task=task)

    def embed_queries(self, texts: Sequence[str], *, task: str | None = None) -> np.ndarray:
        """(n, dim) float32, rows L2-normalised: search questions for ``task``."""
        return self._texts(texts, query=True, task=task)

    def embed_images(self, images: Sequence[Image.Image], *, task: str | None = None) -> np.ndarray:
        """(n, dim) float32, rows L2-normalised single vectors in the space of the documents of
        ``task`` (same dim), input order kept; any PIL mode is accepted."""
        if not self.supports_images:
            raise self.images_problem()
        resolved = self.resolve_task(task)
        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.embed_image_batch(images, task=resolved)

    def embed_multivector(
        self, texts: Sequence[str], *, task: str | None = None, query: bool = False
    ) -> list[np.ndarray]:
        """Per text an (n_tokens, multi_vector_dim) float32 array, rows L2-normalised."""
        if not self.supports_multivector:
            raise Unsupported(f"model {self.model_id} gives one vector per text, not per token")
        resolved = self.resolve_task(task)
        if len(texts) == 0:
            return []
        return self.embed_multivector_batch(texts, task=resolved, query=query)

    def embed_late_files(
        self, files: Sequence[LateFile], *, task: str | None = None
    ) -> list[np.ndarray]:
        """Per (file text, character spans) pair an (n_spans, dim) float32 array, rows
        L2-normalised, in the space of ``embed_documents`` for ``task``: each span pooled from
        one encoding of its whole file (late chunking)."""
        if not self.supports_late_chunking:
            raise Unsupported(f"model {self.model_id} cannot encode whole files (late chunking)")
        resolved = self.resolve_task(task)
        if len(files) == 0:
            return []
        return self.embed_late_batch(files, task=resolved)

    def with_dim(self, dim: int) -> Embedder:
        """This model giving ``dim``-sized vectors (one of ``dims``), without a second copy."""
        if dim == self.dim:
            return self
        valid = ", ".join(str(d) for d in self.dims)
        raise BadInput(f"{self.family}: dim {dim} is not available (valid dims: {valid})")

    def resolve_task(self, task: str | None) -> str | None:
        """The task a call runs for: None for a backend without tasks (which cannot be asked
        for one), else ``task`` or the default, checked."""
        if not self.tasks:
            if task:
                raise Unsupported(f"model {self.model_id} has no tasks (asked for {task!r})")
            return None
        chosen = task or self.task or self.tasks[0]
        if chosen not in self.tasks:
            raise BadInput(
                f"unknown {self.family} task {chosen!r}: use one of {', '.join(self.tasks)}"
            )
        return chosen

    def document_task(self, chunk: Chunk) -> str:
        """The task ``chunk`` is embedded with: "" for a backend without tasks; else
        "retrieval" for prose (Markdown, RST, plain text, or any section) and "code" for the
        rest, each falling back to the backend's first task."""
        if not self.tasks:
            return ""
        prose = chunk.kind == "section" or chunk.language in PROSE_LANGUAGES
        wanted = PROSE_TASK if prose else CODE_TASK
        return wanted if wanted in self.tasks else self.tasks[0]

    def dim_conflict(self, built_model_id: str | None) -> str:
        """Why writing with this embedder must not rebuild the index that ``built_model_id``
        built (its vectors would be thrown away for a reason outside the user's choice); ""
        when there is none."""
        return ""

    def images_problem(self) -> CodesearchError:
        """The error ``embed_images`` raises when ``supports_images`` is false."""
        return Unsupported(f"model {self.model_id} embeds text only: it cannot embed pictures")

    @property
    def family(self) -> str:
        """The backend's name as messages show it: ``model_id`` up to its first colon."""
        return self.model_id.split(":", 1)[0]

    # -- the hooks of the optional capabilities ------------------------------------------------

    def embed_image_batch(self, images: Sequence[Image.Image], *, task: str | None) -> np.ndarray:
        """``embed_images`` for a backend that declares ``supports_images`` (images not empty,
        task checked)."""
        raise self._no_hook("supports_images", "embed_image_batch")

    def embed_multivector_batch(
        self, texts: Sequence[str], *, task: str | None, query: bool
    ) -> list[np.ndarray]:
        """``embed_multivector`` for a backend with ``multi_vector_dim`` (texts not empty)."""
        raise self._no_hook("multi_vector_dim", "embed_multivector_batch")

    def embed_late_batch(self, files: Sequence[LateFile], *, task: str | None) -> list[np.ndarray]:
        """``embed_late_files`` for a backend with a ``late_chunking_id`` (files not empty)."""
        raise self._no_hook("late_chunking_id", "embed_late_batch")

    # -- internals -----------------------------------------------------------------------------

    def _no_hook(self, capability: str, hook: str) -> TypeError:
        """A backend declared a capability without the method that provides it (a bug in it)."""
        return TypeError(f"{type(self).__name__} declares {capability} but defines no {hook}")

    def _texts(self, texts: Sequence[str], *, query: bool, task: str | None) -> np.ndarray:
        resolved = self.resolve_task(task)
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.embed_batch(texts, query=query, task=resolved)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation as float32; zero rows stay zero (no NaN)."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.size == 0:
        return v
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (v / norms).astype(np.float32, copy=False)
