"""Tokens a coding agent reads to reach the right function: `search_code` (the MCP tool's
actual text, over a real `codesearch mcp` session and daemon) against grep-and-read-files.

    .venv/bin/python benchmarks/bench_agent_tokens.py [--variant unstripped|stripped|both]
        [--home /tmp/codesearch-agent-bench] [-k 10] [--max-lines 12,5,30]

Queries: the hand-written dev queries (../shared/eval/handwritten_requests.jsonl: id, corpus,
query, path, start_line, end_line, name), on the prepared corpus trees
(~/.cache/codesearch-eval/prepared/<corpus>/{unstripped,stripped}; gold lines are mapped onto
the stripped tree as the eval does). A result *reaches* the target when the eval counts it a
hit: same path, overlapping lines, at most max(3 x gold lines, gold lines + 50) lines long.

- search_code: the tokens of the tool's text answer up to and including the first result that
  reaches the target (its header line included). A miss within k costs all k results, then the
  grep fallback below.
- grep -n, then read (the baseline): the agent greps for the query's distinctive words,
  `grep -rniE 'w1|w2|w3' .` (the 3 words of >= 3 letters, stopwords dropped, that occur in the
  fewest files: an optimistic pick), reads the whole grep output (`path:line:text`), then
  reads whole files in order of matching lines (most first) until it has read the target file
  (at most 10 files; not found after that, or when no file matched: a miss).
- grep -c, then read: the same, but the agent first asks only for the files and their match
  counts (`grep -rnicE ... | sort`: `path:count` lines), a cheaper first step.
Files are read as plain text (no line numbers: a Read tool's numbering would add tokens to the
baseline, not to search_code). The one-time cost of the tool definitions (tools/list) is
reported apart.

Tokenizers: o200k_base (GPT-4o's BPE; from the `bpe-openai` package, which embeds it: `pip
install bpe-openai`, or --bpe-path DIR) when it can be imported, and always the packaged
all-MiniLM-L6-v2 WordPiece tokenizer (through `tokenizers`; it ignores whitespace, so it
undercounts code, the baseline's whole files most). The first one available is the headline.

The daemon runs in its own data dir (--home), is started and stopped here.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from daemon_helpers import Daemon  # noqa: E402
from mcp_helpers import McpClient  # noqa: E402

EVAL_DIR = ROOT.parent / "shared" / "eval"
PREPARED = Path.home() / ".cache" / "codesearch-eval" / "prepared"
MAX_FILES_READ = 10
GREP_WORDS = 3

Counter_ = Callable[[str], int]


# ---------------------------------------------------------------------- tokenizers


def tokenizers(bpe_path: str | None) -> dict[str, Counter_]:
    out: dict[str, Counter_] = {}
    if bpe_path:
        sys.path.insert(0, bpe_path)
    try:
        import bpe_openai

        encoding = bpe_openai.get_encoding("o200k_base")
        out["o200k_base"] = lambda text: len(encoding.encode(text))
    except ImportError:
        print("bpe-openai is not installed: o200k_base counts left out", file=sys.stderr)
    from tokenizers import Tokenizer

    from codesearch.embed.minilm.files import packaged_minilm_dir

    folder = packaged_minilm_dir()
    assert folder is not None, "the packaged MiniLM is missing"
    wordpiece = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    wordpiece.no_truncation()
    out["minilm_wordpiece"] = lambda text: len(wordpiece.encode(text, add_special_tokens=False).ids)
    return out


# ---------------------------------------------------------------------- the corpus


def load_eval(eval_dir: Path) -> Any:
    sys.path.insert(0, str(eval_dir))
    import corpus  # the eval's own reading rules: which files, which stopwords
    import run_eval

    return corpus, run_eval


def reaches(result: dict[str, Any], gold: dict[str, Any]) -> bool:
    """The eval's hit rule."""
    if result["path"] != gold["path"]:
        return False
    if result["end_line"] < gold["start_line"] or result["start_line"] > gold["end_line"]:
        return False
    gold_lines = gold["end_line"] - gold["start_line"] + 1
    span = result["end_line"] - result["start_line"] + 1
    return span <= max(3 * gold_lines, gold_lines + 50)


