"""How strongly to merge the code adapter: leave-one-corpus-out over merge scales.

    python benchmarks/adapter_scale.py minilm=benchmarks/results/tune_fusion_minilm_small.json \\
        0.25=benchmarks/results/tune_fusion_minilm-code-scale0.25_small.json \\
        0.5=benchmarks/results/tune_fusion_minilm-code-scale0.5_small.json \\
        1=benchmarks/results/tune_fusion_minilm-code-scale1.json

Each file is a ``benchmarks/tune_fusion.py --json-out`` run of one model (plain MiniLM, or the
adapter merged at a scale: ``training.run --scale S``, i.e. its LoRA alpha times S); the first
setting of each is the default fusion. The objective is tune_fusion's: per corpus and variant,
(mined MRR@10 + hand-written MRR@10) / 2, averaged. For each corpus, the scale that is best on
the other four is printed with its held-out score, then every scale's per-corpus numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

VARIANTS = ("stripped", "unstripped")


def main(argv: list[str]) -> int:
    runs: dict[str, dict[str, dict[str, float]]] = {}
    for arg in argv:
        label, _, path = arg.partition("=")
        runs[label] = json.loads(Path(path).read_text())["mrr"][0]  # the default fusion
    first = next(iter(runs.values()))
    corpora = sorted({key.split("/")[0] for key in first if "/" in key})

    def objective(label: str, names: list[str]) -> float:
        row = runs[label]
        values = [
            (row[f"{c}/{v}"]["mined"] + row[f"{c}/{v}"]["hand"]) / 2
            for c in names
            for v in VARIANTS
        ]
        return sum(values) / len(values)

    print("| held out | picked on the other four | its held-out objective | plain MiniLM |")
    print("|---|---|---:|---:|")
    plain = next(iter(runs))
    for corpus in corpora:
        others = [c for c in corpora if c != corpus]
        best = max(runs, key=lambda label: objective(label, others))
        print(
            f"| {corpus} | {best} | {objective(best, [corpus]):.3f} "
            f"| {objective(plain, [corpus]):.3f} |"
        )
    print()
    print("| corpus | variant | questions | " + " | ".join(runs) + " |")
    print("|---|---|---|" + "---:|" * len(runs))
    for corpus in corpora:
        for variant in VARIANTS:
            for kind in ("mined", "hand"):
                cells = " | ".join(f"{runs[r][f'{corpus}/{variant}'][kind]:.3f}" for r in runs)
                print(f"| {corpus} | {variant} | {kind} | {cells} |")
    for variant in VARIANTS:
        for kind in ("mined", "hand"):
            cells = " | ".join(
                f"{sum(runs[r][f'{c}/{variant}'][kind] for c in corpora) / len(corpora):.3f}"
                for r in runs
            )
            print(f"| **mean** | {variant} | {kind} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
