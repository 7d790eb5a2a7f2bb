"""The jina-embeddings-v4 backend: Qwen2.5-VL + task LoRA adapters, loaded by our own code.

``load_jina_v4(source)`` takes a checkpoint folder or an HF id from the local HF cache (see
jina_load.py for the loader's modules: the files, the config, the key remap, the adapters);
it and ``random_jina_v4`` are defined in jina_build.py and re-exported here.
The embedder implements the Embedder protocol (single vectors, task "code" by default) and
adds ``task=`` on every call, Matryoshka truncation, multi-vector output for late interaction
and ``maxsim``, ``embed_images`` (the ImageEmbedder protocol: images into the text vectors'
space; see jina_vision.py) and ``embed_late_files`` (the LateChunkingEmbedder protocol: chunk
vectors pooled from one encoding of their whole file; see jina_late.py).

Encoding (JINA_V4.md): "Query: " / "Passage: " + text (text-matching: "Query: " on both sides),
last hidden state, mean over the attention mask, L2; Matryoshka keeps the first ``dim`` values
and L2-normalises again. Multi-vector: the task's projector on every token, per-token L2,
padding dropped. Batches are built from length-sorted texts by a budget of padded tokens; on
out-of-memory the budget halves and the batch is retried.

Images: the image prompt through the same model under the task's adapter (the LoRA sits on the
language model only), the mean of the last hidden state from ``<|vision_start|>`` to
``<|vision_end|>`` inclusive, then Matryoshka and L2 as for text. Batches are built from
size-sorted images by a budget of processed pixels (``image_batch_pixels``), halved on
out-of-memory like the token budget.

torch, transformers and peft are imported by this module: import it lazily.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tokenizers import Tokenizer

from codesearch.embed.base import l2_normalise
from codesearch.embed.jina_config import JinaExtras
from codesearch.embed.jina_files import CheckpointFiles
from codesearch.embed.jina_late import DEFAULT_LATE_OVERLAP, DEFAULT_LATE_WINDOW, encode_late
from codesearch.embed.jina_vision import (
    DEFAULT_IMAGE_BATCH_PIXELS,
    IMAGE_PAD,
    VISION_END,
    VISION_START,
    ImagePipeline,
    as_rgb,
    configured_max_pixels,
    read_preprocessor,
    take_batch,
)
from codesearch.types import BadInput, CodesearchError, ModelUnavailable

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

QUERY_PREFIX = "Query: "
PASSAGE_PREFIX = "Passage: "
MODEL_MAX_TOKENS = 32768  # what jina-embeddings-v4 was trained to read
DEFAULT_MAX_TOKENS = 1024  # what one chunk may hold (the chunker sizes chunks by this)
LICENSE_NOTICE = (
    "jina-embeddings-v4 weights are licensed CC-BY-NC-4.0: non-commercial use only "
    "(https://huggingface.co/jinaai/jina-embeddings-v4)"
)
CPU_NOTICE = (
    "jina-v4 is running on the CPU: this is slow (about 0.3 snippets/s for the real 3.75B model "
    "on 2 cores); use a CUDA GPU, or --model minilm"
)
LICENSE_MARKER = "jina-v4-license-notice-shown"

_shown: set[str] = set()  # notices already given in this process
_shown_lock = threading.Lock()


def _notify_once(key: str, message: str, notice: Callable[[str], None] | None) -> bool:
    with _shown_lock:
        if key in _shown:
            return False
        _shown.add(key)
    (notice or log.warning)(message)
    return True


def license_notice(
    notice: Callable[[str], None] | None = None, marker_dir: str | os.PathLike[str] | None = None
) -> bool:
    """Tell the user once about the non-commercial license; True if it was shown now.

    With ``marker_dir`` the notice is remembered across processes in a marker file there.
    """
    marker = Path(marker_dir) / LICENSE_MARKER if marker_dir is not None else None
    if marker is not None and marker.is_file():
        return False
    shown = _notify_once(f"license:{marker}", LICENSE_NOTICE, notice)
    if marker is not None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(LICENSE_NOTICE + "\n", encoding="utf-8")
        except OSError:
            pass
    return shown


def maxsim(query_vectors: np.ndarray, doc_vectors: np.ndarray) -> float:
    """Late interaction: for each query token its best document token's dot product, summed."""
    q = np.asarray(query_vectors, dtype=np.float32)
    d = np.asarray(doc_vectors, dtype=np.float32)
    if q.size == 0 or d.size == 0:
        return 0.0
    return float((q @ d.T).max(axis=1).sum())


def _cpu_count() -> int:  # for jina_build.load_jina_v4, which looks it up here at each call
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _token_id(tokenizer: Tokenizer, value: object, default: str) -> int:
    content = value.get("content") if isinstance(value, dict) else value
    for token in (content, default):
        if isinstance(token, str):
            tid = tokenizer.token_to_id(token)
            if tid is not None:
                return int(tid)
    return 0


