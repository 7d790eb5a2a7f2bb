"""Late chunking for jina-embeddings-v4: encode a whole file once, pool each chunk from it.

A chunk embedded alone loses its file's context. Late chunking encodes the file's text (with
the document prefix, "Passage: ") in one forward pass and gives each chunk the mean of the last
hidden states of its own tokens, L2-normalised and Matryoshka-truncated like every other
vector, so the file's context is inside each chunk's vector.

Spans are character offsets into the file's text; the tokenizer's offset mapping turns each
into the tokens whose characters overlap it (a token that straddles two spans, such as a newline
plus the next line's indentation, counts in both). A span that covers no token (only possible
for an empty one) is pooled from the nearest token.

Long files: a file of up to ``window`` tokens is encoded whole. A longer one is cut into windows
of ``window`` tokens that overlap by ``overlap`` (the last one ends at the file's end), each
encoded behind the same prefix tokens. jina-v4 is a causal decoder (Qwen2.5): a token's hidden
state sees only the tokens before it, so a chunk's context is what precedes it in its window,
and what follows changes nothing. Each chunk is therefore pooled from the window that holds all
of it (else: most of it) with the most tokens before it, which is the earliest such window.
A chunk no longer than ``overlap`` always fits whole in some window, with at least
``overlap - len(chunk)`` tokens before it (or the whole file start).

The plan (:func:`plan_late`) is pure Python; :func:`encode_late` runs it through the embedder's
model (what it uses of the embedder is :class:`LateModel`, a small public part of it), batching
the windows of many files by the embedder's budget of padded tokens, with the same
out-of-memory back-off as its text batches. torch is imported by this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from tokenizers import Tokenizer

from codesearch.embed.base import LateFile
from codesearch.types import BadInput, CodesearchError

# Files up to this many tokens are encoded whole; longer ones in windows of this size.
DEFAULT_LATE_WINDOW = 8192
# Tokens shared by neighbouring windows: every chunk up to this long fits whole in one of them.
DEFAULT_LATE_OVERLAP = 2048

Span = tuple[int, int]


class LateModel(Protocol):
    """What late chunking uses of the jina-v4 embedder (its public part)."""

    tokenizer: Tokenizer
    full_dim: int
    batch_tokens: int
    late_window_tokens: int
    late_overlap_tokens: int
    device: torch.device

    def prefix(self, task: str, query: bool) -> str: ...

    def session(self, task: str) -> AbstractContextManager[None]: ...

    def forward(self, rows: list[list[int]], width: int) -> tuple[torch.Tensor, torch.Tensor]: ...

    def lower_token_budget(self, rows: int, width: int) -> None: ...

    def matryoshka(self, pooled: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class LatePlan:
    """How one file is encoded and pooled. Token positions count the file's tokens (``body``),
    without the prefix tokens (``head``) that every window starts with."""

    head: tuple[int, ...]  # the prefix's tokens
    body: tuple[int, ...]  # the file's tokens
    spans: tuple[Span, ...]  # per character span: its tokens [first, end)
    windows: tuple[Span, ...]  # tokens [start, end) encoded together, behind ``head``
    owner: tuple[int, ...]  # per span: the window it is pooled from

    def row(self, w: int) -> list[int]:
        """The token ids of window ``w``: the prefix, then the window's tokens."""
        start, end = self.windows[w]
        return [*self.head, *self.body[start:end]]

    def pooled(self, i: int) -> Span:
        """Span ``i``'s positions [first, end) in its window's row (prefix included), clipped
        to the window."""
        start, end = self.windows[self.owner[i]]
        first, last = self.spans[i]
        first, last = max(first, start), min(last, end)
        if last <= first:  # not in the window at all (cannot happen for a chosen window)
            first, last = start, start + 1
        return len(self.head) + first - start, len(self.head) + last - start


def plan_windows(n_tokens: int, window: int, overlap: int) -> list[Span]:
    """Token windows [start, end) over ``n_tokens``: one if it fits in ``window``, else windows
    of ``window`` tokens every ``window - overlap`` tokens, the last one ending at the end."""
    window = max(1, int(window))
    overlap = min(max(0, int(overlap)), window - 1)
    if n_tokens <= window:
        return [(0, n_tokens)]
    stride = window - overlap
    starts = [*range(0, n_tokens - window, stride), n_tokens - window]
    return [(s, s + window) for s in starts]


def choose_window(span: Span, windows: Sequence[Span]) -> int:
    """The window to pool ``span`` from: the one holding most of it, then (causal attention)
    the one with the most tokens before it, i.e. the earliest."""
    first, end = span
    best, best_key = 0, (-1, 0)
    for w, (start, stop) in enumerate(windows):
        inside = max(0, min(stop, end) - max(start, first))
        key = (inside, -start)
        if key > best_key:
            best, best_key = w, key
    return best


