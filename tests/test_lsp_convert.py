"""lsp/convert.py and lsp/params.py: pure conversions and parameter checks, no server."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types

from codesearch.ranked import merge_ranked
from codesearch.wire.hits import Hit
from codesearch.wire.lsp import Result
from lsp import convert
from lsp.params import InvalidParams, reindex_arguments, search_arguments, search_params

ASTRAL = "x = '😀𝄞'"  # two astral characters: 2 UTF-16 units each, 4 UTF-8 bytes each


def test_units_per_encoding() -> None:
    assert convert.units(ASTRAL) == len(ASTRAL) + 2 == 10
    assert convert.units(ASTRAL, convert.UTF32) == 8
    assert convert.units(ASTRAL, convert.UTF8) == len(ASTRAL.encode("utf-8")) == 14
    assert convert.units("Größe") == 5 and convert.units("Größe", convert.UTF8) == 7


def test_split_lines_like_the_chunker() -> None:
    assert convert.split_lines("a\r\nb\n\nc") == ["a", "b", "", "c"]
    assert convert.split_lines("a\n") == ["a"]
    assert convert.split_lines("") == []
    assert convert.split_lines("a\rb\n") == ["a\rb"]  # a lone CR is not a line break here
    from codesearch.chunk.pieces import split_lines

    text = "one\r\n  two 😀\r\n\r\nthree\n"
    assert convert.split_lines(text) == split_lines(text)


def test_range_starts_at_first_non_blank_and_ends_at_end_of_line() -> None:
    lines = ["def f():", "    s = '😀'", "    return s  # 𝄞"]
    assert convert.line_range(lines, 2, 3) == {
        "start": {"line": 1, "character": 4},
        "end": {"line": 2, "character": len(lines[2]) + 1},
    }
    assert convert.line_range(lines, 2, 3, convert.UTF8)["end"]["character"] == len(
        lines[2].encode("utf-8")
    )


def test_range_start_after_non_ascii_blanks() -> None:
    lines = ["\u3000\u3000Überblick 😀"]
    assert convert.line_range(lines, 1, 1)["start"] == {"line": 0, "character": 2}
    assert convert.line_range(lines, 1, 1, convert.UTF8)["start"]["character"] == 6
    assert convert.line_range(["   "], 1, 1)["start"]["character"] == 0  # a blank line


def test_range_of_crlf_file(tmp_path: Path) -> None:
    path = tmp_path / "crlf.py"
    path.write_bytes("def f():\r\n    return 'é😀'\r\n".encode())
    lines = convert.read_lines(path)
    assert lines == ["def f():", "    return 'é😀'"]
    assert convert.line_range(lines, 1, 2)["end"] == {"line": 1, "character": 16}


def test_missing_file_and_lines_beyond_eof(tmp_path: Path) -> None:
    assert convert.read_lines(tmp_path / "gone.py") is None
    whole = {"start": {"line": 4, "character": 0}, "end": {"line": 7, "character": 0}}
    assert convert.line_range(None, 5, 7) == whole
    assert convert.line_range(["a", "b"], 5, 7) == whole  # the file shrank since indexing
    assert convert.line_range(["a", "  b"], 2, 9) == {
        "start": {"line": 1, "character": 2},
        "end": {"line": 9, "character": 0},
    }
    assert convert.line_range(None, 0, 0)["start"] == {"line": 0, "character": 0}


def test_undecodable_bytes_are_replaced(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"caf\xe9\n")
    assert convert.read_lines(path) == ["caf\ufffd"]


def _hit(**fields: object) -> Hit:
    record = {
        "path": "src/a b.py",
        "start_line": 2,
        "end_line": 2,
        "kind": "function",
        "name": "f",
        "language": "python",
        "score": 0.5,
        "snippet": "def f(): ...",
        "match_start": 2,
        "match_end": 2,
    }
    return Hit.model_validate({**record, **fields})


def test_result_record(tmp_path: Path) -> None:
    record = convert.result(_hit(), tmp_path, ["", "  def f(): return '😀'"]).dump()
    assert record["uri"] == convert.path_uri(tmp_path / "src/a b.py")
    assert record["uri"].endswith("/src/a%20b.py")
    assert convert.uri_path(record["uri"]) == tmp_path / "src/a b.py"
    assert record["range"] == {
        "start": {"line": 1, "character": 2},
        "end": {"line": 1, "character": 22},
    }
    assert record["root"] == str(tmp_path) and record["path"] == "src/a b.py"
    assert (record["start_line"], record["end_line"], record["score"]) == (2, 2, 0.5)


def test_uri_path_rejects_other_schemes() -> None:
    assert convert.uri_path("untitled:Untitled-1") is None
    assert convert.uri_path("https://example.com/x.py") is None
    assert convert.uri_path("file:///tmp/%C3%A9.py") == Path("/tmp/é.py")


def test_results_of_several_folders_merge_by_score() -> None:
    a = [{"score": 0.9, "n": 1}, {"score": 0.2, "n": 2}]
    b = [{"score": 0.5, "n": 3}]
    merged = merge_ranked([(Path("/a"), [a]), (Path("/b"), [b])], 1, 2, lambda r: r["score"])
    assert [(str(root), r["n"]) for root, r in merged[0]] == [("/a", 1), ("/b", 3)]
    # a chunk found through two nested workspace folders is kept once
    one = convert.result(_hit(score=0.4), Path("/r"), None)
    other = convert.result(_hit(path="b.py", score=0.1), Path("/r"), None)
    nested = [(Path("/r"), [[one]]), (Path("/r/src"), [[one, other]])]
    kept = merge_ranked(nested, 1, 10, lambda r: r.score, key=convert.place)[0]
    assert [r for _, r in kept] == [one, other]


def test_symbols() -> None:
    assert convert.symbol_kind("class") == types.SymbolKind.Class
    assert convert.symbol_kind("method") == types.SymbolKind.Method
    assert convert.symbol_kind("section") == types.SymbolKind.String
    assert convert.symbol_kind("something new") == types.SymbolKind.Object
    hit = _hit(path="x.py", start_line=3, end_line=4, match_start=3, match_end=4, name="")
    record = convert.result(hit.model_copy(update={"kind": "window"}), Path("/r"), None).dump()
    rng = {"start": {"line": 2, "character": 0}, "end": {"line": 4, "character": 1}}
    info = convert.symbol(Result.model_validate({**record, "range": rng}))
    assert info.name == "x.py:3" and info.container_name == "x.py"
    assert info.location.range.end == types.Position(line=4, character=1)


def test_search_params() -> None:
    p = search_params({"query": " where is auth ", "workDoneToken": "t"})
    assert (p.query, p.k, p.filters.kinds, p.folder) == ("where is auth", 20, [], None)
    p = search_params(
        {"query": "q", "k": 3, "filters": {"kinds": ["class"]}, "folder": "file:///r"}
    )
    assert (p.k, p.filters.kinds, p.folder) == (3, ["class"], "file:///r")
    for bad, message in [
        (None, "params must be an object"),
        ({"query": ""}, "non-empty string"),
        ({"query": "q", "k": True}, "'k' must be"),
        ({"query": "q", "k": 1001}, "'k' must be"),
        ({"query": "q", "filters": []}, "'filters' must be an object"),
        ({"query": "q", "filters": {"languages": "python"}}, "filters.languages"),
        ({"query": "q", "folder": 3}, "'folder'"),
    ]:
        with pytest.raises(InvalidParams, match=message):
            search_params(bad)


def test_command_arguments() -> None:
    assert search_arguments(["q"]).query == "q"
    assert search_arguments(["q", None]).k == 20
    assert search_arguments(["q", {"k": 2}]).k == 2
    with pytest.raises(InvalidParams, match="second argument"):
        search_arguments(["q", "k=2"])
    with pytest.raises(InvalidParams, match="arguments must be"):
        search_arguments([])
    assert reindex_arguments([]) is None
    assert reindex_arguments(["file:///r"]) == "file:///r"
    with pytest.raises(InvalidParams):
        reindex_arguments(["a", "b"])


def test_readme_contract_matches_the_code() -> None:
    """lsp/README.md's example request parses, and its result has exactly the fields the
    server sends; its command table names the server's commands."""
    import json
    import re

    from lsp import server

    readme = (Path(__file__).parent.parent / "lsp" / "README.md").read_text(encoding="utf-8")
    block = readme.split("```jsonc\n", 1)[1].split("```", 1)[0]
    text = "\n".join(re.sub(r"(^|\s+)//[^\"\n]*$", "", line) for line in block.splitlines())
    decoder = json.JSONDecoder()
    params, end = decoder.raw_decode(text.strip())
    answer, _ = decoder.raw_decode(text.strip()[end:].strip())
    parsed = search_params(params)
    assert parsed.k == 20 and parsed.filters.kinds == ["function", "method"]
    example = answer["results"][0]
    Result.model_validate(example)  # the documented answer is what the server sends ...
    hit = {key: example[key] for key in ("path", "start_line", "end_line", "kind", "name")}
    record = convert.result(_hit(**hit, language="python", score=1.0, snippet=""), Path("/r"), None)
    assert set(example) == set(record.dump())  # ... with no field left out
    assert set(answer) == {"query", "results", "notices"}
    for command in (server.SEARCH_COMMAND, server.REINDEX_COMMAND, server.STATUS_COMMAND):
        assert f"| `{command}` |" in readme
