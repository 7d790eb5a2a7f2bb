"""The OpenVINO runtime for the BERT-like models on the CPU: the folder ``ov_export`` wrote,
run without torch or transformers in the process. The default on the CPU (``runtime`` says
when it is not).

Measured on django (benchmarks/bench_embed_runtime.py, benchmarks/RESULTS.md): a whole index in
bf16 at 1.68x the chunks/s of the torch runtime (bf16 autocast, batches of 32) with half its
memory, and in fp32 1.2-1.6x with the same vectors (cosine 1.0). Documents run on one inference
stream per core, each with batches of ``REQUEST_ROWS`` length-sorted texts; a question runs on
its own request, so a search does not wait behind an indexing batch.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
from tokenizers import Tokenizer

from codesearch.embed.backend import cpu_count
from codesearch.embed.base import Embedder
from codesearch.embed.minilm.files import OPENVINO_FORMAT
from codesearch.embed.minilm.padding import pad

# Texts per inference request. Smaller requests with one stream per core were faster than
# larger ones (16: 1.35x torch, 32: 1.25x, 8: 1.30x; benchmarks/RESULTS.md).
REQUEST_ROWS = 16


class OpenVinoEmbedder(Embedder):
    """Sentence embeddings from an exported OpenVINO folder (see ``ov_export``)."""

    def __init__(self, folder: Path, *, precision: str = "bf16", batch_size: int = 32) -> None:
        """``precision``: "bf16" (CPUs with native bf16) or "fp32"."""
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != OPENVINO_FORMAT:
            raise ValueError(f"{folder} holds an export of another format")
        self.folder = folder
        self.model_id = str(meta["model_id"])
        self.dim = int(meta["dim"])
        self.max_tokens = int(meta["max_tokens"])
        self.pad_id = int(meta["pad_id"])
        self.precision = precision
        self.rows = max(1, min(REQUEST_ROWS, int(batch_size)))
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._counter = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._counter.no_padding()
        self._counter.no_truncation()
        threads = cpu_count()
        config = {
            "PERFORMANCE_HINT": "THROUGHPUT",
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
        }
        self._compiled = ov.Core().compile_model(str(folder / "model.xml"), "CPU", config)
        streams = int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._queue = ov.AsyncInferQueue(self._compiled, max(1, streams))
        self._queue_lock = threading.Lock()
        self._single = self._compiled.create_infer_request()
        self._single_lock = threading.Lock()

    # -- the Embedder core ------------------------------------------------------------------

    def embed_batch(self, texts: Sequence[str], *, query: bool, task: str | None) -> np.ndarray:
        encodings = self._tokenizer.encode_batch([str(t) for t in texts])
        if len(encodings) <= 2:  # a question or two: one request, no queue
            with self._single_lock:
                return np.concatenate([self._run_single([e]) for e in encodings])
        return self._run_queued(encodings)

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    # -- internals ------------------------------------------------------------------------

    def _inputs(self, encodings: Sequence[Any]) -> dict[str, np.ndarray]:
        batch = pad(encodings, self.pad_id)
        return {"input_ids": batch.ids, "attention_mask": batch.mask}

    def _run_single(self, encodings: Sequence[Any]) -> np.ndarray:
        result = self._single.infer(self._inputs(encodings))
        return np.array(result[0], dtype=np.float32)

    def _run_queued(self, encodings: Sequence[Any]) -> np.ndarray:
        n = len(encodings)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=n)
        order = np.argsort(-lengths, kind="stable")  # similar lengths together: little padding
        out = np.empty((n, self.dim), dtype=np.float32)
        done = np.zeros(n, dtype=bool)

        def finished(request: ov.InferRequest, rows: np.ndarray) -> None:
            out[rows] = request.get_output_tensor(0).data
            done[rows] = True

        with self._queue_lock:
            self._queue.set_callback(finished)
            for start in range(0, n, self.rows):
                rows = order[start : start + self.rows]
                self._queue.start_async(self._inputs([encodings[i] for i in rows]), rows)
            self._queue.wait_all()
        if not done.all():
            raise RuntimeError(f"OpenVINO answered {int(done.sum())} of {n} texts")
        return out
