"""What `codesearch remove` did, and deleting an index's files (`codesearch forget`,
`remove --delete`): the database and its write-ahead log and shared-memory files. The daemon
closes its connections to them first (a file deleted while open lives on until closed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

INDEX_SUFFIXES = ("", "-wal", "-shm", ".writer")  # .writer: store/writer_lock.py


@dataclass(frozen=True)
class Removed:
    """A repository no longer watched; what happened to its running update and its index."""

    root: Path
    stopped: bool = False  # an update was running and stopped
    files_kept: int | None = None  # files that update finished (None: it had not stopped yet)
    deleted: tuple[str, ...] = ()  # index files deleted


def index_files(index_path: Path) -> list[Path]:
    """The files of the index at ``index_path`` that exist."""
    return [p for s in INDEX_SUFFIXES if (p := Path(f"{index_path}{s}")).is_file()]


def delete_index(index_path: Path) -> tuple[str, ...]:
    """Delete the index's files (nothing else); the paths deleted."""
    deleted = []
    for path in index_files(index_path):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        deleted.append(str(path))
    return tuple(deleted)
