"""Roles and the "no good match" signal through a real index (tree-sitter, sqlite-vec, the
packaged MiniLM): code before its tests, tests first when asked for, a stub folded into its
implementation, changelogs below code, ``include_tests=False``, and ``Hit.confident``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codesearch.config import Settings, load_settings
from codesearch.engine import RepoSearch, index_repo
from codesearch.roles import Role, role
from codesearch.search import Fusion, SearchOptions
from codesearch.types import Filters, Hit
from codesearch.wire.hits import Hit as WireHit

CONVERT = '''\
"""Converting model instances to plain data."""


def instance_to_dict(obj, recurse=True):
    """The attributes of ``obj`` as a mapping; nested objects are expanded as well."""
    out = {}
    for key, value in vars(obj).items():
        if recurse and hasattr(value, "__dict__"):
            value = instance_to_dict(value, recurse)
        out[key] = value
    return out


def parse_duration(text):
    """Parse a duration like '1h30m' into seconds."""
    total, number = 0, ""
    for char in text:
        if char.isdigit():
            number += char
        else:
            total += int(number) * {"h": 3600, "m": 60, "s": 1}[char]
            number = ""
    return total
'''

CONVERT_STUB = """\
from typing import Any, overload

@overload
def instance_to_dict(obj: object) -> dict[str, Any]: ...
@overload
def instance_to_dict(obj: object, recurse: bool) -> dict[str, Any]: ...
def parse_duration(text: str) -> int: ...
"""

NATIVE_STUB = '''\
def checksum_of_bytes(data: bytes) -> int:
    """Compute a fast CRC32 checksum of a bytes buffer (implemented in C)."""
'''

TESTS = """\
from shapes.convert import instance_to_dict


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y


def test_turn_an_instance_into_a_dict():
    assert instance_to_dict(Point(1, 2)) == {"x": 1, "y": 2}


def test_turn_an_instance_into_a_dict_recursively():
    assert instance_to_dict(Point(Point(1, 2), 3)) == {"x": {"x": 1, "y": 2}, "y": 3}


def test_instance_to_dict_without_recursion_keeps_nested_instances():
    inner = Point(1, 2)
    assert instance_to_dict(Point(inner, 3), recurse=False)["x"] is inner


def test_instance_to_dict_of_an_empty_instance():
    assert instance_to_dict(object.__new__(Point)) == {}
"""

SELF_CHECK = """\
from shapes.convert import instance_to_dict


def test_instance_to_dict_round_trip():
    assert instance_to_dict(instance_to_dict) is not None
"""

CHANGELOG = """\
# Changelog

## 2.1.0

- `instance_to_dict` can now turn an instance into a dict recursively: nested instances are
  converted too (pass `recurse=False` for the old behaviour).

## 2.0.0

