"""The registry entry of jina-embeddings-v4: where its weights are (a folder in
$CODESEARCH_JINA_V4, or the hub id in the local Hugging Face cache), what `codesearch models`
says about it, when ``auto`` picks it, loading and the one download. No torch here, except to
ask whether there is a CUDA GPU, and that only once weights were found."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

from codesearch.embed import hf_cache
from codesearch.embed.backend import (
    AutoChoice,
    Backend,
    BackendInfo,
    LoadOptions,
    Target,
    json_object,
    missing_modules,
    one_line_errors,
)
from codesearch.embed.base import Embedder
from codesearch.embed.jina.files import HUB_ID
from codesearch.types import BadInput, ModelUnavailable

JINA_ENV = "CODESEARCH_JINA_V4"  # a jina-embeddings-v4 checkpoint folder
JINA_HUB_ID = HUB_ID
# jina-v4's default Matryoshka dim. PROVISIONAL, not measured yet: it has still to be run through
# ../shared/eval on a GPU against 512 and 2048. Why 1024 for now: half the storage (and KNN work)
# of the full 2048, and Matryoshka training is meant to keep most of the quality at that size;
# both are expectations, unmeasured here. A checkpoint without a 1024 option gets its own default.
JINA_DEFAULT_DIM = 1024
JINA_CPU_NOTE = "no CUDA GPU: works on CPU but very slow (~0.3 chunks/s); auto picks minilm-code"
_JINA_KEYS = ("task_names", "multi_vector_projector_dim")  # what marks a jina-v4 config.json
_JINA_DEPS = ("torch", "transformers", "tokenizers", "peft", "accelerate", "safetensors")


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU. Imports torch: ask only when the answer matters."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def is_jina_folder(folder: Path) -> bool:
    """True if ``folder``'s config.json carries the jina-embeddings-v4 extras."""
    config = json_object(folder / "config.json")
    return all(key in config for key in _JINA_KEYS)


def find_jina_v4() -> tuple[Path | None, str, str]:
    """Where the name jina-v4 loads from: (config folder or None, source, what was searched).

    ``source`` is what load_jina_v4 gets: the folder in $CODESEARCH_JINA_V4 when it is set,
    else the hub id (from the local Hugging Face cache only).
    """
    env = os.environ.get(JINA_ENV, "").strip()
    if env:
        folder = Path(env).expanduser()
        if not folder.is_dir():
            return None, env, f"{JINA_ENV}={env} is not a folder"
        if not is_jina_folder(folder):
            keys = " and ".join(_JINA_KEYS)
            why = f"{JINA_ENV}={env} has no jina-embeddings-v4 config.json (with {keys})"
            return None, env, why
        return folder, env, f"{JINA_ENV}={env}"
    cache = hf_cache.hub_cache()
    snapshot = hf_cache.cached_snapshot(JINA_HUB_ID)
    if snapshot is None:
        return (
            None,
            JINA_HUB_ID,
            f"{JINA_ENV} is not set and {JINA_HUB_ID} is not in the Hugging Face cache ({cache})",
        )
    return snapshot, JINA_HUB_ID, f"{JINA_HUB_ID} in the Hugging Face cache ({cache})"


def describe() -> BackendInfo:
    """Usable when its weights are found; without a CUDA GPU the reason says it is slow."""
    reason = missing_modules(*_JINA_DEPS)
    note = ""
    if not reason:
        folder, _source, where = find_jina_v4()
        if folder is None:
            reason = f"weights not found: {where}"
        elif not cuda_available():
            note = JINA_CPU_NOTE
    return BackendInfo(
        name="jina-v4",
        description=(
            f"jina-embeddings-v4 (3.75B) on a CUDA GPU: code/retrieval/text-matching LoRA, "
            f"Matryoshka dims 128-2048 (default {JINA_DEFAULT_DIM}); weights CC-BY-NC-4.0"
        ),
        needs=(
            f"its weights (a checkpoint folder in ${JINA_ENV}, or {JINA_HUB_ID} in the "
            "Hugging Face cache) and, for usable speed, a CUDA GPU"
        ),
        usable=not reason,
        reason=reason or note,
    )


