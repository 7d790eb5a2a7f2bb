"""A batch of tokenised texts as the arrays a BERT-like encoder takes: token ids padded to
one width, the attention mask, the token types. numpy only (both runtimes use it; the
OpenVINO one never imports torch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Padded:
    ids: np.ndarray  # (texts, width) int64, pad_id after each text's tokens
    mask: np.ndarray  # 1 on a text's tokens, 0 on padding
    types: np.ndarray  # the tokenizer's token types (0 on padding)


def pad(encodings: Sequence[Any], pad_id: int, width: int | None = None) -> Padded:
    """``encodings`` (tokenizers' Encoding: ``ids``, ``type_ids``) padded to ``width``
    (default: the longest)."""
    if width is None:
        width = max(len(e.ids) for e in encodings)
    ids = np.full((len(encodings), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    types = np.zeros((len(encodings), width), dtype=np.int64)
    for row, enc in enumerate(encodings):
        k = len(enc.ids)
        ids[row, :k] = enc.ids
        mask[row, :k] = 1
        types[row, :k] = enc.type_ids
    return Padded(ids, mask, types)
