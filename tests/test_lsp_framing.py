"""The language server's stdio framing and lifecycle, over a real subprocess and raw bytes:
what no well-behaved client sends (oversized, missing or lying Content-Length headers, bodies
that are not JSON-RPC), each followed by a good request that must be answered; requests
before ``initialize`` and after ``shutdown``; ``exit``."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from lsp_helpers import ROOT, server_env

NOT_INITIALIZED = -32002
INVALID_REQUEST = -32600
PARSE_ERROR = -32700
METHOD_NOT_FOUND = -32601


def frame(message: dict[str, Any] | bytes) -> bytes:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def request(msg_id: int, method: str, params: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}


class RawServer:
    """``python -m lsp`` with raw bytes in and parsed messages out."""

    def __init__(self, home: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=server_env(home),
            cwd=str(ROOT),
        )
        self.messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, out: IO[bytes]) -> None:
        while True:
            length = None
            while (line := out.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not line or length is None:
                self.messages.put(None)
                return
            self.messages.put(json.loads(out.read(length)))

    def send(self, raw: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(raw)
        self.proc.stdin.flush()

    def answer(self, msg_id: int | None, timeout: float = 30) -> dict[str, Any]:
        """The next response to ``msg_id`` (None: an error about no request in particular);
        server-initiated messages (logs) are skipped."""
        while True:
            message = self.messages.get(timeout=timeout)
            assert message is not None, "the server closed its output"
            if "method" not in message and message.get("id") == msg_id:
                return message

    def initialize(self) -> None:
        self.send(frame(request(1, "initialize", {"processId": None, "capabilities": {}})))
        assert "result" in self.answer(1)
        self.send(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RawServer]:
    raw = RawServer(tmp_path / "home")
    yield raw
    raw.close()


def good(msg_id: int) -> bytes:
    """A well-formed request every state answers: an unknown method (MethodNotFound)."""
    return frame(request(msg_id, "codesearch/noSuchThing", {}))


ATTACKS: dict[str, bytes] = {
    "a terabyte Content-Length": b"Content-Length: 1000000000000\r\n\r\n{}",
    "a non-numeric Content-Length": b'Content-Length: abc\r\n\r\n{"jsonrpc": "2.0"}',
    "a negative Content-Length": b'Content-Length: -5\r\n\r\n{"jsonrpc": "2.0"}',
    "no Content-Length": b"Content-Type: application/vscode-jsonrpc\r\n\r\n"
    + json.dumps(request(900, "shutdown")).encode(),
    "a body that is not JSON": frame(b"this is { not json"),
    "a body that is not UTF-8": frame(b'{"jsonrpc": "2.0", "\xff\xfe": 1}'),
    "a Content-Length shorter than the body": b"Content-Length: 10\r\n\r\n"
    + json.dumps(request(901, "shutdown")).encode(),
    "a Content-Length longer than the body": b"Content-Length: 200\r\n\r\n"
    + json.dumps(request(902, "shutdown")).encode(),
    "junk between frames": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "a JSON array": frame(b"[1, 2, 3]"),
    "JSON nested 100,000 deep": frame(b"[" * 100_000 + b"]" * 100_000),
    "an integer of 5,000 digits": frame(b'{"jsonrpc": "2.0", "id": ' + b"9" * 5000 + b"}"),
    "an empty body": b"Content-Length: 0\r\n\r\n",
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_after_a_framing_attack_the_next_request_is_answered(
    server: RawServer, attack: str
) -> None:
    server.initialize()
    # in one go: a lying Content-Length may swallow the start of what follows it
    server.send(ATTACKS[attack] + good(2) + good(3))
    assert server.answer(2)["error"]["code"] == METHOD_NOT_FOUND, attack
    assert server.answer(3)["error"]["code"] == METHOD_NOT_FOUND, attack
    server.send(good(4))  # and later ones
    assert server.answer(4)["error"]["code"] == METHOD_NOT_FOUND, attack
    assert server.proc.poll() is None, "the server died"


def test_framing_errors_are_answered_with_null_id_errors(server: RawServer) -> None:
    server.initialize()
    server.send(frame(b"not json"))
    assert server.answer(None)["error"]["code"] == PARSE_ERROR
    server.send(b"Content-Length: 1000000000000\r\n\r\n")
    oversized = server.answer(None)["error"]
    assert oversized["code"] == INVALID_REQUEST and "over the limit" in oversized["message"]
    server.send(frame(b'{"jsonrpc": "2.0", "id": 7, "method": 5}'))
    assert server.answer(7)["error"]["code"] == INVALID_REQUEST


def test_requests_before_initialize_are_refused(server: RawServer) -> None:
    server.send(frame(request(1, "workspace/symbol", {"query": "x"})))
    assert server.answer(1)["error"]["code"] == NOT_INITIALIZED
    server.send(frame(request(2, "shutdown")))
    assert server.answer(2)["error"]["code"] == NOT_INITIALIZED
    server.send(frame(request(3, "initialize", {"processId": None, "capabilities": {}})))
    assert "capabilities" in server.answer(3)["result"]
    server.send(frame(request(4, "initialize", {"processId": None, "capabilities": {}})))
    assert server.answer(4)["error"]["code"] == INVALID_REQUEST


def test_requests_after_shutdown_are_refused_and_exit_exits(server: RawServer) -> None:
    server.initialize()
    server.send(frame(request(2, "shutdown")))
    assert server.answer(2)["result"] is None
    server.send(frame(request(3, "workspace/symbol", {"query": "x"})))
    assert server.answer(3)["error"]["code"] == INVALID_REQUEST
    server.send(good(4))
    assert server.answer(4)["error"]["code"] == INVALID_REQUEST
    server.send(frame({"jsonrpc": "2.0", "method": "exit"}))
    assert server.proc.wait(30) == 0


def test_a_long_query_is_refused_at_once(server: RawServer) -> None:
    server.initialize()
    server.send(frame(request(2, "codesearch/search", {"query": "why " * 2_500_000})))
    error = server.answer(2, timeout=20)["error"]
    assert "too long" in error["message"]
