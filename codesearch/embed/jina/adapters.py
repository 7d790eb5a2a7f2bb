"""The task LoRA adapters of jina-embeddings-v4, attached with PEFT.

The one adapter file stores the three tasks under their task names
(``base_model.model.<module>.lora_A.<task>.weight``); ``attach_adapters`` makes one PEFT
adapter per task over the module tree and loads each, strict about names and shapes.
torch is imported by this module, peft when the adapters are attached.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from codesearch.embed.jina.config import quiet_transformers
from codesearch.embed.jina.files import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    CheckpointFiles,
    few,
    unavailable,
)
from codesearch.embed.jina.weights import JinaV4Module, open_safetensors

_LORA_KEY = re.compile(
    r"^base_model\.model\.(?P<module>.+)\.lora_(?P<ab>[AB])\.(?P<task>[^.]+)\.weight$"
)


def attach_adapters(
    module: JinaV4Module,
    files: CheckpointFiles,
    tasks: tuple[str, ...],
    dtype: torch.dtype,
    device: torch.device,
    tensors: dict[str, dict[str, torch.Tensor]] | None = None,
) -> Any:
    """A PeftModel over ``module`` with one LoRA adapter per task, loaded from the one file.

    ``tensors`` (task -> the file's keys -> tensor) replaces reading the file (build_random).
    """
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    cfg = files.adapter_config
    if str(cfg.get("peft_type", "LORA")).upper() != "LORA":
        raise unavailable(files.folder, ADAPTER_CONFIG, f"is {cfg.get('peft_type')!r}, not LORA")
    if cfg.get("use_dora"):
        raise unavailable(files.folder, ADAPTER_CONFIG, "asks for DoRA, which is not supported")
    per_task = tensors if tensors is not None else _adapter_tensors(files, tasks, dtype, device)
    peft_model = None
    for task in tasks:
        targets = sorted(
            {k.split(".lora_")[0].removeprefix("base_model.model.") for k in per_task[task]}
        )
        try:
            lora = LoraConfig(
                r=int(cfg.get("r", 8)),
                lora_alpha=float(cfg.get("lora_alpha", 8)),
                lora_dropout=float(cfg.get("lora_dropout", 0.0)),
                target_modules=targets,
                rank_pattern=dict(cfg.get("rank_pattern") or {}),
                alpha_pattern=dict(cfg.get("alpha_pattern") or {}),
                use_rslora=bool(cfg.get("use_rslora", False)),
                bias="none",
                inference_mode=True,
            )
            if peft_model is None:
                with quiet_transformers():
                    peft_model = get_peft_model(
                        module,
                        lora,
                        adapter_name=task,
                        autocast_adapter_dtype=False,
                        low_cpu_mem_usage=True,
                    )
            else:
                peft_model.add_adapter(task, lora, low_cpu_mem_usage=True)
        except (ValueError, TypeError, KeyError) as exc:
            raise unavailable(
                files.folder, ADAPTER_WEIGHTS, f"does not fit the model ({task}): {exc}"
            ) from exc
        _load_task(peft_model, files, task, per_task[task], set_peft_model_state_dict)
    assert peft_model is not None
    still_meta = [n for n, p in peft_model.named_parameters() if p.is_meta]
    if still_meta:  # defensive: every adapter weight must have come from the file
        raise unavailable(files.folder, ADAPTER_WEIGHTS, f"did not fill {few(still_meta)}")
    peft_model.eval()
    return peft_model


def _adapter_tensors(
    files: CheckpointFiles, tasks: tuple[str, ...], dtype: torch.dtype, device: torch.device
) -> dict[str, dict[str, torch.Tensor]]:
    """The adapter file's tensors grouped by task; keys keep the file's names."""
    per_task: dict[str, dict[str, torch.Tensor]] = {t: {} for t in tasks}
    foreign: list[str] = []
    with open_safetensors(files, ADAPTER_WEIGHTS, device) as f:
        for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
            m = _LORA_KEY.match(key)
            if m is None or m["task"] not in per_task:
                foreign.append(key)
                continue
            per_task[m["task"]][key] = f.get_tensor(key).to(dtype=dtype)
    if foreign:
        raise unavailable(
            files.folder, ADAPTER_WEIGHTS, f"has keys that are no task's LoRA: {few(foreign)}"
        )
    for task, tensors in per_task.items():
        if not tensors:
            raise unavailable(files.folder, ADAPTER_WEIGHTS, f"has no weights for task {task!r}")
    return per_task


def _load_task(
    peft_model: Any,
    files: CheckpointFiles,
    task: str,
    tensors: dict[str, torch.Tensor],
    set_state: Any,
) -> None:
    """Check names and shapes of one task's LoRA against the model, then load it."""
    marker = f".{task}."
    expected = {
        n: tuple(p.shape) for n, p in peft_model.named_parameters() if ".lora_" in n and marker in n
    }
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise unavailable(files.folder, ADAPTER_WEIGHTS, f"lacks {task} weights: {few(missing)}")
    for key, tensor in tensors.items():
        if key not in expected:
            raise unavailable(files.folder, ADAPTER_WEIGHTS, f"has an unknown key {key}")
        if tuple(tensor.shape) != expected[key]:
            raise unavailable(
                files.folder,
                ADAPTER_WEIGHTS,
                f"has {key} of shape {list(tensor.shape)}, the model needs {list(expected[key])} "
                f"(check r in {ADAPTER_CONFIG})",
            )
    # set_peft_model_state_dict wants PEFT's saved form: the adapter name taken out of the key.
    state = {
        k.replace(f".lora_A{marker}", ".lora_A.").replace(f".lora_B{marker}", ".lora_B."): v
        for k, v in tensors.items()
    }
    result = set_state(peft_model, state, adapter_name=task, low_cpu_mem_usage=True)
    not_loaded = [k for k in result.missing_keys if k in expected]
    if not_loaded or result.unexpected_keys:
        raise unavailable(
            files.folder,
            ADAPTER_WEIGHTS,
            f"did not load cleanly for {task}: missing {few(not_loaded)}, "
            f"unexpected {few(list(result.unexpected_keys))}",
        )
