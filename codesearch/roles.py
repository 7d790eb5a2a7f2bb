"""What part a chunk plays in its repository: code, a test, a type stub or a changelog entry.

The searcher ranks tests below the code they exercise (unless the question asks for tests),
changelogs below code, and folds a type stub (``.pyi``, ``.d.ts``) into its implementation.
Everything here is decided from the path, the chunk's own text and name, and the question:
plain string work, cheap to import (no numpy, no tree-sitter), so every layer may use it.

Test code is recognised by the conventions of each language's test runners:

- by path: Python ``test_*.py``, ``*_test.py``, ``conftest.py``; JS/TS ``*.test.*``,
  ``*.spec.*``; Go ``*_test.go``; Java ``*Test.java``, ``*Tests.java``, ``src/test/``; and any
  file under a folder named ``test``, ``tests`` or ``__tests__`` (Python, JS/TS, Rust, ...);
- by markers in the chunk (code only, not prose): ``def test_...``/``class Test...``,
  ``describe("...", ...)``/``it(...)``/``test(...)`` blocks, ``func TestX(t *testing.T)``,
  ``#[test]``/``#[cfg(test)]``, ``@Test``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache


class Role(StrEnum):
    CODE = "code"
    TEST = "test"
    STUB = "stub"
    CHANGELOG = "changelog"


# -- paths -----------------------------------------------------------------------------------

TEST_FOLDERS = frozenset({"test", "tests", "__tests__"})
_TEST_FILE = re.compile(
    r"""^(?:
        test_.+\.py | .+_test\.py | conftest\.py          # Python (pytest)
      | .+\.(?:test|spec)\.[cm]?[jt]sx?                   # JS/TS (jest, mocha, vitest)
      | .+_test\.go                                       # Go
      | .+Tests?\.java | .+IT\.java                       # Java (JUnit, failsafe)
      | .+Tests?\.kt                                      # Kotlin
      | .+_spec\.rb | .+_test\.rb                         # Ruby
    )$""",
    re.X,
)
_STUB_FILE = re.compile(r"\.(?:pyi|d\.[cm]?ts)$")
# Unambiguous changelog names, whatever the extension (CHANGELOG.md, changelog.rst, ...)
_CHANGELOG_ANY = re.compile(r"^(?:change[-_]?log|release[-_]?notes)(?:\.[\w.-]+)?$", re.I)
# Names that are also plausible code modules (history.py, news.go): prose files only
_CHANGELOG_PROSE = re.compile(
    r"^(?:changes|history|news|releases|whats[-_]?new)(?:\.(?:md|markdown|rst|txt|adoc|org))?$",
    re.I,
)
_CHANGELOG_FOLDERS = frozenset(
    {"changelog", "changelog.d", "changes", "release-notes", "release_notes", "releasenotes"}
)
_PROSE_EXT = re.compile(r"(?:^|\.)(?:md|markdown|rst|txt|adoc|org)$|^[^.]+$", re.I)


def _parts(path: str) -> list[str]:
    return [p for p in path.replace("\\", "/").split("/") if p and p != "."]


@lru_cache(maxsize=1 << 16)
def is_test_path(path: str) -> bool:
    """A file that, by its language's conventions, holds tests (memoised: the store's test
    filter asks this of every file)."""
    parts = _parts(path)
    if not parts:
        return False
    if _TEST_FILE.match(parts[-1]):
        return True
    folders = parts[:-1]
    return any(p in TEST_FOLDERS for p in folders)  # src/test/ (Java) included


def is_stub_path(path: str) -> bool:
    """A type stub: Python ``.pyi`` or a TypeScript declaration file (``.d.ts``)."""
    return bool(_STUB_FILE.search(path))


def is_changelog_path(path: str) -> bool:
    """A changelog, history, news or release-notes file (in any folder)."""
    parts = _parts(path)
    if not parts:
        return False
    name = parts[-1]
    if _CHANGELOG_ANY.match(name) or _CHANGELOG_PROSE.match(name):
        return True
    folders = {p.lower() for p in parts[:-1]}
    return bool(folders & _CHANGELOG_FOLDERS) and bool(_PROSE_EXT.search(name))


def stub_implementations(path: str) -> tuple[str, ...]:
    """The files a stub describes, most likely first: ``a/b.pyi`` -> ``a/b.py``;
    ``lib/x.d.ts`` -> ``lib/x.ts``, ``lib/x.js``, ...; empty for a non-stub."""
    if path.endswith(".pyi"):
        return (path[:-1],)
    found = re.search(r"\.d\.([cm]?)ts$", path)
    if found is None:
        return ()
    base, m = path[: found.start()], found.group(1)
    return tuple(f"{base}.{ext}" for ext in (f"{m}ts", "tsx", f"{m}js", "jsx"))


# -- markers in a chunk ----------------------------------------------------------------------

_MARKERS: dict[str, re.Pattern[str]] = {
    "python": re.compile(
        r"^[ \t]*(?:async[ \t]+)?def[ \t]+test(?:_|[A-Z])\w*[ \t]*\("
        r"|^[ \t]*class[ \t]+Test\w*[ \t]*\([\w.]*TestCase\)",
        re.M,
    ),
    "go": re.compile(
        r"^func[ \t]+(?:Test|Benchmark|Fuzz)\w*\(\s*\w+\s+\*testing\.[TBF]\s*\)", re.M
    ),
    "rust": re.compile(r"^[ \t]*#\[(?:cfg\(test\)|(?:\w+::)*test)\]", re.M),
    "java": re.compile(r"^[ \t]*@(?:Test|ParameterizedTest|RepeatedTest)\b", re.M),
}
# Languages whose test markers are attributes above the signature (#[test], @Test): a long
# test split into parts carries them in its first part only.
MARKED_ABOVE = frozenset({"rust", "java", "kotlin"})
# Substrings every marker of a language contains (a cheap test before the regular expression).
_HINTS: dict[str, tuple[str, ...]] = {
    "python": ("def test", "Test"),
    "go": ("*testing.",),
    "rust": ("test",),
    "java": ("@",),
    "kotlin": ("@",),
    **{
        lang: ("describe", "it", "test", "suite", "context")
        for lang in ("javascript", "typescript", "tsx", "jsx")
    },
}
_ASSERTS = re.compile(r"\bassert|\bpytest\.|\bself\.fail\b|\braises\(")
_JS_MARKER = re.compile(
    r"^[ \t]*(?:describe|it|test|context|suite)(?:\.(?:only|skip|each\b.*?))?[ \t]*\([ \t]*['\"`]",
    re.M,
)
for _lang in ("javascript", "typescript", "tsx", "jsx"):
    _MARKERS[_lang] = _JS_MARKER
_MARKERS["kotlin"] = _MARKERS["java"]
_ANY_MARKER = re.compile(
    "|".join(f"(?:{p.pattern})" for p in dict.fromkeys(_MARKERS.values())), re.M
)


def has_test_markers(text: str, language: str = "") -> bool:
    """The chunk defines a test by its framework's markers. ``language`` "" (unknown):
    every language's markers are tried; prose (Markdown, text, ...) never has markers: a
    testing guide's example is not test code."""
    pattern = _MARKERS.get(language) if language else _ANY_MARKER
    hints = _HINTS.get(language, ())
    if pattern is None or (hints and not any(h in text for h in hints)):
        return False  # (a substring test first: the searcher asks this of every candidate)
    found = pattern.search(text)
    if found is None:
        return False
    if language == "python" and found.group().lstrip().startswith(("def", "async")):
        # pytest and unittest call any ``test*`` function a test; so may a library (a
        # matcher's ``test_one(self, pred, succ)``): a test asserts something
        return _ASSERTS.search(text) is not None
    return True


