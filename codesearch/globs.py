"""The one glob dialect of every path filter (``--path``, ``--exclude``, the MCP ``path_glob``,
the daemon's and the editor's ``path_globs`` / ``exclude_globs``): gitignore patterns, read as
git reads an ignore file (:mod:`codesearch.wildmatch`, :mod:`pathspec`), matched against paths
relative to the repository root.

Semantics (documented in the README):
- the include patterns are a list read like a ``.gitignore``: a path is kept when the last
  pattern that matches it is not a ``!`` pattern; a list of ``!`` patterns only starts from
  "everything" (``--path '!tests/'``: all but the tests);
- an exclude pattern P drops what P matches (as ``!P`` after the includes);
- a pattern without ``/`` (or with a trailing one only) matches a file or folder name at any
  depth (``*.py``, ``tests``, ``tests/``); any other ``/`` anchors it at the root (``src/app/``,
  ``/README.md``); ``**`` matches zero or more folders (``tests/**/test_*.py`` matches
  ``tests/test_x.py``); a folder matches everything under it.

A search from a subfolder is scoped to it (:func:`scope`): its patterns are taken relative to
that folder, as a ``.gitignore`` placed there would be (git's own rule for nested ignore files).
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from pathspec import PathSpec, RegexPattern

from codesearch.types import BadInput, Filters
from codesearch.wildmatch import compile_glob, trim

EVERYTHING = "**"
WHOLE_REPO = "/"  # as a --path: the whole repository (lifts a subfolder's scope)
_SPECIAL = re.compile(r"([*?\[\]\\!#])")


def _is_negated(pattern: str) -> bool:
    return pattern.startswith("!")


def check(patterns: tuple[str, ...] | list[str], flag: str, *, negation: bool = True) -> None:
    """Raise BadInput, one line, for the first malformed pattern (``flag`` names its source)."""
    for pattern in patterns:
        problem = _problem(pattern, negation)
        if problem:
            raise BadInput(f"{flag} {pattern!r}: {problem}")


def _problem(pattern: str, negation: bool) -> str:
    body = pattern[1:] if _is_negated(pattern) else pattern
    if _is_negated(pattern) and not negation:
        return "drops what it matches already: give it without '!' (or use --path '!...')"
    if not body.strip():
        return "an empty pattern matches nothing"
    if body == WHOLE_REPO:
        ok = negation and not _is_negated(pattern)
        return "" if ok else "'/' is the whole repository: only `--path /` can name it"
    if body.startswith("#"):
        return "a pattern starting with '#' is a comment in gitignore syntax: write '\\#'"
    if ".." in body.strip("/").split("/"):
        return "'..' cannot be used: patterns are paths inside the repository (try --repo-wide)"
    if re.search(r"(?<!\\)(\\\\)*\\$", body):
        return "ends with a lone '\\' (escape a backslash as '\\\\')"
    unclosed = re.sub(r"\\.", "", body)  # escaped characters are literals
    if re.search(r"\[[^\]]*$", unclosed):
        return "unclosed '[' (a character class needs a ']'; a literal '[' is '\\[')"
    if compile_glob(trim(pattern)) is None:
        return "git's wildmatch matches nothing with it (an unknown [:class:]?)"
    return ""


def _normal(pattern: str) -> str:
    """``./x`` is ``/x``: anchored where the search starts."""
    negated = _is_negated(pattern)
    body = pattern[1:] if negated else pattern
    if body.startswith("./"):
        body = "/" + body[2:].lstrip("/")
    return f"!{body}" if negated else body


@lru_cache(maxsize=256)
def _spec(include: tuple[str, ...], exclude: tuple[str, ...]) -> PathSpec | None:
    check(include, "path glob")
    check(exclude, "exclude glob", negation=False)
    lines = [_normal(p) for p in include if p != WHOLE_REPO]
    lines += [f"!{_normal(p)}" for p in exclude]
    if not lines:
        return None
    if all(_is_negated(p) for p in lines):
        lines.insert(0, EVERYTHING)
    globs = [glob for line in lines if (glob := compile_glob(trim(line)))]
    # a plain PathSpec: the last matching pattern decides (pathspec's GitIgnoreSpec would let a
    # file pattern win over a later folder pattern, as git does for ignore files: `*.py` then
    # `!tests/` would keep the tests); "simple": the regexes use `(?!/)`, which re2 lacks
    patterns = [RegexPattern(glob.regex, not glob.negated) for glob in globs]
    return PathSpec(patterns, backend="simple")


def path_passes(path: str, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> bool:
    """``path`` (relative to the repository root, POSIX) passes the include list ``include``
    and none of ``exclude`` matches it. Both empty: every path passes."""
    spec = _spec(tuple(include), tuple(exclude))
    return spec is None or spec.match_file(path)


def any_path_matches(path: str, patterns: tuple[str, ...]) -> bool:
    """``path`` passes the include list ``patterns`` (empty: every path)."""
    return path_passes(path, tuple(patterns))


def filters_paths(filters: Filters) -> bool:
    """Whether the filters restrict paths at all."""
    return bool([p for p in filters.path_globs if p != WHOLE_REPO] or filters.exclude_globs)


def lifts_scope(patterns: tuple[str, ...] | list[str]) -> bool:
    """``--path /`` among the patterns: search the whole repository from a subfolder."""
    return WHOLE_REPO in patterns


def _escape(folder: str) -> str:
    return _SPECIAL.sub(r"\\\1", folder)


def rebase(pattern: str, folder: str) -> str:
    """``pattern`` written relative to ``folder`` (repository-relative, POSIX, no trailing
    ``/``), rewritten relative to the repository root, the way git reads a nested
    ``.gitignore``: a name pattern matches at any depth below the folder, an anchored one
    from the folder."""
    negated = _is_negated(pattern)
    body = pattern[1:] if negated else pattern
    base = "/" + _escape(folder.strip("/"))
    if body.startswith("/"):
        body = base + body
    elif body.startswith("./"):
        body = base + body[1:]
    elif "/" in body.rstrip("/"):
        body = f"{base}/{body}"
    else:
        body = f"{base}/**/{body}"
    return f"!{body}" if negated else body


def scope(filters: Filters, folder: str) -> Filters:
    """``filters`` as given from ``folder`` (repository-relative): results only under the
    folder, path patterns relative to it. ``folder`` "" or ".": the filters unchanged; a
    ``--path /`` among them: the whole repository, patterns relative to the root."""
    folder = folder.strip("/")
    if folder in ("", ".") or lifts_scope(filters.path_globs):
        return filters
    include = tuple(rebase(p, folder) for p in filters.path_globs)
    exclude = tuple(rebase(p, folder) for p in filters.exclude_globs)
    if not any(not _is_negated(p) for p in include):  # nothing included yet: the folder
        include = (f"/{_escape(folder)}/", *include)
    return replace(filters, path_globs=include, exclude_globs=exclude)


def scoped_to(filters: Filters, root: Path, folder: Path) -> Filters:
    """``filters`` of a search of the repository ``root`` run from ``folder`` (an absolute
    path): :func:`scope` to the folder's place in the repository."""
    return scope(filters, folder_of(root, folder))


def folder_of(root: Path, folder: Path) -> str:
    """``folder`` relative to the repository ``root`` (POSIX), the scope of a search run from
    it; "" when it is the root itself or lies outside it."""
    top, here = os.path.realpath(root), os.path.realpath(folder)
    if not here.startswith(top.rstrip(os.sep) + os.sep):
        return ""
    return Path(os.path.relpath(here, top)).as_posix()
