"""The local Hugging Face cache, through huggingface_hub's own functions: where it is, which
snapshot a model id has there, and filling it. Only :func:`download` touches the network.

One rule for every backend: a model id is in the cache when its ``main`` revision's snapshot
holds a config.json (``huggingface_hub.try_to_load_from_cache``). huggingface_hub is imported
when the cache is first asked (it reads the environment at import, so the folder is worked out
here, from the environment as it is now).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_TRUE = ("1", "true", "yes", "on")


def hub_cache() -> Path:
    """The hub cache folder by huggingface_hub's rules (HF_HUB_CACHE, HF_HOME/hub,
    XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub), read from the environment now."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    home = os.environ.get("HF_HOME") or os.path.join(cache, "huggingface")
    return Path(home).expanduser() / "hub"


def is_repo_id(name: str) -> bool:
    """Whether ``name`` has the shape of a Hugging Face model id (``owner/name``)."""
    return bool(_REPO_ID.match(name))


def offline() -> bool:
    """Whether HF_HUB_OFFLINE forbids the network."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def cached_snapshot(repo_id: str, cache_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The snapshot folder of ``repo_id``'s main revision in the cache (``cache_dir``, default
    :func:`hub_cache`) when it holds a config.json; None otherwise. Never the network."""
    cache = Path(cache_dir) if cache_dir else hub_cache()
    if not is_repo_id(repo_id) or not cache.is_dir():  # no cache at all: no import needed
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # comes with transformers; without it nothing can be cached
        return None
    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache)
    return Path(found).parent if isinstance(found, str) else None


def download(repo_id: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Fetch ``repo_id`` into the cache (the network); its snapshot folder. Raises what
    huggingface_hub raises (ImportError when it is not installed)."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, cache_dir=cache_dir or hub_cache()))
