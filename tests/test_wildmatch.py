"""The one glob dialect (codesearch.wildmatch): pathspec's translation, with git's reading where
pathspec parts from it. Each case is checked three ways: the walk's ignore rules, a `--path`
filter (a pattern keeps what a .gitignore with it ignores), and git itself."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from codesearch import globs, ignore
from codesearch.config import Settings
from codesearch.paths import walk
from codesearch.types import BadInput
from codesearch.wildmatch import compile_glob, trim

HAS_GIT = shutil.which("git") is not None


@dataclass(frozen=True)
class Case:
    gitignore: str  # the whole file
    files: tuple[str, ...]
    ignored: frozenset[str]  # what git ignores
    why: str  # where the old hand-written matcher or pathspec alone read it otherwise
    path_filter: bool = True  # one line `--path` accepts too


CASES = [
    # the old matcher disagreed with git
    Case("[[:punct:]]x.py\n", ("-x.py", "_x.py", "ax.py"), frozenset({"-x.py", "_x.py"}), "old"),
    Case("x.txt\t\n", ("x.txt\t", "x.txt"), frozenset({"x.txt\t"}), "old: stripped the tab"),
    Case("a\\\\ \n", ("a\\", "a\\ "), frozenset({"a\\"}), "old: kept the space"),
    Case("[z-a]x\n", ("zx", "ax", "mx"), frozenset({"zx"}), "old: dropped the pattern"),
    Case("x\\\n", ("x",), frozenset(), "old: ignored x", path_filter=False),
    Case(
        "a\rb\nq\r\n",
        ("a", "b", "a\rb", "q", "q\r"),
        frozenset({"a\rb", "q"}),
        "old: split at \\r",
        False,
    ),
    # pathspec 1.1 alone disagrees with git
    Case(
        "src/**/a[!b]c\n",
        ("src/a/c", "src/azc", "src/q/abc", "src/q/azc"),
        frozenset({"src/azc", "src/q/azc"}),
        "pathspec: a bracket matches /",
    ),
    Case(
        "**/test[!_]*.py\n",
        ("x/test/a.py", "x/testa.py", "test_b.py"),
        frozenset({"x/testa.py"}),
        "pathspec: a bracket matches /",
    ),
    Case("[\\]]x\n", ("]x", "\\x", "\\]x"), frozenset({"]x"}), "pathspec: no escapes in brackets"),
    Case("[[:digit:]]z.py\n", ("1z.py", "zz.py"), frozenset({"1z.py"}), "pathspec: no POSIX class"),
    Case(
        "****/d\n", ("d/f", "x/d/f", "xd/f"), frozenset({"d/f", "x/d/f"}), "pathspec: `****` is *"
    ),
    Case("d/**/\n", ("d/f", "d/e/f", "x/d/e/f"), frozenset({"d/e/f"}), "pathspec: d/**/ is d/"),
    Case("a\\/b\n", ("a/b", "ab"), frozenset({"a/b"}), "pathspec: an error"),
]


def write(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def make(root: Path, case: Case) -> None:
    write(root, ".gitignore", case.gitignore.encode())
    for rel in case.files:
        write(root, rel, b"x\n")


def kept(case: Case) -> list[str]:
    return sorted({".gitignore", *case.files} - case.ignored)


@pytest.mark.parametrize("case", CASES, ids=lambda c: repr(c.gitignore))
def test_the_walk_reads_ignore_files_as_git_does(tmp_path: Path, case: Case) -> None:
    (tmp_path / ".git").mkdir()
    make(tmp_path, case)
    found = walk(tmp_path, Settings(home=tmp_path / ".git" / "home"))
    assert [f.path for f in found.files] == kept(case), case.why


@pytest.mark.parametrize("case", [c for c in CASES if c.path_filter], ids=lambda c: c.gitignore)
def test_a_path_filter_keeps_what_the_same_gitignore_line_ignores(case: Case) -> None:
    pattern = case.gitignore.removesuffix("\n")
    globs.check([pattern], "--path")
    assert {f for f in case.files if globs.path_passes(f, (pattern,))} == case.ignored, case.why


def git_kept(root: Path) -> list[str]:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    run = {"cwd": root, "env": env, "capture_output": True, "check": True}
    subprocess.run(["git", "init", "-q"], **run)  # type: ignore[call-overload]
    listed = subprocess.run(  # type: ignore[call-overload]
        ["git", "ls-files", "--others", "--exclude-standard", "-z"], **run
    ).stdout.decode()
    return sorted(p for p in listed.split("\0") if p)


@pytest.mark.skipif(not HAS_GIT, reason="git is not installed")
@pytest.mark.parametrize("case", CASES, ids=lambda c: repr(c.gitignore))
def test_the_cases_are_what_git_does(tmp_path: Path, case: Case) -> None:
    make(tmp_path, case)
    assert git_kept(tmp_path) == kept(case)


TREE = (
    "setup.py",
    "README.md",
    "src/app.py",
    "src/app/retry.py",
    "src/app/tests/test_retry.py",
    "lib/src/z.py",
    "tests/test_x.py",
    "tests/unit/test_y.py",
    "docs/draft.md",
    "docs/a/b/draft.md",
)
GLOBS = [
    "*.py",
    "src/",
    "/src/",
    "src",
    "src/*",
    "src/**/*.py",
    "tests/**/test_*.py",
    "**/tests",
    "docs/**/draft.md",
    "src/app/",
    "*/app.py",
    "[st]*/",
    "?etup.py",
]


@pytest.mark.skipif(not HAS_GIT, reason="git is not installed")
@pytest.mark.parametrize("pattern", GLOBS)
def test_a_path_glob_means_what_it_means_in_a_gitignore(tmp_path: Path, pattern: str) -> None:
    make(tmp_path, Case(pattern + "\n", TREE, frozenset(), ""))
    ignored_by_git = set(TREE) - set(git_kept(tmp_path))
    assert {f for f in TREE if globs.path_passes(f, (pattern,))} == ignored_by_git


def test_src_star_is_everything_below_src_as_in_a_gitignore() -> None:
    # (before the one dialect, `--path 'src/*'` kept only the files directly in src)
    assert globs.path_passes("src/app/retry.py", ("src/*",))
    assert not globs.path_passes("src", ("src/*",))


@pytest.mark.parametrize(
    "line", ["[[:bogus:]]x", "a[b", "\\/x", "x\\", "", "   ", "# note", "/", "!", "[\U000f0000]"]
)
def test_lines_git_matches_nothing_with(line: str) -> None:
    assert ignore.parse_line(line) is None
    assert compile_glob(trim(line)) is None


def test_an_unknown_class_is_a_one_line_error_for_a_path_filter() -> None:
    with pytest.raises(BadInput, match=r"^--path '\[\[:bogus:\]\]': git's wildmatch matches"):
        globs.check(["[[:bogus:]]"], "--path")


def test_a_pattern_matches_the_entry_itself_not_only_a_folder_above() -> None:
    pattern = ignore.parse_line("docs/build")
    assert pattern is not None
    assert pattern.matches("docs/build", "build", is_dir=True)
    assert not pattern.matches("docs/build/x.py", "x.py", is_dir=False)  # decided above it
    folders = ignore.parse_line("logs/")
    assert folders is not None and folders.matches("a/logs", "logs", is_dir=True)
    assert not folders.matches("a/logs", "logs", is_dir=False)


def test_trim_is_gits_trailing_space_rule() -> None:
    assert trim("a  ") == "a"
    assert trim("a\\ ") == "a\\ "
    assert trim("a\\  ") == "a\\ "
    assert trim("a\\\\ ") == "a\\\\"
    assert trim("a\t") == "a\t"
