"""How the daemon knows that an index file still holds what it served: the file's identity and
stamp, a page check through a fresh connection, and the words a damaged index is reported in.

The daemon trusts what its own writer wrote. A change it did not make (the file overwritten,
replaced or deleted behind its back) shows as a new stamp (device, inode, size, mtime) between
updates; a new stamp, or ``CHECK_S`` passing, costs one ``PRAGMA quick_check`` through a
connection of its own (no page cache, no vector copy in memory: what the disk holds).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from codesearch.engine import META_ROOT
from codesearch.store import Store
from codesearch.types import CodesearchError, IndexCorrupt, IndexMissing

log = logging.getLogger("codesearch.daemon")

CHECK_S = float(os.environ.get("CODESEARCH_CHECK_INTERVAL", "") or 600.0)  # periodic page check
MAX_REASON = 160  # characters of the first problem shown in a notice


class Rebuilding(Exception):
    """The index cannot answer while it is rebuilt: the answer is empty, with this notice."""


def file_id(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def file_stamp(path: Path) -> tuple[int, ...] | None:
    """(device, inode, size, mtime) of ``path``; None when it does not exist."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def page_problems(path: Path) -> list[str] | None:
    """What SQLite's page check finds in the file at ``path``, read from the disk; None when
    the check could not run for a reason that says nothing about the file (a full disk, a
    lock): that is no finding, and never a reason to rebuild."""
    try:
        with Store.open(path) as probe:
            return probe.quick_check()
    except IndexCorrupt as exc:
        return [reason_of(exc)]
    except IndexMissing:
        return ["the index file is empty"]
    except CodesearchError as exc:
        log.warning("%s: cannot check the index now: %s", path, exc)
        return None


def root_of(path: Path) -> str | None:
    """The repository the index at ``path`` says it belongs to (None: unreadable or unset)."""
    try:
        with Store.open(path) as probe:
            return probe.get_meta(META_ROOT)
    except CodesearchError:
        return None


def reason_of(exc: IndexCorrupt) -> str:
    """The plain words of an IndexCorrupt ("damaged pages"), without its advice to rebuild by
    hand (the daemon rebuilds by itself)."""
    found = re.search(r"\(([^()]*)\)", str(exc))
    return found.group(1) if found else "unreadable"


def summary(problems: list[str]) -> str:
    """One short line for a notice (the full list goes to the log)."""
    first = problems[0] if problems else "unknown damage"
    if len(first) > MAX_REASON:
        first = first[: MAX_REASON - 3] + "..."
    more = len(problems) - 1
    return first + (f"; and {more} more problems (see `codesearch daemon logs`)" if more else "")


def damaged_notice(root: Path, reason: str) -> str:
    return (
        f"the index of {root} is damaged ({reason}): it is being rebuilt in the background; "
        "until that is done, answers hold only what is rebuilt so far"
    )


def replaced_notice(root: Path, what: str) -> str:
    return (
        f"the index file of {root} was {what} while the daemon ran: it is being brought up to "
        "date with the files; until that is done, answers may be incomplete"
    )


def building_notice(root: Path) -> str:
    return (
        f"the index of {root} is being built: no answers until its first files are in "
        "(`codesearch status` shows the progress)"
    )
