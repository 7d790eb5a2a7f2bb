"""The jina-embeddings-v4 embedder: Qwen2.5-VL + task LoRA adapters, loaded by build.py.

An Embedder with tasks (retrieval, text-matching, code; "code" by default), Matryoshka dims
(``with_dim``), token vectors for late interaction (``embed_multivector``, scored by
``maxsim``), pictures in the text vectors' space (``embed_images``: vision.py) and late
chunking (``embed_late_files``: late.py). What late.py and vision.py use of it is its public
part: ``session``, ``forward``, ``forward_images``, ``prefix``, ``matryoshka``, ``vision``, the
budget fields and ``lower_*_budget``.

Encoding (JINA_V4.md): "Query: " / "Passage: " + text (text-matching: "Query: " on both sides),
last hidden state, mean over the attention mask, L2; Matryoshka keeps the first ``dim`` values
and L2-normalises again. Multi-vector: the task's projector on every token, per-token L2,
padding dropped. Batches are built from length-sorted texts by a budget of padded tokens; on
out-of-memory the budget halves and the batch is retried.

torch, transformers and peft are imported by this module: import it lazily.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tokenizers import Tokenizer

from codesearch.embed.base import Embedder, LateFile, l2_normalise
from codesearch.embed.jina.config import JinaExtras
from codesearch.embed.jina.files import CheckpointFiles
from codesearch.embed.jina.late import DEFAULT_LATE_OVERLAP, DEFAULT_LATE_WINDOW, encode_late
from codesearch.embed.jina.vision import (
    DEFAULT_IMAGE_BATCH_PIXELS,
    IMAGE_PAD,
    VISION_END,
    VISION_START,
    ImagePipeline,
    configured_max_pixels,
    encode_images,
    read_preprocessor,
)
from codesearch.types import BadInput, CodesearchError, ModelUnavailable

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger("codesearch.embed.jina")

QUERY_PREFIX = "Query: "
PASSAGE_PREFIX = "Passage: "
MODEL_MAX_TOKENS = 32768  # what jina-embeddings-v4 was trained to read
DEFAULT_MAX_TOKENS = 1024  # what one chunk may hold (the chunker sizes chunks by this)
GPU_GROUP = 1024  # documents per embed call on a CUDA GPU (see preferred_group below)


def maxsim(query_vectors: np.ndarray, doc_vectors: np.ndarray) -> float:
    """Late interaction: for each query token its best document token's dot product, summed."""
    q = np.asarray(query_vectors, dtype=np.float32)
    d = np.asarray(doc_vectors, dtype=np.float32)
    if q.size == 0 or d.size == 0:
        return 0.0
    return float((q @ d.T).max(axis=1).sum())


def _token_id(tokenizer: Tokenizer, value: object, default: str) -> int:
    content = value.get("content") if isinstance(value, dict) else value
    for token in (content, default):
        if isinstance(token, str):
            tid = tokenizer.token_to_id(token)
            if tid is not None:
                return int(tid)
    return 0


