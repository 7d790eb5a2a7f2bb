"""Choose the fusion parameters by measurement, on the eval corpora's prepared trees.

    .venv/bin/python benchmarks/tune_fusion.py [--only requests,click] [--variant both]

Indexes each prepared tree once (in $CODESEARCH_HOME, default a folder under /tmp that is
reused between runs), then scores a grid of fusion settings with ../shared/eval's own
scoring code (same hit rule as run_eval.py) and prints MRR@10 per corpus and variant.
Tuning on the dev corpora overfits them a little: prefer settings that win everywhere.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default="requests,click,lodash,cobra,regex-syntax")
    ap.add_argument("--variant", choices=["stripped", "unstripped", "both"], default="both")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "codesearch-eval")
    args = ap.parse_args()

    os.environ.setdefault("CODESEARCH_HOME", "/tmp/codesearch-tune")
    sys.path.insert(0, str(EVAL))
    import run_eval  # type: ignore[import-not-found]

    from codesearch.config import load_settings
    from codesearch.engine import RepoSearch, index_repo
    from codesearch.search import Fusion, SearchOptions

    settings = load_settings()
    grid = [
        *(
            Fusion(mode="rrf", rrf_k=k, vector_weight=w)
            for k, w in itertools.product((10, 60), (0.75, 1.0, 1.5))
        ),
        *(
            Fusion(mode=m, vector_weight=w)
            for m, w in itertools.product(("score", "z"), (0.75, 1.0, 1.25))
        ),
    ]
    variants = ["stripped", "unstripped"] if args.variant == "both" else [args.variant]
    table: dict[Fusion, list[float]] = {f: [] for f in grid}
    for name in args.only.split(","):
        prepared = args.cache / "prepared" / name
        info = {
            "queries": prepared / "queries.jsonl",
            "queries_unstripped": prepared / "queries.unstripped.jsonl",
        }
        for variant in variants:
            tree = prepared / variant
            queries = run_eval.load_queries(info, variant, None)
            index_repo(tree, settings)
            with RepoSearch(tree.resolve(), settings) as repo:
                texts = [q["query"] for q in queries]
                vectors = repo.embedder.embed_queries(texts)
                line = []
                for fusion in grid:
                    repo.searcher.fusion = fusion
                    results = [
                        [h.to_json() for h in repo.searcher._one(t, v, SearchOptions(k=10))]
                        for t, v in zip(texts, vectors, strict=True)
                    ]
                    mrr = run_eval.score(queries, results)["mrr"]
                    table[fusion].append(mrr)
                    line.append(f"{mrr:.3f}")
                print(f"{name:13} {variant:10} " + " ".join(line), flush=True)
    print("\nmode  rrf_k vec_w  mean-MRR  per corpus/variant")
    for fusion, scores in sorted(table.items(), key=lambda x: -sum(x[1])):
        mean = sum(scores) / len(scores)
        per = " ".join(f"{s:.3f}" for s in scores)
        print(f"{fusion.mode:5} {fusion.rrf_k:5} {fusion.vector_weight:5} {mean:9.3f}  {per}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
