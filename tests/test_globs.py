"""The one glob dialect of every path filter (codesearch.globs): gitignore patterns, `!`
negation, `**` over zero folders, --exclude, the subfolder scope; and the daemon's and the
editor's checks of the same filters."""

from __future__ import annotations

from pathlib import Path

import pytest

from codesearch import globs
from codesearch.globs import any_path_matches, path_passes
from codesearch.types import BadInput, Filters

PATHS = [
    "tests/test_x.py",
    "tests/unit/test_y.py",
    "src/app/retry.py",
    "src/app/tests/test_retry.py",
    "src/tests/t.py",
    "lib/src/z.py",
    "vendor/lib.js",
    "setup.py",
    "README.md",
]


def kept(include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> list[str]:
    return [p for p in PATHS if path_passes(p, include, exclude)]


def test_no_patterns_keep_everything() -> None:
    assert kept() == PATHS
    assert kept(("/",)) == PATHS  # the whole repository


def test_double_star_matches_zero_folders() -> None:
    assert kept(("tests/**/test_*.py",)) == ["tests/test_x.py", "tests/unit/test_y.py"]
    assert kept(("**/test_*.py",)) == [
        "tests/test_x.py",
        "tests/unit/test_y.py",
        "src/app/tests/test_retry.py",
    ]


def test_a_name_pattern_matches_at_any_depth() -> None:
    assert kept(("*.js",)) == ["vendor/lib.js"]
    assert kept(("tests",)) == [
        "tests/test_x.py",
        "tests/unit/test_y.py",
        "src/app/tests/test_retry.py",
        "src/tests/t.py",
    ]
    assert kept(("setup.py",)) == ["setup.py"]


def test_folders_and_anchors() -> None:
    src = ["src/app/retry.py", "src/app/tests/test_retry.py", "src/tests/t.py"]
    assert kept(("src/",)) == [*src, "lib/src/z.py"]  # a folder named src, anywhere
    assert kept(("/src/",)) == src  # only the top one
    assert kept(("./src/",)) == src  # ./ anchors too
    assert kept(("src/app/",)) == src[:2]  # a / inside anchors the pattern at the root
    assert kept(("src/app",)) == src[:2]


def test_negation_alone_starts_from_everything() -> None:
    assert kept(("!tests/",)) == [
        "src/app/retry.py",
        "lib/src/z.py",
        "vendor/lib.js",
        "setup.py",
        "README.md",
    ]
    assert kept(("!tests/", "!*.md", "!vendor/")) == [
        "src/app/retry.py",
        "lib/src/z.py",
        "setup.py",
    ]


def test_negation_after_includes_the_last_match_decides() -> None:
    assert kept(("*.py", "!tests/")) == ["src/app/retry.py", "lib/src/z.py", "setup.py"]
    # a later include takes back what a negation dropped
    assert kept(("*.py", "!tests/", "tests/unit/")) == [
        "tests/unit/test_y.py",
        "src/app/retry.py",
        "lib/src/z.py",
        "setup.py",
    ]


def test_exclude_drops_whatever_the_includes_say() -> None:
    assert kept(exclude=("tests",)) == [
        "src/app/retry.py",
        "lib/src/z.py",
        "vendor/lib.js",
        "setup.py",
        "README.md",
    ]
    # tests/unit/ is included, but every tests folder is excluded
    assert kept(("*.py", "tests/unit/"), ("tests/",)) == [
        "src/app/retry.py",
        "lib/src/z.py",
        "setup.py",
    ]
    assert kept(("*.py",), ("**/test_*.py", "src/")) == ["setup.py"]


def test_any_path_matches_is_the_include_list() -> None:
    assert any_path_matches("a/b.py", ())
    assert any_path_matches("a/b.py", ("*.py",))
    assert not any_path_matches("a/b.py", ("!a/",))
    assert globs.filters_paths(Filters(exclude_globs=("x",)))
    assert not globs.filters_paths(Filters(path_globs=("/",)))


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("", "empty pattern"),
        ("!", "empty pattern"),
        ("src/[ab", "unclosed '['"),
        ("../lib/", "'..' cannot be used"),
        ("a/../b", "'..' cannot be used"),
        ("#notes", "comment"),
        ("x\\", "lone '\\'"),
        ("!/", "the whole repository"),
    ],
)
def test_malformed_patterns_are_one_line_errors(pattern: str, problem: str) -> None:
    with pytest.raises(BadInput, match=r"^--path ") as err:
        globs.check([pattern], "--path")
    assert problem in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(BadInput):  # the store refuses it too, never silently matching nothing
        path_passes("x.py", (pattern,))


