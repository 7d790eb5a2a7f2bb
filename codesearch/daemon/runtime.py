"""Where the daemon's socket, lock, log and repository list live, and the socket folder's
permission check. Cheap to import."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from codesearch.config import Settings
from codesearch.types import CodesearchError

# sun_path holds 108 bytes on Linux (104 on macOS); stay under both with room to spare.
MAX_SOCKET_PATH = 100


class UnsafeRuntimeDir(CodesearchError):
    pass


@dataclass(frozen=True)
class Runtime:
    home: Path
    run_dir: Path  # 0700: the socket lives here
    socket: Path
    lock: Path  # held (flock) by the running daemon; holds its pid
    log_dir: Path
    log: Path
    repos: Path  # the registered repositories (JSON)


def runtime(settings: Settings) -> Runtime:
    home = settings.home
    run_dir = home / "run"
    if len(os.fsencode(run_dir / "daemon.sock")) > MAX_SOCKET_PATH:
        # A deep data dir cannot hold a socket: use a short per-user, per-home folder instead.
        import tempfile

        digest = hashlib.sha256(os.fsencode(home.resolve())).hexdigest()[:12]
        run_dir = Path(tempfile.gettempdir()) / f"codesearch-{os.getuid()}-{digest}"
    log_dir = home / "logs"
    return Runtime(
        home=home,
        run_dir=run_dir,
        socket=run_dir / "daemon.sock",
        lock=home / "daemon.lock",
        log_dir=log_dir,
        log=log_dir / "daemon.log",
        repos=home / "repos.json",
    )


def secure_dir(path: Path) -> None:
    """Create ``path`` as a folder only this user can enter, or refuse one that is not."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeRuntimeDir(f"{path} is not a directory")
    if info.st_uid != os.getuid():
        raise UnsafeRuntimeDir(f"{path} belongs to another user (uid {info.st_uid})")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)