def auto() -> AutoChoice:
    """``auto`` picks jina-v4 with its weights and a CUDA GPU."""
    missing = missing_modules(*_JINA_DEPS)
    if missing:
        return AutoChoice(False, f"jina-v4 needs {missing.replace('not installed: ', '')}")
    folder, _source, _where = find_jina_v4()
    if folder is None:
        return AutoChoice(False, "no jina-v4 weights found")
    if not cuda_available():
        return AutoChoice(False, "jina-v4 weights found, but no CUDA GPU")
    return AutoChoice(True, "a CUDA GPU and the jina-v4 weights were found")


def probe(name: str) -> Target | None:
    """The name jina-v4 (its weights must be found), or a folder / cached Hugging Face id
    whose config.json carries the jina-v4 extras."""
    if name == "jina-v4":
        folder, source, where = find_jina_v4()
        if folder is None:
            raise ModelUnavailable(
                f"jina-v4 weights not found: {where}; set {JINA_ENV} to a jina-embeddings-v4 "
                "checkpoint folder, or use --model minilm"
            )
        return Target(name, folder, source)
    path = Path(name).expanduser()
    if path.is_dir():
        return Target(name, path, str(path)) if is_jina_folder(path) else None
    snapshot = None if path.exists() else hf_cache.cached_snapshot(name)
    if snapshot is not None and is_jina_folder(snapshot):
        return Target(name, snapshot, name, name)
    return None


def load(target: Target, options: LoadOptions) -> Embedder:
    """load_jina_v4 with the size from ``options.dim``, else the ``embed_dim`` setting, else
    JINA_DEFAULT_DIM where the checkpoint offers it; notices on stderr, the license marker in
    the data folder."""
    from codesearch.config import default_home, load_settings

    missing = missing_modules(*_JINA_DEPS)
    if missing:
        raise ModelUnavailable(f"cannot load jina-v4 from {target.label}: {missing}")
    dim = options.dim
    from_setting = dim is None
    if dim is None:
        dim = load_settings(options.home).embed_dim
    if dim is None:
        from_setting = False
        config = json_object(target.folder / "config.json") if target.folder else {}
        offered = config.get("matryoshka_dims")
        if isinstance(offered, list) and JINA_DEFAULT_DIM in offered:
            dim = JINA_DEFAULT_DIM  # else the checkpoint's own default (truncate_dim or full)
    from codesearch.embed.jina.build import load_jina_v4

    try:
        with one_line_errors(f"cannot load jina-v4 from {target.label}"):
            return load_jina_v4(
                target.source,
                device=options.device,
                dim=dim,
                task=options.task or "code",
                cache_dir=None if Path(target.source).is_dir() else hf_cache.hub_cache(),
                notice=_notice,
                license_marker_dir=options.home or default_home(),
            )
    except BadInput as exc:
        if from_setting and f"dim {dim} " in str(exc):
            raise BadInput(f"{exc} (set by embed_dim / CODESEARCH_EMBED_DIM)") from exc
        raise


def download(notice: Callable[[str], None]) -> Path:
    """Fetch jinaai/jina-embeddings-v4 into the Hugging Face cache (the only network use, and
    only on request: `codesearch models --download jina-v4`); the snapshot folder."""
    if hf_cache.offline():
        raise ModelUnavailable(
            f"cannot download {JINA_HUB_ID}: HF_HUB_OFFLINE is set; unset it, or download the "
            f"folder elsewhere and point {JINA_ENV} at it"
        )
    notice(
        f"downloading {JINA_HUB_ID} (about 7.5 GB) into {hf_cache.hub_cache()}; its weights are "
        "licensed CC-BY-NC-4.0: non-commercial use only"
    )
    try:
        folder = hf_cache.download(JINA_HUB_ID)
    except ImportError:
        raise ModelUnavailable("cannot download: huggingface_hub is not installed") from None
    except Exception as exc:  # no network, no space, an interrupted transfer
        reason = " ".join(str(exc).split())[:200]
        raise ModelUnavailable(
            f"cannot download {JINA_HUB_ID} ({type(exc).__name__}: {reason}); download the "
            f"folder where the hub is reachable and point {JINA_ENV} at it"
        ) from exc
    if not is_jina_folder(folder):
        raise ModelUnavailable(f"{folder} does not hold a jina-embeddings-v4 checkpoint")
    return folder


def _notice(message: str) -> None:
    print(f"codesearch: {message}", file=sys.stderr, flush=True)


BACKEND = Backend(
    probe=probe, load=load, describe=describe, images=True, auto=auto, download=download
)
