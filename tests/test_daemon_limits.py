"""The daemon under load and abuse, for real: bursts of clients, oversized and malformed
requests, idle and surplus connections. Each is answered with one clear line (or waits its
turn), and the daemon goes on serving. No model is loaded: these are pings and bad input."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import Daemon, eventually

from codesearch.daemon import protocol
from codesearch.daemon.link import DaemonLink
from codesearch.daemon.runtime import runtime

V = protocol.SCHEMA_VERSION


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    started = Daemon(tmp_path / "home")
    yield started
    started.stop()


def _raw(daemon: Daemon, timeout: float = 30.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(timeout)
    sock.connect(str(runtime(daemon.settings).socket))
    return sock


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no thread count")


def _quiet_threads(pid: int) -> int:
    """The thread count once the threads of finished connections have ended."""
    counts = []
    for _ in range(10):
        counts.append(_threads(pid))
        time.sleep(0.05)
    return min(counts)


def test_bursts_of_50_clients_all_get_answers(daemon: Daemon) -> None:
    daemon.start()
    link = DaemonLink(daemon.settings, autostart=False)
    clients = 50

    def burst() -> list[Any]:
        gate = threading.Barrier(clients)
        answers: list[Any] = [None] * clients

        def ask(i: int) -> None:
            gate.wait()
            try:
                answers[i] = link.call("ping", {})["pid"]
            except Exception as exc:  # what the client would have told its user
                answers[i] = exc

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        return answers

    for _ in range(2):
        failed = [a for a in burst() if a != daemon.pid]
        assert not failed, f"{len(failed)} of {clients} clients got no answer: {failed[:3]}"

    # the same burst while the daemon is too busy to accept anyone for a moment (here: stopped)
    os.kill(daemon.pid, signal.SIGSTOP)
    resume = threading.Timer(0.5, os.kill, (daemon.pid, signal.SIGCONT))
    resume.start()
    try:
        failed = [a for a in burst() if a != daemon.pid]
    finally:
        resume.join()
        os.kill(daemon.pid, signal.SIGCONT)
    assert not failed, f"{len(failed)} of {clients} clients got no answer: {failed[:3]}"


def test_an_oversized_request_is_refused_and_the_connection_serves_on(daemon: Daemon) -> None:
    daemon.start()
    with _raw(daemon) as sock, sock.makefile("rb") as reader:
        padding = "x" * (2 * protocol.MAX_REQUEST_BYTES)
        big = {"v": V, "id": 1, "method": "ping", "params": {"pad": padding}}
        sock.sendall(json.dumps(big).encode() + b"\n")
        sock.sendall(json.dumps({"v": V, "id": 2, "method": "ping"}).encode() + b"\n")
        first = json.loads(reader.readline())
        assert first["error"]["type"] == "ProtocolError"
        assert "too large" in first["error"]["message"]
        assert "\n" not in first["error"]["message"]
        second = json.loads(reader.readline())
        assert second["id"] == 2 and second["result"]["pid"] == daemon.pid


def test_an_idle_connection_is_closed_after_the_timeout(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODESEARCH_DAEMON_IDLE_TIMEOUT", "1")
    daemon.start()
    with _raw(daemon, timeout=20) as sock, sock.makefile("rb") as reader:
        said = json.loads(reader.readline())  # nothing sent: the daemon speaks, then hangs up
        assert said["error"]["type"] == "ProtocolError"
        assert "no whole request for 1 s" in said["error"]["message"]
        assert reader.readline() == b""
    assert daemon.call("ping")["pid"] == daemon.pid  # and it serves the next client


def test_a_request_trickled_a_byte_at_a_time_times_out_like_an_idle_one(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODESEARCH_DAEMON_IDLE_TIMEOUT", "1")
    daemon.start()
    request = json.dumps({"v": V, "id": 1, "method": "ping"}).encode() + b"\n"
    with _raw(daemon, timeout=20) as sock, sock.makefile("rb") as reader:
        started = time.monotonic()
        with contextlib.suppress(OSError):  # a byte each 0.2 s: never 1 s of silence
            for byte in request[:-1]:
                sock.sendall(bytes([byte]))
                time.sleep(0.2)
                if time.monotonic() - started > 6:
                    break
        said = json.loads(reader.readline())
        assert said["error"]["type"] == "ProtocolError"
        assert "no whole request for 1 s" in said["error"]["message"]
        try:
            rest = reader.readline()
        except ConnectionResetError:
            # a byte that reached the daemon after its last read makes the close a reset
            # (Linux reports it once the queued answer has been read): closed all the same
            rest = b""
        assert rest == b""
        assert time.monotonic() - started < 4  # not the 1 s after the last byte
    assert daemon.call("ping")["pid"] == daemon.pid


def test_connections_are_bounded_and_the_surplus_waits_its_turn(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODESEARCH_DAEMON_MAX_CONNECTIONS", "4")
    monkeypatch.setenv("CODESEARCH_DAEMON_IDLE_TIMEOUT", "2")
    daemon.start()
    before = _quiet_threads(daemon.pid)
    idle = [_raw(daemon) for _ in range(20)]
    try:
        eventually(lambda: _threads(daemon.pid) >= before + 4, what="4 connection threads")
        assert _threads(daemon.pid) <= before + 4
        # a real client queues behind the idle ones and is answered once they time out
        assert daemon.call("ping")["pid"] == daemon.pid
    finally:
        for sock in idle:
            sock.close()


BAD_REQUESTS = {
    "a bare Infinity": ('"method": "wait", "params": {"timeout": Infinity}', "ProtocolError"),
    "NaN": ('"method": "wait", "params": {"timeout": NaN}', "ProtocolError"),
    "a huge float": ('"method": "wait", "params": {"timeout": 1e308}', "BadInput"),
    "a float that overflows": ('"method": "wait", "params": {"timeout": 1e400}', "BadInput"),
    "a 5,000-digit int": (
        '"method": "search", "params": {"queries": ["x"], "k": ' + "9" * 5000 + "}",
        "ProtocolError",
    ),
    "JSON nested 1,000 deep": (
        '"method": "ping", "params": {"x": ' + "[" * 1000 + "]" * 1000 + "}",
        "ProtocolError",
    ),
    "JSON nested 100 deep": (
        '"method": "ping", "params": {"x": ' + "[" * 100 + "]" * 100 + "}",
        "ProtocolError",
    ),
    "a NUL byte in a path": ('"method": "add", "params": {"path": "/tmp/a\\u0000b"}', "BadInput"),
    "a 5,000-character path": (
        '"method": "add", "params": {"path": "/' + "a" * 5000 + '"}',
        "BadInput",
    ),
    "a relative path": ('"method": "add", "params": {"path": "some/folder"}', "BadInput"),
    "a relative repo": (
        '"method": "search", "params": {"queries": ["x"], "repo": "."}',
        "BadInput",
    ),
    "a huge line": ('"method": "similar", "params": {"path": "/a.py", "line": 1e30}', "BadInput"),
    "a 100,000-character query": (
        '"method": "search", "params": {"queries": ["' + "why " * 25_000 + '"]}',
        "BadInput",
    ),
}


def test_bad_values_get_clear_input_errors_and_the_daemon_serves_on(daemon: Daemon) -> None:
    daemon.start()
    with _raw(daemon) as sock, sock.makefile("rb") as reader:
        for i, (what, (body, kind)) in enumerate(BAD_REQUESTS.items()):
            sock.sendall(f'{{"v": {V}, "id": {i}, {body}}}\n'.encode())
            answer = json.loads(reader.readline())
            assert "error" in answer, what
            error = answer["error"]
            assert "internal error" not in error["message"], (what, error)
            assert (error["type"], "\n" in error["message"]) == (kind, False), (what, error)
        sock.sendall(f'{{"v": {V}, "id": "last", "method": "ping"}}\n'.encode())
        assert json.loads(reader.readline())["result"]["pid"] == daemon.pid


def test_a_relative_path_is_refused_with_a_clear_message(daemon: Daemon) -> None:
    from codesearch.daemon.client import Client
    from codesearch.types import BadInput

    daemon.start()
    with Client.connect(daemon.settings) as client:
        with pytest.raises(BadInput, match="'path' must be an absolute path"):
            client.call("add", {"path": "src"})
        with pytest.raises(BadInput, match="a query is too long"):
            client.call("search", {"queries": ["q" * 10_000], "repo": "/"})
