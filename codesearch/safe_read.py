"""Reading a file of a repository safely: regular files only, never blocking, size-capped.

A cloned repository is not trusted. Any name in it may be a FIFO (opening one for reading
waits for a writer that never comes), a symlink to a device (``.gitignore -> /dev/zero`` reads
forever), a socket, or a file too large to hold in memory. Every read of a repository's files
(ignore files, sources, snippets, context lines, pictures) goes through here:

- the name is ``stat``-ed first and anything but a regular file is refused without opening it
  (opening some devices has side effects);
- it is then opened with ``O_NONBLOCK`` (a FIFO swapped in meanwhile opens at once instead of
  waiting) and the *open* file is checked again with ``fstat``;
- at most ``limit`` bytes are read: more is refused as ``too-large`` (or, for a ``head``,
  simply not read).

A refusal is :class:`Refused`, an ``OSError`` that carries a skip reason (``not-regular``,
``too-large``, ``symlink``, ``vanished``, ``unreadable``) and a one-line detail.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

READ_BLOCK = 1 << 20

_KINDS = (
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISDIR, "directory"),
    (stat.S_ISLNK, "symlink"),
)


class Refused(OSError):
    """A file that is not read, with why: ``reason`` (a skip reason) and ``detail``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


def kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words (``fifo``, ``character device``, ...)."""
    return next((name for test, name in _KINDS if test(mode)), "special file")


def _not_regular(mode: int) -> Refused:
    return Refused("not-regular", f"not a regular file ({kind(mode)})")


def _refusal(exc: OSError, follow_symlinks: bool) -> Refused:
    if isinstance(exc, Refused):
        return exc
    if exc.errno == errno.ENOENT:
        return Refused("vanished", "file disappeared before it was read")
    if exc.errno == errno.ELOOP and not follow_symlinks:
        return Refused("symlink", "a symlink (not followed)")
    return Refused("unreadable", exc.strerror or str(exc) or type(exc).__name__)


@contextlib.contextmanager
def open_regular(path: str | Path, follow_symlinks: bool = True) -> Iterator[int]:
    """A read-only file descriptor of the regular file at ``path``; :class:`Refused` for
    anything else (and for a symlink when not ``follow_symlinks``). Never blocks on open."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        before = os.stat(path, follow_symlinks=follow_symlinks)
        if not stat.S_ISREG(before.st_mode):
            if stat.S_ISLNK(before.st_mode):
                raise Refused("symlink", "a symlink (not followed)")
            raise _not_regular(before.st_mode)
        fd = os.open(path, flags)
    except OSError as exc:
        raise _refusal(exc, follow_symlinks) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # swapped between the stat and the open
            raise _not_regular(mode)
        yield fd
    finally:
        os.close(fd)


def read_regular(
    path: str | Path,
    limit: int | None,
    *,
    follow_symlinks: bool = True,
    head: bool = False,
) -> bytes:
    """The bytes of the regular file at ``path``: at most ``limit`` of them (None: no cap).

    More than ``limit`` bytes is :class:`Refused` (``too-large``) unless ``head``, which reads
    the first ``limit`` bytes only. Everything that is not a regular file is refused without
    being read; so is a symlink when not ``follow_symlinks``."""
    with open_regular(path, follow_symlinks) as fd:
        want = None if limit is None else (limit if head else limit + 1)
        parts: list[bytes] = []
        got = 0
        try:
            while want is None or got < want:
                block = os.read(fd, READ_BLOCK if want is None else min(READ_BLOCK, want - got))
                if not block:
                    break
                parts.append(block)
                got += len(block)
        except OSError as exc:
            raise _refusal(exc, follow_symlinks) from None
    data = b"".join(parts)
    if limit is not None and not head and len(data) > limit:
        raise Refused("too-large", f"more than {limit} bytes")
    return data


def read_text(path: str | Path, limit: int | None) -> str:
    """The file's text (UTF-8, undecodable bytes replaced); :class:`Refused` as above."""
    return read_regular(path, limit).decode("utf-8", errors="replace")