class GrepAgent:
    """The grep-and-read baseline over one tree."""

    def __init__(self, tree: Path, corpus: Any) -> None:
        self.corpus = corpus
        self.files: list[tuple[str, str]] = []
        for rel in corpus.iter_files(tree):
            text = corpus.read_text(tree / rel)
            if text is not None:
                self.files.append((rel, text))
        self.lowered = [(rel, text.lower()) for rel, text in self.files]

    def words(self, query: str) -> list[str]:
        candidates = dict.fromkeys(
            w
            for w in re.findall(r"[a-z0-9_]+", query.lower())
            if len(w) >= 3 and w not in self.corpus._STOP
        )
        df = {w: sum(1 for _, text in self.lowered if w in text) for w in candidates}
        present = sorted((w for w in candidates if df[w]), key=lambda w: (df[w], w))
        return present[:GREP_WORDS]

    def run(self, query: str, gold_path: str, count: Counter_, counts_only: bool) -> dict[str, Any]:
        words = self.words(query)
        matches: Counter[str] = Counter()
        out_lines: list[str] = []
        for rel, text in self.files:
            for number, line in enumerate(text.split("\n"), 1):
                low = line.lower()
                if any(w in low for w in words):
                    matches[rel] += 1
                    out_lines.append(f"{rel}:{number}:{line}")
        order = sorted(matches, key=lambda rel: (-matches[rel], rel))
        listing = [f"{rel}:{matches[rel]}" for rel in order] if counts_only else out_lines
        tokens = count("\n".join(listing))
        grep_tokens = tokens
        found = False
        read = 0
        texts = dict(self.files)
        for rel in order[:MAX_FILES_READ]:
            tokens += count(f"{rel}\n{texts[rel]}")
            read += 1
            if rel == gold_path:
                found = True
                break
        return {
            "words": words,
            "grep_lines": len(out_lines),
            "grep_tokens": grep_tokens,
            "files_read": read,
            "found": found,
            "tokens": tokens,
        }


# ---------------------------------------------------------------------- search_code


BLOCK = re.compile(r"^\[(\d+)\] ", re.M)


def search_cost(
    text: str, results: list[dict[str, Any]], gold: dict[str, Any]
) -> tuple[int | None, str]:
    """(rank of the first result that reaches the target or None, the text read up to it)."""
    starts = [m.start() for m in BLOCK.finditer(text)]
    assert len(starts) == len(results), (len(starts), len(results))
    for rank, result in enumerate(results, 1):
        if reaches(result, gold):
            end = starts[rank] if rank < len(starts) else len(text)
            return rank, text[:end].rstrip("\n")
    return None, text


def measure(
    mcp: McpClient,
    tree: Path,
    queries: list[dict[str, Any]],
    grep: GrepAgent,
    counters: dict[str, Counter_],
    k: int,
    max_lines: list[int],
) -> dict[str, Any]:
    rows = []
    for q in queries:
        row: dict[str, Any] = {"id": q["id"], "name": q["name"], "search_code": {}}
        for name, count in counters.items():
            row.setdefault("grep_n", {})[name] = grep.run(q["query"], q["path"], count, False)
            row.setdefault("grep_c", {})[name] = grep.run(q["query"], q["path"], count, True)
        for lines in max_lines:
            started = time.perf_counter()
            result = mcp.call("search_code", query=q["query"], k=k, repo=str(tree), max_lines=lines)
            seconds = time.perf_counter() - started
            assert not result.is_error, mcp.text(result)
            text = mcp.text(result)
            results = (result.structured_content or {})["results"]
            rank, read = search_cost(text, results, q)
            cell: dict[str, Any] = {"rank": rank, "seconds": round(seconds, 3)}
            for name, count in counters.items():
                fallback = row["grep_n"][name]["tokens"] if rank is None else 0
                cell[name] = {
                    "tokens": count(read) + fallback,
                    "answer_tokens": count(text),
                    "found": rank is not None or row["grep_n"][name]["found"],
                }
            row["search_code"][str(lines)] = cell
        rows.append(row)
    return {"per_query": rows, "summary": summarise(rows, counters, max_lines, k)}


