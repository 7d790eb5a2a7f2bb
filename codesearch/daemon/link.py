"""The one daemon client every face uses (the CLI, the MCP server, the language server), with
the one recovery rule:

- no daemon answers: one is started (``autostart``; else :class:`NotRunning`, and the face
  falls back: the CLI searches in-process, ``status`` reads the registry);
- the daemon dies during a call, or it speaks another schema version (one left running by
  another codesearch): it is restarted and the call is retried once. A second failure is
  the error.

Each call runs on a connection of its own, so a long-lived face survives daemon restarts and
a call can be cancelled from another thread (:class:`Cancel`). Cheap to import: no torch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from codesearch.config import Settings
from codesearch.daemon import lifecycle
from codesearch.daemon.client import Client
from codesearch.daemon.protocol import DaemonUnavailable, ProtocolError, SchemaMismatch
from codesearch.wire.base import Wire, parse
from codesearch.wire.daemon import Params, ProgressEvent

log = logging.getLogger("codesearch.daemon")

R = TypeVar("R", bound=Wire)
Notice = Callable[[str], None]
OnProgress = Callable[[ProgressEvent], None]

RESTART_TIMEOUT_S = 60.0  # how long a call waits for a daemon that went away to come back
RESTART_POLL_S = 0.1
OTHER_VERSION = "the running daemon is from another codesearch version: restarting it"


class NotRunning(DaemonUnavailable):
    """No daemon answered the first connection, and none could be (or was to be) started."""


class Cancel:
    """One call's cancellation, shared by the thread that makes the call and one that
    cancels it (an editor's ``$/cancelRequest``): cancelling shuts the call's connection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.cancelled = False
        self._connection: Client | None = None

    def attach(self, connection: Client) -> None:
        with self._lock:
            self._connection = connection
            if self.cancelled:
                connection.interrupt()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._connection is not None:
                self._connection.interrupt()


class DaemonLink:
    """Calls to the daemon of ``settings``; ``notice`` hears what a person should know
    (a daemon being started or restarted)."""

    def __init__(
        self, settings: Settings, autostart: bool = True, notice: Notice | None = None
    ) -> None:
        self.settings = settings
        self.autostart = autostart
        self._notice = notice
        self._start_lock = threading.Lock()

    def request(
        self,
        params: Params,
        result: type[R],
        on_progress: OnProgress | None = None,
        cancel: Cancel | None = None,
    ) -> R:
        """The daemon's answer to ``params`` (its method's request), read as ``result``."""

        def on_event(name: str, data: dict[str, Any]) -> None:
            if name == "progress" and on_progress is not None:
                on_progress(parse(ProgressEvent, data, ProtocolError))

        raw = self.call(params.method, params.model_dump(mode="json"), on_event, cancel)
        try:
            return parse(result, raw, ProtocolError)
        except ProtocolError as exc:
            raise ProtocolError(
                f"malformed reply from the daemon to {params.method}: {exc}"
            ) from None

    def call(
        self,
        method: str,
        params: dict[str, Any],
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        cancel: Cancel | None = None,
    ) -> dict[str, Any]:
        """The daemon's answer as JSON, by the recovery rule above."""
        cancel = cancel or Cancel()
        connection = self._first(method)
        for attempt in (1, 2):
            cancel.attach(connection)
            try:
                with connection:
                    return connection.call(method, params, on_event)
            except SchemaMismatch:
                if attempt == 2:
                    raise
                self._say(OTHER_VERSION)
                lifecycle.stop(self.settings)
            except DaemonUnavailable as exc:
                if cancel.cancelled:
                    raise DaemonUnavailable(f"{method!r} was cancelled") from None
                if attempt == 2:
                    raise
                self._say(f"the daemon went away during {method!r} ({exc}): restarting it")
            connection = self._restarted(method, cancel)
        raise AssertionError("unreachable")

    def _first(self, method: str) -> Client:
        try:
            return Client.connect(self.settings)
        except DaemonUnavailable as exc:
            if not self.autostart:
                raise NotRunning(str(exc)) from None
        try:
            return self._started()
        except DaemonUnavailable as exc:
            raise NotRunning(str(exc)) from None

    def _started(self) -> Client:
        with self._start_lock:  # one start at a time; the others then find it running
            try:
                return Client.connect(self.settings)
            except DaemonUnavailable:
                lifecycle.start(self.settings, notice=self._notice)
            return Client.connect(self.settings)

    def _restarted(self, method: str, cancel: Cancel) -> Client:
        """A connection to a daemon that answers, after one went away (or was stopped).

        A killed daemon's socket can accept connections for a moment while the process is
        torn down (and it holds its lock until then): keep trying, starting a new daemon once
        the old one is gone, until one answers a ping."""
        deadline = time.monotonic() + RESTART_TIMEOUT_S
        while True:
            if cancel.cancelled:
                raise DaemonUnavailable(f"{method!r} was cancelled")
            connection: Client | None = None
            try:
                connection = self._started()
                connection.call("ping")
                return connection
            except DaemonUnavailable:
                if connection is not None:
                    connection.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(RESTART_POLL_S)
            except BaseException:
                if connection is not None:
                    connection.close()
                raise

    def _say(self, message: str) -> None:
        log.warning("%s", message)
        if self._notice is not None:
            self._notice(message)
