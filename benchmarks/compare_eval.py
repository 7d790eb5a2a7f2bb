"""Compare run_eval.py results question by question: for each corpus and variant, the MRR@10
of codesearch in each file and the questions whose rank moved against the first file (the
reference, e.g. float32). With 12-15 hand-written questions a corpus, one question moving
from rank 1 to 2 is 0.03-0.04 MRR: this says whether a difference is one near-tie or many.

    .venv/bin/python benchmarks/compare_eval.py REF.json OTHER.json [MORE.json ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

Key = tuple[str, str]  # (corpus, variant)


def _rows(path: Path, tool: str) -> dict[Key, dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {(r["corpus"], r["variant"]): r["metrics"] for r in data["rows"] if r["tool"] == tool}


def _ranks(metrics: dict[str, Any]) -> dict[str, int | None]:
    return {q["id"]: q["rank"] for q in metrics["per_query"]}


def _shared(words: list[str]) -> int:
    """How many leading characters all ``words`` share."""
    n = 0
    while all(len(w) > n and w[n] == words[0][n] for w in words):
        n += 1
    return n


def _labels(stems: list[str]) -> list[str]:
    """The files' names less what they all share at the start and at the end."""
    if len(set(stems)) < 2:
        return stems
    head = _shared(stems)
    tail = _shared([s[::-1] for s in stems])
    return [s[head : len(s) - tail] or s for s in stems]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+", help="run_eval.py --json-out files")
    parser.add_argument("--tool", default="codesearch")
    args = parser.parse_args()
    runs = [_rows(f, args.tool) for f in args.files]
    names = _labels([f.stem for f in args.files])
    print(f"{'corpus/variant':<26}" + "".join(f"{n[:18]:>20}" for n in names))
    moved_total = [0] * len(runs)
    for key in sorted(runs[0]):
        ref = runs[0][key]
        cells, notes = [], []
        for i, run in enumerate(runs):
            metrics = run.get(key)
            if metrics is None:
                cells.append(f"{'-':>20}")
                continue
            delta = metrics["mrr"] - ref["mrr"]
            ref_ranks, ranks = _ranks(ref), _ranks(metrics)
            moved = [q for q in ref_ranks if ranks.get(q) != ref_ranks[q]]
            moved_total[i] += len(moved)
            extra = f" {delta:+.3f} ({len(moved)})" if i else ""
            cells.append(f"{metrics['mrr']:.3f}{extra}".rjust(20))
            notes += [f"{names[i]}: {q} {ref_ranks[q]}->{ranks.get(q)}" for q in moved]
        print(f"{'/'.join(key):<26}" + "".join(cells))
        for note in notes:
            print(f"    {note}")
    moved = zip(names[1:], moved_total[1:], strict=True)
    print("questions moved:", ", ".join(f"{n} {m}" for n, m in moved))


if __name__ == "__main__":
    main()
