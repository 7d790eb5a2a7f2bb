"""Terminal and file-system hygiene: names with control characters are shown escaped in every
human output (JSON keeps them exact); the data dir and everything in it is private; the
daemon's early output file is bounded and a client hanging up leaves no traceback; a socket
folder another local user set up is never used, and says so in one line."""

from __future__ import annotations

import json
import os
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_helpers import Daemon

from codesearch.cli import main
from codesearch.config import Settings
from codesearch.daemon import lifecycle, protocol, registry
from codesearch.daemon.runtime import runtime

EVIL = "evil\x1b[2J\nname.py"  # clears the screen, then forges a line
EVIL_SHOWN = "evil\\x1b[2J\\nname.py"
GEO = "def polygon_area(points):\n    return abs(sum(points)) / 2\n"


def _no_control(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text, repr(text)


@pytest.fixture
def evil_repo(tmp_path: Path) -> Path:
    root = tmp_path / "clone\x1b]0;pwned\x07"  # retitles the terminal
    root.mkdir()
    (root / EVIL).write_text(GEO)
    (root / "bad\x1b[31m.min.js").write_text("var a=1;\n")  # skipped by name: generated
    return root


def test_control_characters_are_escaped_in_human_output(
    evil_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shown_root = str(evil_repo).replace("\x1b", "\\x1b").replace("\x07", "\\x07")
    assert main(["index", str(evil_repo), "-v", "--model", "fake"]) == 0
    err = capsys.readouterr().err
    _no_control(err)
    assert "skipped bad\\x1b[31m.min.js: generated" in err
    assert f"indexed {shown_root}: " in err

    repo = ["--repo", str(evil_repo)]
    assert main(["search", "polygon area", *repo]) == 0
    out = capsys.readouterr().out
    _no_control(out)
    assert out.startswith(f"{EVIL_SHOWN}:1-2  function polygon_area"), out
    for form in (["--files-only"], ["--vimgrep"]):
        assert main(["search", "polygon area", *repo, *form]) == 0
        out = capsys.readouterr().out
        _no_control(out)
        assert out.startswith(EVIL_SHOWN) and out.count("\n") == 1, out

    assert main(["search", "polygon area", *repo, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["path"] == EVIL  # exact

    assert main(["similar", f"{EVIL}:1", *repo]) in (0, 1)
    out = capsys.readouterr().out
    _no_control(out)
    assert out.startswith(f"like {EVIL_SHOWN}:1-2  function polygon_area"), out

    assert main(["status", str(evil_repo)]) == 0
    out = capsys.readouterr().out
    _no_control(out)
    assert f"repository  {shown_root} (" in out

    registry.save(runtime(Settings(home=Path(os.environ["CODESEARCH_HOME"]))).repos, [evil_repo])
    assert main(["repos"]) == 0
    out = capsys.readouterr().out
    _no_control(out)
    assert out.startswith(f"{shown_root}  [")

    assert main(["search", "x", "--repo", str(evil_repo / "gone\x1b[2J")]) == 2
    err = capsys.readouterr().err
    _no_control(err)
    assert err.count("\n") == 1 and "gone\\x1b[2J" in err, err


# ---------------------------------------------------------------------- the data dir


def _loose(home: Path) -> list[str]:
    """Everything under ``home`` that group or others may use, with its mode."""
    found = []
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077 and not path.is_symlink():
            found.append(f"{path.relative_to(home)} {mode:04o}")
    return found


@pytest.fixture
def old_home(tmp_path: Path) -> Path:
    """A data dir as an earlier version left it: logs/ 0755, daemon.log 0644, and a
    daemon.out grown large."""
    home = tmp_path / "home"
    (home / "logs").mkdir(parents=True)
    os.chmod(home, 0o755)
    os.chmod(home / "logs", 0o755)
    (home / "logs" / "daemon.log").write_text("2026-01-01 INFO codesearch.daemon: old\n")
    (home / "logs" / "daemon.out").write_bytes(b"x" * 1500 + b"\n" * 1_500_000)
    for name in ("daemon.log", "daemon.out"):
        os.chmod(home / "logs" / name, 0o644)
    return home


@pytest.fixture
def daemon(old_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    monkeypatch.setenv("CODESEARCH_HOME", str(old_home))
    running = Daemon(old_home).start()
    yield running
    running.stop()


def test_the_data_dir_is_private_and_the_daemon_output_bounded(
    daemon: Daemon, old_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "geo.py").write_text(GEO)
    assert main(["index", str(repo), "-q", "--model", "fake"]) == 0
    daemon.add(repo)  # the registry, the daemon's own writes
    assert daemon.call("ping")["pid"] == daemon.pid
    assert _loose(old_home) == []
    rt = runtime(daemon.settings)
    assert stat.S_IMODE(rt.run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(rt.socket.stat().st_mode) == 0o600
    out = rt.log_dir / "daemon.out"
    assert out.stat().st_size <= lifecycle.EARLY_OUTPUT_BYTES  # the big one was moved aside
    assert (rt.log_dir / "daemon.out.1").stat().st_size > lifecycle.EARLY_OUTPUT_BYTES


def test_clients_hanging_up_on_an_error_leave_no_traceback(daemon: Daemon) -> None:
    rt = runtime(daemon.settings)
    bad = protocol.encode({"v": protocol.SCHEMA_VERSION, "id": 1, "method": "no-such"})
    for _ in range(20):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(rt.socket))
            sock.sendall(bad)  # and gone before the error reply
        time.sleep(0.02)  # one at a time: this is about hang-ups, not load
    assert daemon.call("ping")["pid"] == daemon.pid  # still serving
    lifecycle.stop(daemon.settings)
    for name in ("daemon.out", "daemon.log"):
        text = (rt.log_dir / name).read_text(errors="replace")
        assert "Traceback" not in text, f"{name}:\n{text[-3000:]}"


# ---------------------------------------------------------------------- the socket folder


@pytest.fixture
def deep_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A data dir too deep for a socket path: the socket goes to a short folder in TMPDIR."""
    home = tmp_path / ("d" * 60) / ("e" * 60)
    monkeypatch.setenv("CODESEARCH_HOME", str(home))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    return Settings(home=home)


class Impostor:
    """A socket where the daemon's would be, counting who connects to it."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.connections = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(5)
        self.sock.close()


def _hostile(run_dir: Path, how: str, tmp_path: Path) -> None:
    if how == "other-owner":
        run_dir.mkdir(mode=0o777)
        os.chmod(run_dir, 0o777)
        os.chown(run_dir, 65534, 65534)
    elif how == "symlink":
        elsewhere = tmp_path / "attacker"
        elsewhere.mkdir(mode=0o700)
        run_dir.symlink_to(elsewhere)
    else:  # ours, but open to everyone: anyone could have put a socket in it
        run_dir.mkdir()
        os.chmod(run_dir, 0o777)


@pytest.mark.parametrize("how", ["other-owner", "symlink", "open"])
def test_a_hostile_socket_folder_is_never_used(
    deep_home: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    how: str,
) -> None:
    if how == "other-owner" and os.geteuid() != 0:
        pytest.skip("needs root to give a folder to another user")
    rt = runtime(deep_home)
    assert rt.run_dir.parent == tmp_path / "tmp"
    _hostile(rt.run_dir, how, tmp_path)
    impostor = Impostor(rt.socket)
    try:
        assert main(["daemon", "start"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert f"the daemon's socket folder {rt.run_dir} " in err
        why = {
            "other-owner": "belongs to another user (uid 65534)",
            "symlink": "is a symlink",
            "open": "is open to other users (mode 0777)",
        }[how]
        assert why in err, err

        repo = tmp_path / "repo"
        repo.mkdir()
        (repo / "geo.py").write_text(GEO)
        assert main(["index", str(repo), "-q", "--model", "fake"]) == 0
        monkeypatch.setenv("CODESEARCH_DAEMON", "1")
        assert main(["search", "polygon area", "--repo", str(repo), "--files-only"]) == 0
        out, err = capsys.readouterr()
        assert out == "geo.py\n"  # answered in-process
        assert why in err and "searching in-process" in err, err
        assert impostor.connections == 0  # nothing was said to whoever owns that folder
    finally:
        impostor.close()


def test_the_socket_folder_prefers_a_private_xdg_runtime_dir(
    deep_home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xdg = Path(tempfile.mkdtemp(prefix="xdg-", dir="/tmp"))  # short, like /run/user/UID
    try:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
        assert runtime(deep_home).run_dir.parent == xdg
        os.chmod(xdg, 0o755)  # not private: not used
        assert runtime(deep_home).run_dir.parent == tmp_path / "tmp"
    finally:
        xdg.rmdir()
