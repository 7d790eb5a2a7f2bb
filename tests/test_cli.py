"""The command line: the JSON contract, the everyday form, human output, clear errors."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from codesearch.cli import COMMANDS, EPILOG, build_parser, main

RESULT_KEYS = {"path", "start_line", "end_line", "kind", "name", "language", "score", "snippet"}


@pytest.fixture
def indexed(demo_repo: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["index", str(demo_repo), "-q"]) == 0
    capsys.readouterr()
    return demo_repo


def test_json_contract(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "retry delay", "--repo", str(indexed), "--json", "-k", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"query", "results"}
    assert out["query"] == "retry delay"
    assert 1 <= len(out["results"]) <= 3
    for r in out["results"]:
        assert set(r) >= RESULT_KEYS  # new fields may come (match_start, ...)
        assert not r["path"].startswith(("/", "./"))
        assert 1 <= r["start_line"] <= r["end_line"]
        lines = (indexed / r["path"]).read_text().split("\n")
        assert r["end_line"] <= len(lines)
        # the snippet is the code at those lines
        assert r["snippet"].split("\n")[0] == lines[r["start_line"] - 1]
    scores = [r["score"] for r in out["results"]]
    assert scores == sorted(scores, reverse=True)


def test_everyday_form_searches_the_repo_of_the_cwd(
    indexed: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(indexed / "core")
    assert main(["thumbnail image resize"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("image.rs:9-"), out  # path:line first, from the cwd: clickable
    assert "method Image.thumbnail" in first
    assert "pub fn thumbnail" in out  # the snippet follows


def test_filters(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["search", "password", "--repo", str(indexed), "--json", "--lang", "go"])
    assert {r["language"] for r in json.loads(capsys.readouterr().out)["results"]} == {"go"}
    main(["search", "password", "--repo", str(indexed), "--json", "--path", "web/"])
    assert {r["path"] for r in json.loads(capsys.readouterr().out)["results"]} == {"web/cache.js"}
    main(["search", "password", "--repo", str(indexed), "--json", "--kind", "class"])
    kinds = {r["kind"] for r in json.loads(capsys.readouterr().out)["results"]}
    assert kinds == {"class"}


def test_status_reports_the_index(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", str(indexed), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["daemon"] is None  # none runs in this test
    (st,) = out["repos"]
    assert st["root"] == str(indexed) and st["state"] == "not watched"
    assert st["files"] == 7 and st["chunks"] > 10
    assert st["model"].startswith("minilm")
    assert st["languages"]["python"] >= 5


@pytest.fixture
def no_jina_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever this machine holds: no jina-v4 checkpoint folder, an empty HF cache."""
    for var in ("CODESEARCH_JINA_V4", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))


def test_models_lists_minilm_as_usable(
    capsys: pytest.CaptureFixture[str], no_jina_weights: None
) -> None:
    assert main(["models", "--json"]) == 0
    backends = {b["name"]: b for b in json.loads(capsys.readouterr().out)}
    assert backends["minilm"]["usable"] is True
    assert backends["jina-v4"]["usable"] is False
    assert "weights not found" in backends["jina-v4"]["reason"]
    assert main(["models"]) == 0
    assert "not usable: weights not found" in capsys.readouterr().out


def test_index_summary_and_verbose_skips(
    demo_repo: Path, capsys: pytest.CaptureFixture[str], no_jina_weights: None
) -> None:
    (demo_repo / ".env").write_text("SECRET=1\n")
    (demo_repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    assert main(["index", str(demo_repo), "-v"]) == 0
    err = capsys.readouterr().err
    assert "skipped .env: secret" in err
    assert "skipped logo.png: truncated-image" in err  # a PNG signature and nothing more
    assert "9 files" not in err and "7 files (7 updated" in err  # .env and logo.png: not seen
    # the model that built it, and why auto chose it: on the summary line
    summary = err.strip().splitlines()[-1]
    assert summary.startswith(f"indexed {demo_repo}: 7 files")
    assert "; model minilm-code:all-MiniLM-L6-v2+lora-" in summary  # the CPU default
    assert summary.endswith(", 384 dims (picked by auto: no jina-v4 weights found)")


# -- errors: one clear line, exit 2, index intact --------------------------------------------


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("codesearch: error: "), err
    assert "\n" not in err, err
    return err


def test_query_before_index(demo_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "anything", "--repo", str(demo_repo)]) == 2
    assert "run `codesearch index" in _error(capsys)


def test_not_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(tmp_path / "nope")]) == 2
    assert "no such directory" in _error(capsys)


def test_outside_any_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["where is auth"]) == 2
    assert "codesearch index" in _error(capsys)


def test_bad_arguments(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "x", "--repo", str(indexed), "-k", "0"]) == 2
    _error(capsys)
    assert main(["search", "  ", "--repo", str(indexed)]) == 2
    assert "empty query" in _error(capsys)
    assert main(["search", "--repo", str(indexed), "--batch", "/no/such/file"]) == 2
    assert "no such file" in _error(capsys)
    with pytest.raises(SystemExit) as exc:
        main(["search", "x", "--kind", "banana"])
    assert exc.value.code == 2