- `parse_duration` accepts hours.
"""

RUST = """\
/// CRC-32 of a byte slice (the IEEE polynomial), bit by bit.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_of_every_case_in_the_table() {
        assert_eq!(crc32(b"case number 0 of the table"), crc32(&table_case(0)));
        assert_eq!(crc32(b"case number 1 of the table"), crc32(&table_case(1)));
        assert_eq!(crc32(b"case number 2 of the table"), crc32(&table_case(2)));
        assert_eq!(crc32(b"case number 3 of the table"), crc32(&table_case(3)));
        assert_eq!(crc32(b"case number 4 of the table"), crc32(&table_case(4)));
        assert_eq!(crc32(b"case number 5 of the table"), crc32(&table_case(5)));
        assert_eq!(crc32(b"case number 6 of the table"), crc32(&table_case(6)));
        assert_eq!(crc32(b"case number 7 of the table"), crc32(&table_case(7)));
        assert_eq!(crc32(b"case number 8 of the table"), crc32(&table_case(8)));
        assert_eq!(crc32(b"case number 9 of the table"), crc32(&table_case(9)));
        assert_eq!(crc32(b"case number 10 of the table"), crc32(&table_case(10)));
        assert_eq!(crc32(b"case number 11 of the table"), crc32(&table_case(11)));
        assert_eq!(crc32(b"case number 12 of the table"), crc32(&table_case(12)));
        assert_eq!(crc32(b"case number 13 of the table"), crc32(&table_case(13)));
        assert_eq!(crc32(b"case number 14 of the table"), crc32(&table_case(14)));
        assert_eq!(crc32(b"case number 15 of the table"), crc32(&table_case(15)));
        assert_eq!(crc32(b"case number 16 of the table"), crc32(&table_case(16)));
        assert_eq!(crc32(b"case number 17 of the table"), crc32(&table_case(17)));
        assert_eq!(crc32(b"case number 18 of the table"), crc32(&table_case(18)));
        assert_eq!(crc32(b"case number 19 of the table"), crc32(&table_case(19)));
        assert_eq!(crc32(b"case number 20 of the table"), crc32(&table_case(20)));
        assert_eq!(crc32(b"case number 21 of the table"), crc32(&table_case(21)));
        assert_eq!(crc32(b"case number 22 of the table"), crc32(&table_case(22)));
        assert_eq!(crc32(b"case number 23 of the table"), crc32(&table_case(23)));
        assert_eq!(crc32(b"case number 24 of the table"), crc32(&table_case(24)));
        assert_eq!(crc32(b"case number 25 of the table"), crc32(&table_case(25)));
        assert_eq!(crc32(b"case number 26 of the table"), crc32(&table_case(26)));
        assert_eq!(crc32(b"case number 27 of the table"), crc32(&table_case(27)));
        assert_eq!(crc32(b"case number 28 of the table"), crc32(&table_case(28)));
        assert_eq!(crc32(b"case number 29 of the table"), crc32(&table_case(29)));
        assert_eq!(crc32(b"case number 30 of the table"), crc32(&table_case(30)));
        assert_eq!(crc32(b"case number 31 of the table"), crc32(&table_case(31)));
        assert_eq!(crc32(b"case number 32 of the table"), crc32(&table_case(32)));
        assert_eq!(crc32(b"case number 33 of the table"), crc32(&table_case(33)));
        assert_eq!(crc32(b"case number 34 of the table"), crc32(&table_case(34)));
        assert_eq!(crc32(b"case number 35 of the table"), crc32(&table_case(35)));
        assert_eq!(crc32(b"case number 36 of the table"), crc32(&table_case(36)));
        assert_eq!(crc32(b"case number 37 of the table"), crc32(&table_case(37)));
        assert_eq!(crc32(b"case number 38 of the table"), crc32(&table_case(38)));
        assert_eq!(crc32(b"case number 39 of the table"), crc32(&table_case(39)));
        assert_eq!(crc32(b"case number 40 of the table"), crc32(&table_case(40)));
        assert_eq!(crc32(b"case number 41 of the table"), crc32(&table_case(41)));
        assert_eq!(crc32(b"case number 42 of the table"), crc32(&table_case(42)));
        assert_eq!(crc32(b"case number 43 of the table"), crc32(&table_case(43)));
        assert_eq!(crc32(b"case number 44 of the table"), crc32(&table_case(44)));
        assert_eq!(crc32(b"case number 45 of the table"), crc32(&table_case(45)));
        assert_eq!(crc32(b"case number 46 of the table"), crc32(&table_case(46)));
        assert_eq!(crc32(b"case number 47 of the table"), crc32(&table_case(47)));
        assert_eq!(crc32(b"case number 48 of the table"), crc32(&table_case(48)));
        assert_eq!(crc32(b"case number 49 of the table"), crc32(&table_case(49)));
        assert_eq!(crc32(b"case number 50 of the table"), crc32(&table_case(50)));
        assert_eq!(crc32(b"case number 51 of the table"), crc32(&table_case(51)));
        assert_eq!(crc32(b"case number 52 of the table"), crc32(&table_case(52)));
        assert_eq!(crc32(b"case number 53 of the table"), crc32(&table_case(53)));
        assert_eq!(crc32(b"case number 54 of the table"), crc32(&table_case(54)));
        assert_eq!(crc32(b"case number 55 of the table"), crc32(&table_case(55)));
        assert_eq!(crc32(b"case number 56 of the table"), crc32(&table_case(56)));
        assert_eq!(crc32(b"case number 57 of the table"), crc32(&table_case(57)));
        assert_eq!(crc32(b"case number 58 of the table"), crc32(&table_case(58)));
        assert_eq!(crc32(b"case number 59 of the table"), crc32(&table_case(59)));
    }
}
"""

FILES = {
    "src/crc.rs": RUST,  # a long inline test: split into parts, #[test] in the first only
    "src/shapes/convert.py": CONVERT,
    "src/shapes/convert.pyi": CONVERT_STUB,
    "src/shapes/native.pyi": NATIVE_STUB,
    "src/shapes/selfcheck.py": SELF_CHECK,  # a test by its marker only
    "tests/test_convert.py": TESTS,
    "CHANGELOG.md": CHANGELOG,
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, minilm: object) -> Iterator[RepoSearch]:
    root = tmp_path_factory.mktemp("roles")
    for path, text in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    settings: Settings = load_settings(tmp_path_factory.mktemp("home"))
    index_repo(root, settings, embedder=minilm)  # type: ignore[arg-type]
    with RepoSearch(root.resolve(), settings, embedder=minilm) as searcher:  # type: ignore[arg-type]
        yield searcher


def search(repo: RepoSearch, query: str, **filters: object) -> list[Hit]:
    options = SearchOptions(k=10, filters=Filters(**filters))  # type: ignore[arg-type]
    return repo.search_many([query], options)[0]


def roles(hits: list[Hit]) -> list[Role]:
    return [role(h.path, h.snippet, h.language) for h in hits]


def test_the_implementation_comes_before_its_tests(repo: RepoSearch) -> None:
    hits = search(repo, "turn an instance into a dict recursively")
    assert (hits[0].path, hits[0].name) == ("src/shapes/convert.py", "instance_to_dict")
    # without the role weights the tests (which say the same words) came first
    plain = repo.searcher.fusion
    try:
        repo.searcher.fusion = Fusion(test_weight=1.0, changelog_weight=1.0)
        unweighted = search(repo, "turn an instance into a dict recursively")
    finally:
        repo.searcher.fusion = plain
    assert roles(unweighted)[0] is Role.TEST


def test_a_question_about_tests_gets_the_tests_first(repo: RepoSearch) -> None:
    hits = search(repo, "where is instance_to_dict tested")
    assert roles(hits)[:3] == [Role.TEST] * 3 and hits[0].name.startswith("test_instance_to_dict")
    # the test file's and selfcheck.py's test score within 0.001 of each other: either may lead
    assert "tests/test_convert.py" in {h.path for h in hits[:2]}


def test_a_stub_folds_into_its_implementation(repo: RepoSearch) -> None:
    hits = search(repo, "convert an instance to a dict, with or without recursion")
    found = [(h.path, h.name) for h in hits if h.name == "instance_to_dict"]
    assert found == [("src/shapes/convert.py", "instance_to_dict")]
    assert not [h for h in hits if h.path == "src/shapes/convert.pyi"]


def test_a_stub_without_an_implementation_stays(repo: RepoSearch) -> None:
    hits = search(repo, "fast crc32 checksum of a bytes buffer")
    assert (hits[0].path, hits[0].name) == ("src/shapes/native.pyi", "checksum_of_bytes")


def test_a_changelog_ranks_below_the_function(repo: RepoSearch) -> None:
    hits = search(repo, "turn an instance into a dict recursively nested instances")
    paths = [h.path for h in hits]
    assert "CHANGELOG.md" in paths
    assert paths.index("src/shapes/convert.py") < paths.index("CHANGELOG.md")


def test_include_tests_false_leaves_no_test(repo: RepoSearch) -> None:
    query = "turn an instance into a dict recursively"
    assert Role.TEST in roles(search(repo, query))
    assert "src/shapes/selfcheck.py" in {h.path for h in search(repo, query)}
    hits = search(repo, query, include_tests=False)
    assert hits and Role.TEST not in roles(hits)
    assert "tests/test_convert.py" not in {h.path for h in hits}
    # the test in a file that is code by its path is left out by its marker
    assert "test_instance_to_dict_round_trip" not in {h.name for h in hits}
    hits = search(repo, "where is instance_to_dict tested", include_tests=False)
    assert Role.TEST not in roles(hits)


def test_a_good_match_is_confident_and_an_absent_answer_is_not(repo: RepoSearch) -> None:
    good = search(repo, "turn an instance into a dict recursively")
    assert good and all(h.confident for h in good)
    absent = search(repo, "render the 3d scene with shadows on the graphics card")
    assert absent and not any(h.confident for h in absent)
    assert WireHit.of(absent[0]).dump()["confident"] is False


def test_the_cli_says_when_all_matches_are_weak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from codesearch.cli import main

    for path, text in FILES.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    assert main(["index", str(tmp_path), "-q"]) == 0
    capsys.readouterr()
    main(
        ["search", "render the 3d scene with shadows on the graphics card", "--repo", str(tmp_path)]
    )
    out, err = capsys.readouterr()
    assert out and "all matches are weak" in err
    main(["search", "turn an instance into a dict recursively", "--repo", str(tmp_path)])
    out, err = capsys.readouterr()
    assert out.startswith("src/shapes/convert.py:4-") and "weak" not in err


def test_the_mcp_answer_says_when_all_matches_are_weak() -> None:
    from codesearch.mcp_server import WEAK_MATCHES, format_search
    from codesearch.wire.mcp import SearchOutput

    def hit(confident: bool) -> WireHit:
        return WireHit(
            path="a.py",
            start_line=1,
            end_line=2,
            kind="function",
            name="f",
            language="python",
            score=1.0,
            snippet="def f():\n    pass",
            truncated_lines=0,
            match_start=1,
            match_end=2,
            confident=confident,
        )

    weak = format_search(SearchOutput(repo="/r", query="q", results=[hit(False)], notices=[]), "")
    assert weak.splitlines()[1] == WEAK_MATCHES
    good = format_search(SearchOutput(repo="/r", query="q", results=[hit(True)], notices=[]), "")
    assert WEAK_MATCHES not in good


def test_every_part_of_a_long_test_is_a_test(repo: RepoSearch) -> None:
    parts = [
        s.chunk
        for s in repo.store.all_chunks("src/crc.rs")
        if s.chunk.name.startswith("crc32_of") and s.chunk.is_part
    ]
    assert len(parts) > 1 and "#[test]" not in parts[-1].text  # the premise
    query = "crc32 of every case in the table of byte strings"
    names = [h.name for h in search(repo, query)]
    assert names.index("crc32") < names.index("crc32_of_every_case_in_the_table")
    hits = search(repo, query, include_tests=False)
    assert "crc32_of_every_case_in_the_table" not in {h.name for h in hits}
