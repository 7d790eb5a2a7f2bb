"""pygls's LSP protocol, adjusted where this server needs it.

- Custom requests (``codesearch/search``) keep their params as plain JSON (dicts and lists),
  not pygls's namedtuples, so they are checked like any other JSON.
- A standard request whose params do not fit the LSP schema is answered with InvalidParams
  and a one-line reason (pygls would log it and never answer, leaving the client waiting).
- ``workspace/executeCommand`` awaits the command directly, so ``$/cancelRequest`` reaches
  the command's work, and an unknown command gets a message that lists the known ones.
- ``initialize`` adds the server's ``experimental`` capabilities.
- The lifecycle as the LSP spec has it: a request before ``initialize`` is refused with
  ServerNotInitialized (-32002), one after ``shutdown`` (or a second ``initialize``) with
  InvalidRequest (-32600); notifications then are dropped, except ``exit``, which exits.
- Frames come from :mod:`lsp.framing` (:meth:`Protocol.receive`): a body that is not JSON is
  answered with ParseError (-32700, id null), JSON that is not a JSON-RPC 2.0 message or that
  nests deeper than :data:`MAX_DEPTH` with InvalidRequest; a framing error with InvalidRequest
  (id null).
"""

from __future__ import annotations

import inspect
import json
import logging
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

from codesearch.daemon.protocol import depth

log = logging.getLogger("codesearch.lsp")

MAX_REASON = 300
MAX_DEPTH = 100  # JSON nested deeper than this is refused
PARSE_ERROR = types.ErrorCodes.ParseError.value
INVALID_REQUEST = types.ErrorCodes.InvalidRequest.value
NOT_INITIALIZED = types.ErrorCodes.ServerNotInitialized.value


def converter() -> cattrs.Converter:
    """pygls's converter, but custom messages keep their params as plain JSON."""
    conv = default_converter()
    conv.register_structure_hook(JsonRPCRequestMessage, lambda obj, cls: cls(**obj))
    conv.register_structure_hook(JsonRPCNotification, lambda obj, cls: cls(**obj))
    return conv


class _Answered:
    """A request that was already answered while it was being read (bad params)."""

    jsonrpc = ""


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(cause, cattrs.ClassValidationError):
        details = cattrs.transform_error(cause, path="params")
        text = "; ".join(detail.replace("$.", "") for detail in details[:3])
    else:
        text = str(cause or exc) or type(cause or exc).__name__
    return _short(text)


def _request_id(data: object) -> int | str | None:
    """The id of what looks like a request, if it has a usable one."""
    msg_id = data.get("id") if isinstance(data, dict) else None
    return msg_id if isinstance(msg_id, int | str) and not isinstance(msg_id, bool) else None


class Protocol(LanguageServerProtocol):
    _initialize_seen = False

    # ------------------------------------------------------------------ frames in

    def receive(self, body: bytes) -> bool:
        """Handle one frame's body; False when it was not JSON (it may hold the next frame)."""
        try:
            data = json.loads(body)
        except RecursionError:
            self.refuse(None, INVALID_REQUEST, f"the message nests more than {MAX_DEPTH} deep")
            return True
        except ValueError as exc:  # not JSON, not UTF-8, an integer of over 4,300 digits
            self.refuse(None, PARSE_ERROR, f"the message is not JSON: {_short(str(exc))}")
            return False
        msg_id = _request_id(data)
        if depth(data, MAX_DEPTH) > MAX_DEPTH:
            self.refuse(msg_id, INVALID_REQUEST, f"the message nests more than {MAX_DEPTH} deep")
        elif not isinstance(data, dict) or data.get("jsonrpc") != self.VERSION:
            self.refuse(msg_id, INVALID_REQUEST, "not a JSON-RPC 2.0 message object")
        elif "method" in data and not isinstance(data["method"], str):
            self.refuse(msg_id, INVALID_REQUEST, "'method' must be a string")
        else:
            self._dispatch(data, msg_id)
        return True

    def _dispatch(self, data: dict[str, Any], msg_id: int | str | None) -> None:
        try:
            message = self.structure_message(data)
        except Exception as exc:
            log.warning("unusable message: %s", exc)
            if "method" in data and msg_id is not None:
                self.refuse(msg_id, INVALID_REQUEST, f"unusable message: {_reason(exc)}")
            return
        try:
            self.handle_message(message)
        except Exception:  # as pygls's own loop: log it, read on
            log.exception("unable to handle a message")

    def refuse_frame(self, reason: str) -> None:
        self.refuse(None, INVALID_REQUEST, f"framing error: {reason}")

    def refuse(self, msg_id: int | str | None, code: int, message: str) -> None:
        """Answer ``msg_id`` (None: a message whose id is unknown) with an error."""
        self._send_response(msg_id, error=types.ResponseError(code=code, message=message))

    # ------------------------------------------------------------------ the lifecycle

    def handle_message(self, message: Any) -> None:
        if isinstance(message, _Answered):
            return
        method = getattr(message, "method", None)
        msg_id = getattr(message, "id", None) if method is not None else None
        if method == types.EXIT:
            super().handle_message(message)
            return
        refusal: tuple[int, str] | None = None
        if self._shutdown:
            refusal = INVALID_REQUEST, "the server is shutting down: only 'exit' is accepted"
        elif method == types.INITIALIZE and self._initialize_seen:
            refusal = INVALID_REQUEST, "the server is initialized already"
        elif method is not None and method != types.INITIALIZE and not self._initialize_seen:
            refusal = NOT_INITIALIZED, "the server is not initialized: send 'initialize' first"
        if refusal is not None:
            if msg_id is not None:  # a notification is dropped
                self.refuse(msg_id, *refusal)
            return
        if method == types.INITIALIZE:
            self._initialize_seen = True
        super().handle_message(message)

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
