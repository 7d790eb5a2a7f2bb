"""Calibrate the "no good match" bar (``search.CONFIDENT_SIMILARITY``) without writing questions.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/calibrate_confidence.py [--variant unstripped]

Questions whose answer is absent are the hand-written questions of one corpus asked against
another corpus's index (cobra's questions against click's tree, ...); questions whose answer is
present are the same questions asked against their own corpus, split by whether the top 10
(and the top hit) holds the gold lines (the eval's hit rule). The signal is the best cosine
similarity of the dense ranking (question vs. its nearest chunk), the quantity
``Searcher._confident`` compares; it is absolute, unlike the fused score, which is min-max
normalised per question.

The bar printed is the highest one that flags at most ``--max-found-rate`` (default 2%) of the
present questions whose answer was found in the top 10, and none whose top hit was right; the
table shows, for a range of bars, how often each group would be flagged. Indexes the prepared
trees of the eval corpora (``~/.cache/codesearch-eval/prepared/NAME/VARIANT``) in a throwaway
CODESEARCH_HOME (or ``--home``, reused between runs), with the default model, in process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
QUERY_FILES = (EVAL / "handwritten_dev.jsonl", EVAL / "handwritten_requests.jsonl")
CORPORA = ("click", "lodash", "cobra", "regex-syntax", "requests")


def _cache() -> Path:
    if os.environ.get("CODESEARCH_EVAL_CACHE"):
        return Path(os.environ["CODESEARCH_EVAL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codesearch-eval"


def _load(paths: list[Path]) -> list[dict]:
    questions = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                questions.append(json.loads(line))
    return questions


def _rate(values: list[float], bar: float) -> str:
    flagged = sum(v < bar for v in values)
    return f"{flagged:3}/{len(values):<3} {flagged / max(len(values), 1):6.1%}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", choices=["stripped", "unstripped"], default="unstripped")
    ap.add_argument("--cache", type=Path, default=None, help="the eval cache (prepared trees)")
    ap.add_argument("--home", type=Path, default=None, help="CODESEARCH_HOME (default: a temp)")
    ap.add_argument("--queries", type=Path, nargs="*", default=list(QUERY_FILES))
    ap.add_argument(
        "--max-found-rate",
        type=float,
        default=0.02,
        help="the most of the found answers the bar may flag (never a right top hit)",
    )
    ap.add_argument("--json-out", type=Path, help="each (question, corpus) pair's similarity")
    args = ap.parse_args(argv)
    if args.variant == "stripped":
        print("note: gold lines refer to the unstripped tree; 'found' is approximate", flush=True)

    home = args.home or Path(tempfile.mkdtemp(prefix="codesearch-calibrate-"))
    os.environ["CODESEARCH_HOME"] = str(home)
    os.environ["CODESEARCH_DAEMON"] = "0"
    sys.path.insert(0, str(EVAL))
    import run_eval  # type: ignore[import-not-found]

    from codesearch.config import load_settings
    from codesearch.engine import RepoSearch, index_repo
    from codesearch.search import SearchOptions
    from codesearch.wire.hits import Hit

    settings = load_settings(home)
    questions = _load(args.queries)
    texts = [q["query"] for q in questions]
    prepared = (args.cache or _cache()) / "prepared"
    absent: list[float] = []
    found: list[float] = []  # answer present and in the top 10
    top1: list[float] = []  # ... and the top hit
    missed: list[float] = []  # answer present, not in the top 10
    pairs: list[dict] = []
    model = ""
    for corpus in CORPORA:
        tree = (prepared / corpus / args.variant).resolve()
        stats = index_repo(tree, settings)
        print(f"indexed {corpus}: {stats.chunks_total} chunks", file=sys.stderr, flush=True)
        with RepoSearch(tree, settings) as repo:
            model = repo.embedder.model_id
            vectors = repo.embedder.embed_queries(texts)
            own = [i for i, q in enumerate(questions) if q["corpus"] == corpus]
            answers = repo.search_many([texts[i] for i in own], SearchOptions(k=10))
            rank = {
                i: run_eval.first_rank([Hit.of(h).dump() for h in hits], questions[i], True)
                for i, hits in zip(own, answers, strict=True)
            }
            for i, vector in enumerate(vectors):
                nearest = repo.store.knn(vector, 1)
                similarity = 1.0 - nearest[0][1] if nearest else 0.0
                q = questions[i]
                pairs.append(
                    {"id": q.get("id"), "corpus": corpus, "own": q["corpus"] == corpus,
                     "rank": rank.get(i), "similarity": round(similarity, 4)}
                )  # fmt: skip
                if q["corpus"] != corpus:
                    absent.append(similarity)
                elif rank[i] is None:
                    missed.append(similarity)
                else:
                    found.append(similarity)
                    if rank[i] == 1:
                        top1.append(similarity)
    if args.json_out:
        args.json_out.write_text(json.dumps(pairs, indent=1), encoding="utf-8")

    ordered = sorted(found)
    n = int(args.max_found_rate * len(ordered))
    bar = ordered[n] if len(ordered) > n else 0.0  # flags at most n of the found answers
    bar = min([bar, *top1])  # and no right top hit
    bar = math.floor(bar * 100 - 1e-9) / 100  # two decimals, rounded down: a margin
    print(f"model {model}, variant {args.variant}, {len(questions)} questions x {len(CORPORA)}")
    print(
        "similarity (min / median / max): "
        f"absent {min(absent):.3f}/{sorted(absent)[len(absent) // 2]:.3f}/{max(absent):.3f}, "
        f"found {min(found):.3f}/{ordered[len(ordered) // 2]:.3f}/{max(found):.3f}"
    )
    print("\n| bar | absent flagged (good) | found flagged (bad) | top-1 right flagged | missed |")
    print("|---:|---:|---:|---:|---:|")
    for b in sorted({round(x / 100, 2) for x in range(20, 62, 2)} | {round(bar, 2)}):
        mark = " **chosen**" if b == round(bar, 2) else ""
        print(
            f"| {b:.3f}{mark} | {_rate(absent, b)} | {_rate(found, b)} | {_rate(top1, b)} | "
            f"{_rate(missed, b)} |"
        )
    print(
        f"\nchosen bar: {bar:.3f} (flags at most {n} of {len(found)} found answers, "
        f"{sum(v < bar for v in absent)} of {len(absent)} absent ones)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
