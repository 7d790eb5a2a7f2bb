"""The jina-embeddings-v4 module tree and its base weights.

``build_module`` makes ``.model`` (Qwen2_5_VLModel) + ``.multi_vector_projector`` on the meta
device; ``load_base_weights`` fills it from the shards, which use the OLD Qwen2.5-VL key
layout (``remap_key`` turns it into the current one), strict about names and shapes.
torch is imported by this module, transformers when the tree is built.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from codesearch.embed.jina.config import JinaExtras, quiet_transformers
from codesearch.embed.jina.files import (
    CONFIG,
    INDEX,
    SINGLE,
    CheckpointFiles,
    few,
    unavailable,
)
from codesearch.types import ModelUnavailable

_OLD_LM_KEY = re.compile(r"^model\.(?!language_model\.|visual\.)")
# Weights that may sit in a checkpoint but that an embedding model does not use.
_IGNORED_KEYS = {"lm_head.weight"}


class JinaV4Module(nn.Module):
    """``.model`` (Qwen2_5_VLModel) and ``.multi_vector_projector``: the names the files use.

    No ``.config`` attribute on purpose: PEFT then loads the adapter state dict as is, without
    transformers-v5 key conversions.
    """

    def __init__(self, config: Any, multi_vector_dim: int) -> None:
        super().__init__()
        from transformers import Qwen2_5_VLModel

        self.model = Qwen2_5_VLModel(config)
        hidden = int(config.text_config.hidden_size)
        self.multi_vector_projector = nn.Linear(hidden, multi_vector_dim)


def remap_key(key: str) -> str:
    """Old Qwen2.5-VL key (``visual.*``, ``model.layers.*``) -> this module tree's key."""
    if key.startswith("visual."):
        return "model." + key
    if _OLD_LM_KEY.match(key):
        return "model.language_model." + key[len("model.") :]
    return key


def build_module(files: CheckpointFiles, config: Any, extras: JinaExtras) -> JinaV4Module:
    """The module tree with its parameters on the meta device (no memory, no random init)."""
    from accelerate import init_empty_weights

    try:
        with quiet_transformers(), init_empty_weights(include_buffers=False):
            return JinaV4Module(config, extras.multi_vector_dim)
    except Exception as exc:
        raise unavailable(files.folder, CONFIG, f"does not build a model: {exc}") from exc


def open_safetensors(files: CheckpointFiles, name: str, device: torch.device) -> Any:
    from safetensors import safe_open

    try:
        return safe_open(str(files.path(name)), framework="pt", device=str(device))
    except Exception as exc:
        raise unavailable(files.folder, name, f"cannot be read as safetensors: {exc}") from exc


def load_base_weights(
    module: JinaV4Module, files: CheckpointFiles, dtype: torch.dtype, device: torch.device
) -> None:
    """Load the shards into ``module`` (remapping the keys); strict about names and shapes."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    loaded: set[str] = set()
    for shard in files.shards:
        try:
            state = _read_shard(files, shard, expected, dtype, device)
        except ModelUnavailable:
            raise
        except Exception as exc:  # a damaged file: safetensors or torch complain
            raise unavailable(files.folder, shard, f"cannot be read: {exc}") from exc
        module.load_state_dict(state, strict=False, assign=True)
        loaded.update(state)
        del state
    missing = sorted(set(expected) - loaded)
    if missing:
        where = INDEX if files.weight_map else SINGLE
        raise unavailable(files.folder, where, f"lacks {len(missing)} weights: {few(missing)}")
    module.to(device)  # the buffers (rotary frequencies) were built on the CPU


def _read_shard(
    files: CheckpointFiles,
    shard: str,
    expected: dict[str, tuple[int, ...]],
    dtype: torch.dtype,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """One shard's tensors under this module tree's names, checked against ``expected``."""
    with open_safetensors(files, shard, device) as f:
        keys = list(f.keys())
        listed = {k for k, s in files.weight_map.items() if s == shard}
        lacking = sorted(listed - set(keys))
        if lacking:
            raise unavailable(
                files.folder, shard, f"lacks {len(lacking)} keys its index lists: {few(lacking)}"
            )
        unexpected = [k for k in keys if k not in _IGNORED_KEYS and remap_key(k) not in expected]
        if unexpected:
            raise unavailable(
                files.folder, shard, f"has keys the model does not know: {few(unexpected)}"
            )
        state: dict[str, torch.Tensor] = {}
        for key in keys:
            if key in _IGNORED_KEYS:
                continue
            target = remap_key(key)
            tensor = f.get_tensor(key)
            if tuple(tensor.shape) != expected[target]:
                raise unavailable(
                    files.folder,
                    shard,
                    f"has {key} of shape {list(tensor.shape)}, "
                    f"the config needs {list(expected[target])}",
                )
            state[target] = tensor.to(dtype=dtype)
    return state
