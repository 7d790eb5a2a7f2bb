"""The terminal face's scoping for `search` and `similar`: the filters the flags ask for
(--lang, --path, --exclude, --kind, --no-tests), and which repositories and which part of them a
search covers (--repo, repeatable; --all-repos; --repo-wide; the current folder).

Run from a subfolder of a repository (no --repo, no --all-repos), a search covers that folder
only and its --path / --exclude patterns are relative to it (`codesearch.globs.scope`);
--repo-wide or --path / lifts that. Cheap to import (no torch, no numpy).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from codesearch import globs, printable
from codesearch.cli_output import Found
from codesearch.types import BadInput, Filters, Hit

if TYPE_CHECKING:
    from codesearch.config import Settings
    from codesearch.search import SearchOptions
    from codesearch.wire import daemon as wire


def filters_from(args: argparse.Namespace) -> Filters:
    """The filters of the flags, their patterns checked (one line for a malformed one)."""
    globs.check(args.path, "--path")
    globs.check(args.exclude, "--exclude", negation=False)
    return Filters(
        tuple(args.lang),
        tuple(args.path),
        tuple(args.kind),
        exclude_globs=tuple(args.exclude),
        include_tests=not args.no_tests,
    )


def filters_wire(filters: Filters) -> wire.Filters:
    """The filters as the daemon's ``filters`` object."""
    from codesearch.wire import daemon as wire

    return wire.Filters(
        languages=list(filters.languages),
        path_globs=list(filters.path_globs),
        kinds=list(filters.kinds),
        exclude_globs=list(filters.exclude_globs),
        include_tests=filters.include_tests,
    )


@dataclass(frozen=True)
class Target:
    """What a search covers: the repositories named (none: the one holding the current
    folder), or every registered one; and the folder it is scoped to, if any."""

    repos: tuple[Path, ...] = ()
    all_repos: bool = False
    scope: Path | None = None  # the current folder, when the search is scoped to it

    @property
    def multi(self) -> bool:
        return self.all_repos or len(self.repos) > 1

    def params(self) -> dict[str, object]:
        """The daemon request's part that says where to search (``wire.SearchParams``)."""
        if self.all_repos:
            return {"all_repos": True}
        if self.multi:
            return {"repos": [str(r) for r in self.repos]}
        return {
            "repo": str(self.repos[0]) if self.repos else None,
            "cwd": str(Path.cwd()),
            "scope": str(self.scope) if self.scope is not None else None,
        }


def target(args: argparse.Namespace) -> Target:
    from codesearch.paths import resolve_root

    named = args.repo or []
    if args.all_repos and named:
        raise BadInput("--all-repos searches every registered repository: drop --repo")
    repos = tuple(dict.fromkeys(resolve_root(Path(r)) for r in named))
    scoped = not (repos or args.all_repos or args.repo_wide)
    return Target(repos, args.all_repos, Path(os.path.realpath(Path.cwd())) if scoped else None)


def registered(settings: Settings) -> list[Path]:
    """The repositories the daemon watches (its list in the data dir)."""
    from codesearch.daemon import registry
    from codesearch.daemon.runtime import runtime

    roots = registry.load(runtime(settings).repos)
    if not roots:
        raise BadInput("no repositories are registered: `codesearch add PATH` registers one")
    return roots


def from_daemon(answer: wire.SearchResult, multi: bool) -> Found:
    """The daemon's answer to a search as :class:`Found`."""
    root = Path(answer.repo)
    results = [
        [(Path(h.repo) if multi and h.repo else root, h.to_hit()) for h in one]
        for one in answer.results
    ]
    return Found(results, multi)


def search_here(
    where: Target,
    settings: Settings,
    queries: list[str],
    options: SearchOptions,
    model: str | None,
) -> Found:
    """The search in this process (no daemon): one repository, or several merged by score."""
    from dataclasses import replace

    from codesearch.engine import locate_repo
    from codesearch.ranked import search_several

    if not where.multi:
        root = where.repos[0] if where.repos else locate_repo(Path.cwd(), settings)
        if where.scope is not None:
            options = replace(options, filters=globs.scoped_to(options.filters, root, where.scope))
        return Found.of(root, _search_one(root, settings, queries, options, model))

    def skipped(root: Path, exc: Exception) -> None:
        print(printable.name(f"codesearch: skipped {root}: {exc}"), file=sys.stderr)

    merged = search_several(
        list(where.repos) or registered(settings),
        lambda root: _search_one(root, settings, queries, options, model),
        len(queries),
        options.k,
        lambda hit: hit.score,
        skipped if where.all_repos else None,
    )
    return Found(merged, multi=True)


def _search_one(
    root: Path,
    settings: Settings,
    queries: list[str],
    options: SearchOptions,
    model: str | None,
) -> list[list[Hit]]:
    from codesearch.engine import RepoSearch

    with RepoSearch(root, settings, model=model) as repo:
        results = repo.search_many(queries, options)
        if repo.searcher.outage:
            print(
                f"codesearch: {repo.searcher.outage}: these results match keywords only",
                file=sys.stderr,
            )
        return results
