"""One ranked list from several repositories' answers: the search of several repositories
(the daemon's ``repos`` / ``all_repos``, the CLI's in-process --repo A --repo B), and the
language server's merge of its workspace folders. Cheap to import (standard library only)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import TypeVar

from codesearch.types import BadInput, CodesearchError

T = TypeVar("T")


def merge_ranked(
    parts: Sequence[tuple[Path, list[list[T]]]],
    queries: int,
    k: int,
    score: Callable[[T], float],
    key: Callable[[T], Hashable | None] | None = None,
) -> list[list[tuple[Path, T]]]:
    """One ranked list per query from the answers of several repositories (``parts``: each
    root with its hits per query, best first): the ``k`` best by score overall, each with its
    root; ties keep the repositories' order, then each one's own ranks. With ``key``, a hit
    whose key was seen already is left out (one chunk reached through two nested folders; a
    key of None is never a repeat). Scores are normalised within each repository's answer, so
    across repositories they compare only roughly."""
    merged: list[list[tuple[Path, T]]] = []
    for q in range(queries):
        pool = [(root, hit) for root, results in parts for hit in results[q]]
        pool.sort(key=lambda pair: -score(pair[1]))  # stable
        if key is not None:
            seen: set[Hashable] = set()
            unique = []
            for pair in pool:
                mark = key(pair[1])
                if mark is None or mark not in seen:
                    seen.add(mark)
                    unique.append(pair)
            pool = unique
        merged.append(pool[:k])
    return merged


def search_several(
    roots: Sequence[Path],
    search_one: Callable[[Path], list[list[T]]],
    queries: int,
    k: int,
    score: Callable[[T], float],
    skipped: Callable[[Path, CodesearchError], None] | None = None,
) -> list[list[tuple[Path, T]]]:
    """Search each of ``roots`` (``search_one``: its hits per query, best first) and merge the
    answers (:func:`merge_ranked`). With ``skipped`` a repository that cannot answer (no index
    yet, another model) is reported to it and left out; without, its error is raised. A bad
    request (BadInput) is always raised."""
    parts: list[tuple[Path, list[list[T]]]] = []
    for root in roots:
        try:
            parts.append((root, search_one(root)))
        except BadInput:
            raise
        except CodesearchError as exc:
            if skipped is None:
                raise
            skipped(root, exc)
    return merge_ranked(parts, queries, k, score)
