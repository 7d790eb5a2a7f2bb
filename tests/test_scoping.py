"""Grep-like scoping on the command line: a search from a subfolder covers it and prints paths
from the current folder, --repo-wide and --path / lift that, --path / --exclude globs,
--vimgrep, several repositories in one ranked list, the marked best-matching lines; in-process
and through the daemon."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from daemon_helpers import Daemon

from codesearch.cli import main
from codesearch.cli_output import display_path, vimgrep_line
from codesearch.render import Style, format_hits
from codesearch.types import Hit

ROOT = Path(__file__).resolve().parent.parent
QUERY = "retry backoff delay"
FILES = {
    "src/app/retry.py": (
        "import time\n\n\n@retry_decorator\n"
        "def compute_backoff(attempt: int, base: float = 0.5) -> float:\n"
        '    """How long to wait before retrying a failed request."""\n'
        "    return min(base * 2**attempt, 30.0)\n"
    ),
    "src/app/tests/test_retry.py": (
        "def test_compute_backoff_grows():\n    assert compute_backoff(2) > compute_backoff(1)\n"
    ),
    "lib/net.py": (
        "def send_request(url: str, retries: int = 3) -> bytes:\n"
        '    """Send an HTTP request, retrying with a backoff delay on failure."""\n'
        "    for attempt in range(retries):\n        pass\n"
    ),
    "tests/test_net.py": (
        'def test_send_request_retries():\n    assert send_request("http://x", retries=2)\n'
    ),
    "tests/unit/test_deep.py": "def test_deep_backoff_delay():\n    assert True\n",
}
OTHER = {
    "pkg/wait.py": (
        "def backoff_delay(attempt: int) -> float:\n"
        '    """The retry backoff delay for an attempt."""\n'
        "    return 2.0 ** attempt\n"
    ),
    "pkg/colour.py": "def mix_colours(a: str, b: str) -> str:\n    return a + b\n",
}
VIMGREP = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+):(?P<text>.*)$")


def make_repo(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / ".git").mkdir()
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def repo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    root = make_repo(tmp_path / "r1", FILES)
    assert main(["index", str(root), "-q"]) == 0
    capsys.readouterr()
    return root.resolve()


@pytest.fixture
def other(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    root = make_repo(tmp_path / "r2", OTHER)
    assert main(["index", str(root), "-q"]) == 0
    capsys.readouterr()
    return root.resolve()


def listed(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    code, out, err = run(capsys, QUERY, "-l", "-k", "20", *argv)
    assert code in (0, 1), err
    return out.splitlines()


def test_a_subfolder_scopes_the_search_and_paths_print_from_it(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo / "src" / "app")
    code, out, _ = run(capsys, QUERY, "-k", "20")
    assert code == 0
    heads = [line for line in out.splitlines() if line and not line.startswith(" ")]
    assert heads[0].startswith("retry.py:4-7  function compute_backoff"), out
    assert {h.split(":")[0] for h in heads} == {"retry.py", "tests/test_retry.py"}
    assert "../" not in out
    assert sorted(listed(capsys)) == ["retry.py", "tests/test_retry.py"]
    # JSON keeps paths relative to the repository root (the contract), scoped all the same
    code, out, _ = run(capsys, QUERY, "--json", "-k", "20")
    paths = {r["path"] for r in json.loads(out)["results"]}
    assert paths == {"src/app/retry.py", "src/app/tests/test_retry.py"}


def test_repo_wide_and_path_slash_lift_the_scope(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo / "src" / "app")
    everything = {
        "retry.py",
        "tests/test_retry.py",
        "../../lib/net.py",
        "../../tests/test_net.py",
        "../../tests/unit/test_deep.py",
    }
    assert set(listed(capsys, "--repo-wide")) == everything
    assert set(listed(capsys, "--path", "/")) == everything
    _, out, _ = run(capsys, QUERY, "--repo-wide", "--jsonl", "-k", "20")
    assert {json.loads(line)["path"] for line in out.splitlines()} == {
        "src/app/retry.py",
        "src/app/tests/test_retry.py",
        "lib/net.py",
        "tests/test_net.py",
        "tests/unit/test_deep.py",
    }
    # lifted, the patterns are relative to the repository root again
    assert set(listed(capsys, "--repo-wide", "--path", "lib/")) == {"../../lib/net.py"}
    # --repo names the repository: no scope, paths from the cwd as ever
    assert set(listed(capsys, "--repo", str(repo))) == everything


def test_patterns_from_a_subfolder_are_relative_to_it(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo / "src" / "app")
    assert listed(capsys, "--path", "tests/") == ["tests/test_retry.py"]
    assert listed(capsys, "--path", "!tests/") == ["retry.py"]
    assert listed(capsys, "--exclude", "test_*.py") == ["retry.py"]
    assert listed(capsys, "--path", "/retry.py") == ["retry.py"]
    assert listed(capsys, "--path", "net.py") == []  # lib/net.py is not under the folder


def test_globs_at_the_root(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    assert set(listed(capsys, "--path", "tests/**/test_*.py")) == {
        "tests/test_net.py",
        "tests/unit/test_deep.py",
    }
    assert set(listed(capsys, "--path", "!tests/")) == {"src/app/retry.py", "lib/net.py"}
    assert set(listed(capsys, "--path", "*.py", "--path", "!tests/")) == {
        "src/app/retry.py",
        "lib/net.py",
    }
    assert set(listed(capsys, "--exclude", "tests", "--exclude", "lib")) == {"src/app/retry.py"}
    assert set(listed(capsys, "--path", "tests")) == {
        "src/app/tests/test_retry.py",
        "tests/test_net.py",
        "tests/unit/test_deep.py",
    }
    assert set(listed(capsys, "--path", "/tests/", "--exclude", "unit/")) == {"tests/test_net.py"}
    # --no-tests: test code left out (by path convention here)
    assert set(listed(capsys, "--no-tests")) == {"src/app/retry.py", "lib/net.py"}
    # the same filters for `similar`
    code, out, _ = run(
        capsys, "similar", "lib/net.py:1", "--json", "--exclude", "tests/", "--path", "!lib/"
    )
    assert code in (0, 1)
    assert {r["path"] for r in json.loads(out)["results"]} <= {"src/app/retry.py"}


def test_vimgrep_lines_point_at_the_signature(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo / "src" / "app")
    code, out, err = run(capsys, QUERY, "--vimgrep", "--repo-wide", "-k", "20")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) >= 5  # the definitions, and maybe some module code
    for line in lines:
        m = VIMGREP.match(line)
        assert m, line
        text = Path(m["path"]).read_text().split("\n")[int(m["line"]) - 1]
        assert text == m["text"]  # line and text agree, the path opens from the cwd
        assert int(m["col"]) == len(text) - len(text.lstrip()) + 1
    first = VIMGREP.match(lines[0])
    assert first is not None
    # the decorator is skipped: the definition's own line
    assert (first["path"], first["line"], first["col"]) == ("retry.py", "5", "1")
    assert first["text"].startswith("def compute_backoff(")
    assert run(capsys, "nothing like it", "--vimgrep", "--lang", "go")[0] == 1


def test_vimgrep_line_by_hand() -> None:
    hit = Hit("a.py", 10, 14, "method", "A.f", "python", 1.0, "\n  # note\n  @cached\n  def f():")
    assert vimgrep_line("x/a.py", hit) == "x/a.py:13:3:  def f():"
    prose = Hit("d.md", 3, 5, "section", "Intro", "markdown", 1.0, "# Intro\ntext")
    assert vimgrep_line("d.md", prose) == "d.md:3:1:# Intro"  # a heading is no comment
    empty = Hit("e.py", 7, 7, "module", "", "python", 1.0, "")
    assert vimgrep_line("e.py", empty) == "e.py:7:1:"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--vimgrep", "--json"],
            "--vimgrep prints one line per result: it does not go with --json",
        ),
        (["--vimgrep", "--jsonl"], "does not go with --jsonl"),
        (["--vimgrep", "--files-only"], "does not go with --files-only"),
        (["--vimgrep", "-C", "2"], "does not go with --context"),
        (["--all-repos", "--repo", "."], "--all-repos searches every registered repository"),
        (["--path", "src/[ab"], "--path 'src/[ab': unclosed '['"),
        (["--path", "../lib"], "'..' cannot be used"),
        (["--exclude", "!tests/"], "--exclude '!tests/': drops what it matches already"),
        (["--exclude", ""], "an empty pattern"),
    ],
)
def test_bad_combinations_and_patterns_are_one_line_errors(
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    flags: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(repo)
    code, out, err = run(capsys, "search", QUERY, *flags)
    assert code == 2 and out == ""
    assert err.startswith("codesearch: error: ") and err.count("\n") == 1, err
    assert message in err
    code, _, err = run(capsys, "similar", "lib/net.py:1", *flags[:2])
    assert code == 2 and err.count("\n") == 1  # similar refuses the same (or has no such flag)


def test_several_repositories_one_ranked_list(
    repo: Path,
    other: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    schema = json.loads((ROOT / "docs" / "search-result.schema.json").read_text())
    argv = ["search", QUERY, "--repo", str(repo), "--repo", str(other), "-k", "20"]
    code, out, _ = run(capsys, *argv, "--json")
    assert code == 0
    answer = json.loads(out)
    jsonschema.Draft202012Validator({**schema, "$ref": "#/$defs/result"}).validate(
        {"query": answer["query"], "results": answer["results"]}
    )
    results = answer["results"]
    assert {r["repo"] for r in results} == {str(repo), str(other)}
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)  # one list, merged by score
    for r in results:
        assert (Path(r["repo"]) / r["path"]).is_file()  # path stays relative to its repo
    wait = next(r for r in results if r["path"] == "pkg/wait.py")
    assert wait["repo"] == str(other) and wait["name"] == "backoff_delay"
    # -k: the best k overall
    code, out, _ = run(capsys, *argv[:-2], "-k", "3", "--json")
    assert [r["score"] for r in json.loads(out)["results"]] == scores[:3]
    # human output: relative when under the cwd, else absolute
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, *argv, "-l")
    assert "r2/pkg/wait.py" in out.splitlines() and "r1/lib/net.py" in out.splitlines()
    monkeypatch.chdir(repo / "lib")
    code, out, _ = run(capsys, *argv, "-l")
    files = out.splitlines()
    assert "net.py" in files and str(other / "pkg" / "wait.py") in files
    assert str(repo / "src" / "app" / "retry.py") in files
    # JSON Lines carry the repo too; one repository named twice is one repository
    code, out, _ = run(capsys, *argv, "--jsonl")
    assert all("repo" in json.loads(line) for line in out.splitlines())
    code, out, _ = run(capsys, "search", QUERY, "--repo", str(repo), "--repo", str(repo), "--json")
    assert all("repo" not in r for r in json.loads(out)["results"])


def test_all_repos_searches_the_registered_ones(
    repo: Path, other: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from codesearch.config import load_settings
    from codesearch.daemon import registry
    from codesearch.daemon.runtime import runtime

    missing = make_repo(tmp_path / "never-indexed", {"a.py": "x = 1\n"}).resolve()
    rt = runtime(load_settings())
    rt.home.mkdir(parents=True, exist_ok=True)
    registry.save(rt.repos, [repo, other, missing])
    code, out, err = run(capsys, "search", QUERY, "--all-repos", "--json", "-k", "20")
    assert code == 0
    assert {r["repo"] for r in json.loads(out)["results"]} == {str(repo), str(other)}
    assert f"skipped {missing}" in err  # not indexed: skipped, said once


def test_best_lines_are_marked_in_human_output() -> None:
    snippet = "def long():\n    a = 1\n    b = 2\n    c = 3"
    part = Hit("x.py", 1, 4, "function", "long", "python", 1.0, snippet, match_start=2, match_end=3)
    lines = format_hits([part], Style(False), 6).splitlines()
    assert lines[1:] == ["  1  def long():", "> 2      a = 1", "> 3      b = 2", "  4      c = 3"]
    coloured = format_hits([part], Style(True), 6).splitlines()
    assert "\x1b[1m    a = 1\x1b[0m" in coloured[2] and "\x1b[1m" not in coloured[1]
    whole = Hit(
        "x.py", 1, 4, "function", "long", "python", 1.0, snippet, match_start=1, match_end=4
    )
    assert ">" not in format_hits([whole], Style(False), 6)
    unset = Hit("x.py", 1, 4, "function", "long", "python", 1.0, snippet)
    assert ">" not in format_hits([unset], Style(False), 6)


def test_display_path(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "src" / "app").mkdir(parents=True)
    assert display_path(root, "src/app/x.py", cwd=root / "src") == "app/x.py"
    assert display_path(root, "lib/x.py", cwd=root / "src" / "app") == "../../lib/x.py"
    assert display_path(root, "lib/x.py", cwd=tmp_path) == "repo/lib/x.py"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert display_path(root, "lib/x.py", cwd=elsewhere) == "lib/x.py"
    assert display_path(root, "lib/x.py", True, cwd=elsewhere) == str(root / "lib" / "x.py")
    assert display_path(root, "lib/x.py", True, cwd=root / "src") == str(root / "lib" / "x.py")


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    home = tmp_path / "daemon-home"
    monkeypatch.setenv("CODESEARCH_HOME", str(home))
    monkeypatch.setenv("CODESEARCH_DAEMON", "1")
    running = Daemon(home).start()
    yield running
    running.stop()


def test_scoping_and_several_repositories_through_the_daemon(
    daemon: Daemon,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one = make_repo(tmp_path / "r1", FILES).resolve()
    two = make_repo(tmp_path / "r2", OTHER).resolve()
    daemon.add(one)
    daemon.add(two)
    monkeypatch.chdir(one / "src" / "app")
    code, out, err = run(capsys, QUERY, "-l", "-k", "20")
    assert code == 0 and sorted(out.splitlines()) == ["retry.py", "tests/test_retry.py"], err
    assert "in-process" not in err  # the daemon answered
    assert listed(capsys, "--exclude", "tests") == ["retry.py"]
    assert set(listed(capsys, "--repo-wide", "--no-tests")) == {"retry.py", "../../lib/net.py"}
    code, out, _ = run(capsys, QUERY, "--all-repos", "--json", "-k", "20")
    results: list[dict[str, Any]] = json.loads(out)["results"]
    assert {r["repo"] for r in results} == {str(one), str(two)}
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    code, out, _ = run(capsys, QUERY, "--repo", str(one), "--repo", str(two), "--vimgrep")
    assert code == 0 and f"{two}/pkg/wait.py:1:1:def backoff_delay" in out
    # the daemon checks what it is sent, in one line
    bad = daemon.call
    with pytest.raises(Exception, match="'include_tests' must be true or false"):
        bad("search", {"queries": ["x"], "repo": str(one), "filters": {"include_tests": 1}})
