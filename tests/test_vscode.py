"""The VS Code extension (lsp/editors/vscode) compiles with tsc and its Node tests pass.

VS Code itself is not needed: the result mapping is a pure module tested with `node --test`,
and the glue is driven through stand-ins for the `vscode` API. The tests need Node.js and npm;
without them they skip on a developer's machine and fail in CI (the `CI` variable is set).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

EXT = Path(__file__).resolve().parent.parent / "lsp" / "editors" / "vscode"

# Node tests a user would notice if they broke; each must run and pass.
EXPECTED_TESTS = (
    "keeps the server's order (best first) and fills label, description, detail",
    "gives each kind its codicon, and unknown or missing kinds a file icon",
    "labels a result without a name by its file name",
    "takes the first non-blank snippet line, trimmed and capped, with the score",
    "passes the server's UTF-16 range through unchanged on a non-ASCII line",
    "falls back to start_line-1..end_line-1 (whole lines) when there is no range",
    "keeps the matched lines of a long definition as the selection",
    "opens a long definition of which a part matched with that part selected",
    "has a clear message and no items when nothing was found",
    "passes server notices on, and tolerates a missing or odd notices field",
    "defaults to codesearch-lsp on PATH",
    "contributes, activates on and registers the same commands, none clashing with the server's",
    "searches, shows the results and opens the chosen one with its range selected",
    "explains how to fix a server that cannot start, and retries on the next command",
)


def _npm() -> str:
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail("Node.js and npm are required in CI to test the VS Code extension")
        pytest.skip("Node.js/npm not installed: the VS Code extension is not tested")
    return npm


def _run(npm: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "npm_config_audit": "false",
        "npm_config_fund": "false",
        "npm_config_update_notifier": "false",
    }
    return subprocess.run(
        [npm, *args], cwd=EXT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"


@pytest.fixture(scope="module")
def npm() -> Iterator[str]:
    """npm, with the extension's dependencies installed (`npm ci` from the lock file)."""
    npm = _npm()
    if not (EXT / "node_modules").is_dir():
        result = _run(npm, "ci", timeout=300)
        assert result.returncode == 0, "npm ci failed:\n" + _output(result)
    yield npm


@pytest.fixture(scope="module")
def compiled(npm: str) -> subprocess.CompletedProcess[str]:
    return _run(npm, "run", "compile", timeout=120)


def test_extension_compiles(compiled: subprocess.CompletedProcess[str]) -> None:
    assert compiled.returncode == 0, (
        "tsc failed (stale node_modules? run `npm ci` in lsp/editors/vscode):\n" + _output(compiled)
    )
    assert (EXT / "out" / "extension.js").is_file()
    assert (EXT / "out" / "mapping.js").is_file()


def test_node_tests_pass(npm: str, compiled: subprocess.CompletedProcess[str]) -> None:
    assert compiled.returncode == 0, _output(compiled)
    result = _run(npm, "test", timeout=120)
    assert result.returncode == 0, "npm test failed:\n" + _output(result)
    counts = {
        key: int(value)
        for key, value in re.findall(r"^# (tests|pass|fail) (\d+)$", result.stdout, re.M)
    }
    assert counts.get("fail") == 0, _output(result)
    assert counts.get("pass") == counts.get("tests"), _output(result)
    assert counts["pass"] >= len(EXPECTED_TESTS), _output(result)
    passed = set(re.findall(r"^\s*ok \d+ - (.+)$", result.stdout, re.M))
    missing = [name for name in EXPECTED_TESTS if name not in passed]
    assert not missing, f"these Node tests did not run or pass: {missing}\n" + _output(result)
