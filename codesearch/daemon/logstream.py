"""A text stream that writes to a logger: the detached daemon's ``sys.stderr``, so what Python
prints there (warnings, tracebacks of uncaught exceptions in threads) lands in the rotated log
rather than in daemon.out, which nothing bounds while the daemon runs."""

from __future__ import annotations

import io
import logging
import sys
import threading


class LogStream(io.TextIOBase):
    """Complete lines go to ``logger`` at ``level``; a write made while logging one (logging's
    own error report) goes to the real stderr instead of looping."""

    def __init__(self, logger: logging.Logger, level: int = logging.WARNING) -> None:
        super().__init__()
        self.logger = logger
        self.level = level
        self._pending = ""
        self._lock = threading.Lock()
        self._busy = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if getattr(self._busy, "on", False):
            return sys.__stderr__.write(text) if sys.__stderr__ else len(text)
        with self._lock:
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
        self._emit(lines)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            rest, self._pending = self._pending, ""
        self._emit([rest] if rest else [])

    def _emit(self, lines: list[str]) -> None:
        if not lines:
            return
        self._busy.on = True
        try:
            self.logger.log(self.level, "%s", "\n".join(lines))
        finally:
            self._busy.on = False
