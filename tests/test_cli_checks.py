"""What the CLI refuses before any work starts, each with one clear line: flags that would be
silently ignored, negative counts, a limit that held only through the daemon, indexing the
whole filesystem or a home folder by accident."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codesearch.cli import main
from codesearch.config import load_settings
from codesearch.daemon.runtime import runtime


class Indexed(Exception):
    """Raised instead of indexing: the command got past its checks."""


@pytest.fixture
def no_indexing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise Indexed()

    monkeypatch.setattr("codesearch.engine.index_repo", refuse)


def test_index_refuses_the_whole_filesystem(
    no_indexing: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["index", "/"]) != 0
    err = capsys.readouterr().err.strip()
    assert "refusing to index /" in err and "--force" in err and "\n" not in err
    with pytest.raises(Indexed):
        main(["index", "/", "--force"])


def test_index_refuses_the_home_folder_itself_but_not_a_project_in_it(
    no_indexing: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "me"
    (home / "project").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    assert main(["index"]) != 0  # "." is the home folder
    assert "your whole home folder" in capsys.readouterr().err
    with pytest.raises(Indexed):
        main(["index", str(home / "project")])
    with pytest.raises(Indexed):
        main(["index", str(home), "--force"])


def test_add_refuses_the_whole_filesystem(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_daemon(*args: object, **kwargs: object) -> None:
        raise Indexed()  # never let a daemon start on /

    monkeypatch.setattr("codesearch.cli_daemon.link", no_daemon)
    assert main(["add", "/"]) != 0
    assert "refusing to index /" in capsys.readouterr().err


def test_a_query_and_a_batch_together_are_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "queries.txt"
    batch.write_text("retry delay\n", encoding="utf-8")
    code = main(["search", "ignored question", "--batch", str(batch), "--repo", str(tmp_path)])
    assert code != 0
    assert "not both" in capsys.readouterr().err


@pytest.mark.parametrize("daemon", [["--no-daemon"], []])
def test_k_has_one_limit_with_or_without_the_daemon(
    daemon: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["search", "retry", "-k", "100000", "--repo", str(tmp_path), *daemon])
    assert code != 0
    assert "'k' must be a whole number from 1 to 1000" in capsys.readouterr().err


def test_a_too_long_query_is_refused_without_the_daemon_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["search", "why " * 5000, "--repo", str(tmp_path), "--no-daemon"])
    assert code != 0
    assert "a query is too long" in capsys.readouterr().err


def test_similar_takes_one_repo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["similar", "a.py:1", "--repo", str(tmp_path), "--repo", str(tmp_path / "b")])
    assert exit_.value.code == 2
    assert "--repo takes one value" in capsys.readouterr().err


def test_mcp_takes_one_repo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["mcp", "--repo", str(tmp_path), "--repo", str(tmp_path / "b")])
    assert "--repo takes one value" in capsys.readouterr().err


def test_daemon_logs_counts(capsys: pytest.CaptureFixture[str]) -> None:
    log = runtime(load_settings()).log
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(f"line {i}\n" for i in range(10)), encoding="utf-8")
    assert main(["daemon", "logs", "-n", "0"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["daemon", "logs", "-n", "2"]) == 0
    assert capsys.readouterr().out == "line 8\nline 9\n"
    with pytest.raises(SystemExit) as exit_:
        main(["daemon", "logs", "-n", "-5"])
    assert exit_.value.code == 2
    assert "must be 0 or more" in capsys.readouterr().err


def test_a_long_batch_is_cut_into_requests_under_the_limit() -> None:
    from codesearch.cli_checks import BATCH_REQUEST_BYTES, batches

    queries = [f"question {i} " + "x" * 200 for i in range(3000)]
    runs = batches(queries)
    assert len(runs) > 1
    assert [q for run in runs for q in run] == queries
    for run in runs:
        assert len(json.dumps(run, separators=(",", ":")).encode()) <= BATCH_REQUEST_BYTES + 2


@pytest.mark.parametrize("command", ["add", "remove", "forget"])
def test_a_path_over_the_limit_is_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path longer than the daemon takes (4,096 characters) is refused in one line by every
    command that names a repository, daemon or none; no traceback."""
    long = str(tmp_path / "/".join(["d" * 200] * 25))
    assert main([command, long]) == 2
    err = capsys.readouterr().err.strip()
    assert "too long" in err and "4096" in err and "\n" not in err and "Traceback" not in err
