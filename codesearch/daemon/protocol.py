"""The request/response schema every face speaks to the daemon.

One JSON object per line over a Unix stream socket. A request::

    {"v": 2, "id": 7, "method": "search", "params": {...}}

is answered by zero or more events and then exactly one final message with the same id::

    {"v": 2, "id": 7, "event": "progress", "data": {...}}
    {"v": 2, "id": 7, "result": {...}}
    {"v": 2, "id": 7, "error": {"type": "IndexMissing", "message": "..."}}

Search results are the records of the CLI's ``--json`` output (:meth:`Hit.to_json`). A request
with another ``v`` is answered with a ``SchemaMismatch`` error, never dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from codesearch.types import (
    BadInput,
    CodesearchError,
    IndexCorrupt,
    IndexLocked,
    IndexMissing,
    ModelMismatch,
    ModelUnavailable,
    NotARepository,
)

SCHEMA_VERSION = 2  # 2: hits carry match_start/match_end/confident; filters, scope, repos grew
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a request or response line larger than this is refused

METHODS = (
    "ping",  # -> {pid, version, schema, started}
    # {queries, k, filters, repo | cwd (+ scope: a subfolder) | repos | all_repos, model?}
    # -> {repo, results, notices}; with repos / all_repos: one list, each hit with its "repo"
    "search",
    # {path, line, k, filters?, repo | cwd, model?} -> {repo, source, results, notices}:
    # the chunks most like the one at path:line (path relative to the repo root, or absolute)
    "similar",
    "add",  # {path, wait?} -> {root, added}; with wait: progress events until idle
    "remove",  # {path} -> {root, removed}
    "repos",  # -> {repos: [...]}
    "status",  # {repo?} -> {daemon: {...}, repos: [...]}
    "hint",  # {paths: [abs paths]} -> {queued}: a face saw these change (editor save)
    "reindex",  # {path, rebuild?} -> {root}: reconcile the whole repository now
    "wait",  # {repo?, timeout?} -> {idle}: block until no work is pending
    "shutdown",  # -> {}
)


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
        BadInput,
        IndexCorrupt,
        IndexLocked,
        IndexMissing,
        ModelMismatch,
        ModelUnavailable,
        NotARepository,
        ProtocolError,
        SchemaMismatch,
        DaemonUnavailable,
        DaemonError,
    )
}


@dataclass(frozen=True)
class Request:
    id: int | str
    method: str
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


def decode(line: bytes) -> dict[str, Any]:
    """One message; ProtocolError when it is not a JSON object."""
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"malformed message: not JSON ({exc})") from None
    if not isinstance(message, dict):
        raise ProtocolError("malformed message: not a JSON object")
    return message


def parse_request(message: dict[str, Any]) -> Request:
    """Check a decoded request against the schema (the version first)."""
    version = message.get("v")
    if version != SCHEMA_VERSION:
        raise SchemaMismatch(
            f"this daemon speaks schema version {SCHEMA_VERSION}, the client sent "
            f"{version!r}: restart the daemon with the same codesearch "
            f"(`codesearch daemon restart`)"
        )
    req_id = message.get("id")
    if not isinstance(req_id, (int, str)) or isinstance(req_id, bool):
        raise ProtocolError("malformed request: 'id' must be a number or a string")
    method = message.get("method")
    if method not in METHODS:
        raise ProtocolError(f"unknown method {method!r} (known: {', '.join(METHODS)})")
    params = message.get("params", {})
    if not isinstance(params, dict):
        raise ProtocolError("malformed request: 'params' must be an object")
    return Request(req_id, method, params)


def raise_error(payload: object) -> None:
    """Turn an error payload from the daemon back into the matching exception."""
    if not isinstance(payload, dict):
        raise ProtocolError(f"malformed error from the daemon: {payload!r}")
    cls = ERRORS.get(str(payload.get("type")), DaemonError)
    raise cls(str(payload.get("message", "unknown error")))
