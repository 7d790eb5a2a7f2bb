"""Name -> backend: the table of backends, ``auto``, loading, and what `codesearch models` and
`codesearch status` show.

A model name is ``auto``, a backend's name (``minilm-code``, ``minilm``, ``jina-v4``,
``remote`` / ``remote:NAME``), a local model folder, or a Hugging Face model id already in the
local cache. Each backend's ``probe`` says whether a name is its own: the named backends are
asked first, in table order (jina-v4 also takes folders and cached ids whose config.json
carries its extras), then the others (``hf``: any other model folder or cached id). Nothing
here touches the network, except that loading ``remote`` asks its server for the vector size.
torch is imported only when a transformers backend is loaded, or to ask whether there is a
CUDA GPU (``auto``, `codesearch models`), and that only once jina-v4 weights were found.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from codesearch.embed import jina, minilm, remote
from codesearch.embed.backend import Backend, BackendInfo, LoadOptions, Target
from codesearch.embed.base import Embedder
from codesearch.types import BadInput, ModelUnavailable

_BACKENDS: dict[str, Backend] = {
    "minilm-code": minilm.CODE,
    "minilm": minilm.PLAIN,
    "jina-v4": jina.BACKEND,
    "hf": minilm.FOLDER,
    "remote": remote.BACKEND,
}
# What ``auto`` tries, best first: the first that may run here wins (else the last); the
# reason it gives is the first candidate's.
AUTO = ("jina-v4", "minilm-code", "minilm")


def register_backend(name: str, backend: Backend) -> None:
    """Add (or replace) the backend called ``name``: how a test brings its fake."""
    _BACKENDS[name] = backend


def names() -> tuple[str, ...]:
    """The names ``--model`` takes besides folders and Hugging Face ids."""
    return ("auto", *(name for name, backend in _BACKENDS.items() if backend.named))


def available_backends() -> list[BackendInfo]:
    """Every backend with whether it can be loaded here. Loads no model; imports torch only to
    look for a CUDA GPU once jina-v4 weights were found. ``reason`` of a usable backend is a
    caveat (jina-v4 without a GPU)."""
    return [backend.describe() for backend in _BACKENDS.values()]


def explain_auto() -> tuple[str, str]:
    """(the backend ``auto`` stands for on this machine, why): jina-v4 with a CUDA GPU and its
    weights, else the CPU default (minilm-code; plain minilm when its adapter is unusable)."""
    why = ""
    for name in AUTO:
        choice = _BACKENDS[name].auto
        verdict = choice() if choice is not None else None
        why = why or (verdict.reason if verdict is not None else "")
        if verdict is not None and verdict.ok:
            return name, why
    return AUTO[-1], why


def resolve_auto() -> str:
    """The backend name that ``auto`` stands for on this machine."""
    return explain_auto()[0]


def resolve(name: str) -> tuple[Backend, Target]:
    """Which backend ``name`` means, and where its files are; loads nothing."""
    name = (name or "auto").strip()
    if name == "auto":
        name = resolve_auto()
    ordered = sorted(_BACKENDS.values(), key=lambda backend: not backend.named)
    for backend in ordered:
        target = backend.probe(name)
        if target is not None:
            return backend, target
    raise ModelUnavailable(
        f"unknown model {name!r}: use one of {', '.join(names())}, a local model folder, "
        "or a Hugging Face model id already in the local cache"
    )


def load(backend: Backend, target: Target, options: LoadOptions) -> Embedder:
    """The embedder of a resolved name; a size it does not offer is a BadInput."""
    embedder = backend.load(target, options)
    if options.dim is not None and options.dim not in embedder.dims:
        valid = ", ".join(str(d) for d in embedder.dims)
        raise BadInput(f"{target.label}: dim {options.dim} is not available (valid dims: {valid})")
    return embedder


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
    or else its default; the other backends have one size. A size the model does not offer is
    a BadInput that lists the valid ones. ``home``: the data folder, where the one-time license
    notice is remembered (default: the configured one).
    """
    backend, target = resolve(name)
    options = LoadOptions(batch_size=batch_size, device=device, dim=dim, home=home)
    return load(backend, target, options)


def picture_models() -> tuple[str, ...]:
    """The backends that can embed pictures."""
    return tuple(name for name, backend in _BACKENDS.items() if backend.images)


def download(name: str, notice: Callable[[str], None]) -> Path:
    """Fetch backend ``name``'s weights (the network, on request only); their folder."""
    backend = _BACKENDS.get(name)
    if backend is None or backend.download is None:
        raise BadInput(f"{name}: nothing to download (`codesearch models` lists the backends)")
    return backend.download(notice)


def backend_status() -> list[dict[str, Any]]:
    """What the backends in use report about themselves for `codesearch status` (each remote
    server's state); [] when none has anything to say."""
    return [item for b in _BACKENDS.values() if b.status is not None for item in b.status()]
