"""The registry entry of the remote backend (``remote`` / ``remote:NAME``): settings -> a
RemoteEmbedder, what `codesearch models` shows about it (no network), and the state of the
servers in use for `codesearch status`. See embedder.py for the backend itself."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from codesearch.embed.backend import Backend, BackendInfo, LoadOptions, Target
from codesearch.embed.base import Embedder
from codesearch.embed.remote.embedder import RemoteEmbedder
from codesearch.embed.remote.policy import breaker_snapshots
from codesearch.embed.remote.transport import Endpoint, Transport, display_url
from codesearch.types import BadInput, ModelUnavailable


def load_remote(
    name: str, *, batch_size: int = 32, dim: int | None = None, home: Path | None = None
) -> RemoteEmbedder:
    """The embedder for ``remote`` / ``remote:NAME``, configured from the settings.

    ``dim`` given (the size an index was built with): no request now, and every answer is
    checked against it. Else the ``embed_dim`` setting, sent as ``dimensions``; else the
    server's own size, asked with one probe request now."""
    from codesearch.config import load_settings

    settings = load_settings(home)
    url = settings.remote_url.strip()
    if not url:
        raise ModelUnavailable(
            "model remote needs the server's URL: set remote_url in config.toml or "
            "CODESEARCH_REMOTE_URL (e.g. http://gpu-box:8000/v1)"
        )
    model = name.partition(":")[2].strip() or settings.remote_model.strip()
    key = os.environ.get(settings.remote_api_key_env, "").strip()
    try:
        endpoint = Endpoint.parse(url, key)
    except ValueError as exc:
        raise BadInput(f"remote_url: {exc}") from None
    if not model:
        raise ModelUnavailable(
            f"model remote needs the served model's name: set remote_model (or "
            f"CODESEARCH_REMOTE_MODEL), or use --model remote:NAME{_served_hint(endpoint)}"
        )
    if dim is not None:
        source = "index"
    elif settings.embed_dim is not None:
        dim, source = settings.embed_dim, "setting"
    else:
        source = "server"
    return RemoteEmbedder(
        endpoint,
        model,
        dim=dim if source == "index" else None,
        ask_dim=dim,
        dim_source=source,
        prefixes=settings.remote_prefixes.strip().lower(),
        concurrency=settings.remote_concurrency,
        batch_size=settings.remote_batch_size or batch_size,
        max_tokens=settings.remote_max_tokens,
        timeout=settings.remote_timeout,
        retries=settings.remote_retries,
        backoff=settings.remote_backoff,
        api_key_env=settings.remote_api_key_env,
    )


def _served_hint(endpoint: Endpoint) -> str:
    try:
        answer = Transport(endpoint, 3.0).request("GET", "/models")
        names = [str(m["id"]) for m in answer["data"]]
    except Exception:  # only a hint: any failure means no hint
        return ""
    return f" (the server serves: {', '.join(names[:10])})" if names else ""


def remote_info(home: Path | None = None) -> BackendInfo:
    """What `codesearch models` shows; no network."""
    from codesearch.config import load_settings

    try:
        settings = load_settings(home)
        url, model = settings.remote_url.strip(), settings.remote_model.strip()
    except Exception:
        url, model = "", ""
    where = f"{display_url(url)}, model {model or '(set remote_model)'}" if url else ""
    return BackendInfo(
        name="remote",
        description="an OpenAI-compatible embedding server (vLLM, TEI, infinity)"
        + (f": {where}" if where else ""),
        needs="remote_url and remote_model (or CODESEARCH_REMOTE_URL / _MODEL); the key, if "
        "any, in $CODESEARCH_REMOTE_API_KEY",
        usable=bool(url),
        reason="" if url else "remote_url is not set",
    )


def probe(name: str) -> Target | None:
    return Target(name) if name == "remote" or name.startswith("remote:") else None


def load(target: Target, options: LoadOptions) -> Embedder:
    return load_remote(
        target.label, batch_size=options.batch_size, dim=options.dim, home=options.home
    )


def status() -> list[dict[str, Any]]:
    """Every remote server this process talks to, with its breaker's state."""
    return breaker_snapshots()


BACKEND = Backend(probe=probe, load=load, describe=remote_info, status=status)
