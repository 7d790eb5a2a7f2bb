"""The language server's line to the daemon: the one client (codesearch/daemon/link.py, with
its recovery rule: started when none runs, restarted and the call retried once when it dies
or is another version's), every call off the event loop and cancellable.

Each call runs in a worker thread on a connection of its own, so a cancelled request shuts
that connection down and the thread returns at once (the daemon finishes or drops the work on
its side).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from codesearch.config import Settings, load_settings
from codesearch.daemon.link import Cancel, DaemonLink, OnProgress
from codesearch.types import CodesearchError
from codesearch.wire.base import Wire
from codesearch.wire.daemon import Params

T = TypeVar("T")
R = TypeVar("R", bound=Wire)
MAX_CALLS = 16  # daemon calls at once (indexing progress followers hold one each)


class ConfigError(CodesearchError):
    """The codesearch settings (config file or environment) cannot be read."""


class Link:
    """Calls to the daemon of ``settings`` (loaded from the environment when not given)."""

    def __init__(
        self,
        settings: Settings | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._settings_error = ""
        if settings is None:
            try:
                self._settings = load_settings()
            except CodesearchError as exc:
                self._settings_error = str(exc)
        self._notice = notice
        self._daemon: DaemonLink | None = None
        self._pool = ThreadPoolExecutor(MAX_CALLS, thread_name_prefix="codesearch-call")
        self._count_lock = threading.Lock()
        self.in_flight = 0

    @property
    def daemon(self) -> DaemonLink:
        if self._settings is None:
            raise ConfigError(f"cannot read the codesearch settings: {self._settings_error}")
        if self._daemon is None:
            self._daemon = DaemonLink(self._settings, autostart=True, notice=self._notice)
        return self._daemon

    async def request(
        self, params: Params, result: type[R], on_progress: OnProgress | None = None
    ) -> R:
        """The daemon's answer to ``params``; CodesearchError subclasses for its errors.

        ``on_progress`` runs in the worker thread. Cancelling the awaiting task interrupts the
        call."""
        cancel = Cancel()
        future = asyncio.get_running_loop().run_in_executor(
            self._pool, self._request, params, result, on_progress, cancel
        )
        try:
            return await future
        except asyncio.CancelledError:
            cancel.cancel()
            raise

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread (file reads and other blocking work)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _request(
        self, params: Params, result: type[R], on_progress: OnProgress | None, cancel: Cancel
    ) -> R:
        with self._count_lock:
            self.in_flight += 1
        try:
            return self.daemon.request(params, result, on_progress, cancel)
        finally:
            with self._count_lock:
                self.in_flight -= 1
