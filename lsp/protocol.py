"""pygls's LSP protocol, adjusted where this server needs it.

- Custom requests (``codesearch/search``) keep their params as plain JSON (dicts and lists),
  not pygls's namedtuples, so they are checked like any other JSON.
- A standard request whose params do not fit the LSP schema is answered with InvalidParams
  and a one-line reason (pygls would log it and never answer, leaving the client waiting).
- ``workspace/executeCommand`` awaits the command directly, so ``$/cancelRequest`` reaches
  the command's work, and an unknown command gets a message that lists the known ones.
- ``initialize`` adds the server's ``experimental`` capabilities.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from typing import Any

import cattrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    LanguageServerProtocol,
    default_converter,
    lsp_method,
)

MAX_REASON = 300


def converter() -> cattrs.Converter:
    """pygls's converter, but custom messages keep their params as plain JSON."""
    conv = default_converter()
    conv.register_structure_hook(JsonRPCRequestMessage, lambda obj, cls: cls(**obj))
    conv.register_structure_hook(JsonRPCNotification, lambda obj, cls: cls(**obj))
    return conv


class _Answered:
    """A request that was already answered while it was being read (bad params)."""

    jsonrpc = ""


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(cause, cattrs.ClassValidationError):
        details = cattrs.transform_error(cause, path="params")
        text = "; ".join(detail.replace("$.", "") for detail in details[:3])
    else:
        text = str(cause or exc) or type(cause or exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


class Protocol(LanguageServerProtocol):
    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if not ("jsonrpc" in data and "id" in data and "method" in data):
                raise  # a notification or a response: nobody waits for an answer
            method = data["method"]
            self._send_response(
                data["id"],
                error=types.ResponseError(
                    code=JsonRpcInvalidParams.CODE,
                    message=f"invalid params for {method}: {_reason(exc)}",
                ),
            )
            return _Answered()

    def handle_message(self, message: Any) -> None:
        if isinstance(message, _Answered):
            return
        super().handle_message(message)

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(
        self, params: types.InitializeParams
    ) -> Generator[Any, Any, types.InitializeResult]:
        result = yield from super().lsp_initialize(params)
        result.capabilities.experimental = getattr(self._server, "experimental", None)
        return result

    @lsp_method(types.WORKSPACE_EXECUTE_COMMAND)
    async def lsp_workspace__execute_command(self, params: types.ExecuteCommandParams) -> Any:
        handler = self.fm.commands.get(params.command)
        if handler is None:
            known = ", ".join(sorted(self.fm.commands))
            raise JsonRpcInvalidParams(f"unknown command {params.command!r} (known: {known})")
        answer = handler(*(params.arguments or []))
        if inspect.isawaitable(answer):
            answer = await answer
        return answer
