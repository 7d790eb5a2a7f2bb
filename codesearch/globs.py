"""Path-glob matching for the ``--path`` filter, shared by the store and the searcher.

Semantics (documented in the README):
- a pattern with no ``/`` matches the file name or any directory name on the path
  (``--path '*.py'``, ``--path tests``);
- a pattern with ``/`` matches the whole relative path; ``*`` and ``**`` cross ``/``;
- a pattern ending in ``/`` matches everything under that directory.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from functools import lru_cache


@lru_cache(maxsize=256)
def _normalise(pattern: str) -> str:
    pattern = pattern.strip().replace("\\", "/")
    while pattern.startswith("./"):
        pattern = pattern[2:]
    return pattern.replace("**", "*")


def path_matches(path: str, pattern: str) -> bool:
    pattern = _normalise(pattern)
    if not pattern:
        return True
    if pattern.endswith("/"):
        return path.startswith(pattern) or fnmatchcase(path, pattern + "*")
    if "/" not in pattern:
        return any(fnmatchcase(part, pattern) for part in path.split("/"))
    return fnmatchcase(path, pattern) or fnmatchcase(path, pattern.rstrip("/") + "/*")


def any_path_matches(path: str, patterns: tuple[str, ...]) -> bool:
    return not patterns or any(path_matches(path, p) for p in patterns)
