"""One writer per index across processes (issue 19, item 4): a run waits while another
process writes the same index (the daemon, or a second `codesearch index --no-daemon`), says so,
and then finds the work done instead of embedding it a second time."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from daemon_helpers import Daemon, eventually
from fake_embedder import FakeEmbedder
from test_daemon_cancel import daemon, indexed_files, server, watched
from test_remote_parts import FakeServer

from codesearch.config import load_settings
from codesearch.engine import index_repo
from codesearch.index import Cancelled
from codesearch.store.writer_lock import lock_path, writer_lock

__all__ = ["daemon", "server"]  # fixtures

ROOT = Path(__file__).resolve().parent.parent

HOLD = (
    "import fcntl, os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
)


def _hold(index: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding ``index``'s writer lock for ``seconds``."""
    index.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock_path(index)), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_run_waits_for_the_other_writer_then_writes(demo_repo: Path) -> None:
    settings = load_settings()
    index = settings.index_path(demo_repo.resolve())
    holder = _hold(index, 1.5)
    waits: list[float] = []
    embedder = FakeEmbedder()
    started = time.monotonic()
    stats = index_repo(
        demo_repo, settings, embedder=embedder, on_wait=lambda: waits.append(time.monotonic())
    )
    assert holder.wait(timeout=30) == 0
    assert len(waits) == 1 and waits[0] - started < 1.0  # told at once, not after the wait
    assert time.monotonic() - started >= 1.0  # and it did wait for the holder
    assert stats.files_indexed > 0 and embedder.documents_embedded > 0

    # the next run finds the index written: nothing embedded twice, no wait
    again = FakeEmbedder()
    index_repo(demo_repo, settings, embedder=again, on_wait=lambda: waits.append(0.0))
    assert again.documents_embedded == 0 and len(waits) == 1


def test_a_cancelled_run_stops_waiting(tmp_path: Path) -> None:
    index = tmp_path / "x.sqlite"
    holder = _hold(index, 30)
    try:
        calls: list[int] = []

        def cancel_on_third() -> None:
            calls.append(1)
            if len(calls) == 3:
                raise Cancelled

        started = time.monotonic()
        with pytest.raises(Cancelled), writer_lock(index, while_waiting=cancel_on_third):
            pass
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()
    with writer_lock(index):  # released with its holder: free again
        pass


def test_the_cli_says_it_waits_for_the_writer(demo_repo: Path) -> None:
    settings = load_settings()
    holder = _hold(settings.index_path(demo_repo.resolve()), 120)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = subprocess.Popen(
        [sys.executable, "-m", "codesearch.cli", "index", "--no-daemon", str(demo_repo)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert cli.stderr is not None
        first = cli.stderr.readline()  # it waits, and says so
        assert "another codesearch process (the daemon?) is writing this index" in first
        assert cli.poll() is None
        holder.kill()  # the other writer is done (or gone): the lock is free
        rest = cli.stderr.read()
        assert cli.wait(timeout=300) == 0, rest
        assert "indexed " in rest and "7 updated" in rest
    finally:
        holder.kill()
        holder.wait()
        cli.kill()
        cli.wait()


def test_a_thread_that_holds_the_lock_may_take_it_again_and_no_other_thread_may(
    tmp_path: Path,
) -> None:
    index = tmp_path / "x.sqlite"
    waited: list[bool] = []
    with writer_lock(index):
        with writer_lock(index, on_wait=lambda: waited.append(True)):  # held on, no wait
            pass
        assert waited == []

        def other() -> None:
            with writer_lock(index, on_wait=lambda: waited.append(True)):
                pass

        thread = threading.Thread(target=other)
        thread.start()
        eventually(lambda: waited == [True], timeout=10, what="the other thread waits")
        assert thread.is_alive()
    thread.join(timeout=10)  # released by the outer holder: the other thread got it
    assert not thread.is_alive()


def test_a_rebuild_deletes_nothing_while_another_process_writes(demo_repo: Path) -> None:
    settings = load_settings()
    index = settings.index_path(demo_repo.resolve())
    index_repo(demo_repo, settings, embedder=FakeEmbedder())
    assert indexed_files(index) == 7
    holder = _hold(index, 3)
    done: list[object] = []
    thread = threading.Thread(
        target=lambda: done.append(
            index_repo(demo_repo, settings, rebuild=True, embedder=FakeEmbedder())
        )
    )
    thread.start()
    time.sleep(1.5)
    # the other writer still has it: the index it writes is there, whole, not deleted
    assert thread.is_alive() and indexed_files(index) == 7
    assert holder.wait(timeout=30) == 0
    thread.join(timeout=120)
    assert len(done) == 1 and done[0].files_indexed == 7  # type: ignore[attr-defined]
    assert indexed_files(index) == 7


def test_the_daemon_rebuilds_only_once_another_process_is_done_writing(
    daemon: Daemon, server: FakeServer, tmp_path: Path
) -> None:
    repo, index = watched(daemon, tmp_path / "repo", 5)
    holder = _hold(index, 3)
    asked = len(server.requests)
    daemon.call("reindex", {"path": str(repo), "rebuild": True, "wait": False})
    time.sleep(1.5)
    # the rebuild waits: the other process's index is neither deleted nor embedded again
    assert indexed_files(index) == 5 and len(server.requests) == asked
    assert daemon.paths(repo, "stage")
    assert holder.wait(timeout=30) == 0
    daemon.wait(repo)
    assert len(server.requests) > asked  # rebuilt once the lock was free
    assert indexed_files(index) == 5 and daemon.paths(repo, "stage")
