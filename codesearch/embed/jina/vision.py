"""Images into jina-embeddings-v4 inputs: the prompt, the image processor, pixel-budget batches.

JINA_V4.md: an image is the prompt ``IMAGE_PROMPT`` whose one ``<|image_pad|>`` is expanded to
grid_t * grid_h * grid_w / merge_size**2 tokens by the image processor's grid; the pixel values
and ``image_grid_thw`` go into the model; the single vector is the mean of the last hidden state
from ``<|vision_start|>`` to ``<|vision_end|>`` inclusive. The image processor is the one
preprocessor_config.json describes (the Qwen2-VL one; transformers' PIL backend, which needs no
torchvision), with min_pixels from the checkpoint and max_pixels from the embedder's
``max_image_pixels`` (default: the checkpoint's max_pixels).

``ImagePipeline`` does everything but the forward pass: sizes (without resizing anything),
batches by a pixel budget, pixel values, prompt ids and the pooled span of each row.
:func:`encode_images` runs pictures through the embedder (what it uses of it is
:class:`ImageModel`): batches from size-sorted images by a budget of processed pixels
(``image_batch_pixels``), halved on out-of-memory like the token budget.
Pillow and transformers are imported when a pipeline is made; torch when images are encoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from codesearch.embed.jina.files import TOKENIZER, read_json, unavailable
from codesearch.types import BadInput, ModelUnavailable

if TYPE_CHECKING:
    from PIL import Image
    from tokenizers import Tokenizer

PREPROCESSOR = "preprocessor_config.json"
IMAGE_PAD = "<|image_pad|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PROMPT = (
    f"<|im_start|>user\n{VISION_START}{IMAGE_PAD}{VISION_END}Describe the image.<|im_end|>\n"
)
PUBLISHED_MAX_PIXELS = 602_112  # the published preprocessor_config.json's max_pixels (768 tokens)
# What the published checkpoint's preprocessor_config.json holds (JINA_V4.md): the image
# processor of a model built without a folder (random_jina_v4).
PUBLISHED_PREPROCESSOR: dict[str, Any] = {
    "image_processor_type": "Qwen2VLImageProcessor",
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "min_pixels": 3136,
    "max_pixels": PUBLISHED_MAX_PIXELS,
    "merge_size": 2,
    "patch_size": 14,
    "resample": 3,
    "rescale_factor": 1 / 255,
    "temporal_patch_size": 2,
}
# Processed pixels per forward pass (8 images at the published cap); a larger image goes alone.
DEFAULT_IMAGE_BATCH_PIXELS = 8 * PUBLISHED_MAX_PIXELS
_PROCESSOR_TYPES = ("Qwen2VLImageProcessor", "Qwen2_5_VLImageProcessor")
_PROCESSOR_FIELDS = (
    "do_convert_rgb",
    "do_normalize",
    "do_rescale",
    "do_resize",
    "image_mean",
    "image_std",
    "resample",
    "rescale_factor",
    "patch_size",
    "merge_size",
    "temporal_patch_size",
)


def read_preprocessor(folder: Path) -> tuple[dict[str, Any] | None, ModelUnavailable | None]:
    """preprocessor_config.json of a checkpoint folder, or the one-line error it would give.

    Never raises: a checkpoint without it still embeds text; the error is raised by the
    first image call.
    """
    if not (folder / PREPROCESSOR).is_file():
        problem = "is missing: this checkpoint embeds no images"
        return None, unavailable(folder, PREPROCESSOR, problem)
    try:
        return read_json(folder, PREPROCESSOR), None
    except ModelUnavailable as exc:
        return None, exc


def configured_max_pixels(config: dict[str, Any] | None) -> int:
    """The checkpoint's max_pixels (the published value when it names none)."""
    config = config or {}
    value = config.get("max_pixels")
    size = config.get("size")
    if value is None and isinstance(size, dict):
        value = size.get("longest_edge")
    return int(value) if isinstance(value, int | float) and value > 0 else PUBLISHED_MAX_PIXELS


def take_batch(pixels: Sequence[int], budget: int) -> int:
    """How many of the leading ``pixels`` one forward pass takes: their sum stays within
    ``budget``, and the first one is always taken (an oversized image goes alone)."""
    total = count = 0
    for p in pixels:
        if count and total + p > budget:
            break
        total += p
        count += 1
    return count


@dataclass(frozen=True)
class ImageBatch:
    """One forward pass's inputs (CPU): prompt ids per row, pixel values, grids, pooled spans."""

    rows: list[list[int]]
    pixel_values: Any  # torch.Tensor (sum of patches, C * T * P * P), float32
    grid_thw: Any  # torch.Tensor (n, 3), int64
    spans: list[tuple[int, int]]  # (vision_start, vision_end) positions per row, inclusive


