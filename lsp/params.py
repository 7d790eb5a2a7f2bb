"""Checking what a client sends against the custom requests' models
(:mod:`codesearch.wire.lsp`): one-line messages for anything malformed.

``codesearch/search`` takes ``{query, k?, filters?, folder?}``; the ``codesearch.search``
command takes ``[query, {k?, filters?, folder?}?]``; ``codesearch/similar`` takes
``{textDocument: {uri}, position: {line, character}, k?, filters?}`` and the
``codesearch.similar`` command ``[uri, line, {k?, filters?}?]`` (lines 0-based, as LSP counts
them); ``codesearch.reindex`` takes ``[folderUri?]``. Keys that LSP adds to every request
(``workDoneToken``, ``partialResultToken``) and any other unknown top-level key are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from codesearch.types import BadInput
from codesearch.wire.base import Wire, parse
from codesearch.wire.lsp import SearchRequest, SimilarRequest

W = TypeVar("W", bound=Wire)


class InvalidParams(ValueError):
    """The client sent parameters this server cannot use (answered as JSON-RPC InvalidParams)."""


def _parse(model: type[W], raw: object) -> W:
    try:
        return parse(model, raw, InvalidParams)
    except BadInput as exc:  # a malformed path pattern
        raise InvalidParams(str(exc)) from None


def _command(args: Sequence[Any], named: Sequence[str], usage: str, options: str) -> dict[str, Any]:
    """A command's arguments: the ``named`` ones in order, then an optional object of
    ``options``; as the request's params would have them."""
    if not len(named) <= len(args) <= len(named) + 1:
        raise InvalidParams(f"arguments must be {usage}")
    given = args[len(named)] if len(args) > len(named) and args[len(named)] is not None else {}
    if not isinstance(given, Mapping):
        which = ("first", "second", "third")[len(named)]
        raise InvalidParams(f"the {which} argument must be an object: {options}")
    return {**given, **dict(zip(named, args, strict=False))}


def search_params(raw: object) -> SearchRequest:
    """The params of a ``codesearch/search`` request."""
    return _parse(SearchRequest, raw)


def search_arguments(args: Sequence[Any]) -> SearchRequest:
    """The arguments of the ``codesearch.search`` command: ``[query, {k?, filters?, folder?}?]``."""
    shape = "{k?, filters?, folder?}"
    return _parse(SearchRequest, _command(args, ["query"], f"[query, {shape}?]", shape))


def similar_params(raw: object) -> SimilarRequest:
    """The params of a ``codesearch/similar`` request (a text document position, plus k)."""
    return _parse(SimilarRequest, raw)


def similar_arguments(args: Sequence[Any]) -> SimilarRequest:
    """The arguments of the ``codesearch.similar`` command: ``[uri, line, {k?, filters?}?]``."""
    usage = "[uri, line, {k?, filters?}?] (line 0-based)"
    given = _command(args, ["uri", "line"], usage, "{k?, filters?}")
    where = {"textDocument": {"uri": given.pop("uri")}, "position": {"line": given.pop("line")}}
    return _parse(SimilarRequest, {**given, **where})


def reindex_arguments(args: Sequence[Any]) -> str | None:
    """The argument of the ``codesearch.reindex`` command: ``[folderUri?]``."""
    if len(args) > 1:
        raise InvalidParams("arguments must be [folderUri?]")
    folder = args[0] if args else None
    if folder is not None and (not isinstance(folder, str) or not folder):
        raise InvalidParams("the argument must be a workspace folder URI")
    return folder


def no_arguments(args: Sequence[Any], command: str) -> None:
    if args:
        raise InvalidParams(f"{command} takes no arguments")
