"""How many of the top-10 results are tests, type stubs or changelogs, per corpus and variant.

Reads the raw search outputs that an eval run saved (one JSON object per query per line, as
``codesearch search --json --batch`` prints them), named ``{corpus}-{variant}.jsonl``:

    python benchmarks/roles_top10.py /tmp/evb/raw [/tmp/other/raw ...]

A result's role comes from :mod:`codesearch.roles`: its path, and its snippet for test
markers (``def test_``, ``describe(``, ``#[test]``, ...). Several folders: one table each,
so a run before a change and one after can be read side by side.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from codesearch.roles import Role, role

TOP = 10
VARIANTS = ("stripped", "unstripped")


def _split_name(stem: str) -> tuple[str, str]:
    for variant in VARIANTS:
        if stem.endswith(f"-{variant}"):
            return stem[: -len(variant) - 1], variant
    return stem, ""


def count_roles(path: Path) -> tuple[int, int, Counter[Role]]:
    """(queries, results read, results per role) over the top 10 of each query."""
    queries = results = 0
    roles: Counter[Role] = Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("{"):
            continue
        queries += 1
        for hit in json.loads(line).get("results", [])[:TOP]:
            results += 1
            text = str(hit.get("snippet", ""))
            roles[role(str(hit["path"]), text, str(hit.get("language", "")))] += 1
    return queries, results, roles


def table(folder: Path) -> list[str]:
    rows = [
        f"## {folder}",
        "",
        "| corpus | variant | queries | results | tests | stubs | changelogs |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    total: Counter[Role] = Counter()
    all_results = 0
    for path in sorted(folder.glob("*.jsonl")):
        corpus, variant = _split_name(path.stem)
        queries, results, roles = count_roles(path)
        total.update(roles)
        all_results += results
        rows.append(
            f"| {corpus} | {variant} | {queries} | {results} | {roles[Role.TEST]} | "
            f"{roles[Role.STUB]} | {roles[Role.CHANGELOG]} |"
        )
    rows.append(
        f"| all | | | {all_results} | {total[Role.TEST]} | {total[Role.STUB]} | "
        f"{total[Role.CHANGELOG]} |"
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="folders of {corpus}-{variant}.jsonl")
    args = parser.parse_args(argv)
    for folder in args.folders:
        print("\n".join(table(folder)))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
