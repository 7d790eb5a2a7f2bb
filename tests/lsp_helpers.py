"""Helpers for the language-server tests: a real pygls ``LanguageClient`` talking to
``python -m lsp`` over stdio, driven from synchronous test code.

The client speaks plain JSON (dicts in, dicts out), as an editor does: no lsprotocol types on
this side, so a test can also send what a typed client never would (malformed params).
Its event loop runs in a thread of its own, so one client can serve a whole test module.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from pygls.lsp.client import LanguageClient
from pygls.protocol import JsonRPCResponseMessage, LanguageServerProtocol

from lsp.protocol import converter

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent

CAPABILITIES: dict[str, Any] = {
    "window": {"workDoneProgress": True},
    "workspace": {"workspaceFolders": True, "symbol": {"dynamicRegistration": False}},
    "textDocument": {"synchronization": {"didSave": True}},
}


def _plain_converter() -> Any:
    conv = converter()
    conv.register_structure_hook(JsonRPCResponseMessage, lambda obj, cls: cls(**obj))
    return conv


class _PlainProtocol(LanguageServerProtocol):
    """Every message as plain JSON: no lsprotocol types on the client side."""

    def get_message_type(self, method: str) -> type[Any] | None:
        return None

    def get_result_type(self, method: str) -> type[Any] | None:
        return None


def uri(path: Path) -> str:
    from lsp.convert import path_uri

    return path_uri(path)


def server_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a language server using the data dir ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODESEARCH_")}
    env.update(
        CODESEARCH_HOME=str(home),
        CODESEARCH_LSP_LOG=str(home / "lsp.log"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        **extra,
    )
    return env


class LspSession:
    """``python -m lsp`` and a LanguageClient on a background event loop."""

    def __init__(self, home: Path, **env: str) -> None:
        self.home = home
        self.env = server_env(home, **env)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.client = LanguageClient(
            "codesearch-tests", "1", protocol_cls=_PlainProtocol, converter_factory=_plain_converter
        )
        self.progress: list[dict[str, Any]] = []
        self.logs: list[str] = []
        self._ids = itertools.count(1)
        self._stopped = False
        self._code: int | None = None
        self._register_handlers()

    def _register_handlers(self) -> None:
        @self.client.feature("window/workDoneProgress/create")
        def create_progress(params: Any) -> None:
            return None

        @self.client.feature("$/progress")
        def progress(params: Any) -> None:
            self.progress.append(params)

        @self.client.feature("window/logMessage")
        def log_message(params: Any) -> None:
            self.logs.append(params["message"])

        @self.client.feature("window/showMessage")
        def show_message(params: Any) -> None:
            self.logs.append(params["message"])

    # ------------------------------------------------------------------ running on the loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def on_loop(self, fn: Callable[[], T], timeout: float = 30) -> T:
        async def call() -> T:
            return fn()

        return self.run(call(), timeout)

    # ------------------------------------------------------------------ the protocol

    def start(
        self, folders: list[Path] | None = None, root: Path | None = None, **init: Any
    ) -> dict[str, Any]:
        """Start the server and initialize it with ``folders`` (or ``root``)."""
        command = [sys.executable, "-m", "lsp", "--stdio"]  # the flag editors add
        self.run(self.client.start_io(*command, env=self.env, cwd=str(ROOT)))
        params: dict[str, Any] = {
            "processId": os.getpid(),
            "capabilities": CAPABILITIES,
            "rootUri": uri(root) if root else None,
            "workspaceFolders": [{"uri": uri(f), "name": f.name} for f in folders]
            if folders
            else None,
            **init,
        }
        answer = self.request("initialize", params)
        self.notify("initialized", {})
        return answer

    def send(self, method: str, params: Any, msg_id: int | str | None = None) -> Future[Any]:
        """Send a request; its future (set on the loop) holds the answer or a JsonRpcException."""
        if msg_id is None:
            msg_id = next(self._ids)
        return self.on_loop(
            lambda: self.client.protocol.send_request(method, params, msg_id=msg_id)
        )

    def request(self, method: str, params: Any, timeout: float = 120) -> Any:
        return self.send(method, params).result(timeout)

    def notify(self, method: str, params: Any) -> None:
        self.on_loop(lambda: self.client.protocol.notify(method, params))

    def command(self, name: str, *arguments: Any, timeout: float = 120) -> Any:
        return self.request(
            "workspace/executeCommand", {"command": name, "arguments": list(arguments)}, timeout
        )

    def wait_for(self, check: Callable[[], T], timeout: float = 30, what: str = "") -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or check}: {self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.home / "lsp.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    @property
    def server_pid(self) -> int | None:
        server = self.client._server
        return server.pid if server is not None else None

    def stop(self) -> int | None:
        """shutdown + exit; the server's exit code (None when it had to be killed)."""
        if self._stopped:
            return self._code
        self._stopped = True
        code: int | None = None
        with contextlib.suppress(Exception):
            self.request("shutdown", None, timeout=15)
            self.notify("exit", None)
        server = self.client._server
        if server is not None:
            try:
                code = self.run(asyncio.wait_for(server.wait(), 15), timeout=20)
            except Exception:
                with contextlib.suppress(ProcessLookupError):
                    server.kill()
                with contextlib.suppress(Exception):
                    self.run(server.wait(), timeout=10)
        with contextlib.suppress(Exception):
            self.run(self.client.stop(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self._code = code
        return code

    def __enter__(self) -> LspSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------- the fixture repository

GEOMETRY = '''# Größe 😀: geometry helpers for the drawing app
"""Areas and perimeters of plane shapes (Maße in Metern 😀)."""

import math


class Polygon:
    """A closed polygon given by its corner points."""

    def __init__(self, points):
        self.points = list(points)

    def shoelace_area(self):
        """Area of the polygon by the shoelace formula: Fläche 😀."""
        label = "Größe 😀"
        total = 0.0
        for (x1, y1), (x2, y2) in zip(self.points, self.points[1:] + self.points[:1]):
            total += x1 * y2 - x2 * y1
        return abs(total) / 2.0  # größer als null 😀😀


def circle_circumference(radius):
    """Perimeter of a circle: 2 π r."""
    return 2 * math.pi * radius
'''

MAILER = '''"""Outgoing mail."""

import smtplib


def send_welcome_email(address, name):
    """Send the welcome email to a new user through the SMTP relay."""
    with smtplib.SMTP("localhost") as smtp:
        smtp.sendmail("noreply@example.com", [address], f"Welcome, {name}!")
'''

CACHE = '''"""A small cache."""


class LeastRecentlyUsedCache:
    """Keeps the most recently used entries and evicts the oldest when full."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.entries = {}

    def get(self, key):
        """Return a cached value and mark it as recently used."""
        value = self.entries.pop(key)
        self.entries[key] = value
        return value
'''

# a window chunk whose first line starts with two ideographic spaces (U+3000): its first
# non-blank character is code point 2, UTF-16 unit 2, byte 6
NOTE = (
    "\u3000\u3000Überblick: die Lieferung der Pakete 😀 erfolgt montags per Lastenrad.\n"
    "Zweite Zeile über Lastenräder und Fahrradkuriere.\n"
)

# one long function: the embedder reads it in parts, search answers with the whole of it
REPORT = '''"""Monthly reports."""


def build_monthly_report(orders, month):
    """Collect the orders of one month into a report."""
    selected = [order for order in orders if order.month == month]
    customers = sorted({order.customer for order in selected})
    revenue = sum(order.amount for order in selected)
    refunds = sum(order.refund for order in selected if order.refund)
    average = revenue / len(selected) if selected else 0.0
    largest = max((order.amount for order in selected), default=0.0)
    by_region = {}
    for order in selected:
        by_region.setdefault(order.region, []).append(order.amount)
    region_totals = {region: sum(amounts) for region, amounts in by_region.items()}
    lines = [f"{month}: {len(selected)} orders from {len(customers)} customers"]
    lines.append(f"revenue {revenue:.2f}, refunds {refunds:.2f}, average {average:.2f}")
    lines.append(f"largest order {largest:.2f}")
    for region, total in sorted(region_totals.items()):
        lines.append(f"  {region}: {total:.2f}")
    with open(f"report-{month}.csv", "w", encoding="utf-8") as spreadsheet:
        spreadsheet.write("region,total\\n")
        for region, total in sorted(region_totals.items()):
            spreadsheet.write(f"{region},{total:.2f}\\n")
    return "\\n".join(lines)
'''
REPORT_QUESTION = "write the region totals into a spreadsheet csv file"

FILES = {
    "shapes/geometry.py": GEOMETRY,
    "billing/report.py": REPORT,
    "net/mailer.py": MAILER,
    "store/cache.py": CACHE,
    "notes/lieferung.txt": NOTE,
}

SHOELACE_QUESTION = "polygon area with the shoelace formula"
NOTE_QUESTION = "Lieferung der Pakete per Lastenrad"


def make_repo(dest: Path) -> Path:
    """The fixture repository (non-ASCII text before and inside the target method)."""
    for rel, text in FILES.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return dest


def line_of(text: str, needle: str) -> int:
    """The 1-based number of the first line of ``text`` that contains ``needle``."""
    for number, line in enumerate(text.split("\n"), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the text")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