def test_corrupted_index(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from codesearch.config import load_settings

    path = load_settings().index_path(indexed)
    path.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    assert main(["search", "retry", "--repo", str(indexed)]) == 2
    assert "corrupt" in _error(capsys)
    assert main(["index", str(indexed), "--rebuild", "-q"]) == 0  # the way out works
    assert main(["search", "retry", "--repo", str(indexed), "--json"]) == 0


def test_model_mismatch_is_refused(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "retry", "--repo", str(indexed), "--model", "fake"]) == 2
    assert "built with model" in _error(capsys)


def test_nothing_found_exits_1(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "retry", "--repo", str(indexed), "--lang", "java"]) == 1


def test_help_examples_parse() -> None:
    parser = build_parser()
    for line in EPILOG.splitlines():
        line = line.strip()
        if line.startswith("codesearch "):
            argv = shlex.split(line.split("  ")[0])[1:]
            if argv[0] not in COMMANDS:
                argv = ["search", " ".join(argv)]
            parser.parse_args(argv)


def test_cli_process_does_not_import_torch_for_help() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from codesearch.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit: pass\n"
            "print('torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        env={**os.environ},
        check=True,
    )
    assert out.stdout.strip().endswith("False")


def test_reindex_keeps_the_model_that_built_the_index(
    demo_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["index", str(demo_repo), "--model", "fake", "-q"]) == 0
    assert main(["index", str(demo_repo)]) == 0  # no --model: stays on the index's model
    assert "rebuilt" not in capsys.readouterr().err
    assert main(["status", str(demo_repo), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["repos"][0]["model"].startswith("fake:")
    assert main(["index", str(demo_repo), "--model", "minilm"]) == 0  # an explicit switch
    assert "(rebuilt: the model changed from fake:hash-64 (64 dims))" in capsys.readouterr().err
    assert main(["search", "retry", "--repo", str(demo_repo), "--json"]) == 0


def test_locked_index(indexed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlean

    from codesearch.config import load_settings

    holder = sqlean.connect(str(load_settings().index_path(indexed)), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        (indexed / "src/app/new.py").write_text("def fresh():\n    return 1\n")
        assert main(["index", str(indexed), "-q"]) == 2
        assert "locked" in _error(capsys)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert main(["index", str(indexed), "-q"]) == 0  # and it recovers once the lock is gone
    assert main(["search", "fresh", "--repo", str(indexed), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["name"] == "fresh"


def test_readme_commands_parse() -> None:
    """Every `codesearch ...` line in the README's usage block is a valid command line."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("## Usage", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    parser = build_parser()
    seen = 0
    for line in block.splitlines():
        command = line.split("#", 1)[0].strip()
        if not command.startswith("codesearch"):
            continue
        argv = [
            a.strip("'\"")
            for a in command.replace("[", " ").replace("]", " ").replace("...", "").split()
        ][1:]
        if argv[0] not in COMMANDS:
            argv = ["search", "question"]
        argv = [a for a in argv if a not in ("QUESTION", "PATH") or argv[0] != "index"]
        parser.parse_args([a if a != "QUESTION" else "question" for a in argv])
        seen += 1
    assert seen >= 5


def test_unwritable_data_dir_is_one_line(
    demo_repo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data dir should be")
    monkeypatch.setenv("CODESEARCH_HOME", str(blocker / "home"))
    assert main(["index", str(demo_repo), "-q"]) == 2
    assert "not-a-dir" in _error(capsys)


def test_progress_bar_on_a_terminal() -> None:
    import io

    from codesearch.index import Progress
    from codesearch.render import ProgressBar

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    bar = ProgressBar(out, min_interval=0)
    bar(Progress(files_done=5, files_total=10, chunks_embedded=40, elapsed=2.0))
    bar(Progress(files_done=10, files_total=10, chunks_embedded=80, elapsed=4.0))
    bar.close()
    text = out.getvalue()
    assert "5/10 files" in text and "20.0 chunks/s" in text and "ETA 2s" in text
    assert "10/10 files" in text and text.endswith("\n")
    quiet = io.StringIO()  # not a terminal: nothing at all
    ProgressBar(quiet)(Progress(1, 2, 3, 1.0))
    assert quiet.getvalue() == ""


def test_a_relative_model_folder_is_remembered_absolutely(
    demo_repo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shutil

    from codesearch.embed.minilm.files import packaged_minilm_dir

    folder = packaged_minilm_dir()
    assert folder is not None
    shutil.copytree(folder, tmp_path / "models" / "mini")
    monkeypatch.chdir(tmp_path / "models")
    assert main(["index", str(demo_repo), "--model", "mini", "-q"]) == 0
    monkeypatch.chdir(demo_repo)  # a query from elsewhere still finds the model
    assert main(["search", "thumbnail", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["name"] == "Image.thumbnail"
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["repos"][0]["model"].startswith("hf:mini@")


def test_unknown_language_is_refused_with_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["search", "x", "--lang", "pyhton"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'pyhton'" in err and "python" in err


def test_everyday_form_takes_search_options_first(
    indexed: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(indexed)
    assert main(["-k", "2", "--json", "thumbnail image resize"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["results"]) == 2 and out["results"][0]["name"] == "Image.thumbnail"


def test_broken_pipe_is_not_an_error(indexed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import codesearch.cli as cli

    def closed_pipe(args):  # type: ignore[no-untyped-def]
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setitem(cli.HANDLERS, "search", closed_pipe)
    assert main(["search", "retry", "--repo", str(indexed)]) == 0
