"""A jina-embeddings-v4 model with random weights, for benchmarks without the real ones.

``build_random`` goes the loader's way (build_config, build_module, the base weights assigned
by name, attach_adapters); only the tensors come from a generator instead of the files.
torch is imported by this module.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codesearch.embed.jina.adapters import attach_adapters
from codesearch.embed.jina.config import JinaExtras, build_config
from codesearch.embed.jina.files import CheckpointFiles
from codesearch.embed.jina.weights import JinaV4Module, build_module

# Qwen2's special tokens, in id order from QWEN_FIRST_SPECIAL_ID (the BPE vocabulary ends
# there): what a tokenizer built in code needs to match the real ids (tests, benchmarks).
QWEN_FIRST_SPECIAL_ID = 151643
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# The projections of every decoder layer that carry a LoRA in the published adapter file.
LORA_TARGETS = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)
_LAYER_LINEAR = re.compile(r"^model\.language_model\.layers\.\d+\.(?P<target>.+)$")


@dataclass
class RandomCheckpoint(CheckpointFiles):
    """Stands in for a checkpoint folder when the weights are random: no file is read."""

    seed: int = 0

    def identity(self) -> str:
        text = json.dumps([self.config, self.adapter_config, self.seed], sort_keys=True)
        return "random-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def build_random(
    config: dict[str, Any],
    adapter_config: dict[str, Any],
    *,
    dtype: torch.dtype,
    device: torch.device,
    attn_implementation: str = "sdpa",
    seed: int = 0,
    std: float = 0.02,
) -> tuple[RandomCheckpoint, JinaExtras, Any]:
    """(files, extras, PeftModel): the loader's model from a config.json dict, random weights.

    The same code path as a real load (build_config, build_module on the meta device, the
    base weights assigned by name, attach_adapters with one LoRA per task on every decoder
    projection and on the multi_vector_projector); only the tensors come from a generator on
    ``device`` instead of the files, so nothing is initialised twice or on the CPU first.
    ``adapter_config`` holds adapters/adapter_config.json's fields (r, lora_alpha, ...).
    """
    files = RandomCheckpoint(
        folder=Path(f"<random weights, seed {seed}>"),
        config=config,
        shards=[],
        weight_map={},
        adapter_config=adapter_config,
        seed=seed,
    )
    model_config, extras = build_config(files, attn_implementation)
    module = build_module(files, model_config, extras)
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        state = {
            name: _random_tensor(name, tuple(t.shape), dtype, device, gen, std)
            for name, t in module.state_dict().items()
        }
        module.load_state_dict(state, strict=True, assign=True)  # as load_base_weights does
        del state
        module.to(device)
        rank = int(adapter_config.get("r", 8))
        tensors = {
            task: _random_lora(module, task, rank, dtype, device, gen, std)
            for task in extras.task_names
        }
    peft_model = attach_adapters(module, files, extras.task_names, dtype, device, tensors=tensors)
    return files, extras, peft_model


def _random_tensor(
    name: str,
    shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
    gen: torch.Generator,
    std: float,
) -> torch.Tensor:
    if len(shape) == 1 and ("norm" in name or "ln_" in name):
        return torch.ones(shape, dtype=dtype, device=device)
    out = torch.empty(shape, dtype=torch.float32, device=device)
    out.normal_(0.0, std if len(shape) > 1 else std / 10, generator=gen)
    return out.to(dtype)


def _random_lora(
    module: JinaV4Module,
    task: str,
    rank: int,
    dtype: torch.dtype,
    device: torch.device,
    gen: torch.Generator,
    std: float,
) -> dict[str, torch.Tensor]:
    """One task's LoRA under the adapter file's key names, for every layer the file covers."""
    out: dict[str, torch.Tensor] = {}
    for path, sub in module.named_modules():
        m = _LAYER_LINEAR.match(path)
        wanted = (m is not None and m["target"] in LORA_TARGETS) or path == "multi_vector_projector"
        if not wanted or not isinstance(sub, nn.Linear):
            continue
        prefix = f"base_model.model.{path}"
        a = f"{prefix}.lora_A.{task}.weight"
        b = f"{prefix}.lora_B.{task}.weight"
        out[a] = _random_tensor(a, (rank, sub.in_features), dtype, device, gen, std)
        out[b] = _random_tensor(b, (sub.out_features, rank), dtype, device, gen, std)
    return out
