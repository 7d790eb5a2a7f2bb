"""Loading a jina-embeddings-v4 checkpoint without trust_remote_code.

What the folder holds and how the pieces fit is described in ../shared/JINA_V4.md. In short:
a flat Qwen2.5-VL config.json plus Jina extras; base weights in the OLD Qwen2.5-VL key layout
(remapped here to the current one); a top-level ``multi_vector_projector``; one PEFT LoRA file
with the three tasks stored under their task names, attached here as three PEFT adapters over
a module tree (``.model`` + ``.multi_vector_projector``) whose parameter names match the file.

Every problem with the folder is a ``ModelUnavailable`` with one line that names the file.
torch, transformers and peft are imported by this module: import it lazily.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codesearch.types import ModelUnavailable

log = logging.getLogger(__name__)

HUB_ID = "jinaai/jina-embeddings-v4"
CONFIG = "config.json"
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
ADAPTER_CONFIG = "adapters/adapter_config.json"
ADAPTER_WEIGHTS = "adapters/adapter_model.safetensors"
TOKENIZER = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"

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
_HF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_OLD_LM_KEY = re.compile(r"^model\.(?!language_model\.|visual\.)")
_LORA_KEY = re.compile(
    r"^base_model\.model\.(?P<module>.+)\.lora_(?P<ab>[AB])\.(?P<task>[^.]+)\.weight$"
)
# Weights that may sit in a checkpoint but that an embedding model does not use.
_IGNORED_KEYS = {"lm_head.weight"}


def unavailable(folder: Path, name: str, problem: str) -> ModelUnavailable:
    """The one-line error for a bad file of the checkpoint."""
    problem = " ".join(str(problem).split())
    if len(problem) > 400:
        problem = problem[:400] + "..."
    return ModelUnavailable(f"jina-v4 checkpoint {folder}: {name} {problem}")


# -- where the checkpoint is ------------------------------------------------------------------


def resolve_source(
    source: str | os.PathLike[str],
    *,
    allow_download: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[Path, str]:
    """(folder, display name) of a local folder or an HF id from the local HF cache.

    The network is used only when ``allow_download`` is true and HF_HUB_OFFLINE is not set.
    """
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return path.resolve(), path.resolve().name
    if not _HF_ID.match(text) or path.exists():
        raise ModelUnavailable(
            f"jina-v4: {text!r} is neither a checkpoint folder nor a Hugging Face model id"
        )
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - huggingface_hub comes with transformers
        raise ModelUnavailable("jina-v4: huggingface_hub is not installed") from exc
    cache = _hub_cache(cache_dir)
    try:
        return Path(snapshot_download(text, cache_dir=cache, local_files_only=True)), text
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
        if not allow_download or offline:
            raise ModelUnavailable(
                f"jina-v4: {text} is not in the local Hugging Face cache"
                f"{f' ({cache})' if cache else ''}; download it where the hub is reachable "
                "(huggingface-cli download ...) and pass the folder"
            ) from exc
    try:
        return Path(snapshot_download(text, cache_dir=cache)), text
    except Exception as exc:
        raise ModelUnavailable(f"jina-v4: downloading {text} failed: {exc}") from exc


def _hub_cache(cache_dir: str | os.PathLike[str] | None) -> str | None:
    """The HF hub cache, read from the environment now (huggingface_hub reads it at import)."""
    if cache_dir is not None:
        return os.fspath(cache_dir)
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None


# -- the files ------------------------------------------------------------------------------


@dataclass
class CheckpointFiles:
    """The files of one checkpoint folder, checked to exist and (for JSON) to parse."""

    folder: Path
    config: dict[str, Any]
    shards: list[str]  # relative names
    weight_map: dict[str, str]  # key -> shard, from the index (empty for a single file)
    adapter_config: dict[str, Any]
    tokenizer_config: dict[str, Any] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.folder / name

    def identity(self) -> str:
        """A short hash of the config files and the weight files' sizes."""
        h = hashlib.sha256()
        for name in (CONFIG, ADAPTER_CONFIG):
            h.update(self.path(name).read_bytes())
        for name in (*self.shards, ADAPTER_WEIGHTS):
            h.update(f"{name}:{self.path(name).stat().st_size}".encode())
        return h.hexdigest()[:10]


