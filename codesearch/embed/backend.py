"""A backend as the registry knows it (:class:`Backend`: probe, load, describe) and the small
helpers that backends share. No heavy imports here: a backend's ``probe`` and ``describe``
run for every `codesearch models` and every ``auto``, its ``load`` imports what it needs."""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesearch.embed.base import Embedder
from codesearch.types import CodesearchError, ModelUnavailable


@dataclass(frozen=True)
class BackendInfo:
    """What `codesearch models` shows about one backend."""

    name: str  # "minilm", "jina-v4", "hf", "remote"
    description: str
    needs: str
    usable: bool
    reason: str  # why not usable, "" if usable (for a usable backend: a caveat, or "")


@dataclass(frozen=True)
class Target:
    """What a model name stands for, found by a backend's ``probe``; nothing is loaded yet."""

    label: str  # the name as the user gave it (``auto`` resolved)
    folder: Path | None = None  # the model folder (with its config.json), where there is one
    source: str = ""  # what the loader gets: the folder, or a Hugging Face id in the cache
    hf_id: str | None = None  # the Hugging Face id the folder came from


@dataclass(frozen=True)
class LoadOptions:
    """How to load: ``dim`` None is the backend's default size; ``task`` None its default."""

    batch_size: int = 32
    device: str | None = None
    dim: int | None = None
    home: Path | None = None  # the data folder (settings, the one-time notices)
    task: str | None = None


@dataclass(frozen=True)
class AutoChoice:
    """Whether ``auto`` may pick a backend on this machine, and why (not)."""

    ok: bool
    reason: str


@dataclass(frozen=True)
class Backend:
    """One registry entry.

    ``probe(name)``: the Target when ``name`` is this backend's (its name, or a folder / cached
    Hugging Face id it recognises), None when it is not; ModelUnavailable when it is but
    cannot be used (weights missing). ``load(target, options)``: the embedder (ModelUnavailable,
    or BadInput for a size it does not offer). ``describe()``: what `codesearch models` shows.
    """

    probe: Callable[[str], Target | None]
    load: Callable[[Target, LoadOptions], Embedder]
    describe: Callable[[], BackendInfo]
    named: bool = True  # its registry name is a --model name (False: it takes folders, ids)
    images: bool = False  # it can embed pictures
    auto: Callable[[], AutoChoice] | None = None  # a candidate of ``auto`` (see registry.AUTO)
    download: Callable[[Callable[[str], None]], Path] | None = None  # fetch its weights
    status: Callable[[], list[dict[str, Any]]] | None = None  # for `codesearch status`


def by_name(name: str) -> Callable[[str], Target | None]:
    """The probe of a backend that answers to its name only."""

    def probe(given: str) -> Target | None:
        return Target(given) if given == name else None

    return probe


def missing_modules(*modules: str) -> str:
    """Why these modules cannot be imported ("" if they can), without importing them."""
    missing = [m for m in modules if not importlib.util.find_spec(m)]
    return f"not installed: {', '.join(missing)}" if missing else ""


def cpu_count() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextmanager
def one_line_errors(what: str) -> Iterator[None]:
    """A broken model folder gives one clear ModelUnavailable line (``what: Type: message``),
    not a traceback; codesearch's own errors pass as they are."""
    try:
        yield
    except CodesearchError:
        raise
    except Exception as exc:
        msg = " ".join(str(exc).split())[:300]
        raise ModelUnavailable(f"{what}: {type(exc).__name__}: {msg}") from exc
