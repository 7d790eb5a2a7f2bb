"""Where the daemon's socket, lock, log and repository list live, and the socket folder's
permission check. Cheap to import.

The socket lives in ``$CODESEARCH_HOME/run``. When that path is too long for a Unix socket
(a deep data dir), it lives in a short folder of its own: ``$XDG_RUNTIME_DIR/codesearch-HASH``
when ``XDG_RUNTIME_DIR`` is set and private, else ``/tmp/codesearch-UID-HASH``. A name in
``/tmp`` can be taken by another local user first, so the folder is only used when it is a
real folder (not a symlink), ours, and closed to group and others: the daemon refuses to
start, and clients refuse to connect, with one line saying why, otherwise."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from codesearch.config import Settings
from codesearch.daemon.protocol import DaemonUnavailable

# sun_path holds 108 bytes on Linux (104 on macOS); stay under both with room to spare.
MAX_SOCKET_PATH = 100


class UnsafeRuntimeDir(DaemonUnavailable):
    """The socket folder could be another user's: no daemon is started or reached there
    (a face falls back as when no daemon runs, and says why)."""


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
    if not _fits(run_dir):
        # A deep data dir cannot hold a socket: use a short per-user, per-home folder instead.
        digest = hashlib.sha256(os.fsencode(home.resolve())).hexdigest()[:12]
        xdg = _xdg_runtime_dir()
        if xdg is not None and _fits(xdg / f"codesearch-{digest}"):
            run_dir = xdg / f"codesearch-{digest}"
        else:
            import tempfile

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


def _fits(run_dir: Path) -> bool:
    return len(os.fsencode(run_dir / "daemon.sock")) <= MAX_SOCKET_PATH


def _xdg_runtime_dir() -> Path | None:
    """``$XDG_RUNTIME_DIR`` when it is set, absolute, a real folder of ours, and private."""
    value = os.environ.get("XDG_RUNTIME_DIR", "")
    if not value or not os.path.isabs(value):
        return None
    try:
        info = os.lstat(value)
    except OSError:
        return None
    private = stat.S_ISDIR(info.st_mode) and not stat.S_IMODE(info.st_mode) & 0o077
    return Path(value) if private and info.st_uid == os.getuid() else None


def _unsafe(path: Path, why: str) -> UnsafeRuntimeDir:
    return UnsafeRuntimeDir(
        f"the daemon's socket folder {path} {why}: it may have been set up by another user, "
        "so no daemon is started or reached there (remove it, or set XDG_RUNTIME_DIR or a "
        "shorter CODESEARCH_HOME)"
    )


def check_dir(path: Path) -> None:
    """Refuse a socket folder that is a symlink or not a folder, belongs to another user, or
    lets group or others in (:class:`UnsafeRuntimeDir`); a missing one is fine."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise _unsafe(path, "is a symlink")
    if not stat.S_ISDIR(info.st_mode):
        raise _unsafe(path, "is not a folder")
    if info.st_uid != os.getuid():
        raise _unsafe(path, f"belongs to another user (uid {info.st_uid})")
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise _unsafe(path, f"is open to other users (mode {stat.S_IMODE(info.st_mode):04o})")


def secure_dir(path: Path) -> None:
    """Create ``path`` as a folder only this user can enter (0700), or refuse one that is not
    (:func:`check_dir`): an existing folder is never taken over or loosened."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    check_dir(path)
