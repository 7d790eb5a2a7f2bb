"""jina-embeddings-v4 on a GPU: encode throughput, memory, and late-interaction re-rank latency.

    PYTHONUNBUFFERED=1 python3 benchmarks/gpu_jina_v4.py --json-out OUT.json     # H200 class
    .venv/bin/python benchmarks/gpu_jina_v4.py --tiny --json-out OUT.json       # CPU, seconds

Needs no download: the FULL-size architecture (Qwen2.5-VL-3B text tower and vision tower, the
multi_vector_projector, three task LoRAs r=32 on every decoder projection and on the projector)
is built with random weights by ``codesearch.embed.jina.build.random_jina_v4``, i.e. the
loader's own module tree, adapters and encode path (``embed_documents`` / ``embed_multivector``:
prefix, length-sorted batches by a budget of padded tokens, mean pooling), straight on the
device in bf16. Random weights cost the same compute as the real ones, so the numbers transfer.

The text is synthetic: a word-level tokenizer built here (one word = one token, the Qwen special
tokens at their real ids) and chunks whose token counts follow a code-chunk length mix
(log-normal, median 200, clipped to 50..800, plus the "Passage: " prefix), so every batch has
the padding a real index run has.

Measured, in this order (a step that would overrun --budget-seconds is skipped and recorded):

1. single vectors (code adapter, documents) at each --budgets token budget: real tokens/s,
   padded tokens/s, chunks/s, peak GPU memory (torch.cuda.max_memory_allocated); an
   out-of-memory error (or the embedder's own OOM back-off) is recorded and the sweep goes on;
2. query time: one query's single vector; re-ranking the top 50 candidates by late interaction
   (the query's multi-vector + the 50 chunks' multi-vectors, MaxSim), p50/p95 over --reps;
   the same with the 50 candidates' token vectors already stored (float16): query + MaxSim;
3. multi-vector encoding throughput;
4. the code adapter switched off (about what a merged adapter costs) at 16k tokens, and the
   indexer's call size (256 chunks per embed_documents call, which caps the batch) at 16k and
   64k; the sweep itself encodes >= 1024 chunks per call, so the budget alone varies;
5. images (``embed_images``, code adapter): images/s at each --image-megapixels size
   (synthetic 4:3 pictures, max_image_pixels raised to fit them, the embedder's default pixel
   budget per forward pass), the image tokens per picture, the CPU preprocessing share, peak
   GPU memory;
6. late chunking (``embed_late_files``) against per-chunk encoding (``embed_documents``) on the
   same files, both called the way the indexer calls them (per-chunk: 256 chunks per call; late:
   whole files, at least 256 chunks' worth per call), at one --late-budget of padded tokens:
   files/s, chunks/s, tokens/s (the tokens each way actually encodes: per chunk its prefix and
   text; late, every encoded window with its prefix), peak GPU memory. Two corpora: files of a
   few chunks (log-normal, median --late-file-chunks) and long files of about three
   --late-window windows each (the windowed path);
7. flash-attention-2 against SDPA, when flash_attn is importable.

Also: the bytes per chunk that stored token vectors would need (float16 / int8 / binary) for the
length mix, versions, GPU name, date. Progress lines go to stdout; --json-out gets the results,
rewritten after every step (a killed run leaves what it had).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codesearch.embed.jina.random import (
    QWEN_FIRST_SPECIAL_ID,
    QWEN_SPECIAL_TOKENS,
)

PAD_BASE = QWEN_FIRST_SPECIAL_ID  # <|endoftext|>, then the other Qwen special tokens
SPECIAL_TOKENS = QWEN_SPECIAL_TOKENS
TASKS = ["retrieval", "text-matching", "code"]
INDEXER_GROUP = 256  # codesearch.index.EMBED_GROUP: documents per embed_documents call
CANDIDATES = 50
QUERY_WORDS = 10  # + "Query" ":" = 12 tokens, a typical code search question


def full_config() -> dict[str, Any]:
    """config.json of jina-embeddings-v4 as JINA_V4.md gives it (flat Qwen2.5-VL-3B + extras)."""
    return _config(
        hidden=2048,
        layers=36,
        heads=16,
        kv_heads=2,
        intermediate=11008,
        mrope=[16, 24, 24],
        vision={
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "out_hidden_size": 2048,
            "fullatt_block_indexes": [7, 15, 23, 31],
        },
        matryoshka=[128, 256, 512, 1024, 2048],
        proj_dim=128,
    )


def tiny_config() -> dict[str, Any]:
    """The same layout at toy sizes (the real vocabulary, so the special ids fit): CPU seconds."""
    return _config(
        hidden=64,
        layers=2,
        heads=4,
        kv_heads=2,
        intermediate=128,
        mrope=[2, 3, 3],
        vision={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "fullatt_block_indexes": [1],
        },
        matryoshka=[8, 16, 32, 64],
        proj_dim=16,
    )


def _config(
    *,
    hidden: int,
    layers: int,
    heads: int,
    kv_heads: int,
    intermediate: int,
    mrope: list[int],
    vision: dict[str, Any],
    matryoshka: list[int],
    proj_dim: int,
) -> dict[str, Any]:
    ids = {tok: PAD_BASE + i for i, tok in enumerate(SPECIAL_TOKENS)}
    return {
        "attention_dropout": 0.0,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "vision_token_id": ids["<|vision_pad|>"],
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": intermediate,
        "max_position_embeddings": 128000,
        "max_window_layers": layers,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads,
        "rms_norm_eps": 1e-6,
        "rope_scaling": {"mrope_section": mrope, "rope_type": "default", "type": "default"},
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": True,
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": 151936,
        "vision_config": {
            "hidden_act": "silu",
            "in_chans": 3,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "window_size": 112,
            "tokens_per_second": 2,
            "temporal_patch_size": 2,
            **vision,
        },
        "task_names": list(TASKS),
        "matryoshka_dims": matryoshka,
        "truncate_dim": None,
        "multi_vector_projector_dim": proj_dim,
        "single_vector_pool_strategy": "mean",
    }


def adapter_config(rank: int, alpha: int) -> dict[str, Any]:
    """adapters/adapter_config.json's fields that the loader reads."""
    return {
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": alpha,
        "lora_dropout": 0.1,
        "use_dora": False,
        "use_rslora": False,
        "bias": "none",
    }


