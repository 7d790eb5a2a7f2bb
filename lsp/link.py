"""The language server's line to the daemon: every call off the event loop, cancellable.

Each call runs in a worker thread on a connection of its own, so a cancelled request can shut
that connection down and the thread returns at once (the daemon finishes or drops the work on
its side). A daemon that is not running is started (``lifecycle.start``); one that dies during
a call is started again and the call is retried once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from codesearch.config import Settings, load_settings
from codesearch.daemon import lifecycle
from codesearch.daemon.client import Client, EventFn
from codesearch.daemon.protocol import DaemonUnavailable
from codesearch.types import CodesearchError

log = logging.getLogger("codesearch.lsp")

T = TypeVar("T")
MAX_CALLS = 16  # daemon calls at once (indexing progress followers hold one each)
RESTART_TIMEOUT_S = 60.0  # how long a call waits for a daemon that went away to come back
RESTART_POLL_S = 0.1


class ConfigError(CodesearchError):
    """The codesearch settings (config file or environment) cannot be read."""


class _Handle:
    """One call's cancellation state, shared by the event loop and the worker thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.cancelled = False
        self.connection: Client | None = None

    def attach(self, connection: Client) -> None:
        with self._lock:
            self.connection = connection
            if self.cancelled:
                connection.interrupt()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self.connection is not None:
                self.connection.interrupt()


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
        self._pool = ThreadPoolExecutor(MAX_CALLS, thread_name_prefix="codesearch-call")
        self._start_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.in_flight = 0

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            raise ConfigError(f"cannot read the codesearch settings: {self._settings_error}")
        return self._settings

    async def call(
        self, method: str, params: dict[str, Any] | None = None, on_event: EventFn | None = None
    ) -> dict[str, Any]:
        """The daemon's answer to ``method``; CodesearchError subclasses for its errors.

        ``on_event`` runs in the worker thread. Cancelling the awaiting task interrupts the call.
        """
        handle = _Handle()
        future = asyncio.get_running_loop().run_in_executor(
            self._pool, self._call, method, params or {}, on_event, handle
        )
        try:
            return await future
        except asyncio.CancelledError:
            handle.cancel()
            raise

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread (file reads and other blocking work)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ in the worker thread

    def _call(
        self, method: str, params: dict[str, Any], on_event: EventFn | None, handle: _Handle
    ) -> dict[str, Any]:
        with self._count_lock:
            self.in_flight += 1
        try:
            for attempt in (1, 2):
                if handle.cancelled:
                    raise DaemonUnavailable(f"{method!r} was cancelled")
                connection = self._connect() if attempt == 1 else self._reconnect(handle)
                handle.attach(connection)
                try:
                    return connection.call(method, params, on_event)
                except DaemonUnavailable as exc:
                    if handle.cancelled:
                        raise DaemonUnavailable(f"{method!r} was cancelled") from None
                    if attempt == 2:
                        raise
                    log.warning("the daemon went away during %r (%s): restarting it", method, exc)
                finally:
                    connection.close()
            raise AssertionError("unreachable")
        finally:
            with self._count_lock:
                self.in_flight -= 1

    def _reconnect(self, handle: _Handle) -> Client:
        """A connection to a daemon that answers, after one went away.

        A killed daemon's socket can accept connections for a moment while the process is
        torn down (and holds its lock until then): keep trying, starting a new daemon once the
        old one is gone, until one answers a ping.
        """
        deadline = time.monotonic() + RESTART_TIMEOUT_S
        while True:
            if handle.cancelled:
                raise DaemonUnavailable("cancelled")
            connection: Client | None = None
            try:
                connection = self._connect()
                connection.call("ping")
                return connection
            except DaemonUnavailable:
                if connection is not None:
                    connection.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(RESTART_POLL_S)

    def _connect(self) -> Client:
        settings = self.settings
        try:
            return Client.connect(settings)
        except DaemonUnavailable:
            pass
        with self._start_lock:  # one start at a time; the others then find it running
            try:
                return Client.connect(settings)
            except DaemonUnavailable:
                lifecycle.start(settings, notice=self._notice)
            return Client.connect(settings)
