"""Helpers for the daemon tests: a real daemon process in its own data dir, and queries."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from codesearch.config import Settings
from codesearch.daemon import lifecycle
from codesearch.daemon.client import Client

T = TypeVar("T")


class Daemon:
    """A real, detached daemon process (``codesearch daemon start``) for one data dir."""

    def __init__(self, home: Path) -> None:
        self.settings = Settings(home=home)
        self.pid = 0

    def start(self) -> Daemon:
        env = {"CODESEARCH_HOME": str(self.settings.home)}
        with _env(env):
            info = lifecycle.start(self.settings)
        self.pid = int(info["pid"])
        return self

    def stop(self) -> None:
        """Stop it; whatever went wrong in the test, no daemon outlives it."""
        with contextlib.suppress(Exception):
            lifecycle.stop(self.settings)
        pid = lifecycle._lock_pid(self.settings)  # still holding the lock: not stopped
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and lifecycle._alive(self.pid):
            time.sleep(0.02)

    def call(self, method: str, params: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        with Client.connect(self.settings, timeout=120) as client:
            return client.call(method, params, **kw)

    def add(self, repo: Path, wait: bool = True) -> dict[str, Any]:
        return self.call("add", {"path": str(repo), "wait": wait})

    def wait(self, repo: Path | None = None, timeout: float = 120) -> None:
        params: dict[str, Any] = {"timeout": timeout}
        if repo is not None:
            params["repo"] = str(repo)
        assert self.call("wait", params)["idle"], "the daemon did not become idle"

    def search(self, repo: Path, query: str, k: int = 5, **filters: Any) -> list[dict[str, Any]]:
        answer = self.call(
            "search", {"queries": [query], "k": k, "repo": str(repo), "filters": filters}
        )
        return answer["results"][0]

    def repo_status(self, repo: Path) -> dict[str, Any]:
        (info,) = self.call("status", {"repo": str(repo)})["repos"]
        return info

    def paths(self, repo: Path, query: str) -> set[str]:
        return {h["path"] for h in self.search(repo, query, k=20)}


@contextlib.contextmanager
def _env(values: dict[str, str]):  # type: ignore[no-untyped-def]
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def eventually(check: Callable[[], T], timeout: float = 15.0, what: str = "") -> T:
    """``check()``'s first truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)
        last = check()
    return last
