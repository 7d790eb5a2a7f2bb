"""Embedding backends behind one small protocol.

Cheap to import: torch and transformers are imported only when a transformers backend is loaded
(by ``load_embedder``), never here.
"""

from codesearch.embed.base import BackendInfo, Embedder
from codesearch.embed.fake import FakeEmbedder
from codesearch.embed.registry import available_backends, load_embedder, resolve_auto

__all__ = [
    "BackendInfo",
    "Embedder",
    "FakeEmbedder",
    "available_backends",
    "load_embedder",
    "resolve_auto",
]
