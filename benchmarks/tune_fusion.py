"""Choose the fusion parameters by measurement: mined and hand-written questions together,
with leave-one-corpus-out cross-validation (issue 15, part 4).

    .venv/bin/python benchmarks/tune_fusion.py --model minilm-code [--only click,requests]
        [--grid small|full] [--check] [--json-out tune.json]

Each prepared dev tree (both variants) is indexed once per model, in --home (default
/tmp/codesearch-tune/MODEL, reused between runs). Questions: the mined ones and the
hand-written ones of ../shared/eval (gold lines mapped onto the stripped tree by run_eval's own
function), scored with run_eval's own scoring (same hit rule, MRR@10). Every question is
embedded once per tree and its candidate lists (dense, BM25, phrase) are read once, at the
deepest candidate depth of the grid; each setting then runs the searcher's own fusion, role
weighing and collapsing over those lists (``CachedStore``). ``--check`` compares that path
with ``RepoSearch.search_many`` under the default Fusion().

Objective: the mean over corpora and variants of (mined MRR + hand-written MRR) / 2. For each
corpus the best setting on the others is scored on it (leave-one-corpus-out); a setting is worth
adopting only when the folds agree on it and its cross-validated score beats the default's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from codesearch.config import load_settings
from codesearch.engine import RepoSearch, index_repo
from codesearch.search import Fusion, Searcher, SearchOptions

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
sys.path.insert(0, str(EVAL))
import run_eval  # type: ignore[import-not-found]  # noqa: E402

DEV = ("click", "lodash", "cobra", "regex-syntax", "requests")
HANDWRITTEN = ("handwritten_dev.jsonl", "handwritten_requests.jsonl")
VARIANTS = ("stripped", "unstripped")
SETS = ("mined", "hand")


def build_grid(size: str) -> list[Fusion]:
    """The settings to score, the default Fusion() first (so it wins ties)."""
    if size == "small":
        axes = [("score", "rrf"), (1.0, 1.5), (50, 200), (0.0, 1.0), (0.35,)]
    else:
        axes = [("score", "z", "rrf"), (0.75, 1.0, 1.25, 1.5, 2.0), (50, 100, 200)]
        axes += [(0.0, 0.5, 1.0), (0.35, 0.5)]
    grid = [Fusion()]
    for mode, weight, depth, bonus, tests in itertools.product(*axes):
        f = Fusion(
            mode=mode, vector_weight=weight, candidates=depth, phrase_bonus=bonus, test_weight=tests
        )
        if f not in grid:
            grid.append(f)
    return grid


def label(f) -> str:
    return f"{f.mode} w={f.vector_weight} c={f.candidates} p={f.phrase_bonus} t={f.test_weight}"


class CachedStore:
    """The reads a search makes, memoised. A candidate list is read once at ``depth`` and cut
    to the depth asked: the lists are ordered best first, ties broken by id, so a cut list is
    what a shallower read gives. Chunks, parts and stub implementations are read once."""

    def __init__(self, store, depth: int) -> None:
        self._store, self._depth = store, depth
        self._lists: dict = {}
        self._chunks: dict = {}
        self._parts: dict = {}
        self._files: dict = {}

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    def _cut(self, key: tuple, k: int, read):
        if k > self._depth:
            return read(k)
        if key not in self._lists:
            self._lists[key] = read(self._depth)
        return self._lists[key][:k]

    def knn(self, vector, k, filters=None, task=None):
        assert filters is None or filters == type(filters)(), "unfiltered searches only"
        key = ("knn", vector.tobytes(), task)
        return self._cut(key, k, lambda n: self._store.knn(vector, n, task=task))

    def bm25(self, query, k, filters=None):
        return self._cut(("bm25", query), k, lambda n: self._store.bm25(query, n))

    def phrase(self, query, k, filters=None):
        return self._cut(("phrase", query), k, lambda n: self._store.phrase(query, n))

    def chunks(self, ids):
        wanted = list(dict.fromkeys(ids))
        missing = [i for i in wanted if i not in self._chunks]
        if missing:
            found = self._store.chunks(missing)
            self._chunks.update({i: found.get(i) for i in missing})
        return {i: self._chunks[i] for i in wanted if self._chunks[i] is not None}

    def parts_of(self, chunks):
        keys = {(c.path, c.def_start, c.def_end): c for c in chunks if c.is_part}
        missing = [c for key, c in keys.items() if key not in self._parts]
        if missing:
            self._parts.update(self._store.parts_of(missing))
        return {key: self._parts[key] for key in keys}

    def all_chunks(self, path=None):
        if path not in self._files:
            self._files[path] = self._store.all_chunks(path)
        return self._files[path]


def as_results(hits) -> list[dict]:
    return [{"path": h.path, "start_line": h.start_line, "end_line": h.end_line} for h in hits]


def score_tree(tree: Path, questions: dict, grid: list, args, settings) -> dict:
    """MRR per setting and question set on one tree: {"cells": [{set: mrr}], "check": ...}."""
    t0 = time.time()
    index_repo(tree, settings, model=args.model)
    t1 = time.time()
    every = [q for s in SETS for q in questions[s]]
    texts = [q["query"].strip() for q in every]
    options = SearchOptions(k=10)
    out: dict = {"n": {s: len(questions[s]) for s in SETS}, "cells": []}
    with RepoSearch(tree.resolve(), settings, model=args.model) as repo:
        vectors = repo.embedder.embed_queries(texts)
        depth = max(max(f.candidates for f in grid), options.k * 4)
        searcher = Searcher(CachedStore(repo.store, depth), repo.embedder)
        if searcher._routes() is not None:
            raise SystemExit(f"{args.model}: task-routed models are not supported here")
        t2 = time.time()
        for fusion in grid:
            searcher.fusion = fusion
            results = [
                as_results(searcher._one(t, {None: v}, options)) if t else []
                for t, v in zip(texts, vectors, strict=True)
            ]
            cells, start = {}, 0
            for s in SETS:
                part, start = slice(start, start + len(questions[s])), start + len(questions[s])
                if questions[s]:
                    cells[s] = run_eval.score(every[part], results[part])["mrr"]
            out["cells"].append(cells)
            if args.check and fusion == Fusion():
                live = [as_results(h) for h in repo.search_many(texts, options)]
                same = sum(a == b for a, b in zip(live, results, strict=True))
                mrr = run_eval.score(every, live)["mrr"]
                cached = run_eval.score(every, results)["mrr"]
                out["check"] = {"identical": same, "n": len(texts), "mrr_live": mrr}
                out["check"]["mrr_cached"] = cached
    seconds = {"index": t1 - t0, "embed": t2 - t1, "grid": time.time() - t2}
    out["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
    return out


def objective(cells: dict, corpora) -> float:
    """Mean over corpora and variants of the mean over question sets (mined, hand)."""
    per = []
    for key in ((c, v) for c in corpora for v in VARIANTS):
        if key in cells:
            per.append(sum(cells[key].values()) / len(cells[key]))
    return sum(per) / len(per) if per else 0.0


def cross_validate(table: list[dict], corpora: list[str]) -> dict:
    """table[i][(corpus, variant)][set] = MRR of grid setting i. Leave-one-corpus-out."""
    folds = []
    for held in corpora:
        rest = [c for c in corpora if c != held]
        best = max(range(len(table)), key=lambda i: (objective(table[i], rest), -i))
        folds.append({"held_out": held, "choice": best, "train": objective(table[best], rest)})
    full = max(range(len(table)), key=lambda i: (objective(table[i], corpora), -i))
    return {"folds": folds, "choice": full}


def cv_cells(table: list[dict], folds: list[dict]) -> dict:
    """The held-out cells of each fold's choice, put together as one setting's cells."""
    return {
        (f["held_out"], v): table[f["choice"]][(f["held_out"], v)]
        for f in folds
        for v in VARIANTS
        if (f["held_out"], v) in table[f["choice"]]
    }


def verdict(table: list[dict], corpora: list[str], cv: dict) -> dict:
    folds, choice = cv["folds"], cv["choice"]
    agree = sum(f["choice"] == choice for f in folds)
    cross, default = objective(cv_cells(table, folds), corpora), objective(table[0], corpora)
    adopt = bool(folds) and agree == len(folds) and cross > default
    return {"agree": agree, "folds": len(folds), "cv": cross, "default": default, "adopt": adopt}


def row(first: list[str], cells: dict, corpora) -> str:
    """A Markdown row: ``first`` columns, then mean MRR per variant and set, then objective."""
    cols = []
    for v, s in itertools.product(VARIANTS, SETS):
        vals = [cells[(c, v)][s] for c in corpora if s in cells.get((c, v), {})]
        cols.append(f"{sum(vals) / len(vals):.3f}" if vals else "-")
    return "| " + " | ".join([*first, *cols, f"{objective(cells, corpora):.3f}"]) + " |"


HEAD = "mined S | hand S | mined U | hand U | objective |"
HEAD2 = [f"| setting | {HEAD}", "|---|" + "---:|" * 5]


def report(table: list[dict], grid: list, corpora: list[str], cv: dict) -> str:
    lines = ["## Leave-one-corpus-out folds (held-out scores)", ""]
    lines += [f"| held out | chosen on the others | train | {HEAD} default |"]
    lines += ["|---|---|" + "---:|" * 7]
    for f in cv["folds"]:
        first = [f["held_out"], label(grid[f["choice"]]), f"{f['train']:.3f}"]
        line = row(first, table[f["choice"]], [f["held_out"]])
        lines.append(f"{line} {objective(table[0], [f['held_out']]):.3f} |")
    lines += ["", "## Cross-validated vs default (mean over corpora)", "", *HEAD2]
    lines.append(row(["cross-validated"], cv_cells(table, cv["folds"]), corpora))
    lines.append(row([f"default ({label(grid[0])})"], table[0], corpora))
    lines += ["", "## Best on all corpora (top 5)", "", *HEAD2]
    ranked = sorted(range(len(table)), key=lambda i: (-objective(table[i], corpora), i))
    lines += [row([label(grid[i])], table[i], corpora) for i in ranked[:5]]
    v = verdict(table, corpora, cv)
    lines += [
        "",
        f"Chosen on all corpora: **{label(grid[cv['choice']])}**, picked by {v['agree']} of "
        f"{v['folds']} folds; cross-validated {v['cv']:.3f} vs default {v['default']:.3f}: "
        + ("adopt it." if v["adopt"] else "keep the default."),
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="minilm-code", help="embedding model to index with")
    ap.add_argument("--only", default=",".join(DEV), help="comma-separated dev corpora")
    ap.add_argument("--grid", choices=["small", "full"], default="full")
    ap.add_argument("--home", help="CODESEARCH_HOME for the indexes (/tmp/codesearch-tune/MODEL)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "codesearch-eval")
    ap.add_argument("--check", action="store_true", help="compare with RepoSearch.search_many")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()

    os.environ["CODESEARCH_HOME"] = args.home or f"/tmp/codesearch-tune/{args.model}"
    settings, grid, corpora = load_settings(), build_grid(args.grid), args.only.split(",")
    hand = [q for name in HANDWRITTEN for q in run_eval.corpus_mod.read_jsonl(EVAL / name)]
    table: list[dict] = [{} for _ in grid]
    trees, started = [], time.time()
    for name in corpora:
        prepared = args.cache / "prepared" / name
        info = {
            "queries": prepared / "queries.jsonl",
            "queries_unstripped": prepared / "queries.unstripped.jsonl",
            "removed": prepared / "removed.json",
        }
        own = [q for q in hand if q.get("corpus") == name]
        for variant in VARIANTS:
            questions = {
                "mined": run_eval.load_queries(info, variant, None),
                "hand": run_eval.load_queries(info, variant, own) if own else [],
            }
            tree = score_tree(prepared / variant, questions, grid, args, settings)
            for cells, setting in zip(tree.pop("cells"), table, strict=True):
                setting[(name, variant)] = cells
            tree.update(corpus=name, variant=variant)
            trees.append(tree)
            print(f"{name}/{variant}: {tree}", file=sys.stderr, flush=True)
    cv = cross_validate(table, corpora) if len(corpora) > 1 else {"folds": [], "choice": 0}
    print(report(table, grid, corpora, cv))
    print(f"\n{len(grid)} settings, {time.time() - started:.0f} s", file=sys.stderr)
    if args.json_out:
        record = {
            "model": args.model,
            "corpora": corpora,
            "trees": trees,
            "grid": [asdict(f) for f in grid],
            "mrr": [
                {f"{c}/{v}": cells for (c, v), cells in row.items()}
                | {"objective": objective(row, corpora)}
                for row in table
            ],
            "folds": [dict(f, setting=asdict(grid[f["choice"]])) for f in cv["folds"]],
            "cross_validated": {
                f"{c}/{v}": s for (c, v), s in cv_cells(table, cv["folds"]).items()
            },
            "choice": asdict(grid[cv["choice"]]),
            "default": asdict(grid[0]),
            "verdict": verdict(table, corpora, cv),
        }
        args.json_out.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