class JinaV4Embedder:
    """jina-embeddings-v4 with its three task adapters; the Embedder protocol plus extras."""

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
        self.model_id = f"jina-v4:{name}@{files.identity()}:d{dim}"
        self._peft = peft_model
        self._net = peft_model.base_model.model  # the JinaV4Module, LoRA layers in place
        self._tokenizer = tokenizer
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
        # late chunking (jina_late.py): files up to this many tokens are encoded whole
        self.late_window_tokens = DEFAULT_LATE_WINDOW
        self.late_overlap_tokens = DEFAULT_LATE_OVERLAP
        self._lock = threading.RLock()
        # shared with with_dim() views: the active adapter, the image pipeline once made
        self._shared: dict[str, Any] = {"active": "", "vision": None}
        self.task = task
        self.set_task(task)

    # -- the Embedder protocol ------------------------------------------------------------

    def embed_documents(self, texts: Sequence[str], *, task: str | None = None) -> np.ndarray:
        """(n, dim) float32, L2-normalised: documents ("Passage: ", or "Query: " for matching)."""
        return self._single(texts, task, query=False)

    def embed_queries(self, texts: Sequence[str], *, task: str | None = None) -> np.ndarray:
        """(n, dim) float32, L2-normalised: search questions ("Query: ")."""
        return self._single(texts, task, query=True)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    # -- extras ---------------------------------------------------------------------------

    def set_task(self, task: str) -> None:
        """Make ``task`` (retrieval, text-matching or code) the default of the embed calls."""
        self._check_task(task)
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

    # -- late chunking (the LateChunkingEmbedder protocol; see jina_late.py) ---------------

    @property
    def late_chunking_id(self) -> str:
        """What late vectors depend on beyond the model and the task: the windowing."""
        return f"late-w{self.late_window_tokens}-o{self.late_overlap_tokens}"

    def embed_late_files(
        self, files: Sequence[tuple[str, Sequence[tuple[int, int]]]], *, task: str | None = None
    ) -> list[np.ndarray]:
        """Per (text, character spans) pair an (n_spans, dim) float32 array, rows
        L2-normalised: each span's mean token state from one encoding of its whole file
        ("Passage: " + text; windows for files over ``late_window_tokens``)."""
        return encode_late(self, files, task)

    def embed_late(
        self, text: str, spans: Sequence[tuple[int, int]], *, task: str | None = None
    ) -> np.ndarray:
        """(n_spans, dim): :meth:`embed_late_files` for one file."""
        return encode_late(self, [(text, spans)], task)[0]

    def _check_task(self, task: str) -> None:
        if task not in self.tasks:
            raise BadInput(f"unknown jina-v4 task {task!r}: use one of {', '.join(self.tasks)}")

    def _activate(self, task: str) -> None:
        """Switch the model's LoRA adapter (the lock is held)."""
        if task != self._shared["active"]:
            self._peft.set_adapter(task, inference_mode=True)
            self._shared["active"] = task

    def embed_multivector(
        self, texts: Sequence[str], task: str | None = None, query: bool = False
    ) -> list[np.ndarray]:
        """Per text an (n_tokens, multi_vector_dim) float32 array, rows L2-normalised."""
        out: list[np.ndarray] = [np.zeros((0, self.multi_vector_dim), np.float32)] * len(texts)

        def consume(idx: list[int], hidden: torch.Tensor, mask: torch.Tensor) -> None:
            vectors = self._net.multi_vector_projector(hidden).float()
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=-1).cpu().numpy()
            for row, length in enumerate(mask.sum(dim=1).tolist()):
                out[idx[row]] = np.ascontiguousarray(vectors[row, : int(length)])

        self._run(texts, task, query, consume)
        return out

    # -- images (the ImageEmbedder protocol) -----------------------------------------------

    def embed_images(self, images: Sequence[Image.Image], *, task: str | None = None) -> np.ndarray:
        """(n, dim) float32, L2-normalised, in the space of the documents of ``task``.

        Any PIL mode is accepted (converted to RGB, transparency onto white); each image is
        resized by the checkpoint's image processor within ``max_image_pixels``. Raises
        ModelUnavailable when the checkpoint has no usable preprocessor_config.json.
        """
        if len(images) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        task = task or self.task
        self._check_task(task)
        vision = self._vision()
        rgb = [as_rgb(image, i) for i, image in enumerate(images)]
        sizes = [vision.resized(image) for image in rgb]
        pixels = [h * w for h, w in sizes]
        pooled = np.zeros((len(rgb), self.full_dim), dtype=np.float32)
        order = sorted(range(len(rgb)), key=lambda i: -pixels[i])  # similar lengths together
        with self._lock, torch.inference_mode():
            self._activate(task)
            start = 0
            while start < len(order):
                rows = take_batch([pixels[i] for i in order[start:]], self.image_batch_pixels)
                idx = order[start : start + rows]
                try:
                    vectors = self._forward_images(vision, [rgb[i] for i in idx])
                except torch.OutOfMemoryError:
                    vectors = None  # the traceback (and its activations) ends here
                if vectors is None:
                    self._shrink_image_budget([pixels[i] for i in idx])
                    continue
                pooled[idx] = vectors
                start += rows
        full = l2_normalise(pooled)
        return full if self.dim == self.full_dim else l2_normalise(full[:, : self.dim])

    @property
    def supports_images(self) -> bool:
        """True when ``embed_images`` works (the checkpoint has its image processor config)."""
        try:
            self._vision()
        except CodesearchError:
            return False
        return True

    @property
    def image_model_id(self) -> str:
        """``model_id`` plus the pixel cap: image vectors also depend on ``max_image_pixels``."""
        return f"{self.model_id}:px{self.max_image_pixels}"

    def _vision(self) -> ImagePipeline:
        """The image pipeline, made at the first image call (ModelUnavailable without one)."""
        with self._lock:
            vision = self._shared["vision"]
            if vision is not None and vision.max_pixels == self.max_image_pixels:
                return vision
            if self._image_config is None:
                raise self._image_problem or ModelUnavailable(
                    f"jina-v4 checkpoint {self.folder}: no image processor configuration"
                )
            config = self._net.model.config
            token_ids = {
                IMAGE_PAD: int(config.image_token_id),
                VISION_START: int(config.vision_start_token_id),
                VISION_END: int(config.vision_end_token_id),
            }
            vision = ImagePipeline(
                self.folder, self._image_config, self._tokenizer, token_ids, self.max_image_pixels
            )
            self._shared["vision"] = vision
            return vision

    def _forward_images(self, vision: ImagePipeline, images: list[Image.Image]) -> np.ndarray:
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
        model = self._net.model
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

    def _shrink_image_budget(self, pixels: list[int]) -> None:
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

    def truncate(self, vectors: np.ndarray, dim: int) -> np.ndarray:
        """Matryoshka: the first ``dim`` values of full vectors, L2-normalised again."""
        if dim not in self.matryoshka_dims:
            raise BadInput(f"jina-v4: dim {dim} is not one of {list(self.matryoshka_dims)}")
        return l2_normalise(np.asarray(vectors)[:, :dim])

    # -- internals ------------------------------------------------------------------------

    def _prefix(self, task: str, query: bool) -> str:
        return QUERY_PREFIX if query or task == "text-matching" else PASSAGE_PREFIX

    def _single(self, texts: Sequence[str], task: str | None, query: bool) -> np.ndarray:
        pooled = np.zeros((len(texts), self.full_dim), dtype=np.float32)

        def consume(idx: list[int], hidden: torch.Tensor, mask: torch.Tensor) -> None:
            m = mask.unsqueeze(-1).to(torch.float32)
            summed = (hidden.float() * m).sum(dim=1)
            pooled[idx] = (summed / m.sum(dim=1).clamp(min=1.0)).cpu().numpy()

        self._run(texts, task, query, consume)
        full = l2_normalise(pooled)
        return full if self.dim == self.full_dim else l2_normalise(full[:, : self.dim])

    def _run(
        self,
        texts: Sequence[str],
        task: str | None,
        query: bool,
        consume: Callable[[list[int], torch.Tensor, torch.Tensor], None],
    ) -> None:
        """Encode under the task's adapter; ``consume(indices, last hidden, mask)`` per batch."""
        if not texts:
            return
        task = task or self.task
        self._check_task(task)
        with self._lock, torch.inference_mode():
            self._activate(task)
            prefix = self._prefix(task, query)
            limit = min(MODEL_MAX_TOKENS, self.max_tokens + self._prefix_tokens[prefix])
            encodings = self._tokenizer.encode_batch([prefix + str(t) for t in texts])
            ids = [e.ids[:limit] for e in encodings]
            order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
            start = 0
            while start < len(order):
                width = max(1, len(ids[order[start]]))
                rows = max(1, min(len(order) - start, self.batch_tokens // width))
                idx = order[start : start + rows]
                try:
                    hidden, mask = self._forward([ids[i] for i in idx], width)
                except torch.OutOfMemoryError:
                    hidden = mask = None  # the traceback (and its activations) ends here
                if hidden is None or mask is None:
                    self._shrink_budget(rows, width)
                    continue
                consume(idx, hidden, mask)
                del hidden, mask
                start += rows

    def _forward(self, rows: list[list[int]], width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded batch -> (last hidden state, attention mask), both on the device."""
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            input_ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[r, : len(row)] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        out = self._net.model(input_ids=input_ids, attention_mask=mask, use_cache=False)
        return out.last_hidden_state, mask

    def _shrink_budget(self, rows: int, width: int) -> None:
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


def __getattr__(name: str) -> Any:
    """``load_jina_v4`` and ``random_jina_v4``, from jina_build.py on first use (that module
    imports this one, so it is not imported here up front)."""
    if name in ("load_jina_v4", "random_jina_v4"):
        from codesearch.embed import jina_build

        return getattr(jina_build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
