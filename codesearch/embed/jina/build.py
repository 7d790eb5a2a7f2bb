"""Building the jina-embeddings-v4 embedder: ``load_jina_v4`` (a checkpoint folder or a cached
HF id) and ``random_jina_v4`` (the same model with random weights, for benchmarks).

The device, dtype and attention implementation are chosen here; the checkpoint's pieces come
from the loader's modules (see load.py) and the embedder itself is embedder.py's
``JinaV4Embedder`` (this module imports it; it never imports this one).

torch, transformers and peft are imported by this module: import it lazily.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

import torch
from tokenizers import Tokenizer

from codesearch.embed.backend import cpu_count
from codesearch.embed.jina.adapters import attach_adapters
from codesearch.embed.jina.config import JinaExtras, build_config, looks_like_real_weights
from codesearch.embed.jina.embedder import DEFAULT_MAX_TOKENS, MODEL_MAX_TOKENS, JinaV4Embedder
from codesearch.embed.jina.files import TOKENIZER, inspect_folder, resolve_source, unavailable
from codesearch.embed.jina.notices import CPU_NOTICE, license_notice, notify_once
from codesearch.embed.jina.random import build_random
from codesearch.embed.jina.vision import DEFAULT_IMAGE_BATCH_PIXELS, PUBLISHED_PREPROCESSOR
from codesearch.embed.jina.weights import build_module, load_base_weights
from codesearch.types import BadInput


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
        "fp32": torch.float32,
        "float32": torch.float32,
    }
    if dtype not in names:
        raise BadInput(f"jina-v4: dtype must be one of {', '.join(names)}, not {dtype!r}")
    return names[dtype]


def _attention(device: torch.device, dtype: torch.dtype) -> str:
    if (
        device.type == "cuda"
        and dtype in (torch.bfloat16, torch.float16)
        and importlib.util.find_spec("flash_attn") is not None
    ):
        return "flash_attention_2"
    return "sdpa"


def _checked(extras: JinaExtras, task: str, dim: int | None) -> int:
    """The vector size to give (``dim``, default truncate_dim or the full size), checked
    against the checkpoint like ``task``."""
    if task not in extras.task_names:
        raise BadInput(f"unknown jina-v4 task {task!r}: use one of {', '.join(extras.task_names)}")
    chosen = dim if dim is not None else (extras.truncate_dim or extras.hidden_size)
    if chosen not in extras.matryoshka_dims:
        raise BadInput(f"jina-v4: dim {chosen} is not one of {list(extras.matryoshka_dims)}")
    return int(chosen)


def load_jina_v4(
    source: str | os.PathLike[str],
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    dim: int | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    batch_tokens: int | None = None,
    task: str = "code",
    allow_download: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    notice: Callable[[str], None] | None = None,
    license_marker_dir: str | os.PathLike[str] | None = None,
    attn_implementation: str | None = None,
    threads: int | None = None,
    max_image_pixels: int | None = None,
    image_batch_pixels: int = DEFAULT_IMAGE_BATCH_PIXELS,
) -> JinaV4Embedder:
    """Load jina-embeddings-v4 from a folder or a cached HF id. Raises ModelUnavailable.

    ``dim``: one of the config's matryoshka_dims (default: truncate_dim, else the full size).
    ``batch_tokens``: padded tokens per batch (default 16384 on CUDA, 4096 on the CPU).
    ``max_image_pixels``: the most pixels an image is resized to (default: the checkpoint's
    preprocessor_config.json max_pixels, 602112 for the published one); ``image_batch_pixels``:
    processed pixels per image forward pass (an image above it goes alone).
    ``notice``: called with the one-time notices (license, slow CPU); default: logging.
    ``threads``: torch CPU threads (default: every CPU this process may use).
    """
    folder, name = resolve_source(source, allow_download=allow_download, cache_dir=cache_dir)
    files = inspect_folder(folder)
    dev = _resolve_device(device)
    torch_dtype = _resolve_dtype(dtype, dev)
    config, extras = build_config(files, attn_implementation or _attention(dev, torch_dtype))
    chosen = _checked(extras, task, dim)
    try:
        tokenizer = Tokenizer.from_file(str(files.path(TOKENIZER)))
    except Exception as exc:
        raise unavailable(folder, TOKENIZER, f"cannot be loaded: {exc}") from exc
    tokenizer.no_padding()
    tokenizer.no_truncation()

    if looks_like_real_weights(extras, name):
        license_notice(notice, license_marker_dir)
    if dev.type == "cpu":
        torch.set_num_threads(threads or cpu_count())
        notify_once("cpu", CPU_NOTICE, notice)

    module = build_module(files, config, extras)
    load_base_weights(module, files, torch_dtype, dev)
    peft_model = attach_adapters(module, files, extras.task_names, torch_dtype, dev)
    if batch_tokens is None:
        batch_tokens = 16384 if dev.type == "cuda" else 4096
    return JinaV4Embedder(
        files=files,
        extras=extras,
        peft_model=peft_model,
        tokenizer=tokenizer,
        name=name,
        device=dev,
        dtype=torch_dtype,
        dim=chosen,
        max_tokens=max(1, min(int(max_tokens), MODEL_MAX_TOKENS)),
        batch_tokens=batch_tokens,
        task=task,
        max_image_pixels=max_image_pixels,
        image_batch_pixels=image_batch_pixels,
    )


def random_jina_v4(
    config: dict[str, Any],
    adapter_config: dict[str, Any],
    tokenizer: Tokenizer,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    dim: int | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    batch_tokens: int | None = None,
    task: str = "code",
    attn_implementation: str | None = None,
    seed: int = 0,
    max_image_pixels: int | None = None,
    image_batch_pixels: int = DEFAULT_IMAGE_BATCH_PIXELS,
    preprocessor_config: dict[str, Any] | None = None,
) -> JinaV4Embedder:
    """The jina-v4 embedder of ``config`` (a config.json dict) with random weights.

    For benchmarks without the published weights: the module tree, the adapters and the encode
    path are the loader's (random.build_random), so the compute is the real one. The weights
    are made on ``device``. ``tokenizer`` must know ``<|endoftext|>`` (the pad token), and the
    image prompt's special tokens for ``embed_images``; ``preprocessor_config`` defaults to the
    published image processor's fields.
    """
    dev = _resolve_device(device)
    torch_dtype = _resolve_dtype(dtype, dev)
    files, extras, peft_model = build_random(
        config,
        adapter_config,
        dtype=torch_dtype,
        device=dev,
        attn_implementation=attn_implementation or _attention(dev, torch_dtype),
        seed=seed,
    )
    chosen = _checked(extras, task, dim)
    return JinaV4Embedder(
        files=files,
        extras=extras,
        peft_model=peft_model,
        tokenizer=tokenizer,
        name="random",
        device=dev,
        dtype=torch_dtype,
        dim=chosen,
        max_tokens=max(1, min(int(max_tokens), MODEL_MAX_TOKENS)),
        batch_tokens=batch_tokens or (16384 if dev.type == "cuda" else 4096),
        task=task,
        max_image_pixels=max_image_pixels,
        image_batch_pixels=image_batch_pixels,
        preprocessor_config=dict(preprocessor_config or PUBLISHED_PREPROCESSOR),
    )
