"""The transformers backend: a BERT-like sentence-transformers model from a local folder.

Used for the packaged all-MiniLM-L6-v2 ("minilm") and for any local folder / cached HF id with
the same layout. Mean pooling over the attention mask (or CLS, if the folder's pooling config
says so), then L2 normalisation: the same vectors as sentence-transformers.

torch and transformers are imported here only, when the module is imported (lazily, by the
registry, when a backend is actually loaded).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Never let transformers / huggingface_hub try the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# OpenMP worker threads sleep instead of spinning while they wait. With spinning, a machine
# that is busy with anything else (an editor, a build, a second process) makes each forward
# pass several times slower: a MiniLM query went from 10 ms to 51 ms p50 (240 ms max), and
# batch embedding from 38 to 16 docs/s, on 2 loaded cores. Read when torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from codesearch.embed.backend import cpu_count, json_object
from codesearch.embed.base import Embedder, l2_normalise
from codesearch.embed.minilm.files import folder_model_id
from codesearch.embed.minilm.padding import pad
from codesearch.embed.minilm.runtime import chosen_precision


def merge_adapter(model: Any, adapter: Path) -> Any:
    """``model`` with the peft LoRA adapter in ``adapter`` merged into its weights: a plain
    model again, as fast as the base."""
    import warnings

    from peft import PeftModel

    with warnings.catch_warnings():  # peft 0.21 asks transformers 5 a deprecated question
        warnings.simplefilter("ignore", FutureWarning)
        return PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per text (not normalised): the mean of its real tokens' states, or the
    first token's (``pooling`` "cls")."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class TransformersEmbedder(Embedder):
    """Sentence embeddings from a local BERT-like sentence-transformers folder (no tasks, one
    dim, text only)."""

    def __init__(
        self,
        folder: str | Path,
        *,
        model_id: str | None = None,
        batch_size: int = 32,
        device: str | None = None,
        sort_by_length: bool = True,
        precision: str = "auto",
        max_tokens: int | None = None,
        adapter: str | Path | None = None,
    ) -> None:
        """``adapter``: a peft LoRA adapter folder for this base model, merged into the weights
        at load (``merge_and_unload``), so embedding runs at the base model's speed."""
        self.folder = Path(folder)
        self.model_id = model_id or folder_model_id(self.folder)
        self.batch_size = max(1, int(batch_size))
        self.sort_by_length = sort_by_length
        self.device = torch.device(device or "cpu")
        if self.device.type == "cpu":
            torch.set_num_threads(cpu_count())
        # bf16 autocast: about 2x faster on CPUs with native bf16, cosine vs fp32 > 0.9999
        # (measured on code snippets); elsewhere (or on request) plain fp32.
        if precision == "auto":
            precision = chosen_precision(str(self.device))
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, not {precision!r}")
        self.precision = precision

        hf_tok = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
        # A private copy of the fast tokenizer with our own truncation and no padding
        # (tokenizer.json may carry a fixed padding/truncation from export time).
        self._tokenizer: Tokenizer = Tokenizer.from_str(hf_tok.backend_tokenizer.to_str())
        self._tokenizer.no_padding()
        self._counter: Tokenizer = Tokenizer.from_str(hf_tok.backend_tokenizer.to_str())
        self._counter.no_padding()
        self._counter.no_truncation()
        self.pad_id = int(hf_tok.pad_token_id or 0)

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Loading weights" bar on the user's terminal
        try:
            self.model = AutoModel.from_pretrained(
                str(self.folder), local_files_only=True, attn_implementation="sdpa"
            )
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        if adapter is not None:
            self.model = merge_adapter(self.model, Path(adapter))
        self.model.eval()
        self.model.to(self.device)
        self.dim = int(self.model.config.hidden_size)

        st_config = json_object(self.folder / "sentence_bert_config.json")
        max_len = st_config.get("max_seq_length")
        if not isinstance(max_len, int) or max_len <= 0:
            candidates = [
                getattr(hf_tok, "model_max_length", None),
                getattr(self.model.config, "max_position_embeddings", None),
            ]
            max_len = min(
                (c for c in candidates if isinstance(c, int) and 0 < c < 100_000), default=512
            )
        # a caller may read less than the model allows (faster, and sometimes better)
        self.max_tokens = min(int(max_len), max_tokens) if max_tokens else int(max_len)
        self._tokenizer.enable_truncation(max_length=self.max_tokens)

        pooling = json_object(self.folder / "1_Pooling" / "config.json")
        self.pooling = "cls" if pooling.get("pooling_mode_cls_token") else "mean"
        self.uses_token_types = bool(getattr(self.model.config, "type_vocab_size", 0))

    def tokenizer_json(self) -> str:
        """The tokenizer as it runs here (truncation at ``max_tokens``, no padding), as JSON."""
        return str(self._tokenizer.to_str())

    # -- the Embedder core ------------------------------------------------------------------

    def embed_batch(self, texts: Sequence[str], *, query: bool, task: str | None) -> np.ndarray:
        return self._embed(texts)  # MiniLM uses no query prefix

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    # -- internals ------------------------------------------------------------------------

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        n = len(texts)
        encodings = self._tokenizer.encode_batch([str(t) for t in texts])
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=n)
        # Longest first, so batches hold similar lengths and pad little.
        order = np.argsort(-lengths, kind="stable") if self.sort_by_length else np.arange(n)
        out = np.empty((n, self.dim), dtype=np.float32)
        autocast = torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        )
        with torch.inference_mode(), autocast:
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                out[idx] = self._run_batch([encodings[i] for i in idx], int(lengths[idx].max()))
        return l2_normalise(out)

    def _run_batch(self, encodings: list[Any], width: int) -> np.ndarray:
        batch = pad(encodings, self.pad_id, width)
        inputs: dict[str, torch.Tensor] = {
            "input_ids": torch.from_numpy(batch.ids).to(self.device),
            "attention_mask": torch.from_numpy(batch.mask).to(self.device),
        }
        if self.uses_token_types:
            inputs["token_type_ids"] = torch.from_numpy(batch.types).to(self.device)
        hidden = self.model(**inputs).last_hidden_state.float()
        return pool(hidden, inputs["attention_mask"], self.pooling).cpu().numpy()
