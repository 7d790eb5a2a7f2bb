"""Checking what a client sends: one-line messages for anything malformed.

``codesearch/search`` takes ``{query, k?, filters?, folder?}``; the ``codesearch.search``
command takes ``[query, {k?, filters?, folder?}?]``; ``codesearch/similar`` takes
``{textDocument: {uri}, position: {line, character}, k?, filters?}`` and the
``codesearch.similar`` command ``[uri, line, {k?, filters?}?]`` (lines 0-based, as LSP counts
them); ``codesearch.reindex`` takes ``[folderUri?]``. Keys that LSP adds to every request
(``workDoneToken``, ``partialResultToken``) and any other unknown top-level key are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from codesearch import globs
from codesearch.types import KINDS, BadInput

DEFAULT_K = 20
DEFAULT_SIMILAR_K = 10
MAX_K = 1000
FILTER_KEYS = ("languages", "path_globs", "kinds", "exclude_globs", "include_tests")


class InvalidParams(ValueError):
    """The client sent parameters this server cannot use (answered as JSON-RPC InvalidParams)."""


@dataclass(frozen=True)
class SearchParams:
    query: str
    k: int = DEFAULT_K
    filters: dict[str, Any] = field(default_factory=dict)
    folder: str | None = None  # a workspace folder URI; None: every workspace folder


@dataclass(frozen=True)
class SimilarParams:
    uri: str  # the document
    line: int  # 0-based, as LSP positions count
    k: int = DEFAULT_SIMILAR_K
    filters: dict[str, Any] = field(default_factory=dict)


def _string_list(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParams(f"'{where}' must be a list of strings")
    return list(value)


def _filters(value: object) -> dict[str, Any]:
    """The daemon's ``filters`` object: lists of strings, and ``include_tests`` (a boolean);
    path patterns in the CLI's glob dialect (:mod:`codesearch.globs`)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidParams("'filters' must be an object")
    unknown = [key for key in value if key not in FILTER_KEYS]
    if unknown:
        raise InvalidParams(f"unknown filter {unknown[0]!r} (known: {', '.join(FILTER_KEYS)})")
    filters: dict[str, Any] = {
        key: _string_list(value[key], f"filters.{key}") for key in value if key != "include_tests"
    }
    if "include_tests" in value:
        if not isinstance(value["include_tests"], bool):
            raise InvalidParams("'filters.include_tests' must be true or false")
        filters["include_tests"] = value["include_tests"]
    bad = [kind for kind in filters.get("kinds", []) if kind not in KINDS]
    if bad:
        raise InvalidParams(f"unknown kind {bad[0]!r} (known: {', '.join(KINDS)})")
    try:
        globs.check(filters.get("path_globs", []), "filters.path_globs")
        globs.check(filters.get("exclude_globs", []), "filters.exclude_globs", negation=False)
    except BadInput as exc:
        raise InvalidParams(str(exc)) from None
    return filters


def _k(options: Mapping[str, Any], default: int) -> int:
    k = options.get("k", default)
    if k is None:
        k = default
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise InvalidParams(f"'k' must be a whole number from 1 to {MAX_K}")
    return k


def _options(query: object, options: Mapping[str, Any]) -> SearchParams:
    if not isinstance(query, str) or not query.strip():
        raise InvalidParams("'query' must be a non-empty string")
    k = _k(options, DEFAULT_K)
    folder = options.get("folder")
    if folder is not None and (not isinstance(folder, str) or not folder):
        raise InvalidParams("'folder' must be a workspace folder URI")
    return SearchParams(query.strip(), k, _filters(options.get("filters")), folder)


def search_params(raw: object) -> SearchParams:
    """The params of a ``codesearch/search`` request."""
    if not isinstance(raw, Mapping):
        raise InvalidParams("params must be an object: {query, k?, filters?, folder?}")
    return _options(raw.get("query"), raw)


def search_arguments(args: Sequence[Any]) -> SearchParams:
    """The arguments of the ``codesearch.search`` command: ``[query, {k?, filters?, folder?}?]``."""
    if not 1 <= len(args) <= 2:
        raise InvalidParams("arguments must be [query, {k?, filters?, folder?}?]")
    options = args[1] if len(args) == 2 and args[1] is not None else {}
    if not isinstance(options, Mapping):
        raise InvalidParams("the second argument must be an object: {k?, filters?, folder?}")
    return _options(args[0], options)


def _similar(uri: object, line: object, options: Mapping[str, Any]) -> SimilarParams:
    if not isinstance(uri, str) or not uri:
        raise InvalidParams("the document must be given by its URI (a non-empty string)")
    if not isinstance(line, int) or isinstance(line, bool) or line < 0:
        raise InvalidParams("'line' must be a whole number from 0 (LSP lines are 0-based)")
    return SimilarParams(
        uri, line, _k(options, DEFAULT_SIMILAR_K), _filters(options.get("filters"))
    )


def similar_params(raw: object) -> SimilarParams:
    """The params of a ``codesearch/similar`` request (a text document position, plus k)."""
    shape = "params must be an object: {textDocument: {uri}, position: {line, character}, k?}"
    if not isinstance(raw, Mapping):
        raise InvalidParams(shape)
    document, position = raw.get("textDocument"), raw.get("position")
    if not isinstance(document, Mapping) or not isinstance(position, Mapping):
        raise InvalidParams(shape)
    return _similar(document.get("uri"), position.get("line"), raw)


def similar_arguments(args: Sequence[Any]) -> SimilarParams:
    """The arguments of the ``codesearch.similar`` command: ``[uri, line, {k?, filters?}?]``."""
    if not 2 <= len(args) <= 3:
        raise InvalidParams("arguments must be [uri, line, {k?, filters?}?] (line 0-based)")
    options = args[2] if len(args) == 3 and args[2] is not None else {}
    if not isinstance(options, Mapping):
        raise InvalidParams("the third argument must be an object: {k?, filters?}")
    return _similar(args[0], args[1], options)


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
