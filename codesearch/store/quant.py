"""How vectors are stored: one signed byte per dimension (int8), each vector scaled on its own.

The scale rule: a vector ``v`` is stored as ``round(v * 127 / max|v_i|)``, so its largest
component is exactly +-127 and every vector uses the whole int8 range. No scale is kept: the
search compares vectors by cosine distance, which does not change when a vector is multiplied
by a positive number, so the stored codes are read back as ``codes / |codes|``.

Measured on minilm-code vectors of the `requests` corpus (108 mined questions; benchmarks/
RESULTS.md, "A lean index"): the stored vector's cosine with the float one is >= 0.99994;
recall@100 of the nearest vectors 0.998 with a float question, 0.997 with an int8 one (which
the vec0 table needs), against 0.985 for a fixed scale of 127 for every unit vector.

Indexes written before this (schema version 4) hold float32 vectors; their meta row
``vector_format`` is ``float32`` until :func:`codesearch.store.db.Store.open` converts them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

INT8 = "int8"
FLOAT32 = "float32"
FORMATS = (INT8, FLOAT32)
_DTYPE = {INT8: np.int8, FLOAT32: np.float32}


def column_type(fmt: str, dim: int) -> str:
    """The vec0 column declaration for vectors of this format and size."""
    return f"embedding {'int8' if fmt == INT8 else 'float'}[{int(dim)}]"


def quantise(vectors: np.ndarray) -> np.ndarray:
    """Rows of ``vectors`` as int8 codes, each row scaled so that its largest |component| is
    127; a zero row stays zero."""
    v = np.asarray(vectors, dtype=np.float32)
    peak = np.abs(v).max(axis=-1, keepdims=True)
    peak[peak == 0] = 1.0
    return np.clip(np.rint(v * (127.0 / peak)), -127, 127).astype(np.int8)


def to_blob(vector: Any, dim: int, fmt: str) -> bytes:
    """One vector as the bytes the vec0 table holds (``fmt``: INT8 or FLOAT32)."""
    array = np.asarray(vector, dtype=np.float32)
    if array.shape != (dim,):
        raise ValueError(f"vector has shape {array.shape}, expected ({dim},)")
    if not np.isfinite(array).all():
        raise ValueError("vector has non-finite values")
    if fmt == INT8:
        return quantise(array).tobytes()
    return array.tobytes()


def from_blob(blob: bytes, fmt: str) -> np.ndarray:
    """A stored vector as float32 (int8 codes as they are: callers normalise)."""
    return np.frombuffer(blob, dtype=_DTYPE[fmt]).astype(np.float32)


def unit(vector: np.ndarray) -> np.ndarray:
    """``vector`` divided by its L2 norm (a zero vector stays zero)."""
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def match_param(fmt: str) -> str:
    """The SQL for a KNN query parameter of this format (vec0 needs the column's type)."""
    return "vec_int8(?)" if fmt == INT8 else "?"
