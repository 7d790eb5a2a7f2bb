"""Reading LSP frames (``Content-Length: N`` headers, a blank line, N bytes of JSON) from
stdin, in place of pygls's reader (``pygls.io_.run_async``), which allocates whatever length a
header claims (``Content-Length: 1000000000000`` is a MemoryError) and loses the next message
after most framing errors.

- A body over :data:`MAX_FRAME_BYTES` is refused without being read whole: the reader skips
  ahead to the next header.
- After a framing error (no or a malformed ``Content-Length``, junk between frames, a body that
  is shorter or longer than its header says) the reader resynchronises on the next
  ``Content-Length`` header, even one glued to the end of junk, so the next well-formed message
  is read and answered. Each error is reported once (:class:`BadFrame`), never raised.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import BinaryIO, Protocol

log = logging.getLogger("codesearch.lsp")

MAX_FRAME_BYTES = 32 * 1024 * 1024  # a message (its JSON body) larger than this is refused
MAX_LINE_BYTES = 64 * 1024  # a header line is read in pieces of at most this much
HEADER = re.compile(rb"content-length[ \t]*:[ \t]*(\S*)[ \t]*\r?\n?$", re.IGNORECASE)
HEADER_START = re.compile(rb"content-length[ \t]*:", re.IGNORECASE)
OTHER_HEADER = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*[ \t]*:.*\r?\n$")


@dataclass(frozen=True)
class Frame:
    """One message's body, as the header framed it."""

    body: bytes


@dataclass(frozen=True)
class BadFrame:
    """What was wrong with the bytes the reader skipped; ``framed``: a well-formed header
    came first (a message over the limit), so it is news even while resynchronising."""

    reason: str
    framed: bool = False


class FrameReader:
    """Frames from a binary stream (blocking: run it in a worker thread), with a push-back
    buffer for the part of a bad body that belongs to the next frame."""

    def __init__(self, stream: BinaryIO, max_bytes: int = MAX_FRAME_BYTES) -> None:
        self._stream = stream
        self._pending = b""
        self._resyncing = False  # skipping bad bytes that were reported already
        self.max_bytes = max_bytes

    def next(self) -> Frame | BadFrame | None:
        """The next frame, or what was wrong with the bytes before it (once per stretch of bad
        bytes); None at the end of the stream."""
        while True:
            got = self._scan()
            if isinstance(got, BadFrame):
                if self._resyncing and not got.framed:
                    continue  # the same stretch of bad bytes: reported already
                self._resyncing = True
            elif isinstance(got, Frame):
                self._resyncing = False
            return got

    def _scan(self) -> Frame | BadFrame | None:
        length: int | None = None
        problem = ""
        headers = False  # a header line of this block was read
        while True:
            line = self._readline()
            if not line:
                return BadFrame(problem) if problem else None
            if not line.strip():  # the end of a header block
                if length is not None:
                    break
                if headers and not problem:
                    problem = "a header block without Content-Length"
                if problem:
                    return BadFrame(problem)
                continue  # a stray blank line
            start = HEADER_START.search(line)
            if start is not None and start.start() > 0:  # junk glued to a header
                self.push_back(line[start.start() :])
                return BadFrame(problem or "bytes outside a frame")
            headers = True
            if start is not None:
                length, why = self._length(line)
                problem = problem or why
            elif not OTHER_HEADER.match(line):  # Content-Type and the like are fine
                problem = problem or "bytes outside a frame"
                length = None
        if length > self.max_bytes:
            reason = f"a message of {length} bytes is over the limit of {self.max_bytes}"
            return BadFrame(reason, framed=True)
        return Frame(self._read(length))

    def salvage(self, body: bytes) -> None:
        """A body that is not a message may hold the start of the next frame (its header said
        more bytes than were sent): read that again."""
        start = HEADER_START.search(body, 1)
        if start is not None:
            self.push_back(body[start.start() :])
        self._resyncing = True

    def push_back(self, data: bytes) -> None:
        """``data`` is read again before the stream."""
        self._pending = data + self._pending

    def _length(self, line: bytes) -> tuple[int | None, str]:
        match = HEADER.match(line)
        raw = match.group(1) if match else b""
        if not raw.isdigit() or len(raw) > 18:
            return None, f"a malformed Content-Length header: {line[:80]!r}"
        return int(raw), ""

    def _readline(self) -> bytes:
        if self._pending:
            end = self._pending.find(b"\n", 0, MAX_LINE_BYTES)
            if end >= 0 or len(self._pending) >= MAX_LINE_BYTES:
                cut = end + 1 if end >= 0 else MAX_LINE_BYTES
                line, self._pending = self._pending[:cut], self._pending[cut:]
                return line
            head, self._pending = self._pending, b""
            return head + self._stream.readline(MAX_LINE_BYTES - len(head))
        return self._stream.readline(MAX_LINE_BYTES)

    def _read(self, size: int) -> bytes:
        head, self._pending = self._pending[:size], self._pending[size:]
        parts = [head]
        left = size - len(head)
        while left > 0:
            chunk = self._stream.read(min(left, 1024 * 1024))
            if not chunk:
                break
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)


class Receiver(Protocol):
    """What the loop hands frames to (lsp.protocol.Protocol)."""

    def receive(self, body: bytes) -> bool: ...

    def refuse_frame(self, reason: str) -> None: ...


async def serve(
    stop: threading.Event, frames: FrameReader, receiver: Receiver, executor: Executor
) -> None:
    """Read frames in a worker thread and hand them to ``receiver`` until the stream ends or
    ``stop`` is set. A body that is not a message is answered by ``receive`` (False), and any
    frame it held the start of is read again."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        got = await loop.run_in_executor(executor, frames.next)
        if got is None:
            return
        if isinstance(got, BadFrame):
            log.warning("framing error: %s", got.reason)
            receiver.refuse_frame(got.reason)
        elif not receiver.receive(got.body):
            frames.salvage(got.body)
