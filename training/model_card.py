"""Write the shipped adapter's model card from the files that measured it (no number is typed).

    .venv/bin/python -m training.model_card                       # default paths below
    .venv/bin/python -m training.model_card --check               # exit 1 if the card is stale

Inputs (all committed, so the card can be regenerated and checked by the tests):
- ``ADAPTER/training_log.json``: hyperparameters, pair counts, held-out evaluations, wall time
  (written by ``training.train``);
- ``ADAPTER/data_manifest.json``: the training corpora, their licences and pair counts (copied
  from ``training/cache/manifest.json`` by ``--manifest`` when the card is first written);
- ``benchmarks/results/eval-*.json`` (``run_eval.py --json-out``): the evaluation before (plain
  MiniLM) and after (the adapter), mined and hand-written questions, baselines of the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ADAPTER = ROOT / "codesearch" / "embed" / "adapters" / "minilm-code"
RESULTS = ROOT / "benchmarks" / "results"
EVALS = {  # (label, file before, file after)
    "mined": ("Mined questions (doc comments)", "eval-mined.json", "eval-mined-minilm-code.json"),
    "dev": ("Hand-written questions (72)", "eval-dev.json", "eval-dev-minilm-code.json"),
}
LANGUAGE = {
    "click": "python",
    "requests": "python",
    "lodash": "javascript",
    "cobra": "go",
    "regex-syntax": "rust",
}


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _mrr(rows: Sequence[Mapping[str, Any]], tool: str) -> dict[tuple[str, str], float]:
    return {
        (r["corpus"], r["variant"]): float(r["metrics"]["mrr"]) for r in rows if r["tool"] == tool
    }


def _eval_table(title: str, before: Any, after: Any) -> list[str]:
    old, new = _mrr(before["rows"], "codesearch"), _mrr(after["rows"], "codesearch")
    bm25 = _mrr(after["rows"], "bm25")
    window = _mrr(after["rows"], "minilm-window") or _mrr(before["rows"], "minilm-window")
    lines = [
        f"### {title}",
        "",
        f"MRR@10; before: plain MiniLM (`{before.get('created', '?')}`), after: the adapter "
        f"(`{after.get('created', '?')}`), bm25 from the after run"
        + (", minilm-window where measured" if window else "")
        + ".",
        "",
        "| corpus | language | variant | before | after | change | bm25 |"
        + (" minilm-window |" if window else ""),
        "|---|---|---|---:|---:|---:|---:|" + ("---:|" if window else ""),
    ]
    for key in sorted(new):
        corpus, variant = key
        was = old.get(key, float("nan"))
        row = (
            f"| {corpus} | {LANGUAGE.get(corpus, '?')} | {variant} | {was:.3f}"
            f" | {new[key]:.3f} | {new[key] - was:+.3f} | {bm25.get(key, float('nan')):.3f} |"
        )
        if window:
            row += f" {window[key]:.3f} |" if key in window else " - |"
        lines.append(row)
    for variant in ("stripped", "unstripped"):
        keys = [k for k in new if k[1] == variant and k in old]
        if keys:
            mean_old = sum(old[k] for k in keys) / len(keys)
            mean_new = sum(new[k] for k in keys) / len(keys)
            lines.append(
                f"| **mean** | | {variant} | {mean_old:.3f} | {mean_new:.3f} "
                f"| {mean_new - mean_old:+.3f} | "
                f"{sum(bm25.get(k, 0.0) for k in keys) / len(keys):.3f} |"
                + (" |" if window else "")
            )
    return [*lines, ""]


def _by_language(tables: Sequence[tuple[Any, Any]]) -> list[str]:
    change: dict[str, list[float]] = {}
    for before, after in tables:
        old, new = _mrr(before["rows"], "codesearch"), _mrr(after["rows"], "codesearch")
        for key, value in new.items():
            if key in old:
                change.setdefault(LANGUAGE.get(key[0], "?"), []).append(value - old[key])
    lines = ["### What the adapter changed per language", ""]
    lines += ["| language | mean MRR@10 change (all rows above) | rows |", "|---|---:|---:|"]
    for language in sorted(change):
        values = change[language]
        lines.append(f"| {language} | {sum(values) / len(values):+.3f} | {len(values)} |")
    return [*lines, ""]


def render(adapter: Path, results: Path) -> str:
    log = _load(adapter / "training_log.json")
    manifest = _load(adapter / "data_manifest.json")
    opts = log["options"]
    pairs = log["pairs"]
    evals = log.get("evals", [])
    best = log.get("best", {})
    out = [
        "# minilm-code: all-MiniLM-L6-v2 with codesearch's code adapter",
        "",
        "<!-- written by `python -m training.model_card`; do not edit by hand -->",
        "",
        "A LoRA adapter (peft) for `sentence-transformers/all-MiniLM-L6-v2` (Apache-2.0) that "
        "teaches it the chunks codesearch indexes: a question in words against a function's "
        "header and code. codesearch merges it into the base weights at load "
        "(`merge_and_unload`), so it embeds at the base model's speed. Backend name "
        "`minilm-code`; `--model minilm` is the plain model.",
        "",
        "## Training data",
        "",
        f"Only the corpora of `shared/train/corpora.toml` ({len(manifest['corpora'])} pinned, "
        "permissively licensed packages; none of `shared/eval/corpora.toml`'s, which "
        "`training.prepare` refuses). Pairs: the first sentence of a function's doc comment "
        "(mined by `shared/eval/corpus.py`) -> the chunk codesearch's chunker makes of that "
        f"function (its embed text: header + code), from the tree with the doc comment removed "
        f"({100 - round(100 * manifest['options']['unstripped_fraction'])}%) or kept; "
        f"{manifest['options']['negatives']} BM25 hard negatives per pair from the same package "
        f"were prepared, {opts['hard_negatives']} used per pair, plus in-batch negatives. "
        f"{round(100 * manifest['options']['heldout_fraction'])}% of the pairs are held back "
        "(by a hash of corpus/path/name) for early stopping.",
        "",
        f"Pairs: {pairs['train'] + pairs['heldout']} ({pairs['train']} train, "
        f"{pairs['heldout']} held out; {manifest['totals'].get('skipped_no_chunk', 0)} questions "
        "skipped: no chunk found).",
        "",
        "| language | train pairs | held out |",
        "|---|---:|---:|",
    ]
    for language in sorted(pairs["train_by_language"]):
        out.append(
            f"| {language} | {pairs['train_by_language'][language]} "
            f"| {pairs['heldout_by_language'].get(language, 0)} |"
        )
    out += ["", "| corpus | package | licence | pairs |", "|---|---|---|---:|"]
    for name, info in sorted(manifest["corpora"].items()):
        out.append(f"| {name} | {info['package']} | {info['licence']} | {info['pairs']} |")
    out += [
        "",
        "## Hyperparameters",
        "",
        f"LoRA rank {opts['rank']}, alpha {opts['alpha']:g}, dropout {opts['lora_dropout']:g}, on "
        f"`{log['target_modules']}` ({log['trainable_parameters']:,} trainable parameters); "
        f"AdamW, peak learning rate {opts['lr']:g}, weight decay {opts['weight_decay']:g}, "
        f"{log['warmup_steps']} warmup steps then linear decay; batch {opts['batch_size']} pairs; "
        f"InfoNCE with a {'fixed' if opts['fixed_temperature'] else 'learned'} temperature "
        f"(initial {opts['temperature']:g}); questions read at {opts['query_tokens']} tokens, "
        f"passages at {opts['passage_tokens']}; fp32; seed {log['seed']}; "
        f"held-out evaluation every {opts['eval_every']} steps on {pairs['eval']} pairs, "
        f"patience {opts['patience']}; a wall-clock limit of {opts['max_minutes']:g} minutes.",
        "",
        f"Merged at {log.get('merge_scale', 1.0):g} x the trained strength (LoRA alpha "
        f"{opts['alpha']:g} -> {opts['alpha'] * log.get('merge_scale', 1.0):g}): at full strength "
        "the adapter wins on mined questions (its training distribution) but loses on the "
        "hand-written ones; the scale was picked among 0, 0.25, 0.5 and 1 by leave-one-corpus-out "
        "on mined and hand-written questions together (every fold picked 0.5; "
        "`benchmarks/adapter_scale.py`, numbers in benchmarks/RESULTS.md).",
        "",
        "## Training time",
        "",
        f"{log['wall_seconds'] / 60:.1f} minutes on {log['threads']} CPU threads "
        f"({log['versions']['torch']}, transformers {log['versions']['transformers']}, "
        f"peft {log['versions']['peft']}); {evals[-1]['step'] if evals else 0} steps, "
        f"{evals[-1]['pairs_seen'] if evals else 0} pairs seen; the shipped adapter is the best "
        f"held-out evaluation (step {best.get('step')}).",
        "",
        "Held-out pairs (each question against all held-out passages and their hard negatives):",
        "",
        "| step | pairs seen | loss | MRR | R@1 | R@10 | temperature |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in evals:
        out.append(
            f"| {e['step']} | {e['pairs_seen']} | {e['heldout_loss']:.4f} | {e['mrr']:.4f} "
            f"| {e['r1']:.4f} | {e['r10']:.4f} | {e['temperature']:.4f} |"
        )
    out += ["", "## Evaluation", ""]
    out += [
        "`shared/eval/run_eval.py` on the five small dev corpora, both variants, codesearch "
        "with its default fusion (`BASELINES=bm25 benchmarks/eval.sh mined|dev`; before: plain "
        "MiniLM, then the default). Raw results: `benchmarks/results/`.",
        "",
    ]
    pairs_seen: list[tuple[Any, Any]] = []
    for title, before_name, after_name in EVALS.values():
        before_path, after_path = results / before_name, results / after_name
        if before_path.is_file() and after_path.is_file():
            before, after = _load(before_path), _load(after_path)
            out += _eval_table(title, before, after)
            pairs_seen.append((before, after))
    if pairs_seen:
        out += _by_language(pairs_seen)
    out += [
        "## Reproduce",
        "",
        "    .venv/bin/python -m training.run --out codesearch/embed/adapters/minilm-code "
        + " ".join(
            f"--{k.replace('_', '-')} {opts[k]:g}"
            for k in ("max_minutes", "lr", "eval_every", "epochs")
        )
        + f" --scale {log.get('merge_scale', 1.0):g}",
        "    .venv/bin/python -m training.model_card",
        "",
        "(training/README.md; the pairs are cached in training/cache/, so a rerun starts training "
        "at once.)",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--adapter", type=Path, default=ADAPTER)
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument(
        "--manifest",
        type=Path,
        help="copy this prepare manifest (training/cache/manifest.json) into the adapter first",
    )
    ap.add_argument("--check", action="store_true", help="exit 1 if MODEL_CARD.md is stale")
    args = ap.parse_args(argv)
    if args.manifest is not None:
        manifest = _load(args.manifest)
        (args.adapter / "data_manifest.json").write_text(
            json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
    card = render(args.adapter, args.results)
    path = args.adapter / "MODEL_CARD.md"
    if args.check:
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != card:
            print(f"{path} is stale: run python -m training.model_card", file=sys.stderr)
            return 1
        return 0
    path.write_text(card, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
