"""Integrity is checked, not assumed: a real daemon whose index is damaged, replaced or deleted
while it runs (and a full disk), seen as a user sees it: answers, notices, `status`."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlean
from daemon_helpers import Daemon, eventually

FIXTURES = Path(__file__).parent / "fixtures"
QUERIES = ("retry backoff", "parse the config file", "http request handler")
RAW = ("sqlite-vec", "sqlite3", "sqlite_", "vec0", "could not fetch", "malformed", "from blob")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def repo(demo_repo: Path) -> Path:
    return demo_repo


def answer(daemon: Daemon, repo: Path, query: str) -> dict[str, Any]:
    return daemon.call("search", {"queries": [query], "k": 5, "repo": str(repo)})


def ranked(daemon: Daemon, repo: Path) -> list[list[tuple[str, int, str]]]:
    """What the daemon answers to QUERIES: (path, line, name) of each hit."""
    out = []
    for query in QUERIES:
        hits = answer(daemon, repo, query)["results"][0]
        out.append([(h["path"], h["start_line"], h["name"]) for h in hits])
    return out


def overwrite_pages(index: Path) -> None:
    """Trash every page after the second (in place: the file keeps its inode), once they are
    all in the file (as after SQLite's next checkpoint: before it, the WAL still holds them)."""
    conn = sqlean.connect(str(index), isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with open(index, "r+b") as handle:
        size = os.fstat(handle.fileno()).st_size
        for offset in range(8192, size - 4096, 4096):
            handle.seek(offset)
            handle.write(os.urandom(512))


def no_raw(text: str) -> None:
    lowered = text.lower()
    assert not any(word in lowered for word in RAW), text


def cli(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODESEARCH_HOME": str(daemon.settings.home), "CODESEARCH_DAEMON": "1"}
    command = [sys.executable, "-m", "codesearch.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)


def whole_again(daemon: Daemon, repo: Path, clean: list[list[tuple[str, int, str]]]) -> None:
    """The rebuild ends, the notice goes, the answers are those of the clean index."""
    daemon.wait(repo, timeout=180)
    info = daemon.repo_status(repo)
    assert info["notice"] == "" and info["error"] == "" and info["state"] == "idle", info
    assert answer(daemon, repo, QUERIES[0])["notices"] == []
    assert ranked(daemon, repo) == clean


def test_pages_overwritten_while_the_daemon_runs(own: Daemon, repo: Path) -> None:
    own.start()
    own.add(repo)
    clean = ranked(own, repo)
    overwrite_pages(own.settings.index_path(repo))

    # human `status` names the damage (it is what noticed it here) ...
    status = cli(own, "status", str(repo))
    assert status.returncode == 0, status.stderr
    assert "damaged" in status.stdout and "rebuilt" in status.stdout, status.stdout
    no_raw(status.stdout)
    # ... and every answer says so until the rebuild is done: none is served from memory
    first = answer(own, repo, QUERIES[0])
    if own.repo_status(repo)["notice"]:
        assert any("damaged" in n for n in first["notices"]), first
    for notice in first["notices"]:
        no_raw(notice)
    whole_again(own, repo, clean)


def test_damage_found_by_a_search_then_an_edit_does_not_retry_forever(
    own: Daemon, repo: Path
) -> None:
    own.start()
    own.add(repo)
    clean = ranked(own, repo)
    overwrite_pages(own.settings.index_path(repo))
    searched = cli(own, "search", "--repo", str(repo), "retry backoff")
    assert searched.returncode in (0, 1), searched.stderr  # 1: no results (grep-like)
    assert "damaged" in searched.stderr, searched.stderr
    no_raw(searched.stdout + searched.stderr)
    write(repo / "src/app/walrus.py", "def walrus_compass():\n    return 'north'\n")
    eventually(lambda: own.repo_status(repo)["state"] == "idle", timeout=180, what="idle")
    assert own.repo_status(repo)["error"] == ""
    found = {h["path"] for h in answer(own, repo, "walrus compass")["results"][0]}
    assert "src/app/walrus.py" in found
    (repo / "src/app/walrus.py").unlink()
    whole_again(own, repo, clean)


def test_the_index_file_replaced_by_another_repositorys(
    own: Daemon, repo: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    write(other / "zebra.py", "def zebra_stripes(count):\n    return count * 2\n")
    own.start()
    own.add(repo)
    own.add(other)
    clean = ranked(own, repo)
    index = own.settings.index_path(repo)
    shutil.copy(own.settings.index_path(other), tmp_path / "copy.sqlite")
    os.replace(tmp_path / "copy.sqlite", index)  # a new file (inode) at the index's path
    got = answer(own, repo, "zebra stripes")
    assert all(h["path"] != "zebra.py" for h in got["results"][0]), got
    assert got["notices"], got
    whole_again(own, repo, clean)


def test_the_index_file_deleted(own: Daemon, repo: Path) -> None:
    own.start()
    own.add(repo)
    clean = ranked(own, repo)
    own.settings.index_path(repo).unlink()
    searched = cli(own, "search", "--repo", str(repo), "retry backoff")
    assert searched.returncode in (0, 1), searched.stderr  # 1: no results (grep-like)
    assert "deleted" in searched.stderr or "being built" in searched.stderr, searched.stderr
    assert "codesearch index" not in searched.stderr  # no advice that starts a second writer
    whole_again(own, repo, clean)


def test_the_first_search_after_a_stop_on_a_damaged_index(own: Daemon, repo: Path) -> None:
    own.start()
    own.add(repo)
    clean = ranked(own, repo)
    own.stop()
    overwrite_pages(own.settings.index_path(repo))
    own.start()
    searched = cli(own, "search", "--repo", str(repo), "retry backoff")
    assert searched.returncode in (0, 1), searched.stderr  # 1: no results (grep-like)
    no_raw(searched.stdout + searched.stderr)
    whole_again(own, repo, clean)


# ---------------------------------------------------------------------- a full disk


@contextlib.contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a disk that fills up) needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 4096)
    return filler


def test_a_full_disk_is_a_full_disk_not_damage(own: Daemon, repo: Path) -> None:
    indexes = own.settings.index_path(repo).parent
    with small_disk(indexes, "4m"):
        own.start()
        own.add(repo)
        filler = fill(indexes)
        body = "".join(f"def jaguar_{i}(x):\n    return x + {i}\n\n" for i in range(400))
        write(repo / "src/jaguar.py", body)
        info = eventually(
            lambda: (s := own.repo_status(repo))["state"] == "error" and s, timeout=120
        )
        assert "disk full" in info["error"], info
        assert info["notice"] == "" and "is damaged" not in info["error"], info
        # a restart while it is full: the intact index is not called damaged, nor rebuilt
        own.stop()
        own.start()
        info = eventually(
            lambda: (s := own.repo_status(repo))["state"] == "error" and s, timeout=120
        )
        assert "disk full" in info["error"] and info["notice"] == "", info
        assert own.settings.index_path(repo).stat().st_size > 0  # not deleted to rebuild it
        filler.unlink()
        eventually(
            lambda: (
                "src/jaguar.py" in {h["path"] for h in answer(own, repo, "jaguar 3")["results"][0]}
            ),
            timeout=120,
            what="the update after space came back",
        )
        own.stop()
