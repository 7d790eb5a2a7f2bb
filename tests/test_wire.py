"""codesearch/wire: the models of what crosses a process boundary, the one-line messages a
malformed message gets, and the JSON Schemas in docs/ (generated from the models)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from codesearch import types
from codesearch.types import BadInput, Kind, Media, RepoState
from codesearch.wire import schema
from codesearch.wire.base import parse
from codesearch.wire.daemon import CALLS, Method, RepoStatus, SearchParams, SimilarParams
from codesearch.wire.hits import Hit, HitLine
from codesearch.wire.lsp import SearchRequest, SimilarRequest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("name", sorted(schema.SCHEMAS))
def test_the_committed_schemas_are_the_generated_ones(name: str) -> None:
    committed = (DOCS / name).read_text(encoding="utf-8")
    assert committed == schema.render(name), (
        f"docs/{name} is stale: regenerate it with `python -m codesearch.wire.schema`"
    )
    jsonschema.Draft202012Validator.check_schema(json.loads(committed))


def test_the_schema_command_reports_stale_files(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "codesearch.wire.schema", "--docs", str(tmp_path)]
    out = subprocess.run([*command, "--check"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "python -m codesearch.wire.schema" in out.stdout
    assert subprocess.run(command, capture_output=True, timeout=120).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(schema.SCHEMAS)
    assert subprocess.run([*command, "--check"], timeout=120).returncode == 0


def test_every_method_has_its_params_and_answer() -> None:
    assert set(CALLS) == set(Method)
    assert all(call.params.method == method for method, call in CALLS.items())


def test_a_hit_travels_unchanged() -> None:
    picture = types.Hit(
        path="docs/a.png",
        start_line=1,
        end_line=1,
        kind=Kind.IMAGE,
        name="a.png",
        language="image",
        score=0.123456789,
        snippet="a diagram",
        media=Media("", 0, 320, 200),
        referenced_by=("README.md",),
        confident=False,
    )
    record = Hit.of(picture).dump()
    assert record["score"] == 0.123457 and (record["match_start"], record["match_end"]) == (1, 1)
    assert (record["page"], record["width"], record["referenced_by"]) == (0, 320, ["README.md"])
    back = Hit.model_validate(json.loads(json.dumps(record))).to_hit()
    assert (back.media, back.referenced_by, back.confident) == (
        Media("", 0, 320, 200),
        ("README.md",),
        False,
    )
    code = Hit.of(types.Hit("a.py", 3, 9, Kind.FUNCTION, "f", "python", 1.0, "def f():"))
    assert list(code.dump()) == [
        *("path", "start_line", "end_line", "kind", "name", "language", "score", "snippet"),
        *("match_start", "match_end", "confident"),
    ]  # the contract's fields in its order; picture and agent fields only when set
    line = HitLine(query="q", rank=1, **dict(code)).dump()
    assert list(line)[:3] == ["query", "rank", "path"]


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        (SearchParams, {"queries": ["x"], "k": "9"}, "'k' must be a whole number from 1 to 1000"),
        (SearchParams, {"queries": []}, "'queries' must hold at least one question"),
        (SearchParams, {"queries": "x"}, "'queries' must be a list of strings"),
        (SearchParams, {"queries": ["x"], "filters": []}, "'filters' must be an object"),
        (
            SearchParams,
            {"queries": ["x"], "filters": {"kinds": ["enum"]}},
            "unknown kind 'enum' (known: function, method, class, module, section, window, "
            "image, pdf-page)",
        ),
        (
            SearchParams,
            {"queries": ["x"], "filters": {"colour": []}},
            "unknown filter 'colour' (known: languages, path_globs, kinds, exclude_globs, "
            "include_tests)",
        ),
        (SearchParams, {"queries": ["x"], "filters": {"include_tests": 1}}, "'include_tests'"),
        (SearchParams, {"queries": ["x"], "repos": []}, "'repos' must name at least one"),
        (SimilarParams, {"line": 2}, "'path' is required: the file of the code to find more"),
        (SimilarParams, {"path": "a.py", "line": 0}, "'line' must be a whole number from 1"),
    ],
)
def test_a_malformed_request_gets_one_line(model: type, params: dict, message: str) -> None:
    with pytest.raises(BadInput) as info:
        parse(model, params, BadInput, dotted=False)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_the_editor_names_nested_fields_by_their_path() -> None:
    with pytest.raises(ValueError, match=r"^'filters\.include_tests' must be true or false$"):
        parse(SearchRequest, {"query": "q", "filters": {"include_tests": 1}}, ValueError)
    with pytest.raises(ValueError, match=r"^params must be an object: \{textDocument"):
        parse(SimilarRequest, ["a list"], ValueError)
    assert parse(SearchRequest, {"query": " q ", "k": None}, ValueError).k == 20


def test_closed_sets_keep_their_strings() -> None:
    assert [str(k) for k in Kind] == [
        *("function", "method", "class", "module", "section", "window", "image", "pdf-page")
    ]
    assert f"{Kind.PDF_PAGE}" == "pdf-page" and Kind("method") is Kind.METHOD
    assert [s.value for s in RepoState] == [
        *("queued", "indexing", "idle", "missing", "error", "paused", "removed")
    ]
    assert RepoStatus.model_fields["state"].annotation is RepoState
