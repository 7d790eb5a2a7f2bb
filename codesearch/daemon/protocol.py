"""The envelope of what every face says to the daemon (the params and answers inside it are
the models of :mod:`codesearch.wire.daemon`; docs/daemon.schema.json is generated from them).

One JSON object per line over a Unix stream socket. A request::

    {"v": 2, "id": 7, "method": "search", "params": {...}}

is answered by zero or more events and then exactly one final message with the same id::

    {"v": 2, "id": 7, "event": "progress", "data": {...}}
    {"v": 2, "id": 7, "result": {...}}
    {"v": 2, "id": 7, "error": {"type": "IndexMissing", "message": "..."}}

Search results are the records of the CLI's ``--json`` output (:class:`codesearch.wire.hits.Hit`).
A request with another ``v`` is answered with a ``SchemaMismatch`` error, never dropped.

Limits (each answered with a one-line ``ProtocolError``; the connection goes on serving): a
request line of more than :data:`MAX_REQUEST_BYTES` (refused before it is buffered whole), JSON
nested deeper than :data:`MAX_DEPTH`, integers longer than Python's 4,300 digits, and bare
``NaN`` / ``Infinity``. Answers may be longer (:data:`MAX_REPLY_BYTES`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from codesearch import types
from codesearch.types import CodesearchError
from codesearch.wire.base import parse
from codesearch.wire.daemon import Envelope, Method

SCHEMA_VERSION = 2  # 2: hits carry match_start/match_end/confident; filters, scope, repos grew
MAX_REQUEST_BYTES = 1024 * 1024  # a request line larger than this is refused
MAX_REPLY_BYTES = 16 * 1024 * 1024  # an answer line larger than this is refused by the client
MAX_DEPTH = 32  # objects and lists nested deeper than this are refused

# The methods, their params and answers: codesearch.wire.daemon (CALLS).
METHODS = tuple(Method)


class ProtocolError(CodesearchError):
    """A malformed message, or one that breaks the schema."""


class SchemaMismatch(CodesearchError):
    """Client and daemon speak different schema versions."""


class DaemonUnavailable(CodesearchError):
    """No daemon answers (and none could be started)."""


class DaemonError(CodesearchError):
    """The daemon failed in a way that has no more specific type."""


ERRORS: dict[str, type[CodesearchError]] = {
    cls.__name__: cls
    for cls in (
        types.BadInput,
        types.IndexCorrupt,
        types.IndexLocked,
        types.IndexMissing,
        types.ModelMismatch,
        types.ModelUnavailable,
        types.NotARepository,
        ProtocolError,
        SchemaMismatch,
        DaemonUnavailable,
        DaemonError,
    )
}


@dataclass(frozen=True)
class Request:
    id: int | str
    method: Method
    params: dict[str, Any] = field(default_factory=dict)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def request(req: Request) -> bytes:
    return encode({"v": SCHEMA_VERSION, "id": req.id, "method": req.method, "params": req.params})


def result(req_id: object, value: dict[str, Any]) -> bytes:
    return encode({"v": SCHEMA_VERSION, "id": req_id, "result": value})


def event(req_id: object, name: str, data: dict[str, Any]) -> bytes:
    return encode({"v": SCHEMA_VERSION, "id": req_id, "event": name, "data": data})


def error(req_id: object, exc: BaseException) -> bytes:
    # the nearest known type: a subclass (RemoteUnavailable) travels as its base (ModelUnavailable)
    name = next((c.__name__ for c in type(exc).__mro__ if c.__name__ in ERRORS), "DaemonError")
    return encode({"v": SCHEMA_VERSION, "id": req_id, "error": {"type": name, "message": str(exc)}})


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode(line: bytes) -> dict[str, Any]:
    """One message; ProtocolError when it is not a JSON object within the limits above."""
    try:
        message = json.loads(line.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"malformed message: not JSON ({exc})") from None
    except RecursionError:
        raise ProtocolError(f"malformed message: nested more than {MAX_DEPTH} deep") from None
    except ValueError as exc:  # an integer of more than 4,300 digits, NaN, Infinity
        raise ProtocolError(f"malformed message: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("malformed message: not a JSON object")
    if depth(message) > MAX_DEPTH:
        raise ProtocolError(f"malformed message: nested more than {MAX_DEPTH} deep")
    return message


def depth(value: object, limit: int = MAX_DEPTH) -> int:
    """How deeply objects and lists nest in ``value`` (a scalar: 0), without recursion; it
    stops counting once past ``limit``."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level > limit:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def parse_request(message: dict[str, Any]) -> Request:
    """Check a decoded request's envelope (the version first); its params are checked
    against their method's model (codesearch.wire.daemon) when it is dispatched."""
    version = message.get("v")
    if version != SCHEMA_VERSION:
        raise SchemaMismatch(
            f"this daemon speaks schema version {SCHEMA_VERSION}, the client sent "
            f"{version!r}: restart the daemon with the same codesearch "
            f"(`codesearch daemon restart`)"
        )
    envelope = parse(Envelope, message, ProtocolError)
    return Request(envelope.id, envelope.method, envelope.params)


def raise_error(payload: object) -> None:
    """Turn an error payload from the daemon back into the matching exception."""
    if not isinstance(payload, dict):
        raise ProtocolError(f"malformed error from the daemon: {payload!r}")
    cls = ERRORS.get(str(payload.get("type")), DaemonError)
    raise cls(str(payload.get("message", "unknown error")))