def test_escapes_and_exclude_negation() -> None:
    globs.check(["a\\[b", "\\#x", "[ab]*.py", "x\\\\"], "--path")  # well formed
    assert path_passes("a[b", ("a\\[b",)) and not path_passes("ab", ("a\\[b",))
    with pytest.raises(BadInput, match="--exclude '!x': drops what it matches already"):
        globs.check(["!x"], "--exclude", negation=False)
    with pytest.raises(BadInput, match="whole repository"):
        globs.check(["/"], "--exclude", negation=False)


def test_scope_rebases_patterns_like_a_nested_gitignore() -> None:
    def scoped(include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> list[str]:
        f = globs.scope(Filters(path_globs=include, exclude_globs=exclude), "src/app")
        return kept(f.path_globs, f.exclude_globs)

    assert scoped() == ["src/app/retry.py", "src/app/tests/test_retry.py"]
    assert scoped(("*.py",)) == ["src/app/retry.py", "src/app/tests/test_retry.py"]
    assert scoped(("tests/",)) == ["src/app/tests/test_retry.py"]  # src/app/tests, not tests/
    assert scoped(("!tests/",)) == ["src/app/retry.py"]
    assert scoped(exclude=("test_*.py",)) == ["src/app/retry.py"]
    assert scoped(("/retry.py",)) == ["src/app/retry.py"]  # / anchors at the folder
    assert scoped(("setup.py",)) == []  # nothing outside the folder
    # --path / lifts the scope: the patterns are then relative to the root
    lifted = globs.scope(Filters(path_globs=("/", "tests/")), "src/app")
    assert lifted == Filters(path_globs=("/", "tests/"))
    assert globs.scope(Filters(path_globs=("*.py",)), "") == Filters(path_globs=("*.py",))


def test_scope_escapes_the_folder_name() -> None:
    f = globs.scope(Filters(), "we[ird]/d*r")
    assert path_passes("we[ird]/d*r/x.py", f.path_globs)
    assert not path_passes("wei/dxr/x.py", f.path_globs)


def test_folder_of(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert globs.folder_of(tmp_path, tmp_path / "a" / "b") == "a/b"
    assert globs.folder_of(tmp_path, tmp_path) == ""
    assert globs.folder_of(tmp_path / "a", tmp_path) == ""  # outside: no scope


def test_the_daemon_checks_the_new_filters() -> None:
    from codesearch.daemon.server import _search_options
    from codesearch.wire.base import parse
    from codesearch.wire.daemon import QueryParams

    def checked(params: dict[str, object]) -> QueryParams:  # as the daemon reads a request
        return parse(QueryParams, params, BadInput, dotted=False)

    options = _search_options(
        checked(
            {
                "filters": {
                    "path_globs": ["!tests/"],
                    "exclude_globs": ["*.md"],
                    "include_tests": False,
                }
            }
        )
    )
    assert options.filters == Filters(
        path_globs=("!tests/",), exclude_globs=("*.md",), include_tests=False
    )
    assert _search_options(checked({})).filters == Filters()
    for bad, message in [
        ({"exclude_globs": "x"}, "'exclude_globs' must be a list of strings"),
        ({"include_tests": "no"}, "'include_tests' must be true or false"),
        ({"path_globs": ["a["]}, "filters.path_globs 'a[': unclosed '['"),
        ({"exclude_globs": ["!a"]}, "filters.exclude_globs '!a'"),
    ]:
        with pytest.raises(BadInput, match="^" + message.replace("[", "\\[")):
            checked({"filters": bad})


def test_the_editor_params_take_the_new_filters() -> None:
    from lsp.params import InvalidParams, search_params, similar_arguments

    filters = {"exclude_globs": ["tests/"], "include_tests": False, "path_globs": ["*.py"]}
    given = search_params({"query": "q", "filters": filters}).filters
    assert given.model_dump(exclude_defaults=True) == filters
    given = similar_arguments(["file:///a.py", 3, {"filters": filters}]).filters
    assert given.model_dump(exclude_defaults=True) == filters
    for bad, message in [
        ({"include_tests": 1}, "'filters.include_tests' must be true or false"),
        ({"exclude_globs": [1]}, "'filters.exclude_globs' must be a list of strings"),
        ({"path_globs": ["../x"]}, "'..' cannot be used"),
    ]:
        with pytest.raises(InvalidParams, match=message.replace(".", "\\.")):
            search_params({"query": "q", "filters": bad})