class ImagePipeline:
    """The image processor and the prompt of one checkpoint."""

    def __init__(
        self,
        folder: Path,
        config: dict[str, Any],
        tokenizer: Tokenizer,
        token_ids: dict[str, int],
        max_pixels: int,
    ) -> None:
        from transformers import Qwen2VLImageProcessorPil

        def bad(problem: str) -> ModelUnavailable:
            return unavailable(folder, PREPROCESSOR, problem)

        kind = str(config.get("image_processor_type") or "Qwen2VLImageProcessor")
        if not kind.startswith(_PROCESSOR_TYPES):
            raise bad(f"names {kind!r}; only the Qwen2-VL image processor is supported")
        try:
            self.min_pixels = int(config.get("min_pixels", 56 * 56))
            self.patch_size = int(config.get("patch_size", 14))
            self.merge_size = int(config.get("merge_size", 2))
        except (TypeError, ValueError) as exc:
            raise bad(f"has a malformed size field: {exc}") from exc
        if max_pixels < self.min_pixels:
            raise BadInput(
                f"jina-v4: max_image_pixels {max_pixels} is below the checkpoint's min_pixels "
                f"{self.min_pixels}"
            )
        self.max_pixels = int(max_pixels)
        self.factor = self.patch_size * self.merge_size
        fields = {k: config[k] for k in _PROCESSOR_FIELDS if k in config}
        size = {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels}
        try:
            self.processor = Qwen2VLImageProcessorPil(size=size, **fields)
        except Exception as exc:
            raise bad(f"does not make an image processor: {exc}") from exc

        ids = tokenizer.encode(IMAGE_PROMPT, add_special_tokens=False).ids
        pad, start, end = token_ids[IMAGE_PAD], token_ids[VISION_START], token_ids[VISION_END]
        if ids.count(pad) != 1 or ids.count(start) != 1 or ids.count(end) != 1:
            raise unavailable(
                folder,
                TOKENIZER,
                f"does not encode {IMAGE_PAD}, {VISION_START} and {VISION_END} as the ids "
                f"config.json gives them ({pad}, {start}, {end})",
            )
        at = ids.index(pad)
        if not ids.index(start) == at - 1 or not ids.index(end) == at + 1:
            raise unavailable(folder, TOKENIZER, "splits the image prompt unexpectedly")
        self.image_token_id = pad
        self._before, self._after = ids[:at], ids[at + 1 :]

    # sizes and batches -------------------------------------------------------------------

    def resized(self, image: Image.Image) -> tuple[int, int]:
        """(height, width) the processor resizes ``image`` to (nothing is resized here)."""
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

        width, height = image.size
        return smart_resize(height, width, self.factor, self.min_pixels, self.max_pixels)

    def image_tokens(self, height: int, width: int) -> int:
        """``<|image_pad|>`` tokens of an image resized to (height, width)."""
        return (height // self.patch_size) * (width // self.patch_size) // self.merge_size**2

    def prompt_ids(self, n_tokens: int) -> tuple[list[int], tuple[int, int]]:
        """The prompt with ``n_tokens`` image pads, and its (vision_start, vision_end) span."""
        start = len(self._before) - 1
        return [*self._before, *[self.image_token_id] * n_tokens, *self._after], (
            start,
            start + n_tokens + 1,
        )

    def batch(self, images: Sequence[Image.Image]) -> ImageBatch:
        """Process RGB ``images`` into one forward pass's inputs (as torch tensors)."""
        out = self.processor(list(images), return_tensors="pt")
        grid = out["image_grid_thw"]
        rows: list[list[int]] = []
        spans: list[tuple[int, int]] = []
        for t, h, w in grid.tolist():
            ids, span = self.prompt_ids(t * h * w // self.merge_size**2)
            rows.append(ids)
            spans.append(span)
        return ImageBatch(rows, out["pixel_values"], grid, spans)


def as_rgb(image: object, index: int) -> Image.Image:
    """``image`` as an RGB PIL image; transparency is composited onto white (diagrams and
    icons are drawn on a transparent background that would otherwise turn black)."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        raise BadInput(f"jina-v4: image {index} is a {type(image).__name__}, not a PIL image")
    width, height = image.size
    if width < 1 or height < 1:
        raise BadInput(f"jina-v4: image {index} is empty ({width}x{height})")
    if max(width, height) / min(width, height) > 200:
        raise BadInput(
            f"jina-v4: image {index} ({width}x{height}) is too elongated (aspect ratio > 200)"
        )
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "La", "RGBa", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


class ImageModel(Protocol):
    """What image embedding uses of the jina-v4 embedder (its public part)."""

    full_dim: int
    image_batch_pixels: int

    def vision(self) -> ImagePipeline: ...

    def session(self, task: str) -> AbstractContextManager[None]: ...

    def forward_images(self, vision: ImagePipeline, images: list[Image.Image]) -> np.ndarray: ...

    def lower_image_budget(self, pixels: list[int]) -> None: ...

    def matryoshka(self, pooled: np.ndarray) -> np.ndarray: ...


def encode_images(model: ImageModel, images: Sequence[Image.Image], task: str) -> np.ndarray:
    """(n, dim) float32, L2-normalised, in the space of the documents of ``task`` (checked).

    Any PIL mode is accepted (converted to RGB, transparency onto white); each image is resized
    by the checkpoint's image processor within the model's ``max_image_pixels``.
    """
    import torch

    vision = model.vision()
    rgb = [as_rgb(image, i) for i, image in enumerate(images)]
    pixels = [h * w for h, w in (vision.resized(image) for image in rgb)]
    pooled = np.zeros((len(rgb), model.full_dim), dtype=np.float32)
    order = sorted(range(len(rgb)), key=lambda i: -pixels[i])  # similar lengths together
    with model.session(task):
        start = 0
        while start < len(order):
            rows = take_batch([pixels[i] for i in order[start:]], model.image_batch_pixels)
            idx = order[start : start + rows]
            try:
                vectors = model.forward_images(vision, [rgb[i] for i in idx])
            except torch.OutOfMemoryError:
                vectors = None  # the traceback (and its activations) ends here
            if vectors is None:
                model.lower_image_budget([pixels[i] for i in idx])
                continue
            pooled[idx] = vectors
            start += rows
    return model.matryoshka(pooled)
