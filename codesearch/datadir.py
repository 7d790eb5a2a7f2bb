"""The data dir is private: its folders 0700, its files 0600.

It holds indexes (the code of every repository), logs (repository paths, fragments of
requests), the repository list and the daemon's socket: nothing another local user should
read. Folders are created private, and ones an earlier version left open (``logs/`` at 0755,
``daemon.log`` at 0644) are tightened. Only what this user owns is touched, and never
through a symlink. Cheap to import.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# The data dir's own entries: what codesearch writes there (a user's other files are left be).
_FOLDERS = ("indexes", "logs", "run")
_FILES = ("repos.json", "daemon.lock", "config.toml")


def tighten(path: Path) -> None:
    """Take group and other access away from ``path`` (a folder or file of ours, not a
    symlink); nothing when it is missing."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid():
        return
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        os.chmod(path, mode & ~0o077)


def private_dir(path: Path) -> Path:
    """``path`` as a folder only this user can enter (created 0700 if missing)."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    tighten(path)
    return path


def secure_home(home: Path) -> None:
    """The data dir, its folders and the files codesearch keeps there: private."""
    private_dir(home)
    for name in _FILES:
        tighten(home / name)
    for name in _FOLDERS:
        folder = home / name
        tighten(folder)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                tighten(Path(entry.path))