def read_json(folder: Path, name: str, *, required: bool = True) -> dict[str, Any]:
    path = folder / name
    if not path.is_file():
        if required:
            raise unavailable(folder, name, "is missing")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise unavailable(folder, name, f"is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise unavailable(folder, name, "is not a JSON object")
    return data


def inspect_folder(folder: Path) -> CheckpointFiles:
    """Check that every file is there (and every JSON file parses), before loading anything."""
    config = read_json(folder, CONFIG)
    weight_map: dict[str, str] = {}
    if (folder / INDEX).is_file() or not (folder / SINGLE).is_file():
        index = read_json(folder, INDEX)
        raw_map = index.get("weight_map")
        if not isinstance(raw_map, dict) or not raw_map:
            raise unavailable(folder, INDEX, "has no weight_map")
        weight_map = {str(k): str(v) for k, v in raw_map.items()}
        shards = sorted(set(weight_map.values()))
    else:
        shards = [SINGLE]
    for shard in shards:
        if not (folder / shard).is_file():
            raise unavailable(folder, shard, "is missing (listed in model.safetensors.index.json)")
    adapter_config = read_json(folder, ADAPTER_CONFIG)
    if not (folder / ADAPTER_WEIGHTS).is_file():
        raise unavailable(folder, ADAPTER_WEIGHTS, "is missing")
    if not (folder / TOKENIZER).is_file():
        raise unavailable(folder, TOKENIZER, "is missing")
    tokenizer_config = read_json(folder, TOKENIZER_CONFIG, required=False)
    return CheckpointFiles(folder, config, shards, weight_map, adapter_config, tokenizer_config)


# -- the config -----------------------------------------------------------------------------


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
        with _quiet_transformers():
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


# -- the module tree and its weights ----------------------------------------------------------


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


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def build_module(files: CheckpointFiles, config: Any, extras: JinaExtras) -> JinaV4Module:
    """The module tree with its parameters on the meta device (no memory, no random init)."""
    from accelerate import init_empty_weights

    try:
        with _quiet_transformers(), init_empty_weights(include_buffers=False):
            return JinaV4Module(config, extras.multi_vector_dim)
    except Exception as exc:
        raise unavailable(files.folder, CONFIG, f"does not build a model: {exc}") from exc


def _open(files: CheckpointFiles, name: str, device: torch.device) -> Any:
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
        raise unavailable(files.folder, where, f"lacks {len(missing)} weights: {_few(missing)}")
    module.to(device)  # the buffers (rotary frequencies) were built on the CPU


def _few(keys: list[str], n: int = 4) -> str:
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def _read_shard(
    files: CheckpointFiles,
    shard: str,
    expected: dict[str, tuple[int, ...]],
    dtype: torch.dtype,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """One shard's tensors under this module tree's names, checked against ``expected``."""
    with _open(files, shard, device) as f:
        keys = list(f.keys())
        listed = {k for k, s in files.weight_map.items() if s == shard}
        lacking = sorted(listed - set(keys))
        if lacking:
            raise unavailable(
                files.folder, shard, f"lacks {len(lacking)} keys its index lists: {_few(lacking)}"
            )
        unexpected = [k for k in keys if k not in _IGNORED_KEYS and remap_key(k) not in expected]
        if unexpected:
            raise unavailable(
                files.folder, shard, f"has keys the model does not know: {_few(unexpected)}"
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
                with _quiet_transformers():
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
        raise unavailable(files.folder, ADAPTER_WEIGHTS, f"did not fill {_few(still_meta)}")
    peft_model.eval()
    return peft_model


def _adapter_tensors(
    files: CheckpointFiles, tasks: tuple[str, ...], dtype: torch.dtype, device: torch.device
) -> dict[str, dict[str, torch.Tensor]]:
    """The adapter file's tensors grouped by task; keys keep the file's names."""
    per_task: dict[str, dict[str, torch.Tensor]] = {t: {} for t in tasks}
    foreign: list[str] = []
    with _open(files, ADAPTER_WEIGHTS, device) as f:
        for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
            m = _LORA_KEY.match(key)
            if m is None or m["task"] not in per_task:
                foreign.append(key)
                continue
            per_task[m["task"]][key] = f.get_tensor(key).to(dtype=dtype)
    if foreign:
        raise unavailable(
            files.folder, ADAPTER_WEIGHTS, f"has keys that are no task's LoRA: {_few(foreign)}"
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
        raise unavailable(files.folder, ADAPTER_WEIGHTS, f"lacks {task} weights: {_few(missing)}")
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
            f"did not load cleanly for {task}: missing {_few(not_loaded)}, "
            f"unexpected {_few(list(result.unexpected_keys))}",
        )


# -- random weights (benchmarks) --------------------------------------------------------------

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