def role(path: str, text: str = "", language: str = "") -> Role:
    """The part a chunk (or, without ``text``, a file) plays."""
    by_path = path_role(path)
    if by_path in (Role.CHANGELOG, Role.TEST):
        return by_path
    if text and has_test_markers(text, language):
        return Role.TEST
    return by_path


@lru_cache(maxsize=1 << 16)
def path_role(path: str) -> Role:
    """The part a file plays by its path alone (memoised: a search asks for many chunks of
    the same files)."""
    if is_changelog_path(path):
        return Role.CHANGELOG
    if is_test_path(path):
        return Role.TEST
    if is_stub_path(path):
        return Role.STUB
    return Role.CODE


# -- the question ----------------------------------------------------------------------------

_ASKS_FOR_TESTS = re.compile(
    r"""\b(?:
        tests?\s+(?:for|of|that|which|covering|exercising|checking|verifying|about)\b
      | (?:unit|integration|regression|end[- ]to[- ]end|e2e|snapshot|smoke)[- ]?tests?\b
      | test\s+(?:cases?|suites?|files?|fixtures?|functions?|helpers?|coverage)\b
      | tested\b | untested\b
      | specs?\s+(?:for|of)\b | test\s+specs?\b
      | \bwhere\b.*\btests\b | \bthe\s+tests\b
      | (?:conftest|pytest|unittest|jest|mocha|vitest)\b
    )""",
    re.X | re.I,
)


def asks_for_tests(query: str) -> bool:
    """The question is about tests ("test for X", "where is X tested", "unit tests of")."""
    return _ASKS_FOR_TESTS.search(query) is not None


_ASKS_FOR_CHANGES = re.compile(
    r"""\b(?:
        change[-\s]?logs? | release\s+notes? | what(?:'s|\s+is)?\s+new\b | what\s+changed
      | history\s+of | breaking\s+changes? | news\s+(?:file|entry)
      | (?:added|changed|removed|deprecated|introduced|fixed)\s+in\s+(?:v(?:ersion)?\s*)?\d
      | (?:since|in)\s+(?:v|version\s*)\d | version\s+\d+(?:\.\d+)+
    )""",
    re.X | re.I,
)


def asks_for_changes(query: str) -> bool:
    """The question is about a project's history ("what changed in 2.0", "changelog entry for
    X", "when was Y deprecated in version 3"): changelogs are then answers, not noise."""
    return _ASKS_FOR_CHANGES.search(query) is not None