def summarise(
    rows: list[dict[str, Any]], counters: dict[str, Counter_], max_lines: list[int], k: int
) -> dict[str, Any]:
    def stats(values: list[int]) -> dict[str, float]:
        return {
            "median": statistics.median(values),
            "mean": round(statistics.fmean(values), 1),
            "total": sum(values),
        }

    out: dict[str, Any] = {}
    for name in counters:
        entry: dict[str, Any] = {}
        for lines in max_lines:
            cells = [r["search_code"][str(lines)] for r in rows]
            ranks = [c["rank"] for c in cells]
            entry[f"search_code(max_lines={lines})"] = {
                **stats([c[name]["tokens"] for c in cells]),
                "found_in_top_k": sum(r is not None for r in ranks),
                "mrr": round(statistics.fmean(1 / r if r else 0 for r in ranks), 3),
                "answer_tokens_median": statistics.median(c[name]["answer_tokens"] for c in cells),
                "seconds_median": statistics.median(c["seconds"] for c in cells),
            }
        for base in ("grep_n", "grep_c"):
            cells = [r[base][name] for r in rows]
            entry[base] = {
                **stats([c["tokens"] for c in cells]),
                "found": sum(c["found"] for c in cells),
                "files_read_mean": round(statistics.fmean(c["files_read"] for c in cells), 1),
            }
        out[name] = entry
    out["queries"] = len(rows)
    out["k"] = k
    return out


# ---------------------------------------------------------------------- main


def tool_definition_tokens(mcp: McpClient, counters: dict[str, Counter_]) -> dict[str, int]:
    tools = [
        {"name": t.name, "description": t.description, "inputSchema": t.input_schema}
        for t in mcp.list_tools()
    ]
    text = json.dumps(tools)
    return {name: count(text) for name, count in counters.items()}


def print_table(variant: str, summary: dict[str, Any]) -> None:
    for name, entry in summary.items():
        if not isinstance(entry, dict):
            continue
        print(f"\n{variant} ({summary['queries']} queries, k={summary['k']}), tokens by {name}:")
        print(f"  {'strategy':28} {'median':>8} {'mean':>8} {'total':>8}  found")
        for strategy, s in entry.items():
            found = s.get("found_in_top_k", s.get("found"))
            extra = f"  mrr {s['mrr']}" if "mrr" in s else ""
            print(
                f"  {strategy:28} {s['median']:>8} {s['mean']:>8} {s['total']:>8}  "
                f"{found}/{summary['queries']}{extra}"
            )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", choices=("unstripped", "stripped", "both"), default="both")
    ap.add_argument("--queries", default=str(EVAL_DIR / "handwritten_requests.jsonl"))
    ap.add_argument("--eval-dir", default=str(EVAL_DIR))
    ap.add_argument("--prepared", default=str(PREPARED))
    ap.add_argument("--home", default="/tmp/codesearch-agent-bench")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--max-lines", default="12,5,30", help="search_code max_lines values")
    ap.add_argument("--bpe-path", help="a folder holding the bpe_openai package")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "agent_tokens.json"))
    args = ap.parse_args()

    corpus, run_eval = load_eval(Path(args.eval_dir))
    counters = tokenizers(args.bpe_path)
    max_lines = [int(v) for v in args.max_lines.split(",")]
    handwritten = corpus.read_jsonl(args.queries)
    variants = ["unstripped", "stripped"] if args.variant == "both" else [args.variant]
    base = Path(args.home)
    daemon = Daemon(base / "home").start()
    report: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "queries_file": args.queries,
        "tokenizers": list(counters),
        "grep_words": GREP_WORDS,
        "max_files_read": MAX_FILES_READ,
        "variants": {},
    }
    try:
        for variant in variants:
            for name in sorted({q["corpus"] for q in handwritten}):
                source = Path(args.prepared) / name / variant
                tree = base / "trees" / name / variant  # a copy: the daemon watches it
                if not tree.exists():
                    shutil.copytree(source, tree)
                info = {"removed": str(Path(args.prepared) / name / "removed.json")}
                mine = [q for q in handwritten if q["corpus"] == name]
                queries = run_eval.load_queries(info, variant, mine)
                started = time.perf_counter()
                daemon.add(tree)  # indexes it (kept in --home for the next run)
                index_s = time.perf_counter() - started
                with McpClient(daemon.settings.home, tree, ["--repo", str(tree)]) as mcp:
                    if "tool_definitions" not in report:
                        report["tool_definitions"] = tool_definition_tokens(mcp, counters)
                    grep = GrepAgent(tree, corpus)
                    result = measure(mcp, tree, queries, grep, counters, args.k, max_lines)
                result["index_or_update_s"] = round(index_s, 1)
                report["variants"][f"{name}/{variant}"] = result
                print_table(f"{name}/{variant}", result["summary"])
    finally:
        daemon.stop()
    print(f"\ntool definitions (tools/list, once per session): {report.get('tool_definitions')}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