# -- synthetic text with real token counts ------------------------------------------------


def make_tokenizer(n_words: int) -> Any:
    """Word-level: 'w<i>' is token i, 'Query' / 'Passage' / ':' have ids, specials at 151643+."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {f"w{i}": i for i in range(n_words)}
    for extra in ("<unk>", "Query", "Passage", ":"):
        vocab[extra] = len(vocab)
    for i, tok in enumerate(SPECIAL_TOKENS):
        vocab[tok] = PAD_BASE + i
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(list(SPECIAL_TOKENS))  # split before the words: the image prompt
    assert tok.token_to_id("<|image_pad|>") == PAD_BASE + SPECIAL_TOKENS.index("<|image_pad|>")
    return tok


def make_image(rng: np.random.Generator, megapixels: float, factor: int = 28) -> Any:
    """A 4:3 RGB picture of about ``megapixels`` (sides multiples of ``factor``, so the image
    processor keeps its size): a gradient with noise, like a screenshot's mix of flat and busy."""
    from PIL import Image

    pixels = megapixels * 1e6
    height = max(factor, round(math.sqrt(pixels * 3 / 4) / factor) * factor)
    width = max(factor, round(math.sqrt(pixels * 4 / 3) / factor) * factor)
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    noise = rng.integers(0, 64, (height, width, 3)).astype(np.float32)
    return Image.fromarray(np.clip(ramp * 0.75 + noise, 0, 255).astype(np.uint8))


def sample_lengths(
    rng: np.random.Generator, n: int, median: float, sigma: float, lo: int, hi: int
) -> np.ndarray:
    """Token counts of code chunks: log-normal around ``median``, clipped to [lo, hi]."""
    raw = rng.lognormal(mean=math.log(median), sigma=sigma, size=n)
    return np.clip(np.rint(raw), lo, hi).astype(np.int64)


def make_texts(rng: np.random.Generator, lengths: np.ndarray, n_words: int) -> list[str]:
    words = [f"w{i}" for i in range(n_words)]
    ids = rng.integers(0, n_words, size=int(lengths.sum()))
    out: list[str] = []
    start = 0
    for n in lengths.tolist():
        out.append(" ".join(words[i] for i in ids[start : start + n]))
        start += n
    return out


