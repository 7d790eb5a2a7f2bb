"""One text or one picture, embedded as the index and the search embed it (`codesearch
embed`): through the backend's own embed_queries / embed_documents / embed_multivector /
embed_images, so its prefixes, tasks and pixel cap apply."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from codesearch.embed.backend import LoadOptions
from codesearch.embed.base import PICTURE_TASK, Embedder
from codesearch.embed.registry import load, picture_models, resolve
from codesearch.types import BadInput

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True)
class TextEmbedding:
    """What `codesearch embed` shows: one vector, or per-token vectors (multi-vector)."""

    model: str  # the model id an index would record
    task: str | None  # the task adapter; None for backends without tasks
    dim: int
    vectors: np.ndarray  # (1, dim), or (tokens, dim) with multivector
    multivector: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "task": self.task, "dim": self.dim}
        if self.multivector:
            out["vectors"] = self.vectors.tolist()
        else:
            out["vector"] = self.vectors[0].tolist()
        return out


def _load(
    model: str, *, task: str | None, dim: int | None, device: str | None, home: Path | None
) -> tuple[Embedder, str]:
    """The backend for one embedding (its default task ``task``) and the name it was asked by;
    a task asked of a backend without tasks is a BadInput."""
    backend, target = resolve(model)
    options = LoadOptions(batch_size=1, device=device, dim=dim, home=home, task=task)
    embedder = load(backend, target, options)
    if task is not None and not embedder.tasks:
        raise BadInput(f"model {target.label} has no tasks: omit --task (a jina-v4 option)")
    return embedder, target.label


def embed_text(
    text: str,
    *,
    model: str = "auto",
    query: bool,
    task: str | None = None,
    dim: int | None = None,
    multivector: bool = False,
    device: str | None = None,
    home: Path | None = None,
) -> TextEmbedding:
    """Embed ``text`` as a search question (``query``) or as an indexed chunk."""
    if multivector and dim is not None:
        raise BadInput("--dim sets the single vector's size; multi-vectors have a fixed size")
    embedder, label = _load(model, task=task, dim=dim, device=device, home=home)
    return embed_with(embedder, label, text, query=query, task=task, multivector=multivector)


def embed_with(
    embedder: Embedder,
    label: str,
    text: str,
    *,
    query: bool,
    task: str | None = None,
    multivector: bool = False,
) -> TextEmbedding:
    """:func:`embed_text` with a model already loaded (the daemon's, warm), named ``label``."""
    if task is not None and not embedder.tasks:
        raise BadInput(f"model {label} has no tasks: omit --task (a jina-v4 option)")
    task = embedder.resolve_task(task)
    if multivector:
        if not embedder.supports_multivector:
            raise BadInput(f"--multivector needs jina-v4; model {label} gives one vector")
        (rows,) = embedder.embed_multivector([text], task=task, query=query)
        return TextEmbedding(embedder.model_id, task, embedder.multi_vector_dim, rows, True)
    embed = embedder.embed_queries if query else embedder.embed_documents
    return TextEmbedding(embedder.model_id, task, embedder.dim, embed([text], task=task))


def embed_image(
    picture: Callable[[int | None], Image.Image],
    *,
    model: str = "auto",
    task: str | None = None,
    dim: int | None = None,
    device: str | None = None,
    home: Path | None = None,
) -> TextEmbedding:
    """Embed a picture from its pixels as the index embeds picture files (task
    ``PICTURE_TASK`` unless ``task``): ``picture(max_pixels)`` renders it within the backend's
    pixel cap (None: the backend names none). Only a multimodal backend can."""
    embedder, _label = _load(model, task=task, dim=dim, device=device, home=home)
    task = task or PICTURE_TASK
    if not embedder.supports_images:
        which = ", ".join(f"--model {name}" for name in picture_models())
        raise BadInput(
            f"model {embedder.model_id} embeds text only: a picture needs a multimodal model "
            f"({which})"
        )
    vectors = embedder.embed_images([picture(embedder.max_image_pixels)], task=task)
    return TextEmbedding(embedder.model_id, task, embedder.dim, vectors)