class JinaV4Embedder(Embedder):
    """jina-embeddings-v4 with its three task adapters."""

    def __init__(
        self,
        *,
        files: CheckpointFiles,
        extras: JinaExtras,
        peft_model: Any,
        tokenizer: Tokenizer,
        name: str,
        device: torch.device,
        dtype: torch.dtype,
        dim: int,
        max_tokens: int,
        batch_tokens: int,
        task: str,
        max_image_pixels: int | None = None,
        image_batch_pixels: int = DEFAULT_IMAGE_BATCH_PIXELS,
        preprocessor_config: dict[str, Any] | None = None,
    ) -> None:
        """``preprocessor_config``: the image processor's fields (default: the folder's
        preprocessor_config.json, read now and checked at the first image call);
        ``max_image_pixels``: the most pixels an image is resized to (default: the
        checkpoint's max_pixels); ``image_batch_pixels``: processed pixels per forward pass."""
        self.folder = files.folder
        self.name = name
        self.tasks = extras.task_names
        self.matryoshka_dims = extras.matryoshka_dims
        self.full_dim = extras.hidden_size
        self.multi_vector_dim = extras.multi_vector_dim
        self.dim = dim
        self.max_tokens = max_tokens
        self.batch_tokens = max(1, int(batch_tokens))
        self.device = device
        self.dtype = dtype
        # On a GPU, 1,024 documents per call leave room to sort by length: on one H200 the
        # indexer's 256 per call ran at 170 chunks/s, 1,024 at 191 (benchmarks/RESULTS.md).
        self.preferred_group = GPU_GROUP if device.type == "cuda" else 0
        self.model_id = f"jina-v4:{name}@{files.identity()}:d{dim}"
        self.peft_model = peft_model
        self.module = peft_model.base_model.model  # the JinaV4Module, LoRA layers in place
        self.tokenizer = tokenizer
        self.pad_id = _token_id(tokenizer, files.tokenizer_config.get("pad_token"), "<|endoftext|>")
        self._prefix_tokens = {
            p: len(tokenizer.encode(p, add_special_tokens=False).ids)
            for p in (QUERY_PREFIX, PASSAGE_PREFIX)
        }
        if preprocessor_config is None:
            preprocessor_config, self._image_problem = read_preprocessor(files.folder)
        else:
            self._image_problem = None
        self._image_config = preprocessor_config
        if max_image_pixels is not None and int(max_image_pixels) < 1:
            raise BadInput(f"jina-v4: max_image_pixels must be positive, not {max_image_pixels}")
        self.max_image_pixels = (
            int(max_image_pixels)
            if max_image_pixels is not None
            else configured_max_pixels(preprocessor_config)
        )
        self.image_batch_pixels = max(1, int(image_batch_pixels))
        # late chunking (late.py): files up to this many tokens are encoded whole
        self.late_window_tokens = DEFAULT_LATE_WINDOW
        self.late_overlap_tokens = DEFAULT_LATE_OVERLAP
        self._lock = threading.RLock()
        # shared with with_dim() views: the active adapter, the image pipeline once made
        self._shared: dict[str, Any] = {"active": "", "vision": None}
        self.task = task
        self.set_task(task)

    # -- the Embedder core and capabilities ------------------------------------------------

    def embed_batch(self, texts: Sequence[str], *, query: bool, task: str | None) -> np.ndarray:
        """Documents: "Passage: " (or "Query: " for text-matching); questions: "Query: "."""
        pooled = np.zeros((len(texts), self.full_dim), dtype=np.float32)

        def consume(idx: list[int], hidden: torch.Tensor, mask: torch.Tensor) -> None:
            m = mask.unsqueeze(-1).to(torch.float32)
            summed = (hidden.float() * m).sum(dim=1)
            pooled[idx] = (summed / m.sum(dim=1).clamp(min=1.0)).cpu().numpy()

        self._run(texts, task or self.task, query, consume)
        return self.matryoshka(pooled)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    @property
    def dims(self) -> tuple[int, ...]:
        return self.matryoshka_dims

    @property
    def late_chunking_id(self) -> str:
        """What late vectors depend on beyond the model and the task: the windowing."""
        return f"late-w{self.late_window_tokens}-o{self.late_overlap_tokens}"

    @property
    def supports_images(self) -> bool:
        """True when ``embed_images`` works (the checkpoint has its image processor config)."""
        try:
            self.vision()
        except CodesearchError:
            return False
        return True

    def images_problem(self) -> CodesearchError:
        try:
            self.vision()
        except CodesearchError as exc:
            return exc
        return super().images_problem()

    @property
    def image_model_id(self) -> str:
        """``model_id`` plus the pixel cap: image vectors also depend on ``max_image_pixels``."""
        return f"{self.model_id}:px{self.max_image_pixels}"

    # -- views and the default task ----------------------------------------------------------

    def set_task(self, task: str) -> None:
        """Make ``task`` (retrieval, text-matching or code) the default of the embed calls."""
        self.resolve_task(task)
        with self._lock:
            self.task = task
            self._activate(task)

    def with_dim(self, dim: int) -> JinaV4Embedder:
        """The same loaded model giving ``dim``-sized (Matryoshka) vectors: no second copy."""
        if dim not in (*self.matryoshka_dims, self.full_dim):
            valid = ", ".join(str(d) for d in self.matryoshka_dims)
            raise BadInput(f"jina-v4: dim {dim} is not one of [{valid}]")
        if dim == self.dim:
            return self
        view = copy.copy(self)  # shares the model, the tokenizer, the lock, the adapter state
        view.dim = dim
        view.model_id = self.model_id.rsplit(":d", 1)[0] + f":d{dim}"
        return view

    def with_late_window(self, window: int, overlap: int | None = None) -> JinaV4Embedder:
        """The same loaded model late-chunking with windows of ``window`` tokens overlapping
        by ``overlap`` (default: a quarter of the window): no second copy."""
        window = max(2, min(int(window), MODEL_MAX_TOKENS - max(self._prefix_tokens.values())))
        overlap = window // 4 if overlap is None else min(max(0, int(overlap)), window - 1)
        view = copy.copy(self)
        view.late_window_tokens, view.late_overlap_tokens = window, overlap
        return view

    # -- the optional capabilities -----------------------------------------------------------

    def embed_multivector_batch(
        self, texts: Sequence[str], *, task: str | None, query: bool
    ) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.zeros((0, self.multi_vector_dim), np.float32)] * len(texts)

        def consume(idx: list[int], hidden: torch.Tensor, mask: torch.Tensor) -> None:
            vectors = self.module.multi_vector_projector(hidden).float()
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=-1).cpu().numpy()
            for row, length in enumerate(mask.sum(dim=1).tolist()):
                out[idx[row]] = np.ascontiguousarray(vectors[row, : int(length)])

        self._run(texts, task or self.task, query, consume)
        return out

    def embed_late_batch(self, files: Sequence[LateFile], *, task: str | None) -> list[np.ndarray]:
        """Each span's mean token state from one encoding of its whole file ("Passage: " +
        text; windows for files over ``late_window_tokens``): late.py."""
        return encode_late(self, files, task or self.task)

    def embed_late(
        self, text: str, spans: Sequence[tuple[int, int]], *, task: str | None = None
    ) -> np.ndarray:
        """(n_spans, dim): :meth:`embed_late_files` for one file."""
        return self.embed_late_files([(text, spans)], task=task)[0]

    def embed_image_batch(self, images: Sequence[Image.Image], *, task: str | None) -> np.ndarray:
        """Pictures through the image prompt under the task's adapter: vision.py. Raises
        ModelUnavailable when the checkpoint has no usable preprocessor_config.json."""
        return encode_images(self, images, task or self.task)

    def truncate(self, vectors: np.ndarray, dim: int) -> np.ndarray:
        """Matryoshka: the first ``dim`` values of full vectors, L2-normalised again."""
        if dim not in self.matryoshka_dims:
            raise BadInput(f"jina-v4: dim {dim} is not one of {list(self.matryoshka_dims)}")
        return l2_normalise(np.asarray(vectors)[:, :dim])

    # -- the public part that late.py and vision.py use --------------------------------------

    @contextmanager
    def session(self, task: str) -> Iterator[None]:
        """The model to oneself, under ``task``'s adapter, without gradients."""
        with self._lock, torch.inference_mode():
            self._activate(task)
            yield

    def prefix(self, task: str, query: bool) -> str:
        return QUERY_PREFIX if query or task == "text-matching" else PASSAGE_PREFIX

    def matryoshka(self, pooled: np.ndarray) -> np.ndarray:
        """Full-size pooled states -> this view's vectors: L2, the first ``dim``, L2 again."""
        full = l2_normalise(pooled)
        return full if self.dim == self.full_dim else l2_normalise(full[:, : self.dim])

    def forward(self, rows: list[list[int]], width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded batch -> (last hidden state, attention mask), both on the device."""
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            input_ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[r, : len(row)] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        out = self.module.model(input_ids=input_ids, attention_mask=mask, use_cache=False)
        return out.last_hidden_state, mask

    def lower_token_budget(self, rows: int, width: int) -> None:
        """After an out-of-memory error: halve the token budget (or give up on one text)."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if rows <= 1:
            raise CodesearchError(
                f"jina-v4: out of {self.device.type} memory on one text of {width} tokens; "
                "lower max_tokens"
            )
        self.batch_tokens = max(width, min(self.batch_tokens, rows * width) // 2)
        log.warning("jina-v4: out of memory; batch budget lowered to %d tokens", self.batch_tokens)

    def vision(self) -> ImagePipeline:
        """The image pipeline, made at the first image call (ModelUnavailable without one)."""
        with self._lock:
            vision = self._shared["vision"]
            if vision is not None and vision.max_pixels == self.max_image_pixels:
                return vision
            if self._image_config is None:
                raise self._image_problem or ModelUnavailable(
                    f"jina-v4 checkpoint {self.folder}: no image processor configuration"
                )
            config = self.module.model.config
            token_ids = {
                IMAGE_PAD: int(config.image_token_id),
                VISION_START: int(config.vision_start_token_id),
                VISION_END: int(config.vision_end_token_id),
            }
            vision = ImagePipeline(
                self.folder, self._image_config, self.tokenizer, token_ids, self.max_image_pixels
            )
            self._shared["vision"] = vision
            return vision

    def forward_images(self, vision: ImagePipeline, images: list[Image.Image]) -> np.ndarray:
        """One forward pass over ``images``: (rows, full_dim) mean over each vision span."""
        batch = vision.batch(images)
        width = max(len(row) for row in batch.rows)
        input_ids = torch.full((len(batch.rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch.rows), width), dtype=torch.long)
        span = torch.zeros((len(batch.rows), width), dtype=torch.float32)
        for r, (row, (first, last)) in enumerate(zip(batch.rows, batch.spans, strict=True)):
            input_ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[r, : len(row)] = 1
            span[r, first : last + 1] = 1.0
        # mm_token_type_ids (1 = image token) is what makes transformers 5 give the image
        # tokens their 3-D (t, h, w) rotary positions; without it they would count as text.
        types = (input_ids == vision.image_token_id).to(torch.int32)
        model = self.module.model
        try:
            out = model(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                pixel_values=batch.pixel_values.to(self.device, self.dtype),
                image_grid_thw=batch.grid_thw.to(self.device),
                mm_token_type_ids=types.to(self.device),
                use_cache=False,
            )
        finally:
            model.rope_deltas = None  # a generation cache entry; nothing to carry over
        span = span.to(self.device).unsqueeze(-1)
        summed = (out.last_hidden_state.float() * span).sum(dim=1)
        return (summed / span.sum(dim=1)).cpu().numpy()

    def lower_image_budget(self, pixels: list[int]) -> None:
        """After an out-of-memory error: halve the pixel budget (or give up on one image)."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if len(pixels) <= 1:
            raise CodesearchError(
                f"jina-v4: out of {self.device.type} memory on one image of {pixels[0]} pixels; "
                "lower max_image_pixels"
            )
        self.image_batch_pixels = max(max(pixels), min(self.image_batch_pixels, sum(pixels)) // 2)
        log.warning(
            "jina-v4: out of memory on images; batch budget lowered to %d pixels",
            self.image_batch_pixels,
        )

    # -- internals ---------------------------------------------------------------------------

    def _activate(self, task: str) -> None:
        """Switch the model's LoRA adapter (the lock is held)."""
        if task != self._shared["active"]:
            self.peft_model.set_adapter(task, inference_mode=True)
            self._shared["active"] = task

    def _run(
        self,
        texts: Sequence[str],
        task: str,
        query: bool,
        consume: Callable[[list[int], torch.Tensor, torch.Tensor], None],
    ) -> None:
        """Encode under the task's adapter; ``consume(indices, last hidden, mask)`` per batch."""
        if not texts:
            return
        with self.session(task):
            prefix = self.prefix(task, query)
            limit = min(MODEL_MAX_TOKENS, self.max_tokens + self._prefix_tokens[prefix])
            encodings = self.tokenizer.encode_batch([prefix + str(t) for t in texts])
            ids = [e.ids[:limit] for e in encodings]
            order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
            start = 0
            while start < len(order):
                width = max(1, len(ids[order[start]]))
                rows = max(1, min(len(order) - start, self.batch_tokens // width))
                idx = order[start : start + rows]
                try:
                    hidden, mask = self.forward([ids[i] for i in idx], width)
                except torch.OutOfMemoryError:
                    hidden = mask = None  # the traceback (and its activations) ends here
                if hidden is None or mask is None:
                    self.lower_token_budget(rows, width)
                    continue
                consume(idx, hidden, mask)
                del hidden, mask
                start += rows
