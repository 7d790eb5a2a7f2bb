"""Embedding backends behind one base class, found by name in one table.

- base.py: ``Embedder`` (the abstract core ``embed_batch`` + ``count_tokens``, the declared
  capabilities, the methods callers use), ``EmbedderUnavailable``, ``Unsupported``, the tasks
- backend.py: ``Backend`` (probe, load, describe), ``BackendInfo``, ``Target``, ``LoadOptions``
- registry.py: the table, ``auto``, ``load_embedder``, `codesearch models` and status
- hf_cache.py: the one Hugging Face cache lookup; single.py: `codesearch embed`
- minilm/, jina/, remote/: one package per backend. Code outside this folder knows backends
  only through the base class and the registry, never by importing these packages.

Cheap to import: torch and transformers are imported only when a transformers backend is loaded
(by ``load_embedder``), never here.

Adding a backend
----------------
1. Make a package ``codesearch/embed/NAME/`` whose ``__init__`` is cheap (no torch) and exports
   a ``Backend``: ``probe(name) -> Target | None`` (is this name, folder or id yours?),
   ``load(target, options) -> Embedder`` (import the heavy parts here, lazily) and
   ``describe() -> BackendInfo`` (what `codesearch models` shows); set ``images=True`` if it
   embeds pictures, ``auto``, ``download`` or ``status`` if it has them.
2. Its embedder subclasses ``Embedder``: implement ``embed_batch`` and ``count_tokens``, set
   ``model_id`` (what indexes record: keep it stable), ``dim`` and ``max_tokens``, and declare
   what else it can do (``tasks``, ``dims`` + ``with_dim``, ``supports_images`` +
   ``embed_image_batch``, ``multi_vector_dim`` + ``embed_multivector_batch``,
   ``late_chunking_id`` + ``embed_late_batch``, ``preferred_group``, ``dim_conflict``).
3. Add one line to the table in registry.py (``"NAME": NAME.BACKEND``), beside its import.

A test's own backend goes in through ``register_backend(name, backend)`` (tests/conftest.py
registers the fake this way); nothing in the product lists it.
"""

from codesearch.embed.backend import Backend, BackendInfo, LoadOptions, Target
from codesearch.embed.base import Embedder, EmbedderUnavailable, Unsupported
from codesearch.embed.registry import (
    available_backends,
    backend_status,
    explain_auto,
    load_embedder,
    register_backend,
    resolve_auto,
)

__all__ = [
    "Backend",
    "BackendInfo",
    "Embedder",
    "EmbedderUnavailable",
    "LoadOptions",
    "Target",
    "Unsupported",
    "available_backends",
    "backend_status",
    "explain_auto",
    "load_embedder",
    "register_backend",
    "resolve_auto",
]
