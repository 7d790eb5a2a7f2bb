"""The command line for agents and scripts: --json / --jsonl / --files-only, --context,
--max-lines, grep-like exit codes, and the documented JSON schema checked on real output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from daemon_helpers import Daemon

from codesearch.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "search-result.schema.json").read_text())
RESULT_KEYS = {
    *("path", "start_line", "end_line", "kind", "name", "language", "score", "snippet"),
    *("match_start", "match_end", "confident"),
}


def valid(document: Any, part: str | None = None) -> None:
    """``document`` validates against the schema (or one of its $defs)."""
    schema = SCHEMA if part is None else {**SCHEMA, "$ref": f"#/$defs/{part}"}
    if part is not None:
        schema.pop("oneOf")
    jsonschema.Draft202012Validator(schema).validate(document)


@pytest.fixture
def indexed(demo_repo: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["index", str(demo_repo), "-q"]) == 0
    capsys.readouterr()
    return demo_repo


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``codesearch ARGV`` in-process: (exit code, stdout, stderr); argparse exits included."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def lines_of(repo: Path, path: str) -> list[str]:
    return (repo / path).read_text().split("\n")


def test_the_schema_is_strict_and_describes_every_output(
    indexed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    repo = str(indexed)
    code, out, _ = run(capsys, "search", "retry delay", "--repo", repo, "--json", "-k", "4")
    assert code == 0
    document = json.loads(out)
    valid(document)
    valid(document, "result")
    assert {key for r in document["results"] for key in r} == RESULT_KEYS  # the contract
    # the agent flags add documented fields only
    argv = ["search", "retry delay", "--repo", repo, "--json", "-C", "2", "--max-lines", "3"]
    valid(json.loads(run(capsys, *argv)[1]))
    for line in run(capsys, "search", "retry delay", "--repo", repo, "--jsonl")[1].splitlines():
        valid(json.loads(line), "hit_line")
    # ... and nothing else passes: a field the schema does not know, a missing one
    bad = {**document["results"][0], "extra": 1}
    with pytest.raises(jsonschema.ValidationError):
        valid({"query": "q", "results": [bad]})
    partial = {k: v for k, v in document["results"][0].items() if k != "snippet"}
    with pytest.raises(jsonschema.ValidationError):
        valid({"query": "q", "results": [partial]})
    with pytest.raises(jsonschema.ValidationError):
        valid({**document["results"][0], "query": "q"}, "hit_line")  # no rank


def test_batch_output_validates(
    indexed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "queries.txt"
    batch.write_text("retry delay\npassword hashing\n")
    code, out, _ = run(capsys, "search", "--repo", str(indexed), "--json", "--batch", str(batch))
    assert code == 0
    answers = [json.loads(line) for line in out.splitlines()]
    assert [a["query"] for a in answers] == ["retry delay", "password hashing"]
    for answer in answers:
        valid(answer, "result")
    argv = ["search", "--repo", str(indexed), "--jsonl", "-k", "2", "--batch", str(batch)]
    code, out, _ = run(capsys, *argv)
    hits = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [(h["query"], h["rank"]) for h in hits] == [
        ("retry delay", 1),
        ("retry delay", 2),
        ("password hashing", 1),
        ("password hashing", 2),
    ]


def test_jsonl_is_one_line_per_hit_in_rank_order(
    indexed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(indexed)
    whole = json.loads(run(capsys, "search", "password", "--repo", repo, "--json", "-k", "5")[1])
    code, out, _ = run(capsys, "search", "password", "--repo", repo, "--jsonl", "-k", "5")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == len(whole["results"]) == 5
    assert [line["rank"] for line in lines] == [1, 2, 3, 4, 5]
    for line, result in zip(lines, whole["results"], strict=True):
        assert line == {"query": "password", "rank": line["rank"], **result}
    assert out.count("\n") == 5  # compact: nothing spans lines


def test_context_lines_come_from_the_file(
    indexed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["search", "password", "--repo", str(indexed), "--json", "-k", "5", "-C", "2"]
    results = json.loads(run(capsys, *argv)[1])["results"]
    for r in results:
        lines = lines_of(indexed, r["path"])
        if lines[-1] == "":
            lines = lines[:-1]
        before = lines[max(r["start_line"] - 3, 0) : r["start_line"] - 1]
        after = lines[r["end_line"] : r["end_line"] + 2]
        assert r["context_before"] == "\n".join(before), r
        assert r["context_after"] == "\n".join(after), r
        assert r["snippet"].split("\n")[0] == lines[r["start_line"] - 1]
    first = [r for r in results if r["start_line"] == 1]  # top of a file: nothing before
    assert all(r["context_before"] == "" for r in first)
    # human output: the lines around, numbered like the snippet
    code, out, _ = run(capsys, "search", "hash a password", "--repo", str(indexed), "-k", "1")
    assert code == 0 and out.startswith("src/app/auth.py:11-14")
    code, out, _ = run(
        capsys, "search", "hash a password", "--repo", str(indexed), "-k", "1", "-C", "1"
    )
    numbered = [line.split()[0] for line in out.splitlines()[1:] if line.strip()]
    assert numbered[:2] == ["10", "11"] and numbered[-1] == "15", out


def test_max_lines_caps_every_snippet(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = str(indexed)
    argv = ["search", "cache entries", "--repo", repo, "--json", "-k", "6", "--max-lines", "2"]
    results = json.loads(run(capsys, *argv)[1])["results"]
    for r in results:
        shown = r["snippet"].split("\n")
        assert len(shown) <= 2 and "..." not in shown
        assert r["truncated_lines"] == r["end_line"] - r["start_line"] + 1 - len(shown)
    assert any(r["truncated_lines"] > 0 for r in results)
    argv[-1] = "0"
    results = json.loads(run(capsys, *argv)[1])["results"]
    assert all(r["snippet"] == "" for r in results)
    # more than the engine's default of 12: the whole definition, no "..." marker
    argv = ["search", "least recently used cache set", "--repo", repo, "--json", "--max-lines"]
    long = json.loads(run(capsys, *argv, "40", "--kind", "method")[1])["results"]
    setter = next(r for r in long if r["name"] == "LruCache.set")
    span = lines_of(indexed, "web/cache.js")[setter["start_line"] - 1 : setter["end_line"]]
    assert setter["snippet"] == "\n".join(span) and setter["truncated_lines"] == 0
    # human output: at most N snippet lines under each result line
    code, out, _ = run(capsys, "search", "cache", "--repo", repo, "--max-lines", "1", "-k", "3")
    blocks = [b.splitlines() for b in out.strip().split("\n\n")]
    assert code == 0 and len(blocks) == 3 and all(len(b) == 2 for b in blocks), out


def test_files_only_lists_each_file_once_best_first(
    indexed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(indexed)
    results = json.loads(run(capsys, "search", "password", "--repo", repo, "--json")[1])["results"]
    expected = list(dict.fromkeys(r["path"] for r in results))
    code, out, err = run(capsys, "search", "password", "--repo", repo, "--files-only")
    assert code == 0 and out.splitlines() == expected and err == ""
    assert len(expected) < len(results)  # several hits in one file: listed once
    code, out, _ = run(capsys, "search", "password", "--repo", repo, "-l", "--lang", "java")
    assert code == 1 and out == ""


def test_exit_codes_are_grep_like(
    indexed: Path, demo_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(indexed)
    assert run(capsys, "search", "retry", "--repo", repo, "--jsonl")[0] == 0
    code, out, _ = run(capsys, "search", "retry", "--repo", repo, "--jsonl", "--lang", "java")
    assert code == 1 and out == ""  # nothing found: no line at all
    code, out, _ = run(capsys, "search", "retry", "--repo", repo, "--json", "--lang", "java")
    assert code == 1 and json.loads(out)["results"] == []
    assert run(capsys, "search", "retry", "--repo", repo, "--lang", "java")[0] == 1
    (tmp_path / "plain").mkdir()
    code, out, err = run(capsys, "search", "retry", "--repo", str(tmp_path / "plain"), "--json")
    assert code == 2 and out == "" and err.startswith("codesearch: error: ")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--json", "--jsonl"], "not allowed with argument"),
        (["--files-only", "--json"], "--files-only prints file paths only"),
        (["--files-only", "--jsonl"], "does not go with --jsonl"),
        (["-l", "-C", "2"], "does not go with --context"),
        (["--files-only", "--max-lines", "3"], "does not go with --max-lines"),
        (["--context", "-1"], "--context must be 0 or a positive number"),
        (["--max-lines", "-2"], "--max-lines must be 0 or a positive number"),
        (["--snippet-lines", "3", "--max-lines", "3"], "keep one"),
        (["--context", "many"], "invalid int value"),
    ],
)
def test_bad_flag_combinations_are_one_line_errors(
    indexed: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    code, out, err = run(capsys, "search", "retry", "--repo", str(indexed), *flags)
    assert code == 2 and out == ""
    assert err.startswith("codesearch: error: ") and err.count("\n") == 1, err
    assert message in err


def test_files_only_with_batch_is_refused(
    indexed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "q.txt").write_text("retry\n")
    argv = ["search", "--repo", str(indexed), "-l", "--batch", str(tmp_path / "q.txt")]
    code, _, err = run(capsys, *argv)
    assert code == 2 and "does not go with --batch" in err


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    home = tmp_path / "daemon-home"
    monkeypatch.setenv("CODESEARCH_HOME", str(home))
    monkeypatch.setenv("CODESEARCH_DAEMON", "1")
    running = Daemon(home).start()
    yield running
    running.stop()


def test_agent_flags_through_the_daemon(
    daemon: Daemon, demo_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same output when the daemon answers: snippets cut by the engine (snippet_lines),
    context read from the repository the daemon searched."""
    daemon.add(demo_repo)
    argv = ["search", "hash a password", "--repo", str(demo_repo), "--jsonl", "-k", "2"]
    code, out, _ = run(capsys, *argv, "--max-lines", "1", "-C", "1")
    assert code == 0
    hits = [json.loads(line) for line in out.splitlines()]
    for hit in hits:
        valid(hit, "hit_line")
    top = hits[0]
    assert (top["path"], top["name"]) == ("src/app/auth.py", "PasswordHasher.hash_password")
    assert top["snippet"] == "    def hash_password(self, password: str) -> str:"
    assert top["truncated_lines"] == 3
    assert top["context_before"] == "" and top["context_after"] == ""  # blank lines around
    code, out, _ = run(capsys, "search", "hash a password", "--repo", str(demo_repo), "-l")
    assert code == 0 and out.splitlines()[0] == "src/app/auth.py"


def test_the_readme_s_json_examples_are_real(
    indexed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The JSON examples in the README validate, and the --jsonl one is what the command it
    names prints on the demo repository (the score aside)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### JSON output", 1)[1].split("\n### ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```json\n")[1:]]
    assert len(blocks) == 2
    valid(json.loads(blocks[0]), "result")
    example = json.loads(blocks[1])
    valid(example, "hit_line")
    command = section.split("(`codesearch ", 1)[1].split("`", 1)[0]
    assert command == '--jsonl --max-lines 1 -C 1 "retry delay"'
    code, out, _ = run(
        capsys,
        "search",
        "--repo",
        str(indexed),
        "--jsonl",
        "--max-lines",
        "1",
        "-C",
        "1",
        "retry delay",
    )
    first = json.loads(out.splitlines()[0])
    assert code == 0 and {**first, "score": 0} == {**example, "score": 0}