def token_spans(offsets: Sequence[tuple[int, int]], spans: Sequence[Span]) -> list[Span]:
    """Per character span [begin, end): the tokens [first, end) whose characters overlap it,
    from a tokenizer's (character) offset mapping; an empty result becomes the nearest token."""
    n = len(offsets)
    starts = np.array([a for a, _ in offsets], dtype=np.int64)
    ends = np.maximum.accumulate(np.array([b for _, b in offsets], dtype=np.int64)) if n else starts
    out: list[Span] = []
    for begin, end in spans:
        first = int(np.searchsorted(ends, begin, side="right"))  # first token ending after begin
        last = int(np.searchsorted(starts, end, side="left"))  # first token starting at/after end
        if last <= first and n:
            first = min(first, n - 1)
            last = first + 1
        out.append((first, last))
    return out


def plan_late(
    tokenizer: Tokenizer,
    prefix: str,
    text: str,
    spans: Sequence[Span],
    *,
    window: int = DEFAULT_LATE_WINDOW,
    overlap: int = DEFAULT_LATE_OVERLAP,
) -> LatePlan:
    """Tokenise ``prefix + text`` once and plan the windows and the pooling of ``spans``
    (character offsets into ``text``). The prefix's tokens are those that end inside it (a
    token that straddles the prefix and the text belongs to the text)."""
    size = len(text)
    for begin, end in spans:
        if not 0 <= begin <= end <= size:
            raise BadInput(f"late chunking: span ({begin}, {end}) is outside a text of {size}")
    encoding = tokenizer.encode(prefix + text, add_special_tokens=False)
    ids, offsets = encoding.ids, encoding.offsets
    shift = len(prefix)
    n_head = 0
    while n_head < len(ids) and offsets[n_head][1] <= shift:
        n_head += 1
    body_offsets = [(a - shift, b - shift) for a, b in offsets[n_head:]]
    tokens = token_spans(body_offsets, spans)
    if not ids[n_head:] and spans:  # an empty text: pool the prefix's last token
        n_head = max(0, n_head - 1)
        tokens = [(0, 1)] * len(spans)
    body = tuple(ids[n_head:])
    windows = plan_windows(len(body), window, overlap)
    owner = tuple(choose_window(span, windows) for span in tokens)
    return LatePlan(tuple(ids[:n_head]), body, tuple(tokens), tuple(windows), owner)


@dataclass(frozen=True)
class _Row:
    file: int
    window: int
    ids: list[int]
    pools: list[tuple[int, int, int]]  # (span index, first, end) positions in ``ids``


def encode_late(model: LateModel, files: Sequence[LateFile], task: str) -> list[np.ndarray]:
    """Per file an (n_spans, dim) float32 array, rows L2-normalised: late-chunked vectors.

    ``files``: (text, character spans) pairs; ``task``: a checked task name. The windows of all
    files are batched together by ``model.batch_tokens`` (length-sorted); only windows that own
    a span are encoded.
    """
    prefix = model.prefix(task, False)
    window, overlap = model.late_window_tokens, model.late_overlap_tokens
    pooled = [np.zeros((len(spans), model.full_dim), dtype=np.float32) for _, spans in files]
    rows: list[_Row] = []
    for f, (text, spans) in enumerate(files):
        if not spans:
            continue
        plan = plan_late(model.tokenizer, prefix, str(text), spans, window=window, overlap=overlap)
        pools: dict[int, list[tuple[int, int, int]]] = {}
        for i, w in enumerate(plan.owner):
            pools.setdefault(w, []).append((i, *plan.pooled(i)))
        rows.extend(_Row(f, w, plan.row(w), p) for w, p in sorted(pools.items()))
    with model.session(task):
        order = sorted(range(len(rows)), key=lambda r: -len(rows[r].ids))
        start = 0
        while start < len(order):
            width = max(1, len(rows[order[start]].ids))
            count = max(1, min(len(order) - start, model.batch_tokens // width))
            batch = [rows[r] for r in order[start : start + count]]
            try:
                hidden, _ = model.forward([row.ids for row in batch], width)
            except torch.OutOfMemoryError:
                hidden = None  # the traceback (and its activations) ends here
            if hidden is None:
                if count <= 1:
                    raise CodesearchError(
                        f"jina-v4: out of {model.device.type} memory on one late-chunking "
                        f"window of {width} tokens; use a smaller window (with_late_window) or "
                        "turn late_chunking off"
                    )
                model.lower_token_budget(count, width)
                continue
            _pool(hidden, batch, pooled)
            del hidden
            start += count
    return [model.matryoshka(vectors) for vectors in pooled]


def _pool(hidden: torch.Tensor, batch: Sequence[_Row], pooled: list[np.ndarray]) -> None:
    """Mean of each span's hidden states, as one batched product with averaging weights."""
    most = max(len(row.pools) for row in batch)
    weights = torch.zeros((len(batch), most, hidden.shape[1]), dtype=torch.float32)
    for r, row in enumerate(batch):
        for k, (_, first, end) in enumerate(row.pools):
            weights[r, k, first:end] = 1.0 / (end - first)
    means = torch.bmm(weights.to(hidden.device), hidden.float()).cpu().numpy()
    for r, row in enumerate(batch):
        for k, (i, _, _) in enumerate(row.pools):
            pooled[row.file][i] = means[r, k]
