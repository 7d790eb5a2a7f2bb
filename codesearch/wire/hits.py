"""A search result on the wire, and the documents the CLI prints (``--json``, ``--jsonl``,
``--batch``; ``similar``). The daemon's answers and the MCP tools carry the same :class:`Hit`.

Field names are stable: fields are added, never renamed or removed.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from codesearch import types
from codesearch.types import Kind
from codesearch.wire.base import Closed, Maybe, omitted

Line = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=0)]
RELATIVE = {"pattern": "^(?!/)(?!\\./)(?!\\.\\./)"}  # documented, not checked: no lookahead in
# pydantic's regex engine, and the path comes from the index


class Source(Closed):
    """``codesearch similar PATH:LINE``: the chunk the results are like."""

    path: str = Field(min_length=1)
    start_line: Line
    end_line: Line
    name: str
    kind: Kind

    @classmethod
    def of(cls, chunk: types.Chunk) -> Source:
        return cls(**{name: getattr(chunk, name) for name in cls.model_fields})


class Hit(Closed):
    """One search result. Pictures (kind image or pdf-page) also carry page, width, height and
    referenced_by; the agent flags add truncated_lines and context_before/after."""

    model_config = ConfigDict(
        json_schema_extra={
            "dependentRequired": {
                "context_before": ["context_after"],
                "context_after": ["context_before"],
                "page": ["width", "height", "referenced_by"],
            }
        }
    )

    path: str = Field(
        min_length=1,
        description="relative to the repository root, POSIX separators",
        json_schema_extra=RELATIVE,
    )
    start_line: Line = Field(description="1-based, inclusive")
    end_line: Line = Field(description="1-based, inclusive")
    kind: Kind
    name: str = Field(
        description='qualified symbol (Class.method), heading, or "" (module code, windows)'
    )
    language: str = Field(
        description="python, javascript, typescript, tsx, go, rust, java, c, cpp, markdown, "
        "rst, text"
    )
    score: float = Field(description="higher is better; comparable within one answer only")
    snippet: str = Field(
        description="the hit's code from start_line on; without --max-lines the engine's "
        'default cut (12 lines, then a line "...")'
    )
    match_start: Line = Field(
        description="1-based: the first of the lines that matched best, inside "
        "start_line..end_line (a result is a whole definition; when only a part of a long one "
        "matched, match_start..match_end is that part, else the whole result)"
    )
    match_end: Line = Field(description="1-based, inclusive: the last of the lines that matched")
    confident: bool = Field(
        default=True,
        description="false when the result scores below the calibrated bar of a good match "
        "(nothing in the repository may answer the question)",
    )
    page: Maybe[Count] = omitted(
        "pictures only (kind image, pdf-page): the PDF page, 1-based; 0 for an image file"
    )
    width: Maybe[Count] = omitted("pictures only: width in pixels")
    height: Maybe[Count] = omitted("pictures only: height in pixels")
    referenced_by: Maybe[list[str]] = omitted(
        "pictures only: the documents (Markdown, RST, HTML) that reference the picture"
    )
    truncated_lines: Maybe[Count] = omitted(
        "with --max-lines (always in MCP): lines of start_line..end_line the snippet does not show"
    )
    context_before: Maybe[str] = omitted(
        "with --context N: up to N lines just above start_line, read from the file"
    )
    context_after: Maybe[str] = omitted(
        "with --context N: up to N lines just below end_line, read from the file"
    )
    repo: Maybe[str] = omitted(
        "with several --repo (or --all-repos): the absolute root of the repository that holds path"
    )

    @classmethod
    def of(cls, hit: types.Hit, repo: str | None = None) -> Hit:
        """The record of an engine hit (its score rounded to 6 places)."""
        start, end = hit.match_range
        media = hit.media
        return cls(
            path=hit.path,
            start_line=hit.start_line,
            end_line=hit.end_line,
            kind=hit.kind,
            name=hit.name,
            language=hit.language,
            score=round(hit.score, 6),
            snippet=hit.snippet,
            match_start=start,
            match_end=end,
            confident=hit.confident,
            page=media.page if media else None,
            width=media.width if media else None,
            height=media.height if media else None,
            referenced_by=list(hit.referenced_by) if media else None,
            repo=repo,
        )

    def to_hit(self) -> types.Hit:
        """The engine's hit back (e.g. from a daemon's answer)."""
        media = None
        if self.page is not None:
            media = types.Media("", self.page, self.width or 0, self.height or 0)
        return types.Hit(
            path=self.path,
            start_line=self.start_line,
            end_line=self.end_line,
            kind=self.kind,
            name=self.name,
            language=self.language,
            score=self.score,
            snippet=self.snippet,
            media=media,
            referenced_by=tuple(self.referenced_by or ()),
            match_start=self.match_start,
            match_end=self.match_end,
            confident=self.confident,
        )


class SearchDocument(Closed):
    """``codesearch search --json``: one object (indented); with --batch one per line."""

    query: str
    results: list[Hit] = Field(description="best first")


class _Ranked(Closed):
    query: str
    rank: int = Field(ge=1, description="1 = best, per query")


class HitLine(Hit, _Ranked):
    """``codesearch search --jsonl``: one line per result, with its query and rank."""


class SimilarDocument(Closed):
    """``codesearch similar PATH:LINE --json``."""

    source: Source
    results: list[Hit] = Field(description="most similar first")


class _SourceRanked(Closed):
    source: Source
    rank: int = Field(ge=1)


class SimilarHitLine(Hit, _SourceRanked):
    """``codesearch similar PATH:LINE --jsonl``: one line per result."""
