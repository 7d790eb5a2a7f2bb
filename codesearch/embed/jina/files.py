"""Where a jina-embeddings-v4 checkpoint is, and which files it holds.

``resolve_source`` finds the folder (a local path, or an HF id in the local HF cache);
``inspect_folder`` checks that every file is there and every JSON file parses, before anything
is loaded. Every problem with the folder is a ``ModelUnavailable`` made by ``unavailable``: one
line that names the file. No torch here.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codesearch.embed import hf_cache
from codesearch.types import ModelUnavailable

HUB_ID = "jinaai/jina-embeddings-v4"
CONFIG = "config.json"
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
ADAPTER_CONFIG = "adapters/adapter_config.json"
ADAPTER_WEIGHTS = "adapters/adapter_model.safetensors"
TOKENIZER = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"


def unavailable(folder: Path, name: str, problem: str) -> ModelUnavailable:
    """The one-line error for a bad file of the checkpoint."""
    problem = " ".join(str(problem).split())
    if len(problem) > 400:
        problem = problem[:400] + "..."
    return ModelUnavailable(f"jina-v4 checkpoint {folder}: {name} {problem}")


def few(keys: list[str], n: int = 4) -> str:
    """The first ``n`` keys, for an error message, and how many more there are."""
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


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
    if not hf_cache.is_repo_id(text) or path.exists():
        raise ModelUnavailable(
            f"jina-v4: {text!r} is neither a checkpoint folder nor a Hugging Face model id"
        )
    folder = hf_cache.cached_snapshot(text, cache_dir)
    if folder is not None:
        return folder, text
    if not allow_download or hf_cache.offline():
        raise ModelUnavailable(
            f"jina-v4: {text} is not in the local Hugging Face cache "
            f"({cache_dir or hf_cache.hub_cache()}); download it where the hub is reachable "
            "(huggingface-cli download ...) and pass the folder"
        )
    try:
        return hf_cache.download(text, cache_dir), text
    except Exception as exc:
        raise ModelUnavailable(f"jina-v4: downloading {text} failed: {exc}") from exc


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
