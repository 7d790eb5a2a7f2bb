"""The MCP tools' structured outputs (the text content says the same for the model)."""

from __future__ import annotations

from pydantic import Field

from codesearch.types import RepoState
from codesearch.wire.base import Wire
from codesearch.wire.daemon import RepoStatus
from codesearch.wire.hits import Hit, Source


class SearchOutput(Wire):
    repo: str
    query: str
    results: list[Hit]
    notices: list[str]


class SimilarOutput(Wire):
    repo: str
    source: Source
    results: list[Hit]
    notices: list[str]


class RepoSummary(Wire):
    """A registered repository as an agent sees it."""

    root: str
    default: bool = Field(description="the server's default repository")
    state: RepoState
    watching: bool = False
    files: int = 0
    chunks: int = 0
    pending: int = 0
    files_left: int = Field(default=0, description="files left in the running update")
    model: str = ""
    dim: int = 0
    last_update: float | None = None
    error: str = ""
    notice: str = ""

    @classmethod
    def of(cls, info: RepoStatus, default: bool) -> RepoSummary:
        """The summary of the daemon's status of a repository."""
        p = info.progress
        return cls(
            **info.model_dump(include=_SHARED),
            default=default,
            files_left=max(p.files_total - p.files_done, 0) if p else 0,
            error=info.error or info.index_error or "",
        )


# the fields a summary takes as the daemon's status has them (its error: either of two)
_SHARED = (set(RepoSummary.model_fields) & set(RepoStatus.model_fields)) - {"error"}


class StatusOutput(Wire):
    repos: list[RepoSummary]


class ReindexOutput(Wire):
    root: str
    path: str
    done: bool
    repo: RepoSummary | None
