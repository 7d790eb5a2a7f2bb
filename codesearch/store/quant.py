"""How vectors are stored: one signed byte per dimension (int8), each vector scaled on its own.

The scale rule: a vector ``v`` is stored as ``round(v * 127 / max|v_i|)``, so its largest
component is exactly +-127 and every vector uses the whole int8 range. No scale is kept: the
search compares vectors by cosine distance, which does not change when a vector is multiplied
by a positive number, so the stored codes are read back as ``codes / |codes|``.

Measured on minilm-code vectors of the `requests` corpus (108 mined questions; benchmarks/
RESULTS.md, "A lean index"): the stored vector's cosine with the float one is >= 0.99994;
recall@100 of the nearest vectors 0.998 with a float question, 0.997 with an int8 one (which
the vec0 table needs), against 0.985 for a fixed scale of 127 for every unit vector.

Indexes written before schema 5 held float32 vectors; migration 5 converts them
(:mod:`codesearch.store.migrations`).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def column(dim: int) -> str:
    """The vec0 table's declaration for vectors of ``dim`` dimensions."""
    return f"embedding int8[{int(dim)}] distance_metric=cosine"


def checked(vector: Any, dim: int) -> np.ndarray:
    """``vector`` as float32 of shape (dim,), or ValueError (wrong shape, NaN, infinity)."""
    array = np.asarray(vector, dtype=np.float32)
    if array.shape != (dim,):
        raise ValueError(f"vector has shape {array.shape}, expected ({dim},)")
    if not np.isfinite(array).all():
        raise ValueError("vector has non-finite values")
    return array


def quantise(vectors: np.ndarray) -> np.ndarray:
    """Rows of ``vectors`` as int8 codes, each row scaled so that its largest |component| is
    127; a zero row stays zero."""
    v = np.asarray(vectors, dtype=np.float32)
    peak = np.abs(v).max(axis=-1, keepdims=True)
    peak[peak == 0] = 1.0
    return np.clip(np.rint(v * (127.0 / peak)), -127, 127).astype(np.int8)


def to_blob(vector: Any, dim: int) -> bytes:
    """One vector as the bytes the vec0 table holds (bind them as ``vec_int8(?)``)."""
    return quantise(checked(vector, dim)).tobytes()


def codes(blob: bytes) -> np.ndarray:
    """A stored vector's codes as float32 (not normalised)."""
    return np.frombuffer(blob, dtype=np.int8).astype(np.float32)


def unit(vector: np.ndarray) -> np.ndarray:
    """``vector`` divided by its L2 norm (a zero vector stays zero)."""
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
