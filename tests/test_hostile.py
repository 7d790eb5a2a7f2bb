"""A hostile clone: FIFOs and device symlinks where ignore files and sources should be. Every
index run and every query over such a repository finishes (a generous timeout proves it),
says what it left out and why, and never reads without limit.

The CLI runs in a subprocess (the test model ``fake`` registered in it), so a hang is a
timeout and a read without limit is a MemoryError under a capped address space, not a test
process that never returns."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from daemon_helpers import Daemon

from codesearch.daemon import lifecycle
from codesearch.daemon.client import Client

TESTS = Path(__file__).parent
RUN_CLI = (
    f"import sys; sys.path.insert(0, {str(TESTS)!r}); "
    "from fake_embedder import register; register(); "
    "from codesearch.cli import main; sys.exit(main(sys.argv[1:]))"
)
TIMEOUT_S = 60  # "does not hang": far beyond what any of these runs takes (about 2 s)
MEMORY_CAP = 2 << 30  # a read without limit fails fast instead of swapping the machine

GEO = '''def polygon_area(points):
    """The area of a polygon by the shoelace formula."""
    total = 0.0
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1]):
        total += x1 * y2 - x2 * y1
    return abs(total) / 2


def perimeter(points):
    """The length of a polygon's border."""
    pairs = zip(points, points[1:])
    return sum(((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5 for (x1, y1), (x2, y2) in pairs)
'''


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``codesearch ARGS`` in a subprocess on the data dir of this test, the model ``fake``
    available, no daemon."""
    return subprocess.run(
        [sys.executable, "-c", RUN_CLI, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=cwd,
        env={**os.environ, "CODESEARCH_DAEMON": "0", "NO_COLOR": "1"},
        preexec_fn=_cap_memory,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "clone"
    (root / ".git" / "info").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "src" / "geo.py").write_text(GEO)
    (root / "src" / "notes.md").write_text("# Notes\n\nThe shoelace formula gives areas.\n")
    (root / "build.log").write_text("compiler output\n")
    return root


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def _indexed(repo: Path) -> str:
    done = cli("index", str(repo), "-v", "--model", "fake")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr


@pytest.mark.parametrize(
    "name", [".gitignore", ".codesearchignore", ".git/info/exclude", "src/.gitignore"]
)
def test_a_fifo_ignore_file_is_skipped_with_its_reason(repo: Path, name: str) -> None:
    _fifo(repo / name)
    err = _indexed(repo)
    line = f"skipped {name}: ignore-file (not a regular file (fifo): its rules are not applied)"
    assert line in err.splitlines(), err
    assert "src/geo.py" not in err  # the code itself is indexed
    found = cli("search", "polygon area", "--repo", str(repo), "--json")
    assert found.returncode == 0, found.stderr
    assert "src/geo.py" in {r["path"] for r in json.loads(found.stdout)["results"]}


@pytest.mark.parametrize("name", [".gitignore", ".codesearchignore", "src/.gitignore"])
def test_an_ignore_file_linked_to_dev_zero_is_not_followed(repo: Path, name: str) -> None:
    (repo / name).symlink_to("/dev/zero")  # git stores symlinks: a clone can hold this
    err = _indexed(repo)
    assert f"skipped {name}: ignore-file (a symlink (not followed): its rules are not applied)" in (
        err.splitlines()
    ), err


def test_git_exclude_linked_to_dev_zero_is_refused(repo: Path) -> None:
    (repo / ".git/info/exclude").symlink_to("/dev/zero")
    err = _indexed(repo)
    expected = (
        "skipped .git/info/exclude: ignore-file "
        "(not a regular file (character device): its rules are not applied)"
    )
    assert expected in err.splitlines(), err


def test_an_oversized_ignore_file_is_refused(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log\n" * 200_000)  # 1.2 MB of rules
    err = _indexed(repo)
    expected = "ignore-file (more than 1000000 bytes: its rules are not applied)"
    assert f"skipped .gitignore: {expected}" in err.splitlines(), err


def test_a_source_replaced_by_a_fifo_after_indexing(repo: Path) -> None:
    """`similar` on it and `search -C` whose hit is in it answer; the next index run skips it."""
    _indexed(repo)
    _fifo(repo / "src" / "geo.py")

    like = cli("similar", "src/geo.py:2", "--repo", str(repo), "-C", "2", cwd=repo)
    assert like.returncode in (0, 1), like.stderr
    assert like.stdout.startswith("like src/geo.py:1-6  function polygon_area"), like.stdout

    found = cli("search", "polygon area shoelace", "--repo", str(repo), "-C", "2", "--json")
    assert found.returncode == 0, found.stderr
    hit = next(r for r in json.loads(found.stdout)["results"] if r["path"] == "src/geo.py")
    assert (hit["context_before"], hit["context_after"]) == ("", "")  # unreadable: no context

    human = cli("search", "polygon area shoelace", "--repo", str(repo), "-C", "2")
    assert human.returncode == 0 and "src/geo.py:1" in human.stdout, human.stderr

    err = _indexed(repo)
    assert "skipped src/geo.py: not-regular (not a regular file (fifo, socket, device))" in err


def test_a_hostile_repository_does_not_wedge_the_daemon(repo: Path, tmp_path: Path) -> None:
    """Its FIFO ignore file is skipped; another repository is indexed and searched after it,
    and the daemon stops when asked. (The scenario runs in a thread: a wedged daemon fails
    the test instead of hanging it.)"""
    _fifo(repo / ".gitignore")
    good = tmp_path / "good"
    (good / "lib").mkdir(parents=True)
    (good / "lib" / "shapes.py").write_text(GEO)
    daemon = Daemon(tmp_path / "home").start()
    outcome: list[object] = []

    def scenario() -> None:
        try:
            with Client.connect(daemon.settings, timeout=TIMEOUT_S) as client:
                client.call("add", {"path": str(repo), "wait": False})
                client.call("add", {"path": str(good), "wait": True})
                client.call("wait", {"timeout": TIMEOUT_S})
                found = client.call(
                    "search", {"queries": ["polygon area"], "k": 5, "repo": str(good)}
                )
                status = client.call("status", {"repo": str(repo)})["repos"][0]
            outcome.append(({h["path"] for h in found["results"][0]}, status))
            outcome.append(lifecycle.stop(daemon.settings))
        except Exception as exc:
            outcome.append(exc)

    worker = threading.Thread(target=scenario, daemon=True)
    worker.start()
    worker.join(4 * TIMEOUT_S)
    try:
        assert not worker.is_alive(), "the daemon wedged"
        assert len(outcome) == 2, outcome
        (paths, status), stopped = outcome
        assert "lib/shapes.py" in paths
        assert status["state"] == "idle" and status["files"] >= 1, status
        assert stopped is not None and stopped.pid == daemon.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(daemon.pid, signal.SIGKILL)
