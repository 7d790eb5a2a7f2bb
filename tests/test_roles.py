"""codesearch.roles: test code, type stubs and changelogs by path and markers; query intent."""

from __future__ import annotations

import pytest

from codesearch.roles import (
    Role,
    asks_for_changes,
    asks_for_tests,
    has_test_markers,
    is_changelog_path,
    is_stub_path,
    is_test_path,
    role,
    stub_implementations,
)


@pytest.mark.parametrize(
    "path",
    [
        # Python
        "tests/test_core.py",
        "test_core.py",
        "pkg/core_test.py",
        "conftest.py",
        "src/pkg/tests/helpers.py",
        "test/util.py",
        # JS / TS
        "src/add.test.js",
        "src/add.spec.ts",
        "src/Button.test.tsx",
        "lib/__tests__/add.js",
        "packages/x/test/index.mjs",
        # Go
        "command_test.go",
        "doc/man_docs_test.go",
        # Rust
        "tests/integration.rs",
        # Java
        "src/test/java/org/x/ParserTest.java",
        "core/ParserTest.java",
        "core/ParserTests.java",
    ],
)
def test_test_paths_by_convention(path: str) -> None:
    assert is_test_path(path)
    assert role(path) is Role.TEST


@pytest.mark.parametrize(
    "path",
    [
        "src/click/testing.py",  # the library's test helpers are its code
        "src/contest.py",
        "src/attest.js",
        "latest/main.go",
        "src/protest_test_data.rs",
        "src/lib.rs",
        "test",  # a file named test (a script), not a folder
        "TestRunner.java",
        "src/testing/mod.rs",
    ],
)
def test_code_paths_are_not_tests(path: str) -> None:
    assert not is_test_path(path)
    assert role(path) is Role.CODE


def test_test_markers_per_language() -> None:
    assert has_test_markers("def test_parse():\n    assert parse('1') == 1\n", "python")
    assert has_test_markers("    async def test_fetch(client):\n        assert await x", "python")
    assert has_test_markers("def test_bad():\n    with pytest.raises(ValueError):\n", "python")
    assert has_test_markers("class TestParse(unittest.TestCase):\n    pass", "python")
    assert has_test_markers('describe("add", () => {\n  it("adds", () => {})\n})', "javascript")
    assert has_test_markers("test('adds', () => expect(add(1, 2)).toBe(3))", "typescript")
    assert has_test_markers("  it.only(`works`, () => {})", "tsx")
    assert has_test_markers("func TestParse(t *testing.T) {\n\tt.Fatal()\n}", "go")
    assert has_test_markers("func BenchmarkParse(b *testing.B) {}", "go")
    assert has_test_markers("    #[test]\n    fn parses() {}", "rust")
    assert has_test_markers("#[cfg(test)]\nmod tests {", "rust")
    assert has_test_markers("#[tokio::test]\nasync fn x() {}", "rust")
    assert has_test_markers("  @Test\n  public void parses() {}", "java")
    # unknown language: every language's markers
    assert has_test_markers("func TestX(t *testing.T) {}", "")


def test_code_that_looks_like_tests_is_code() -> None:
    assert not has_test_markers("def testing_mode():\n    return True", "python")
    assert not has_test_markers("def test(self, value):\n    return value > 0", "python")
    assert not has_test_markers("class TestClient:\n    def get(self): ...", "python")
    # a library method named test_* (networkx's matchers) asserts nothing
    matcher = (
        "    def test_one(self, predecessors, successors):\n        return all(p < s for p in x)"
    )
    assert not has_test_markers(matcher, "python")
    assert not has_test_markers("return reIsUint.test(value)", "javascript")
    assert not has_test_markers("const it = iter(); it(next)", "javascript")
    assert not has_test_markers('func TestHelper() string { return "" }', "go")
    assert not has_test_markers("#[derive(Debug)]\nstruct Test;", "rust")
    # prose never has markers: a testing guide's example is documentation
    assert not has_test_markers("```python\ndef test_hello():\n    ...\n```", "markdown")
    assert role("docs/testing.md", "def test_hello():\n", "markdown") is Role.CODE
    assert role("src/lib.rs", "#[cfg(test)]\nmod tests {", "rust") is Role.TEST


def test_stubs() -> None:
    assert is_stub_path("src/pkg/core.pyi")
    assert is_stub_path("types/index.d.ts")
    assert is_stub_path("lib/x.d.mts")
    assert not is_stub_path("src/pkg/core.py")
    assert not is_stub_path("src/index.ts")
    assert role("src/pkg/core.pyi", "def f(x: int) -> int: ...", "python") is Role.STUB
    assert stub_implementations("src/pkg/core.pyi") == ("src/pkg/core.py",)
    assert stub_implementations("lib/x.d.ts")[:3] == ("lib/x.ts", "lib/x.tsx", "lib/x.js")
    assert stub_implementations("lib/x.d.mts")[0] == "lib/x.mts"
    assert stub_implementations("lib/x.ts") == ()


@pytest.mark.parametrize(
    "path",
    [
        "CHANGELOG.md",
        "CHANGELOG",
        "docs/changelog.rst",
        "packages/a/CHANGELOG.md",
        "CHANGES.rst",
        "HISTORY.md",
        "NEWS",
        "NEWS.txt",
        "RELEASES.md",
        "release-notes.md",
        "docs/RELEASE_NOTES.rst",
        "changelog.d/123.bugfix.md",
        "docs/release-notes/2.0.md",
        "whatsnew.rst",
    ],
)
def test_changelogs(path: str) -> None:
    assert is_changelog_path(path)
    assert role(path, "- Fixed parse of `x`", "markdown") is Role.CHANGELOG


@pytest.mark.parametrize(
    "path", ["src/history.py", "prompt/history.ts", "news.go", "release.md", "src/changes/diff.py"]
)
def test_code_named_like_changelogs_is_code(path: str) -> None:
    assert not is_changelog_path(path)


@pytest.mark.parametrize(
    "query",
    [
        "test for parse_config",
        "tests of the retry logic",
        "where is parse_config tested",
        "where are the tests for redirects",
        "unit test for the session adapter",
        "integration tests covering login",
        "spec for the add function",
        "is the cache eviction tested anywhere",
        "pytest fixture that starts the server",
    ],
)
def test_questions_asking_for_tests(query: str) -> None:
    assert asks_for_tests(query)


@pytest.mark.parametrize(
    "query",
    [
        "turn an instance into a dict recursively",
        "where is the HTTP method switched to GET when following a 302 redirect",
        "how does the help page decide what text to show as an option's default",
        "check whether a string matches the pattern",
        "testing helpers that invoke a command and capture its output",
    ],
)
def test_code_questions_do_not_ask_for_tests(query: str) -> None:
    assert not asks_for_tests(query)


def test_questions_about_changes() -> None:
    assert asks_for_changes("what changed in the changelog for 2.0")
    assert asks_for_changes("release notes of the last version")
    assert asks_for_changes("when was the retry option deprecated in version 3")
    assert not asks_for_changes("turn an instance into a dict recursively")
    assert not asks_for_changes("where are the changes to the session merged")