def padded_tokens(lengths: list[int], budget: int) -> tuple[int, int]:
    """(padded tokens, batches) of the embedder's batching (JinaV4Embedder._run) for lengths."""
    order = sorted(lengths, reverse=True)
    start = padded = batches = 0
    while start < len(order):
        width = max(1, order[start])
        rows = max(1, min(len(order) - start, budget // width))
        padded += rows * width
        start += rows
        batches += 1
    return padded, batches


# -- the run ------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.budget_seconds
        self.result: dict[str, Any] = {"complete": False, "skipped": [], "errors": []}
        self.emb: Any = None
        self.torch: Any = None

    # helpers ------------------------------------------------------------------------------

    def say(self, msg: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.1f}s] {msg}", flush=True)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def save(self) -> None:
        self.result["elapsed_s"] = round(time.monotonic() - self.t0, 2)
        if self.args.json_out:
            path = Path(self.args.json_out)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(json.dumps(self.result, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, path)

    def cuda(self) -> bool:
        return self.emb is not None and self.emb.device.type == "cuda"

    def sync(self) -> None:
        if self.cuda():
            self.torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.cuda():
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()

    def peak(self) -> int | None:
        return int(self.torch.cuda.max_memory_allocated()) if self.cuda() else None

    def free(self) -> None:
        gc.collect()
        if self.cuda():
            self.torch.cuda.empty_cache()

    def step(self, name: str, need_s: float, fn: Callable[[], None]) -> None:
        """Run one measurement unless the budget is too short for it; record failures."""
        if self.left() < need_s:
            self.say(f"SKIP {name}: {self.left():.0f}s left, it needs about {need_s:.0f}s")
            self.result["skipped"].append(name)
            self.save()
            return
        try:
            fn()
        except Exception as exc:  # one failed step must not lose the others
            self.say(f"ERROR in {name}: {type(exc).__name__}: {exc}")
            self.result["errors"].append(f"{name}: {type(exc).__name__}: {exc}")
            self.free()
        self.save()

    # the steps ----------------------------------------------------------------------------

    def build(self) -> None:
        import tokenizers
        import torch
        import transformers

        self.torch = torch
        a = self.args
        device = torch.device(a.device)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[a.dtype]
        peft_version = _version("peft")
        self.result["meta"] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "tiny": a.tiny,
            "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "gpu_memory_bytes": (
                torch.cuda.get_device_properties(device).total_memory
                if device.type == "cuda"
                else None
            ),
            "dtype": a.dtype,
            "attn_implementation": "sdpa",
            "flash_attn_importable": importlib.util.find_spec("flash_attn") is not None,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "transformers": transformers.__version__,
            "peft": peft_version,
            "accelerate": _version("accelerate"),
            "tokenizers": tokenizers.__version__,
            "cpu_threads": torch.get_num_threads(),
            "weights": "random (same module tree, adapters and encode path as the real loader)",
        }
        self.say(
            f"torch {torch.__version__} (cuda {torch.version.cuda}), transformers "
            f"{transformers.__version__}, peft {peft_version}; device {device} "
            f"{self.result['meta']['gpu'] or ''}"
        )
        if device.type == "cuda":
            torch.cuda.init()
        config = tiny_config() if a.tiny else full_config()
        rank, alpha = (4, 8) if a.tiny else (32, 32)
        self.say(
            f"building {'tiny' if a.tiny else 'FULL'} jina-v4 (hidden {config['hidden_size']}, "
            f"{config['num_hidden_layers']} layers, LoRA r={rank} x {len(TASKS)} tasks) "
            f"with random {a.dtype} weights on {device}"
        )
        from codesearch.embed.jina.build import random_jina_v4

        start = time.perf_counter()
        self.emb = random_jina_v4(
            config,
            adapter_config(rank, alpha),
            make_tokenizer(a.vocab_words),
            device=device,
            dtype=dtype,
            attn_implementation="sdpa",
            task="code",
            seed=a.seed,
        )
        self.sync()
        seconds = time.perf_counter() - start
        params = dict(self.emb.peft_model.named_parameters())
        lora = sum(p.numel() for n, p in params.items() if ".lora_" in n)
        base = sum(p.numel() for n, p in params.items() if ".lora_" not in n)
        text = sum(
            p.numel() for n, p in params.items() if ".language_model." in n and ".lora_" not in n
        )
        self.result["build"] = {
            "seconds": round(seconds, 2),
            "params_base": base,
            "params_text_model": text,
            "params_lora_all_tasks": lora,
            "allocated_bytes": int(torch.cuda.memory_allocated()) if self.cuda() else None,
            "config": {
                k: config[k]
                for k in (
                    "hidden_size",
                    "num_hidden_layers",
                    "num_attention_heads",
                    "num_key_value_heads",
                    "intermediate_size",
                    "vocab_size",
                    "multi_vector_projector_dim",
                )
            },
            "vision_depth": config["vision_config"]["depth"],
            "lora_r": rank,
        }
        mem = self.result["build"]["allocated_bytes"]
        self.say(
            f"built in {seconds:.1f}s: {base / 1e9:.3f}B base params, {lora / 1e6:.1f}M LoRA "
            f"params; {'' if mem is None else f'{mem / 2**30:.2f} GiB allocated'}"
        )

    def corpus(self) -> None:
        a = self.args
        rng = np.random.default_rng(a.seed)
        median, lo, hi = (24, 6, 96) if a.tiny else (a.median_tokens, a.min_tokens, a.max_tokens)
        self.lengths = sample_lengths(rng, a.pool, median, a.sigma, lo, hi)
        self.texts = make_texts(rng, self.lengths, a.vocab_words)
        tok = self.emb.tokenizer
        self.prefix_tokens = len(tok.encode("Passage: ", add_special_tokens=False).ids)
        self.totals = (self.lengths + self.prefix_tokens).tolist()  # what the model reads
        for text, n in zip(self.texts[:16], self.lengths[:16].tolist(), strict=True):
            got = len(tok.encode("Passage: " + text, add_special_tokens=False).ids)
            assert got == n + self.prefix_tokens, (got, n)
        big = sample_lengths(np.random.default_rng(a.seed + 1), 100_000, median, a.sigma, lo, hi)
        self.mix = big + self.prefix_tokens
        self.query = " ".join(f"w{i}" for i in rng.integers(0, a.vocab_words, QUERY_WORDS))
        self.candidates = self.texts[-CANDIDATES:]
        self.result["length_mix"] = {
            "distribution": f"lognormal(median={median}, sigma={a.sigma}) clipped to [{lo}, {hi}]",
            "prefix_tokens": self.prefix_tokens,
            "pool_chunks": len(self.texts),
            "mean_tokens": round(float(self.mix.mean()), 1),
            "p50_tokens": int(np.percentile(self.mix, 50)),
            "p95_tokens": int(np.percentile(self.mix, 95)),
            "min_tokens": int(self.mix.min()),
            "max_tokens": int(self.mix.max()),
            "candidates_tokens": sum(self.totals[-CANDIDATES:]),
            "query_tokens": len(tok.encode("Query: " + self.query, add_special_tokens=False).ids),
        }
        m = self.result["length_mix"]
        self.say(
            f"length mix: mean {m['mean_tokens']} p50 {m['p50_tokens']} p95 {m['p95_tokens']} "
            f"tokens per chunk (prefix included); pool {len(self.texts)} chunks"
        )

    def sanity(self) -> None:
        emb = self.emb
        docs = self.texts[:4]
        code = emb.embed_documents(docs, task="code")
        retr = emb.embed_documents(docs, task="retrieval")
        multi = emb.embed_multivector(docs[:2], task="code")
        emb.set_task("code")
        finite = bool(np.isfinite(code).all() and all(np.isfinite(m).all() for m in multi))
        norms = np.linalg.norm(code, axis=1)
        self.result["sanity"] = {
            "finite": finite,
            "unit_norm": bool(np.allclose(norms, 1.0, atol=1e-3)),
            "adapters_differ": bool(np.abs(code - retr).max() > 0),
            "multi_vector_rows": [int(m.shape[0]) for m in multi],
            "dim": int(code.shape[1]),
        }
        self.say(f"sanity: {self.result['sanity']}")
        # warm-up at the first budget: CUDA context, kernels, allocator
        emb.batch_tokens = self.args.budgets[0]
        emb.embed_documents(self.texts[: max(8, len(self.texts) // 8)])
        self.sync()

    def throughput(
        self,
        kind: str,
        budget: int,
        *,
        group: int | None = None,
        label: str = "",
        adapter: bool = True,
    ) -> dict[str, Any]:
        """Encode chunks in calls of ``group`` for about --point-seconds; one result row."""
        emb, a = self.emb, self.args
        mean = float(np.mean(self.totals))
        if group is None:
            group = max(a.min_group, math.ceil(4 * budget / mean))
        group = min(group, len(self.texts))
        row: dict[str, Any] = {"kind": kind, "budget": budget, "group": group, "label": label}

        def encode(texts: list[str]) -> None:
            if kind == "single":
                emb.embed_documents(texts, task="code")
            else:
                emb.embed_multivector(texts, task="code", query=False)

        emb.batch_tokens = budget
        pos = 0
        chunks = real = padded = batches = calls = 0
        seconds = 0.0
        peak = None
        base = int(self.torch.cuda.memory_allocated()) if self.cuda() else None
        ctx = emb.peft_model.disable_adapter() if not adapter else _nullcontext()
        try:
            with ctx:
                warm = self.texts[: min(group, max(4, math.ceil(budget / mean)))]
                encode(warm)
                self.reset_peak()
                while True:
                    idx = [(pos + i) % len(self.texts) for i in range(group)]
                    pos += group
                    texts = [self.texts[i] for i in idx]
                    lengths = [self.totals[i] for i in idx]
                    start = time.perf_counter()
                    encode(texts)
                    self.sync()
                    seconds += time.perf_counter() - start
                    p, b = padded_tokens(lengths, budget)
                    chunks, real, padded = chunks + len(idx), real + sum(lengths), padded + p
                    batches, calls = batches + b, calls + 1
                    if seconds >= a.point_seconds or time.monotonic() > self.deadline:
                        break
                peak = self.peak()
        except Exception as exc:
            if not _is_oom(exc):
                raise
            row.update(status="oom", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            emb.batch_tokens = budget
            self.free()
            self.say(f"{kind:6s} budget {budget:6d}: OUT OF MEMORY ({type(exc).__name__})")
            return row
        if emb.batch_tokens != budget:  # the embedder's OOM back-off halved the budget
            row.update(status="oom-backoff", budget_after=emb.batch_tokens)
            emb.batch_tokens = budget
        else:
            row["status"] = "ok"
        row.update(
            chunks=chunks,
            calls=calls,
            batches=batches,
            real_tokens=real,
            padded_tokens=padded,
            seconds=round(seconds, 3),
            tokens_per_s=round(real / seconds, 1),
            padded_tokens_per_s=round(padded / seconds, 1),
            chunks_per_s=round(chunks / seconds, 2),
            padding_efficiency=round(real / padded, 3),
            peak_gpu_bytes=peak,
            activation_bytes=None if peak is None or base is None else peak - base,
        )
        mem = f"peak {peak / 2**30:6.2f} GiB" if peak is not None else ""
        self.say(
            f"{kind:6s} budget {budget:6d} group {group:5d}{' ' + label if label else ''}: "
            f"{row['tokens_per_s']:9.0f} tok/s ({row['padded_tokens_per_s']:9.0f} padded) "
            f"{row['chunks_per_s']:8.1f} chunks/s  pad-eff {row['padding_efficiency']:.2f}  "
            f"{mem}  [{row['status']}]"
        )
        self.free()
        return row

    def sweep(self) -> None:
        rows = self.result.setdefault("single_vector", [])
        for budget in self.args.budgets:
            need = self.args.point_seconds * 1.5 + 3
            if self.left() < need:
                self.say(f"SKIP single budget {budget}: {self.left():.0f}s left")
                self.result["skipped"].append(f"single_vector:{budget}")
                continue
            rows.append(self.throughput("single", budget))
            self.save()

    def multi(self) -> None:
        rows = self.result.setdefault("multi_vector", [])
        for budget in self.args.multi_budgets:
            if self.left() < self.args.point_seconds * 1.5 + 3:
                self.result["skipped"].append(f"multi_vector:{budget}")
                continue
            rows.append(self.throughput("multi", budget))
            self.save()

    def extras(self) -> None:
        rows = self.result.setdefault("single_vector_variants", [])
        budget = self.args.default_budget
        rows.append(self.throughput("single", budget, label="no-adapter", adapter=False))
        for budget in self.args.rerank_budgets:
            if self.left() < self.args.point_seconds * 1.5 + 3:
                self.result["skipped"].append(f"indexer-call-size:{budget}")
                continue
            self.save()
            rows.append(
                self.throughput("single", budget, group=INDEXER_GROUP, label="indexer-call-size")
            )

    def images(self) -> None:
        """images/s per picture size, each at a max_image_pixels that keeps it whole."""
        emb, a = self.emb, self.args
        rows = self.result.setdefault("images", [])
        rng = np.random.default_rng(a.seed + 2)
        default_cap = emb.max_image_pixels
        try:
            for mp in a.image_megapixels:
                if self.left() < a.point_seconds * 2 + (2 if a.tiny else 10):
                    self.say(f"SKIP images {mp} MP: {self.left():.0f}s left")
                    self.result["skipped"].append(f"images:{mp}")
                    continue
                rows.append(self.image_point(make_image(rng, mp), mp, default_cap))
                self.save()
        finally:
            emb.max_image_pixels = default_cap

    def image_point(self, picture: Any, mp: float, default_cap: int) -> dict[str, Any]:
        emb, a = self.emb, self.args
        width, height = picture.size
        emb.max_image_pixels = max(default_cap, width * height)
        budget = emb.image_batch_pixels
        vision = emb.vision()
        per_batch = max(1, budget // (width * height))
        group = [picture] * max(per_batch, a.image_group)
        row: dict[str, Any] = {
            "megapixels": mp,
            "width": width,
            "height": height,
            "max_image_pixels": emb.max_image_pixels,
            "image_tokens": vision.image_tokens(height, width),
            "image_batch_pixels": budget,
            "images_per_batch": per_batch,
        }
        try:
            start = time.perf_counter()
            vision.batch(group[:per_batch])  # the CPU part alone: resize, normalise, patches
            row["preprocess_ms_per_image"] = round(
                (time.perf_counter() - start) * 1000 / per_batch, 2
            )
            emb.embed_images(group[:per_batch], task="code")  # warm-up
            self.reset_peak()
            count, seconds = 0, 0.0
            while True:
                start = time.perf_counter()
                vectors = emb.embed_images(group, task="code")
                self.sync()
                seconds += time.perf_counter() - start
                count += len(group)
                if seconds >= a.point_seconds or time.monotonic() > self.deadline:
                    break
            peak = self.peak()
        except Exception as exc:
            if not _is_oom(exc):
                raise
            emb.image_batch_pixels = budget
            self.free()
            row.update(status="oom", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            self.say(f"images {mp:5.2f} MP: OUT OF MEMORY ({type(exc).__name__})")
            return row
        if emb.image_batch_pixels != budget:  # the embedder's OOM back-off halved the budget
            row.update(status="oom-backoff", budget_after=emb.image_batch_pixels)
            emb.image_batch_pixels = budget
        else:
            row["status"] = "ok"
        row.update(
            images=count,
            seconds=round(seconds, 3),
            images_per_s=round(count / seconds, 3),
            megapixels_per_s=round(count * width * height / 1e6 / seconds, 3),
            image_tokens_per_s=round(count * row["image_tokens"] / seconds, 1),
            finite=bool(np.isfinite(vectors).all()),
            dim=int(vectors.shape[1]),
            peak_gpu_bytes=peak,
        )
        mem = f"peak {peak / 2**30:6.2f} GiB" if peak is not None else ""
        self.say(
            f"images {mp:5.2f} MP ({width}x{height}, {row['image_tokens']} tokens, "
            f"{per_batch}/batch): {row['images_per_s']:8.2f} images/s "
            f"({row['megapixels_per_s']:.1f} MP/s), preprocess "
            f"{row['preprocess_ms_per_image']:.1f} ms/image  {mem}  [{row['status']}]"
        )
        self.free()
        return row

    def rerank(self, budget: int, key: str = "rerank") -> None:
        """Top-50 re-rank by late interaction: recomputed vs stored candidate token vectors."""
        from codesearch.embed.jina.embedder import maxsim

        emb, a = self.emb, self.args
        emb.batch_tokens = budget
        times: dict[str, list[float]] = {
            k: []
            for k in ("query_single", "query_multi", "docs_multi", "maxsim", "maxsim_stored16")
        }
        stored: list[np.ndarray] = []
        for rep in range(a.warmup + a.reps):
            t = time.perf_counter()
            emb.embed_queries([self.query], task="code")
            t1 = time.perf_counter()
            q = emb.embed_multivector([self.query], task="code", query=True)[0]
            t2 = time.perf_counter()
            docs = emb.embed_multivector(self.candidates, task="code", query=False)
            t3 = time.perf_counter()
            scores = [maxsim(q, d) for d in docs]
            t4 = time.perf_counter()
            if not stored:
                stored = [d.astype(np.float16) for d in docs]
            t5 = time.perf_counter()
            stored_scores = [maxsim(q, d) for d in stored]
            t6 = time.perf_counter()
            assert len(scores) == len(stored_scores) == CANDIDATES
            if rep >= a.warmup:
                for k, v in zip(times, (t1 - t, t2 - t1, t3 - t2, t4 - t3, t6 - t5), strict=True):
                    times[k].append(v * 1000)
            if time.monotonic() > self.deadline:
                break
        recompute = [
            q + d + m
            for q, d, m in zip(
                times["query_multi"], times["docs_multi"], times["maxsim"], strict=True
            )
        ]
        stored_total = [
            q + m for q, m in zip(times["query_multi"], times["maxsim_stored16"], strict=True)
        ]
        row: dict[str, Any] = {
            "budget": budget,
            "candidates": CANDIDATES,
            "reps": len(recompute),
            "candidate_tokens": sum(self.totals[-CANDIDATES:]),
            "note": "recompute: query + 50 candidates' multi-vectors + MaxSim; stored: query + "
            "MaxSim over float16 vectors already in memory (reading them from the store excluded)",
            "recompute_ms": _pcts(recompute),
            "stored_ms": _pcts(stored_total),
            **{f"{k}_ms": _pcts(v) for k, v in times.items()},
        }
        self.result.setdefault(key, []).append(row)
        r, s = row["recompute_ms"], row["stored_ms"]
        self.say(
            f"rerank top-{CANDIDATES} (budget {budget}): recompute p50 {r['p50']:.1f} ms "
            f"p95 {r['p95']:.1f} ms | stored fp16 p50 {s['p50']:.1f} ms p95 {s['p95']:.1f} ms | "
            f"query single-vector p50 {row['query_single_ms']['p50']:.1f} ms"
        )

    def storage(self) -> None:
        dim = self.emb.multi_vector_dim
        per_token = {"float16": dim * 2, "int8": dim, "binary": dim // 8}
        mix = self.mix.astype(np.float64)
        out: dict[str, Any] = {
            "token_dim": dim,
            "mean_tokens_per_chunk": round(float(mix.mean()), 1),
            "note": "int8: unit vectors at one fixed scale; binary: sign bits; prefix included",
            "formats": {},
            "single_vector_bytes_per_chunk": {
                "float32_full": self.emb.full_dim * 4,
                f"float32_{min(self.emb.matryoshka_dims)}": min(self.emb.matryoshka_dims) * 4,
            },
        }
        for fmt, b in per_token.items():
            per_chunk = mix * b
            out["formats"][fmt] = {
                "bytes_per_token": b,
                "mean_bytes_per_chunk": round(float(per_chunk.mean()), 1),
                "p95_bytes_per_chunk": round(float(np.percentile(per_chunk, 95)), 1),
                "gib_per_100k_chunks": round(float(per_chunk.mean()) * 1e5 / 2**30, 3),
                "gib_per_1m_chunks": round(float(per_chunk.mean()) * 1e6 / 2**30, 2),
            }
        self.result["storage"] = out
        f = out["formats"]
        self.say(
            "stored token vectors per chunk (mean): "
            + ", ".join(
                f"{k} {v['mean_bytes_per_chunk'] / 1024:.1f} KiB ({v['gib_per_100k_chunks']} "
                "GiB/100k chunks)"
                for k, v in f.items()
            )
        )

    def late_chunking(self) -> None:
        """Late chunking against per-chunk encoding on the same synthetic files."""
        a = self.args
        view = self.emb.with_late_window(a.late_window, a.late_overlap)
        view.batch_tokens = a.late_budget
        out: dict[str, Any] = {
            "window": view.late_window_tokens,
            "overlap": view.late_overlap_tokens,
            "budget": a.late_budget,
            "group_chunks": INDEXER_GROUP,
            "note": "per-chunk: embed_documents, 256 chunks per call; late: embed_late_files, "
            "whole files per call (>= 256 chunks); same files, code adapter",
            "points": [],
        }
        self.result["late_chunking"] = out
        rng = np.random.default_rng(a.seed + 3)
        mean = float(np.mean(self.lengths)) + 1  # + the line break between chunks
        long_chunks = max(2, math.ceil(3 * view.late_window_tokens / mean))
        corpora = {
            "files": [
                int(k) for k in sample_lengths(rng, a.late_files, a.late_file_chunks, 0.8, 1, 60)
            ],
            "long-files": [long_chunks] * a.late_long_files,
        }
        for label, sizes in corpora.items():
            if self.left() < (3 if a.tiny else 20):
                self.say(f"SKIP late chunking {label}: {self.left():.0f}s left")
                self.result["skipped"].append(f"late_chunking:{label}")
                continue
            out["points"].append(self.late_point(view, label, sizes))
            self.save()

    def late_point(self, view: Any, label: str, sizes: list[int]) -> dict[str, Any]:
        from codesearch.embed.jina.late import plan_late

        files: list[tuple[str, list[tuple[int, int]]]] = []
        chunk_ids: list[int] = []
        pos = 0
        for k in sizes:
            ids = [(pos + i) % len(self.texts) for i in range(k)]
            pos += k
            chunk_ids.extend(ids)
            parts = [self.texts[i] for i in ids]
            spans, start = [], 0
            for part in parts:
                spans.append((start, start + len(part)))
                start += len(part) + 1
            files.append(("\n".join(parts), spans))
        texts = [self.texts[i] for i in chunk_ids]
        tok = view.tokenizer
        late_tokens = windows = 0
        for text, spans in files:
            plan = plan_late(
                tok,
                "Passage: ",
                text,
                spans,
                window=view.late_window_tokens,
                overlap=view.late_overlap_tokens,
            )
            for w in set(plan.owner):
                start, stop = plan.windows[w]
                late_tokens += len(plan.head) + stop - start
                windows += 1
        groups: list[list[tuple[str, list[tuple[int, int]]]]] = [[]]
        for item in files:  # the indexer's flush groups: files until >= 256 chunks
            groups[-1].append(item)
            if sum(len(spans) for _, spans in groups[-1]) >= INDEXER_GROUP:
                groups.append([])
        groups = [g for g in groups if g]
        row: dict[str, Any] = {
            "label": label,
            "files": len(files),
            "chunks": len(texts),
            "mean_file_tokens": round(
                sum(self.totals[i] - self.prefix_tokens + 1 for i in chunk_ids) / len(files), 1
            ),
            "late_windows": windows,
        }

        def timed(name: str, fn: Callable[[], None], tokens: int) -> None:
            self.reset_peak()
            start = time.perf_counter()
            fn()
            self.sync()
            seconds = time.perf_counter() - start
            row[name] = {
                "seconds": round(seconds, 3),
                "tokens": tokens,
                "files_per_s": round(len(files) / seconds, 2),
                "chunks_per_s": round(len(texts) / seconds, 2),
                "tokens_per_s": round(tokens / seconds, 1),
                "peak_gpu_bytes": self.peak(),
            }

        vectors: list[np.ndarray] = []
        try:
            view.embed_late_files(files[:1], task="code")  # warm-up, both ways
            view.embed_documents(texts[:8], task="code")
            per_chunk_tokens = sum(self.totals[i] for i in chunk_ids)
            timed(
                "per_chunk",
                lambda: [
                    view.embed_documents(texts[i : i + INDEXER_GROUP], task="code")
                    for i in range(0, len(texts), INDEXER_GROUP)
                ],
                per_chunk_tokens,
            )
            timed(
                "late",
                lambda: vectors.extend(
                    m for g in groups for m in view.embed_late_files(g, task="code")
                ),
                late_tokens,
            )
        except Exception as exc:
            if not _is_oom(exc):
                raise
            self.free()
            row.update(status="oom", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            self.say(f"late chunking {label}: OUT OF MEMORY ({type(exc).__name__})")
            return row
        stacked = np.concatenate(vectors)
        row.update(
            status="ok" if view.batch_tokens == self.args.late_budget else "oom-backoff",
            finite=bool(np.isfinite(stacked).all()),
            unit_norm=bool(np.allclose(np.linalg.norm(stacked, axis=1), 1.0, atol=1e-3)),
            late_vs_per_chunk_seconds=round(
                row["late"]["seconds"] / row["per_chunk"]["seconds"], 3
            ),
        )
        view.batch_tokens = self.args.late_budget
        p, q = row["per_chunk"], row["late"]
        self.say(
            f"late chunking {label} ({len(files)} files, {len(texts)} chunks, {windows} windows): "
            f"per-chunk {p['files_per_s']:.1f} files/s {p['tokens_per_s']:.0f} tok/s | late "
            f"{q['files_per_s']:.1f} files/s {q['tokens_per_s']:.0f} tok/s "
            f"({row['late_vs_per_chunk_seconds']:.2f}x the time)"
        )
        self.free()
        return row

    def flash(self) -> None:
        meta = self.result["meta"]
        out: dict[str, Any] = {"flash_attn_importable": meta["flash_attn_importable"]}
        self.result["flash_attention_2"] = out
        if not meta["flash_attn_importable"] or not self.cuda():
            out["status"] = "not run: flash_attn is not importable" + (
                "" if self.cuda() else " / not on CUDA"
            )
            self.say(f"flash-attention-2: {out['status']}")
            return
        model = self.emb.module.model
        try:
            _set_attn(model, "flash_attention_2")
            out["single_vector"] = [
                self.throughput("single", b, label="flash_attention_2")
                for b in self.args.flash_budgets
                if self.left() > self.args.point_seconds * 1.5 + 3
            ]
            self.save()
            if self.left() > 15:
                self.rerank(self.args.default_budget, key="rerank_flash_attention_2")
        finally:
            _set_attn(model, "sdpa")
        out["status"] = "ok"

    def summary(self) -> None:
        self.say("summary (single vectors, code adapter, SDPA):")
        for row in self.result.get("single_vector", []):
            if row.get("status") in ("ok", "oom-backoff"):
                peak = row["peak_gpu_bytes"]
                self.say(
                    f"  budget {row['budget']:6d}: {row['tokens_per_s']:9.0f} tok/s "
                    f"{row['chunks_per_s']:8.1f} chunks/s "
                    f"{'' if peak is None else f'peak {peak / 2**30:.2f} GiB'}"
                )
            else:
                self.say(f"  budget {row['budget']:6d}: {row.get('status')}")
        for row in self.result.get("images", []):
            peak = row.get("peak_gpu_bytes")
            self.say(
                f"  images {row['megapixels']:5.2f} MP: "
                + (
                    f"{row['images_per_s']:8.2f} images/s "
                    f"{'' if peak is None else f'peak {peak / 2**30:.2f} GiB'}"
                    if row.get("status") in ("ok", "oom-backoff")
                    else str(row.get("status"))
                )
            )

    def run(self) -> int:
        a = self.args
        self.say(f"gpu_jina_v4: budget {a.budget_seconds:.0f}s, json -> {a.json_out or '-'}")
        self.build()
        self.save()
        self.corpus()
        self.storage()
        self.save()
        ps = a.point_seconds
        rerank_need = 10 if not a.tiny else 1
        self.step("sanity", 5 if not a.tiny else 0, self.sanity)
        self.step("single_vector", 0, self.sweep)
        self.step("rerank", rerank_need, lambda: self.rerank(a.default_budget))
        self.step("images", 0, self.images)
        self.step("multi_vector", 0, self.multi)
        self.step("variants", ps * 1.5 + 3, self.extras)
        self.step("late_chunking", 3 if a.tiny else 30, self.late_chunking)
        for budget in a.rerank_budgets:
            if budget != a.default_budget:
                self.step(f"rerank:{budget}", rerank_need, lambda b=budget: self.rerank(b))
        self.step("flash_attention_2", 2 * (ps * 1.5 + 3), self.flash)
        self.summary()
        self.result["complete"] = True
        self.save()
        self.say(f"done in {time.monotonic() - self.t0:.1f}s")
        return 0


# -- small helpers ------------------------------------------------------------------------


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _pcts(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0}
    return {
        "p50": round(float(np.percentile(values, 50)), 3),
        "p95": round(float(np.percentile(values, 95)), 3),
        "mean": round(statistics.fmean(values), 3),
    }


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return "out of memory" in text  # the embedder's CodesearchError after its back-off


def _set_attn(model: Any, name: str) -> None:
    """Switch the attention kernel of a built model (transformers reads it at every call)."""
    setter = getattr(model, "set_attn_implementation", None)
    if setter is not None:
        setter(name)
    else:  # pragma: no cover - older transformers
        model.config._attn_implementation = name


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="toy sizes: runs on the CPU in seconds")
    p.add_argument("--device", help="cuda (default when available) or cpu")
    p.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), help="default: bf16 on CUDA")
    p.add_argument("--json-out", help="write the results here (rewritten after every step)")
    p.add_argument("--budget-seconds", type=float, help="stop starting steps after this")
    p.add_argument("--budgets", type=int, nargs="+", help="padded tokens per batch to sweep")
    p.add_argument("--multi-budgets", type=int, nargs="+")
    p.add_argument("--rerank-budgets", type=int, nargs="+")
    p.add_argument("--flash-budgets", type=int, nargs="+")
    p.add_argument("--point-seconds", type=float, help="timed encoding per throughput point")
    p.add_argument("--reps", type=int, help="re-rank repetitions (after the warm-up ones)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--pool", type=int, help="distinct synthetic chunks")
    p.add_argument("--median-tokens", type=int, default=200)
    p.add_argument("--min-tokens", type=int, default=50)
    p.add_argument("--max-tokens", type=int, default=800)
    p.add_argument("--sigma", type=float, default=0.6, help="log-normal sigma of the length mix")
    p.add_argument("--vocab-words", type=int, default=32768)
    p.add_argument(
        "--image-megapixels", type=float, nargs="+", help="picture sizes for embed_images"
    )
    p.add_argument("--image-group", type=int, default=8, help="pictures per embed_images call")
    p.add_argument("--late-window", type=int, help="late chunking: tokens per window")
    p.add_argument("--late-overlap", type=int, help="late chunking: tokens windows share")
    p.add_argument("--late-budget", type=int, help="padded tokens per batch, both ways")
    p.add_argument("--late-files", type=int, help="files of the late-chunking corpus")
    p.add_argument("--late-file-chunks", type=int, help="median chunks per file")
    p.add_argument("--late-long-files", type=int, help="files of about three windows each")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.device is None:
        import torch

        a.device = "cuda" if torch.cuda.is_available() and not a.tiny else "cpu"
    on_gpu = a.device.startswith("cuda")
    if a.dtype is None:
        a.dtype = "bf16" if on_gpu else "fp32"
    tiny = a.tiny
    defaults: dict[str, Any] = {
        "budget_seconds": 60.0 if tiny else 330.0,
        "budgets": [128, 256, 512, 1024] if tiny else [4096, 8192, 16384, 32768, 65536, 131072],
        "multi_budgets": [256, 1024] if tiny else [16384, 65536],
        "rerank_budgets": [256, 1024] if tiny else [16384, 65536],
        "flash_budgets": [256] if tiny else [16384, 65536],
        "point_seconds": 0.15 if tiny else 5.0,
        "reps": 5 if tiny else 20,
        "pool": 256 if tiny else 2048,
        # the tiny vision tower has full attention over all patches: small pictures on the CPU
        "image_megapixels": [0.05, 0.1, 0.2] if tiny else [1.0, 2.0, 4.0],
        "late_window": 256 if tiny else 8192,
        "late_budget": 1024 if tiny else 32768,
        "late_files": 24 if tiny else 256,
        "late_file_chunks": 4 if tiny else 8,
        "late_long_files": 3 if tiny else 8,
    }
    for key, value in defaults.items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    a.default_budget = a.rerank_budgets[0]
    if a.late_overlap is None:
        a.late_overlap = a.late_window // 4
    a.min_group = 32 if tiny else 1024  # length-sorting inside a call: more chunks, less padding
    if not tiny and not on_gpu:
        print("warning: the full-size model on the CPU takes minutes per step; use --tiny")
    return a


def main(argv: list[str] | None = None) -> int:
    return Bench(parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
