"""The language server's own requests and answers (``codesearch/search``,
``codesearch/similar`` and the ``codesearch.*`` commands); standard LSP messages keep
lsprotocol's types. Positions are 0-based, as LSP counts them.

Keys that LSP adds to every request (``workDoneToken``, ``partialResultToken``) and any other
unknown top-level key are ignored; an unknown filter is an error.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from codesearch.types import Kind
from codesearch.wire.base import Maybe, Says, Wire, omitted
from codesearch.wire.daemon import MAX_QUERY_CHARS, Filters, StatusResult

DEFAULT_K = 20
DEFAULT_SIMILAR_K = 10
MAX_K = 1000

K = Annotated[StrictInt, Field(ge=1, le=MAX_K)]


class _Query(Wire):
    """What both requests take besides their subject; null means the default."""

    k: K = DEFAULT_K
    filters: Filters = Filters()

    @field_validator("k", "filters", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields[str(info.field_name)]
        return field.get_default(call_default_factory=True) if value is None else value


class SearchRequest(_Query):
    """``codesearch/search``; the ``codesearch.search`` command's ``[query, options?]``."""

    shape = "params must be an object: {query, k?, filters?, folder?}"

    query: Annotated[
        StrictStr,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUERY_CHARS),
        Says(
            "'query' must be a non-empty string",
            long="'query' is too long: more than {max} characters (ask a shorter question)",
        ),
    ]
    folder: Annotated[
        Maybe[Annotated[StrictStr, Field(min_length=1)]],
        Says("'folder' must be a workspace folder URI"),
    ] = omitted("a workspace folder URI; default: every workspace folder")


SIMILAR_SHAPE = "params must be an object: {textDocument: {uri}, position: {line, character}, k?}"


class TextDocument(Wire):
    uri: Annotated[
        StrictStr,
        Field(min_length=1),
        Says("the document must be given by its URI (a non-empty string)"),
    ]


class Position(Wire):
    line: Annotated[
        StrictInt, Field(ge=0), Says("'line' must be a whole number from 0 (LSP lines are 0-based)")
    ]
    character: int = 0


class SimilarRequest(_Query):
    """``codesearch/similar``; the ``codesearch.similar`` command's ``[uri, line, options?]``."""

    shape = SIMILAR_SHAPE

    textDocument: Annotated[TextDocument, Says(SIMILAR_SHAPE)]  # LSP's spelling
    position: Annotated[Position, Says(SIMILAR_SHAPE)]
    k: K = DEFAULT_SIMILAR_K

    @property
    def uri(self) -> str:
        return self.textDocument.uri

    @property
    def line(self) -> int:
        return self.position.line


# ---------------------------------------------------------------------- answers


class Range(Wire):
    start: Position
    end: Position


class SourceChunk(Wire):
    """The chunk at the position of a ``codesearch/similar`` request."""

    uri: str
    range: Range
    path: str = Field(description="relative to root")
    root: str = Field(description="the repository's absolute root")
    name: str
    kind: Kind
    start_line: int = Field(description="the daemon's: 1-based, inclusive")
    end_line: int


class Result(Wire):
    """One result: the daemon's hit with an editor's location. ``range`` is the whole
    definition, ``selectionRange`` the lines that matched best; a picture opens at the start of
    its file and keeps its page, size and the documents that reference it."""

    page: Maybe[int] = omitted()
    width: Maybe[int] = omitted()
    height: Maybe[int] = omitted()
    referenced_by: Maybe[list[str]] = omitted()
    uri: str
    range: Range
    selectionRange: Range
    match_start: int
    match_end: int
    confident: bool
    path: str
    root: str
    name: str
    kind: Kind
    language: str
    score: float
    snippet: str
    start_line: int
    end_line: int


class SearchAnswer(Wire):
    query: str
    results: list[Result] = Field(description="best first (several folders merged by score)")
    notices: list[str]


class SimilarAnswer(Wire):
    source: SourceChunk
    results: list[Result]
    notices: list[str]


class ReindexAnswer(Wire):
    roots: list[str]


class FolderInfo(Wire):
    uri: str
    path: str
    root: str | None = Field(description="the repository root (None: not registered)")
    error: str


class ServerInfo(Wire):
    pid: int
    version: str
    calls_in_flight: int
    position_encoding: str
    folders: list[FolderInfo]


class StatusAnswer(StatusResult):
    """``codesearch.status``: the daemon's status, and this server's."""

    lsp: ServerInfo
