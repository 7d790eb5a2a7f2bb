"""One connection to the daemon (the faces call through daemon/link.py, which adds the one
recovery rule). Cheap to import: no torch, no numpy."""

from __future__ import annotations

import contextlib
import itertools
import random
import socket
import time
from collections.abc import Callable
from typing import Any

from codesearch.config import Settings
from codesearch.daemon import protocol
from codesearch.daemon.protocol import DaemonUnavailable, ProtocolError, Request
from codesearch.daemon.runtime import check_dir, runtime
from codesearch.types import CodesearchError

EventFn = Callable[[str, dict[str, Any]], None]

CONNECT_TIMEOUT_S = 2.0
BUSY_RETRY_S = 5.0  # how long a connection to a busy daemon (a full listen queue) is retried
BUSY_FIRST_DELAY_S = 0.01  # the first wait before a retry; it doubles, with jitter
BUSY_MAX_DELAY_S = 0.25


class DaemonBusy(CodesearchError):
    """The daemon runs but accepted no connection for :data:`BUSY_RETRY_S` seconds (its listen
    queue stayed full). Not :class:`DaemonUnavailable`: no face starts another daemon or falls
    back to searching in-process because of it."""


class Client:
    """One connection to the daemon; requests are answered in order."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._reader = sock.makefile("rb")
        self._ids = itertools.count(1)

    @classmethod
    def connect(cls, settings: Settings, timeout: float | None = None) -> Client:
        """Connect to the running daemon; DaemonUnavailable when none answers, DaemonBusy
        when one runs but its listen queue stayed full (a burst of clients) for
        :data:`BUSY_RETRY_S` seconds of retries with backoff. A socket folder that could be
        another user's is never talked to (DaemonUnavailable)."""
        path = runtime(settings).socket
        check_dir(path.parent)
        deadline = time.monotonic() + BUSY_RETRY_S
        delay = BUSY_FIRST_DELAY_S
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(CONNECT_TIMEOUT_S)
            try:
                sock.connect(str(path))
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                sock.close()
                raise DaemonUnavailable(f"the daemon is not running ({exc.strerror})") from None
            except (BlockingIOError, TimeoutError):  # EAGAIN: the listen queue is full
                sock.close()
                if time.monotonic() + delay > deadline:
                    raise DaemonBusy(
                        f"the daemon at {path} is busy: it accepted no connection within "
                        f"{BUSY_RETRY_S:.0f} s (too many clients at once); try again"
                    ) from None
                time.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, BUSY_MAX_DELAY_S)
                continue
            except OSError as exc:
                sock.close()
                raise DaemonUnavailable(f"cannot reach the daemon at {path}: {exc}") from None
            sock.settimeout(timeout)
            return cls(sock)

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        on_event: EventFn | None = None,
    ) -> dict[str, Any]:
        req = Request(next(self._ids), method, params or {})
        try:
            self._sock.sendall(protocol.request(req))
            while True:
                line = self._reader.readline(protocol.MAX_REPLY_BYTES + 1)
                if not line:
                    raise DaemonUnavailable("the daemon closed the connection (did it stop?)")
                message = protocol.decode(line)
                if message.get("v") != protocol.SCHEMA_VERSION:
                    raise protocol.SchemaMismatch(
                        f"the daemon speaks schema version {message.get('v')!r}, this client "
                        f"{protocol.SCHEMA_VERSION}: restart it (`codesearch daemon restart`)"
                    )
                if message.get("id") != req.id:
                    if "error" in message:  # an error about the stream itself
                        protocol.raise_error(message["error"])
                    raise ProtocolError(f"reply for request {message.get('id')!r}, not {req.id}")
                if "event" in message:
                    if on_event is not None:
                        on_event(str(message["event"]), message.get("data") or {})
                    continue
                if "error" in message:
                    protocol.raise_error(message["error"])
                value = message.get("result")
                if not isinstance(value, dict):
                    raise ProtocolError("malformed reply from the daemon: no result")
                return value
        except TimeoutError:
            raise DaemonUnavailable(f"the daemon did not answer {method!r} in time") from None
        except (BrokenPipeError, ConnectionResetError):
            raise DaemonUnavailable("the daemon closed the connection (did it stop?)") from None

    def interrupt(self) -> None:
        """From another thread: wake the thread blocked in :meth:`call` (it fails with
        DaemonUnavailable). How a face cancels a request."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._reader.close()
            self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def running(settings: Settings) -> dict[str, Any] | None:
    """The daemon's ping answer, or None when no daemon answers."""
    try:
        with Client.connect(settings, timeout=5.0) as client:
            return client.call("ping")
    except DaemonUnavailable:
        return None
