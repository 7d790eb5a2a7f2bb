"""FakeEmbedder: a deterministic hashing-trick bag of words, for tests. No torch.

It is no part of the product: tests/conftest.py registers it as the backend ``fake`` through
the public ``register_backend`` (``--model fake``, ``load_embedder("fake")``), in the test
process only; `codesearch models` never lists it.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

from codesearch.embed import Backend, BackendInfo, Embedder, LoadOptions, Target, register_backend
from codesearch.types import BadInput

_WORD = re.compile(r"[A-Za-z0-9]+")
# splits camelCase / PascalCase / acronyms / digits: "parseHTTPResponse2" -> parse HTTP Response 2
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def tokenize(text: str) -> list[str]:
    """Identifier-aware words: split on non-alphanumerics, snake_case and camelCase; lowercase."""
    out: list[str] = []
    for word in _WORD.findall(text):
        parts = _PART.findall(word)
        out.extend(p.lower() for p in (parts or [word]))
    return out


class FakeEmbedder(Embedder):
    """Hashes each word to a signed bucket; texts sharing words get closer vectors.

    Records ``documents_embedded`` (documents only) and ``calls`` (every embed call that had
    texts) so the indexer's tests can assert what was re-embedded.
    """

    max_tokens: int = 100_000

    def __init__(self, dim: int = 64) -> None:
        if dim < 2:
            raise ValueError("dim must be at least 2")
        self.dim = dim
        self.model_id = f"fake:hash-{dim}"
        self.documents_embedded = 0
        self.queries_embedded = 0
        self.calls = 0

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """The hashed vectors of ``texts``, nothing counted (for fakes built on this one)."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32, copy=False)

    def embed_batch(self, texts: Sequence[str], *, query: bool, task: str | None) -> np.ndarray:
        self.calls += 1
        if query:
            self.queries_embedded += len(texts)
        else:
            self.documents_embedded += len(texts)
        return self.vectors(texts)

    def count_tokens(self, text: str) -> int:
        return len(tokenize(text))

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for tok in tokenize(text):
            h = zlib.crc32(tok.encode("utf-8"))
            v[h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
        norm = float(np.linalg.norm(v))
        if norm == 0.0:
            # empty text (or cancelling hashes): a fixed unit vector, never NaN
            v[:] = 0.0
            v[0] = 1.0
            return v
        return v / norm


def _load(target: Target, options: LoadOptions) -> Embedder:
    dim = options.dim
    if dim is not None and dim < 2:
        raise BadInput(f"fake: dim {dim} is not available (valid dims: 2 or more)")
    return FakeEmbedder() if dim is None else FakeEmbedder(dim=dim)


FAKE = Backend(
    probe=lambda name: Target(name) if name == "fake" else None,
    load=_load,
    describe=lambda: BackendInfo(
        name="fake",
        description="deterministic hashing bag of words, for tests only",
        needs="nothing",
        usable=True,
        reason="",
    ),
)


def register() -> None:
    """Make ``fake`` a model name in this process."""
    register_backend("fake", FAKE)
