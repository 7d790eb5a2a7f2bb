"""How the remote backend behaves when the server misbehaves: exponential back-off with jitter
between retries, and a circuit breaker per server.

The breaker counts *requests* that failed after all their retries because the server was down
(refused or dropped connections, timeouts, 5xx). ``THRESHOLD`` of them in a row open it: for a
cooldown (doubling up to ``COOLDOWN_MAX_S``) every call fails at once with the reason, without
touching the network, so indexing pauses instead of hammering a dead server and queries fall
back to keyword search at once. After the cooldown one trial request goes out (half-open);
calls that arrive meanwhile wait for its outcome. Any answer from the server (even a 4xx or a
429) closes the breaker again. One breaker per (server, model) in the process, shared by every
embedder of it, and read by the daemon's status.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

THRESHOLD = 3  # failed requests in a row that open the breaker
COOLDOWN_S = 5.0  # first open period
COOLDOWN_MAX_S = 60.0  # the open period doubles after each failed trial, up to this
BACKOFF_MAX_S = 30.0  # the longest wait between two retries of one request
RETRY_AFTER_MAX_S = 120.0  # a longer Retry-After is not slept through: the caller pauses


def backoff_delay(attempt: int, base: float, rng: Callable[[], float] = random.random) -> float:
    """The wait before retry ``attempt`` (0-based): base * 2**attempt capped at BACKOFF_MAX_S,
    with "equal jitter" (a random half on top of a fixed half), so clients that failed together
    do not retry together."""
    ceiling = min(BACKOFF_MAX_S, base * (2.0**attempt))
    return ceiling / 2 + rng() * ceiling / 2


class BreakerOpen(Exception):
    """The breaker refuses calls for ``retry_in`` more seconds; ``reason`` is the last error."""

    def __init__(self, retry_in: float, reason: str) -> None:
        super().__init__(reason)
        self.retry_in = retry_in
        self.reason = reason


class Breaker:
    def __init__(
        self,
        name: str,
        *,
        threshold: int | None = None,
        cooldown: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name  # the server's display URL and model: safe to show
        self.threshold = threshold or THRESHOLD
        self.base_cooldown = cooldown or COOLDOWN_S
        self.clock = clock
        self._cond = threading.Condition()
        self.state = "closed"  # closed | open | half-open
        self.failures = 0  # failed requests in a row
        self.cooldown = self.base_cooldown
        self.open_until = 0.0
        self.since: float | None = None  # wall clock when the current outage began
        self.last_error = ""
        self.opened = 0  # times it opened (for tests and status)
        self._trial = False  # a half-open trial request is out

    # -- the calling side -------------------------------------------------------------------

    def admit(self, wait: float) -> None:
        """Let a call through, or raise BreakerOpen. In half-open state the first caller is
        the trial; the others wait up to ``wait`` seconds for its outcome."""
        deadline = self.clock() + wait
        with self._cond:
            while True:
                if self.state == "closed":
                    return
                now = self.clock()
                if self.state == "open":
                    if now < self.open_until:
                        raise BreakerOpen(self.open_until - now, self.last_error)
                    self.state, self._trial = "half-open", False
                if not self._trial:
                    self._trial = True
                    return
                if now >= deadline:
                    raise BreakerOpen(self.cooldown, self.last_error)
                self._cond.wait(timeout=min(0.5, deadline - now))

    def answered(self) -> None:
        """The server answered (whatever it said): it is up."""
        with self._cond:
            if self.state != "closed" or self.failures:
                self.state, self.failures, self._trial = "closed", 0, False
                self.cooldown, self.since, self.last_error = self.base_cooldown, None, ""
                self._cond.notify_all()

    def attempt_failed(self, error: str) -> None:
        """One attempt found the server down. A failed trial re-opens at once."""
        with self._cond:
            self.last_error = error
            if self.since is None:
                self.since = time.time()
            if self.state == "half-open":
                self.cooldown = min(COOLDOWN_MAX_S, self.cooldown * 2)
                self._open()

    def request_failed(self, error: str) -> None:
        """A request gave up (retries spent) because the server was down."""
        with self._cond:
            self.last_error = error
            if self.since is None:
                self.since = time.time()
            self.failures += 1
            if self.state == "closed" and self.failures >= self.threshold:
                self._open()

    def sleep(self, seconds: float) -> None:
        """Wait between retries; wakes early when the breaker opens (the retry is pointless)."""
        with self._cond:
            self._cond.wait_for(lambda: self.state == "open", timeout=max(0.0, seconds))

    def _open(self) -> None:
        self.state, self._trial = "open", False
        self.open_until = self.clock() + self.cooldown
        self.opened += 1
        self._cond.notify_all()

    # -- the reporting side -----------------------------------------------------------------

    def retry_in(self) -> float:
        with self._cond:
            return max(0.0, self.open_until - self.clock()) if self.state == "open" else 0.0

    def snapshot(self) -> dict[str, Any]:
        """What `codesearch status` shows about this server (no secrets in any field): its
        state "up", "failing" (requests fail, not yet paused), "down" (open: calls are refused
        until ``retry_in_s``) or "probing" (half-open: a trial request is out)."""
        with self._cond:
            shown = {"open": "down", "half-open": "probing"}
            state = shown.get(self.state, "failing" if self.failures else "up")
            info: dict[str, Any] = {"server": self.name, "state": state}
            if self.state != "closed" or self.failures:
                info["failures"] = self.failures
                info["error"] = self.last_error
                info["since"] = self.since
            if self.state == "open":
                info["retry_in_s"] = round(max(0.0, self.open_until - self.clock()), 1)
            return info


_BREAKERS: dict[str, Breaker] = {}
_BREAKERS_LOCK = threading.Lock()


def breaker_for(name: str) -> Breaker:
    """The process-wide breaker of one server and model."""
    with _BREAKERS_LOCK:
        if name not in _BREAKERS:
            _BREAKERS[name] = Breaker(name)
        return _BREAKERS[name]


def breaker_snapshots() -> list[dict[str, Any]]:
    with _BREAKERS_LOCK:
        breakers = list(_BREAKERS.values())
    return [b.snapshot() for b in breakers]


def reset_breakers() -> None:
    """Forget every breaker (tests)."""
    with _BREAKERS_LOCK:
        _BREAKERS.clear()
