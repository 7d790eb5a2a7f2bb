"""Cancelled work stops and state follows the folder, with a real daemon (and a real
`codesearch` process): `remove` stops a running update before its next embedder call and says
how many files it kept; Ctrl-C on `codesearch index` prints the true count; a folder moved away
shows missing within seconds and is followed again once back; `remove` sticks until `add`;
`forget` deletes the index files the daemon holds open.

The embedder is the remote backend against a scripted server (tests/test_remote_parts.py's
FakeServer) whose ``delay`` makes every request slow enough to cancel in the middle."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_helpers import Daemon, eventually
from test_remote_parts import MODEL, FakeServer

from codesearch.store import Store
from codesearch.types import CodesearchError, IndexMissing

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    """A slow-able embedding server; this process and the daemons it starts use it."""
    s = FakeServer()
    monkeypatch.setenv("CODESEARCH_MODEL", "remote")
    monkeypatch.setenv("CODESEARCH_REMOTE_URL", s.url)
    monkeypatch.setenv("CODESEARCH_REMOTE_MODEL", MODEL)
    monkeypatch.setenv("CODESEARCH_REMOTE_BATCH_SIZE", "8")
    monkeypatch.setenv("CODESEARCH_REMOTE_CONCURRENCY", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    yield s
    s.close()


@pytest.fixture
def daemon(tmp_path: Path, server: FakeServer) -> Iterator[Daemon]:
    d = Daemon(tmp_path / "home")
    yield d
    d.stop()


def make_repo(root: Path, files: int) -> Path:
    for i in range(files):
        path = root / "gen" / f"mod_{i:03d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'def step_{i}(value):\n    """Stage {i}."""\n    return value * {i}\n')
    return root


def watched(daemon: Daemon, root: Path, files: int, *, wait: bool = True) -> tuple[Path, Path]:
    """A repository of ``files`` files at ``root``, added to ``daemon`` (started here):
    the repository and its index."""
    repo = make_repo(root, files)
    daemon.start()
    daemon.add(repo, wait=wait)
    return repo, daemon.settings.index_path(repo.resolve())


def cli(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODESEARCH_HOME": str(home), "CODESEARCH_DAEMON": "1"}
    return subprocess.run(
        [sys.executable, "-m", "codesearch.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def indexed_files(index: Path) -> int:
    try:
        with Store.open(index) as store:
            return len(store.file_states())
    except IndexMissing:  # not created yet, or still empty
        return 0


# ---------------------------------------------------------------------- cancellation


def test_remove_stops_a_running_update_and_says_what_it_kept(
    daemon: Daemon, server: FakeServer, tmp_path: Path
) -> None:
    server.delay = 0.3  # 400 files, 8 per request: 50 slow requests
    repo, index = watched(daemon, tmp_path / "repo", 400, wait=False)
    eventually(lambda: indexed_files(index) >= 8, timeout=60, what="some files indexed")

    out = cli(daemon.settings.home, "remove", str(repo))
    assert out.returncode == 0, out.stderr
    found = re.search(r"stopped indexing .*: (\d+) files it finished are kept", out.stdout)
    assert found, out.stdout
    kept = int(found.group(1))
    # what it says is what the index holds, and nothing more is embedded or written
    asked = len(server.requests)
    time.sleep(2)
    assert len(server.requests) == asked
    assert indexed_files(index) == kept and 0 < kept < 400
    assert daemon.call("status")["repos"] == []
    assert daemon.call("status")["daemon"]["queue_depth"] == 0


def test_daemon_stop_stops_a_running_update_at_once(
    daemon: Daemon, server: FakeServer, tmp_path: Path
) -> None:
    server.delay = 0.3
    repo, index = watched(daemon, tmp_path / "repo", 400, wait=False)
    eventually(lambda: indexed_files(index) >= 8, timeout=60, what="some files indexed")
    out = cli(daemon.settings.home, "daemon", "stop", timeout=60)
    assert out.returncode == 0, out.stderr
    asked = len(server.requests)
    time.sleep(1)
    assert len(server.requests) == asked
    # it says what the stopped update kept, and that is what the index holds
    found = re.search(r"stopped indexing (.*): (\d+) files it finished are kept", out.stdout)
    assert found, out.stdout
    assert Path(found.group(1)) == repo.resolve()
    assert 0 < int(found.group(2)) == indexed_files(index) < 400
    log = (daemon.settings.home / "logs").glob("*.log")
    text = "".join(p.read_text() for p in log)
    assert f"update stopped, {found.group(2)} files it finished are kept" in text


def test_ctrl_c_on_index_prints_the_number_of_files_kept(
    server: FakeServer, tmp_path: Path, isolated_home: Path
) -> None:
    repo = make_repo(tmp_path / "repo", 400)
    index_path = None

    def interrupt(after_requests: int, delay: float) -> tuple[str, int]:
        server.delay = delay
        start = len(server.requests)
        proc = subprocess.Popen(
            [sys.executable, "-m", "codesearch.cli", "index", str(repo), "-q"],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "CODESEARCH_HOME": str(isolated_home)},
        )
        eventually(
            lambda: len(server.requests) >= start + after_requests,
            timeout=60,
            what="embedding requests",
        )
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        return err, proc.returncode

    # in the middle of the first request: nothing was finished, and it says so
    err, _ = interrupt(after_requests=2, delay=0.3)  # the size probe, then the first group
    from codesearch.config import load_settings

    index_path = load_settings().index_path(repo.resolve())
    assert "no file of this run was finished" in err, err
    assert indexed_files(index_path) == 0

    # later (an embedder call is 256 chunks, 32 requests): the count printed is what the index
    # holds
    err, _ = interrupt(after_requests=40, delay=0.1)
    found = re.search(r"interrupted: (\d+) files? finished in this run are kept", err)
    assert found, err
    assert int(found.group(1)) == indexed_files(index_path) > 0


# ---------------------------------------------------------------------- state follows the folder


def test_a_folder_moved_away_is_missing_within_seconds_and_followed_once_back(
    daemon: Daemon, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", 3)
    daemon.start()
    daemon.add(repo, wait=True)
    away = tmp_path / "elsewhere"
    repo.rename(away)
    eventually(lambda: daemon.repo_status(repo)["state"] == "missing", timeout=20, what="missing")
    with pytest.raises(CodesearchError, match="gone"):
        daemon.search(repo, "stage")
    listed = cli(daemon.settings.home, "repos")
    assert "[missing]" in listed.stdout

    away.rename(repo)
    eventually(lambda: daemon.repo_status(repo)["state"] == "idle", timeout=20, what="back")
    answer = daemon.call("search", {"queries": ["stage"], "k": 5, "repo": str(repo), "filters": {}})
    assert answer["results"][0] and not answer["notices"]
    # watched again: an edit made after the return is seen
    (repo / "gen" / "new_one.py").write_text("def walrus_gate(x):\n    return x\n")
    eventually(lambda: "gen/new_one.py" in daemon.paths(repo, "walrus gate"), what="edit seen")


def test_remove_sticks_until_add(daemon: Daemon, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", 3)
    daemon.start()
    daemon.add(repo, wait=True)
    out = cli(daemon.settings.home, "remove", str(repo))
    assert out.returncode == 0 and "stopped watching" in out.stdout, out.stderr

    # a search in that folder does not watch it again, also after a restart
    for _ in range(2):
        with pytest.raises(CodesearchError, match="removed"):
            daemon.call("search", {"queries": ["stage"], "k": 5, "cwd": str(repo), "filters": {}})
        assert daemon.call("status")["repos"] == []
        daemon.stop()
        daemon.start()

    daemon.add(repo, wait=True)
    assert daemon.paths(repo, "stage")


def test_forget_deletes_the_index_the_daemon_holds_open(daemon: Daemon, tmp_path: Path) -> None:
    repo, index = watched(daemon, tmp_path / "repo", 3)
    assert daemon.paths(repo, "stage")  # its reader is open now
    assert index.exists()

    out = cli(daemon.settings.home, "forget", str(repo))
    assert out.returncode == 0, out.stderr
    assert f"deleted {index}\n" in out.stdout and f"forgot {repo.resolve()}" in out.stdout
    for suffix in ("", "-wal", "-shm"):
        assert not Path(f"{index}{suffix}").exists()
    assert daemon.call("status")["repos"] == []
    assert daemon.call("status")["daemon"]["pid"] == daemon.pid  # still running

    # without a daemon too, and `remove --delete` is the same
    daemon.add(repo, wait=True)
    daemon.stop()
    out = cli(daemon.settings.home, "remove", "--delete", str(repo))
    assert out.returncode == 0 and f"deleted {index}\n" in out.stdout, out.stderr
    assert not index.exists()
