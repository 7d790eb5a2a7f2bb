"""The model config of a jina-embeddings-v4 checkpoint, and the Jina extras.

config.json is a flat Qwen2.5-VL config plus Jina's own fields (task names, Matryoshka dims,
...); ``build_config`` builds the ``Qwen2_5_VLConfig`` explicitly and checks the Jina fields.
transformers is imported when a config is built.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from codesearch.embed.jina.files import CONFIG, CheckpointFiles, unavailable
from codesearch.types import ModelUnavailable

DEFAULT_TASKS = ("retrieval", "text-matching", "code")
_JINA_EXTRAS = {
    "task_names",
    "matryoshka_dims",
    "truncate_dim",
    "multi_vector_projector_dim",
    "single_vector_pool_strategy",
    "pretrained_peft_model_name_or_path",
    "verbosity",
}
_NOT_CONFIG_FIELDS = {
    "architectures",
    "auto_map",
    "model_type",
    "transformers_version",
    "_name_or_path",
    "torch_dtype",
    "dtype",
    "_attn_implementation",
    "attn_implementation",
}


@dataclass(frozen=True)
class JinaExtras:
    task_names: tuple[str, ...]
    matryoshka_dims: tuple[int, ...]
    truncate_dim: int | None
    multi_vector_dim: int
    hidden_size: int
    num_layers: int


def build_config(files: CheckpointFiles, attn_implementation: str) -> tuple[Any, JinaExtras]:
    """A Qwen2_5_VLConfig built explicitly from config.json's fields, and the Jina extras."""
    from transformers import Qwen2_5_VLConfig

    raw = files.config
    fields = {k: v for k, v in raw.items() if k not in _JINA_EXTRAS | _NOT_CONFIG_FIELDS}
    for sub in ("vision_config", "text_config"):
        if isinstance(fields.get(sub), dict):  # a stale model_type would only confuse the class
            fields[sub] = {k: v for k, v in fields[sub].items() if k != "model_type"}
    if not isinstance(fields.get("vision_config"), dict):
        raise unavailable(files.folder, CONFIG, "has no vision_config")
    try:
        with quiet_transformers():
            config = Qwen2_5_VLConfig(**fields)
        config._attn_implementation = attn_implementation
    except Exception as exc:
        raise unavailable(
            files.folder, CONFIG, f"is not a usable Qwen2.5-VL config: {exc}"
        ) from exc
    text = config.text_config
    try:
        hidden = int(text.hidden_size)
        heads = int(text.num_attention_heads)
        layers = int(text.num_hidden_layers)
    except (TypeError, ValueError, AttributeError) as exc:
        raise unavailable(files.folder, CONFIG, f"lacks the text model sizes: {exc}") from exc
    mrope = (text.rope_parameters or {}).get("mrope_section")
    if not mrope or hidden % heads or 2 * sum(mrope) != hidden // heads:
        raise unavailable(
            files.folder, CONFIG, f"has an mrope_section {mrope} that does not fit head_dim"
        )
    if int(config.vision_config.out_hidden_size) != hidden:
        raise unavailable(files.folder, CONFIG, "has vision out_hidden_size != hidden_size")
    return config, _extras(files, raw, hidden, layers)


def _extras(files: CheckpointFiles, raw: dict[str, Any], hidden: int, layers: int) -> JinaExtras:
    def bad(what: str) -> ModelUnavailable:
        return unavailable(files.folder, CONFIG, what)

    tasks = raw.get("task_names") or list(DEFAULT_TASKS)
    if not isinstance(tasks, list) or not all(isinstance(t, str) and t for t in tasks):
        raise bad("has a malformed task_names")
    dims = raw.get("matryoshka_dims") or [d for d in (128, 256, 512, 1024, 2048) if d <= hidden]
    if not isinstance(dims, list) or not all(isinstance(d, int) and 0 < d <= hidden for d in dims):
        raise bad(f"has a malformed matryoshka_dims {dims!r}")
    if hidden not in dims:
        dims = [*dims, hidden]
    truncate = raw.get("truncate_dim")
    if truncate is not None and truncate not in dims:
        raise bad(f"has truncate_dim {truncate!r}, not one of matryoshka_dims")
    multi = raw.get("multi_vector_projector_dim", 128)
    if not isinstance(multi, int) or multi <= 0:
        raise bad("has a malformed multi_vector_projector_dim")
    pool = raw.get("single_vector_pool_strategy", "mean")
    if pool != "mean":
        raise bad(f"asks for single_vector_pool_strategy {pool!r}; only 'mean' is supported")
    return JinaExtras(tuple(tasks), tuple(sorted(set(dims))), truncate, multi, hidden, layers)


def looks_like_real_weights(extras: JinaExtras, name: str) -> bool:
    """The published weights (CC-BY-NC-4.0), not a tiny test checkpoint."""
    return "jina-embeddings-v4" in name or (extras.hidden_size >= 1024 and extras.num_layers >= 24)


@contextmanager
def quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
