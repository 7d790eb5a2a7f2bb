"""A synchronous handle on a real MCP session: the official client (``stdio_client`` +
``ClientSession``) runs in a background event loop (an anyio blocking portal), so tests and
the agent-token benchmark call tools like plain functions and share one session."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

import anyio.from_thread
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp_types import CallToolResult, Tool


def mcp_command() -> list[str]:
    """`codesearch mcp` as this interpreter runs it (no console script needed)."""
    return [sys.executable, "-m", "codesearch.cli", "mcp"]


class McpClient:
    """``with McpClient(home, cwd) as mcp: mcp.call("search_code", query=...)``.

    The server is ``codesearch mcp`` with ``CODESEARCH_HOME=home`` in ``cwd``; its stderr goes
    to a temporary file (``stderr()``), since stdout is the protocol channel."""

    def __init__(
        self,
        home: Path,
        cwd: Path,
        args: list[str] | None = None,
        timeout: float = 180.0,
    ) -> None:
        self.home = home
        self.cwd = cwd
        self.args = args or []
        self.timeout = timeout
        self._stack = contextlib.ExitStack()
        self._errlog: IO[str] | None = None
        self.session: ClientSession | None = None

    def __enter__(self) -> McpClient:
        stack = self._stack
        try:
            self._errlog = stack.enter_context(
                tempfile.NamedTemporaryFile("w+", prefix="codesearch-mcp-", suffix=".log")
            )
            portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
            command = mcp_command() + self.args
            env = {"CODESEARCH_HOME": str(self.home), "PYTHONPATH": os.getcwd()}
            env["CODESEARCH_CACHE"] = os.environ.get("CODESEARCH_CACHE", "")
            params = StdioServerParameters(
                command=command[0], args=command[1:], env=env, cwd=str(self.cwd)
            )
            read, write = stack.enter_context(
                portal.wrap_async_context_manager(stdio_client(params, errlog=self._errlog))
            )
            session = ClientSession(read, write, read_timeout_seconds=self.timeout)
            self.session = stack.enter_context(portal.wrap_async_context_manager(session))
            self.portal = portal
            portal.call(self.session.initialize)
        except BaseException:
            stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def list_tools(self) -> list[Tool]:
        assert self.session is not None
        return self.portal.call(self.session.list_tools).tools

    def call(self, name: str, **arguments: Any) -> CallToolResult:
        assert self.session is not None
        return self.portal.call(self.session.call_tool, name, arguments)

    def text(self, result: CallToolResult) -> str:
        """The text the model reads."""
        return "\n".join(getattr(block, "text", "") for block in result.content)

    def stderr(self) -> str:
        if self._errlog is None:
            return ""
        self._errlog.flush()
        return Path(self._errlog.name).read_text(encoding="utf-8", errors="replace")
