"""Loading a jina-embeddings-v4 checkpoint without trust_remote_code: the loader's names.

What the folder holds and how the pieces fit is described in ../shared/JINA_V4.md. In short:
a flat Qwen2.5-VL config.json plus Jina extras; base weights in the OLD Qwen2.5-VL key layout
(remapped here to the current one); a top-level ``multi_vector_projector``; one PEFT LoRA file
with the three tasks stored under their task names, attached here as three PEFT adapters over
a module tree (``.model`` + ``.multi_vector_projector``) whose parameter names match the file.

The work is done by one module per step, whose names are re-exported here:

- files.py: where the checkpoint is and which files it holds (``resolve_source``,
  ``inspect_folder``, ``CheckpointFiles``, ``unavailable``);
- config.py: the Qwen2.5-VL config and the Jina extras (``build_config``, ``JinaExtras``);
- weights.py: the module tree and its base weights (``build_module``, ``load_base_weights``,
  ``remap_key``);
- adapters.py: the task LoRA adapters (``attach_adapters``);
- random.py: the same model with random weights, for benchmarks (``build_random``).

Every problem with the folder is a ``ModelUnavailable`` with one line that names the file.
torch, transformers and peft are imported by this module: import it lazily.
"""

from __future__ import annotations

from codesearch.embed.jina.adapters import attach_adapters
from codesearch.embed.jina.config import (
    DEFAULT_TASKS,
    JinaExtras,
    build_config,
    looks_like_real_weights,
)
from codesearch.embed.jina.files import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    CONFIG,
    HUB_ID,
    INDEX,
    SINGLE,
    TOKENIZER,
    TOKENIZER_CONFIG,
    CheckpointFiles,
    inspect_folder,
    read_json,
    resolve_source,
    unavailable,
)
from codesearch.embed.jina.random import LORA_TARGETS, RandomCheckpoint, build_random
from codesearch.embed.jina.weights import (
    JinaV4Module,
    build_module,
    load_base_weights,
    remap_key,
)

__all__ = [
    "ADAPTER_CONFIG",
    "ADAPTER_WEIGHTS",
    "CONFIG",
    "DEFAULT_TASKS",
    "HUB_ID",
    "INDEX",
    "LORA_TARGETS",
    "SINGLE",
    "TOKENIZER",
    "TOKENIZER_CONFIG",
    "CheckpointFiles",
    "JinaExtras",
    "JinaV4Module",
    "RandomCheckpoint",
    "attach_adapters",
    "build_config",
    "build_module",
    "build_random",
    "inspect_folder",
    "load_base_weights",
    "looks_like_real_weights",
    "read_json",
    "remap_key",
    "resolve_source",
    "unavailable",
]
