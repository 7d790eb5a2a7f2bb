"""HTTP for the remote backend, with the standard library only: one keep-alive connection per
thread, JSON in and out, and every failure turned into a :class:`HttpFailure` that says whether
it is worth retrying (429, 5xx, timeouts, refused or dropped connections) and how long the
server asked us to wait (``Retry-After``).

Secrets: the API key travels only in the ``Authorization`` header. :func:`display_url` is the
only form of the URL that may be shown (no user, password, query or fragment), and
:meth:`Endpoint.scrub` removes the key from anything a server sends back before it is shown.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "codesearch-remote/1"
MAX_SHOWN = 300  # characters of a server's error message that reach the user


class HttpFailure(Exception):
    """One failed HTTP exchange. ``status`` 0: no answer (refused, reset, timed out)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        retry_after: float | None = None,
        timeout: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        self.timeout = timeout

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status in RETRYABLE_STATUS

    @property
    def outage(self) -> bool:
        """The server is down or broken (not merely busy, and not rejecting the request)."""
        return self.status == 0 or (self.status >= 500 and self.status != 501)


def display_url(url: str) -> str:
    """``url`` without credentials, query or fragment: safe to log, show and store."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class Endpoint:
    """Where the server is and how to authenticate; ``repr`` never shows the key."""

    scheme: str
    host: str
    port: int
    path: str  # the base path, without a trailing slash ("" or "/v1")
    shown: str  # display_url of the base
    _auth: str = ""  # the Authorization header value, "" for none

    @classmethod
    def parse(cls, url: str, api_key: str = "") -> Endpoint:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {display_url(url) or url[:40]!r}")
        auth = f"Bearer {api_key}" if api_key else ""
        if not auth and parts.username is not None:  # http://user:password@host/ -> Basic
            raw = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            auth = "Basic " + base64.b64encode(raw).decode("ascii")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(
            parts.scheme, parts.hostname, port, parts.path.rstrip("/"), display_url(url), auth
        )

    def __repr__(self) -> str:
        return f"Endpoint({self.shown!r})"

    def url(self, route: str) -> str:
        return f"{self.shown}{route}"

    def scrub(self, text: str) -> str:
        """``text`` with the credentials replaced, squeezed to one short line."""
        secret = self._auth.split(" ", 1)[-1] if self._auth else ""
        if secret:
            text = text.replace(secret, "***")
            if self._auth.startswith("Basic "):
                decoded = base64.b64decode(secret).decode(errors="replace")
                for part in decoded.split(":", 1):
                    if len(part) >= 4:
                        text = text.replace(part, "***")
        text = " ".join(text.split())
        return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


class Transport:
    """JSON over HTTP/1.1 with one persistent connection per calling thread."""

    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = max(0.05, timeout)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[http.client.HTTPConnection] = []

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, True
        e = self.endpoint
        cls = http.client.HTTPSConnection if e.scheme == "https" else http.client.HTTPConnection
        conn = cls(e.host, e.port, timeout=self.timeout)
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn, False

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()

    def request(
        self,
        method: str,
        route: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: float = 0,
        absolute: bool = False,
    ) -> Any:
        """The decoded JSON answer of ``method route`` (under the base path, or from the
        server's root when ``absolute``); raises HttpFailure."""
        payload = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        if self.endpoint._auth:
            headers["Authorization"] = self.endpoint._auth
        path = route if absolute else self.endpoint.path + route
        for fresh_try in (False, True):
            conn, reused = self._connection()
            conn.timeout = timeout or self.timeout
            if conn.sock is not None:
                conn.sock.settimeout(conn.timeout)
            try:
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except TimeoutError as exc:
                self._drop()
                raise HttpFailure(0, f"no answer within {conn.timeout:g} s", timeout=True) from exc
            except (http.client.HTTPException, OSError) as exc:
                self._drop()
                if reused and not fresh_try and _stale(exc):
                    continue  # the server closed an idle keep-alive connection: reconnect once
                raise HttpFailure(0, _describe(exc)) from exc
            if response.getheader("Connection", "").lower() == "close":
                self._drop()
            return self._decode(response, data)
        raise AssertionError("unreachable")

    def _decode(self, response: http.client.HTTPResponse, data: bytes) -> Any:
        status = response.status
        if 200 <= status < 300:
            try:
                return json.loads(data)
            except ValueError:
                raise HttpFailure(502, "the server's answer is not JSON") from None
        retry_after = parse_retry_after(response.getheader("Retry-After"))
        raise HttpFailure(status, self._message(status, data), retry_after=retry_after)

    def _message(self, status: int, data: bytes) -> str:
        text = data.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            found = parsed.get("error", parsed.get("detail", parsed.get("message")))
            if isinstance(found, dict):
                found = found.get("message", found)
            if found is not None:
                text = found if isinstance(found, str) else json.dumps(found)
        return f"HTTP {status}: {self.endpoint.scrub(text) or http.client.responses.get(status)}"


def _stale(exc: BaseException) -> bool:
    return isinstance(
        exc,
        (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError),
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror or exc})"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__
