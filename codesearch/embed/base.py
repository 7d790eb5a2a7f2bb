"""The Embedder protocol and BackendInfo. No heavy imports here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    ``model_id`` is a stable id recorded in the index (e.g. ``"minilm:all-MiniLM-L6-v2"``);
    ``dim`` is the vector size; ``max_tokens`` is what the model reads (longer inputs are
    truncated).
    """

    model_id: str
    dim: int
    max_tokens: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32, rows L2-normalised, input order preserved."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Same as embed_documents, for search questions (a backend may add a prefix)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` without special tokens (fast, no model run)."""
        ...


@dataclass(frozen=True)
class BackendInfo:
    """What `codesearch models` shows about one backend."""

    name: str  # "minilm", "jina-v4", "fake", "hf"
    description: str
    needs: str
    usable: bool
    reason: str  # why not usable, "" if usable


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation as float32; zero rows stay zero (no NaN)."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.size == 0:
        return v
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (v / norms).astype(np.float32, copy=False)
