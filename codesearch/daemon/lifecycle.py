"""Starting, stopping and installing the daemon, from the client side (the one client that
starts and restarts it for the faces is daemon/link.py). Cheap to import."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from codesearch.config import Settings
from codesearch.daemon.client import Client, DaemonBusy, running
from codesearch.daemon.protocol import DaemonUnavailable, SchemaMismatch
from codesearch.daemon.runtime import runtime, secure_dir
from codesearch.datadir import private_dir, secure_home

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
UNIT_NAME = "codesearch.service"
# daemon.out takes what the daemon prints before its log is set up (and what native code
# writes to its stderr); past this size it is moved to daemon.out.1 at the next start.
EARLY_OUTPUT_BYTES = 1_000_000


def _daemon_command() -> list[str]:
    return [sys.executable, "-m", "codesearch.daemon"]


def start(settings: Settings, notice: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Start a detached daemon unless one runs; return its ping answer."""
    info = running(settings)
    if info is not None:
        return {**info, "already_running": True}
    deadline = time.monotonic() + START_TIMEOUT_S
    info = _settle(settings, deadline)
    if info is not None:
        return {**info, "already_running": True}
    rt = runtime(settings)
    secure_home(rt.home)
    private_dir(rt.log_dir)
    secure_dir(rt.run_dir)  # a hostile socket folder: one line, before anything is started
    if notice is not None:
        notice(f"starting the codesearch daemon (logs: {rt.log})")
    env = {**os.environ, "CODESEARCH_HOME": str(settings.home.resolve())}
    early = rt.log_dir / "daemon.out"
    with _early_output(early) as out:
        proc = subprocess.Popen(
            [*_daemon_command(), "--detached"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            start_new_session=True,  # not in this terminal's process group: ^C leaves it be
            close_fds=True,
            cwd="/",  # hold no folder busy (an unmount, a deleted checkout)
        )
    while time.monotonic() < deadline:
        info = running(settings)
        if info is not None:
            return {**info, "already_running": info.get("pid") != proc.pid}
        code = proc.poll()
        if code is not None:
            info = running(settings)  # lost a race with another start: that one serves
            if info is not None:
                return {**info, "already_running": True}
            raise DaemonUnavailable(f"the daemon exited at start ({code}): {_tail(early)}")
        time.sleep(0.05)
    raise DaemonUnavailable(
        f"the daemon did not answer within {START_TIMEOUT_S:.0f} s: see {rt.log}"
    )


def _early_output(path: Path) -> BinaryIO:
    """daemon.out, private, appended to; moved to daemon.out.1 first when it has grown past
    ``EARLY_OUTPUT_BYTES`` (so it is never larger than twice that)."""
    with contextlib.suppress(FileNotFoundError):
        if os.lstat(path).st_size > EARLY_OUTPUT_BYTES:
            os.replace(path, f"{path}.1")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


def _settle(settings: Settings, deadline: float) -> dict[str, Any] | None:
    """Wait while a process holds the daemon lock without answering: one that is starting
    (its ping answer, once it answers) or dying (None once the kernel has released its lock;
    a killed daemon's threads can outlive its main thread for a moment)."""
    while _lock_pid(settings) is not None and time.monotonic() < deadline:
        info = running(settings)
        if info is not None:
            return info
        time.sleep(0.05)
    return None


def _tail(path: Path, lines: int = 1) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "no output"
    return " | ".join(text[-lines:]) or "no output"


@dataclass(frozen=True)
class Stopped:
    """A daemon that stopped, and the updates it was running: (repository, files kept)."""

    pid: int
    kept: tuple[tuple[str, int], ...] = ()


def stop(settings: Settings) -> Stopped | None:
    """Stop the running daemon (None when none ran). A running update stops before its next
    embedder call, keeping the files it finished: the answer names them."""
    kept: tuple[tuple[str, int], ...] = ()
    try:
        with Client.connect(settings, timeout=10) as client:
            answer = client.call("shutdown")
        pid = int(answer["pid"])
        kept = tuple((run["repo"], int(run["files_kept"])) for run in answer.get("stopped", ()))
    # not answering, swamped by other clients, or another version's daemon
    except (DaemonUnavailable, DaemonBusy, SchemaMismatch):
        pid = _lock_pid(settings)
        if pid is None:
            return None
        # holds the lock but does not answer: ask the process itself
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return None
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _alive(pid):
            return Stopped(pid, kept)
        time.sleep(0.05)
    raise DaemonUnavailable(f"the daemon (pid {pid}) did not stop within {STOP_TIMEOUT_S:.0f} s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child (started by this very process, e.g. in tests) counts as gone, once its
    # other threads have exited too (until then it still holds its files and the lock)
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            if handle.read().split(") ")[-1][:1] != "Z":
                return True
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return True


def _lock_pid(settings: Settings) -> int | None:
    """The pid in the lock file, if a process still holds the lock."""
    import fcntl

    rt = runtime(settings)
    try:
        with open(rt.lock, encoding="ascii") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                text = handle.read().strip()
                return int(text) if text.isdigit() else None
            return None  # nobody holds it
    except FileNotFoundError:
        return None


def unit_text(settings: Settings) -> str:
    command = " ".join(shlex.quote(part) for part in _daemon_command())
    return (
        "[Unit]\n"
        "Description=codesearch: local semantic code search daemon\n"
        "After=default.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={command}\n"
        f'Environment="CODESEARCH_HOME={settings.home.resolve()}"\n'
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "Nice=10\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def install(settings: Settings) -> tuple[Path, str]:
    """Write the systemd user unit; return where and what."""
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = config / "systemd" / "user" / UNIT_NAME
    text = unit_text(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path, text


def read_log(settings: Settings, lines: int) -> list[str]:
    rt = runtime(settings)
    try:
        text = rt.log.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return text.splitlines()[-lines:] if lines > 0 else []
