"""Frozen dataclasses passed between the pipeline stages, and the error types.

Nothing here imports a heavy dependency: every layer may import this module.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Kind(StrEnum):
    """What a chunk is. Code: function, method, class, module (top-level code between
    definitions). Prose: section (a Markdown/RST heading). Anything else: window. Pictures:
    image (a PNG, JPEG, WebP, GIF, BMP or SVG file), pdf-page (one page of a PDF)."""

    FUNCTION = "function"
    METHOD = "method"
    CLASS = "class"
    MODULE = "module"
    SECTION = "section"
    WINDOW = "window"
    IMAGE = "image"
    PDF_PAGE = "pdf-page"


KINDS = tuple(Kind)
CODE_KINDS = (Kind.FUNCTION, Kind.METHOD, Kind.CLASS, Kind.MODULE)
VISUAL_KINDS = (Kind.IMAGE, Kind.PDF_PAGE)


class Task(StrEnum):
    """What a vector was embedded for (the adapter of a backend with tasks; the index keys
    vectors by it). NONE: a backend without tasks."""

    NONE = ""
    RETRIEVAL = "retrieval"
    CODE = "code"
    TEXT_MATCHING = "text-matching"
    # embedded from pixels (a multimodal backend); keyed by the picture's hash, so
    # re-describing an image (a document that references it changed) reuses the vector
    IMAGE = "image"


IMAGE_TASK = Task.IMAGE


class RepoState(StrEnum):
    """Where the daemon stands with a registered repository."""

    QUEUED = "queued"  # changes wait for the writer
    INDEXING = "indexing"
    IDLE = "idle"  # up to date
    MISSING = "missing"  # its folder is gone (rescanned now and then)
    ERROR = "error"  # the last update failed (retried later)
    PAUSED = "paused"  # the embedding server is down (resumed when it is up)
    REMOVED = "removed"  # no longer registered (its writer closes after the running update)


@dataclass(frozen=True)
class SourceFile:
    """A file that discovery decided to index."""

    path: str  # relative to the repository root, POSIX separators
    abs_path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skip:
    """A path that discovery (or reading) left out, and why."""

    path: str  # relative to the repository root, POSIX separators
    reason: str  # short machine-friendly reason: "binary", "too-large", "gitignored", ...
    detail: str = ""


@dataclass(frozen=True)
class Media:
    """What a picture chunk adds: the picture's own identity and size."""

    hash: str  # sha256 of the file's bytes (+ ":page" for a PDF page): its pixel vector's key
    page: int = 0  # 1-based page of a PDF; 0 for an image file
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class ImageRef:
    """A document's reference to a picture in the repository (Markdown, RST, HTML)."""

    doc_path: str  # the referencing document, relative POSIX
    target: str  # the picture, relative to the repository root, POSIX, normalised
    alt: str = ""  # alt text, title or caption
    context: str = ""  # the surrounding section: heading and nearby text
    line: int = 0  # 1-based line of the reference in the document
    section: str = ""  # the enclosing heading trail, "Guide > Login" ("" above any heading)


@dataclass(frozen=True)
class Chunk:
    """One retrievable unit of a file: a definition, a section or a window."""

    path: str  # relative to the repository root, POSIX separators
    language: str  # "python", "javascript", ..., "markdown", "text"
    kind: Kind
    name: str  # qualified symbol ("Class.method"), heading, or "" for windows
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    text: str  # the source lines start_line..end_line (possibly abridged for classes)
    header: str = ""  # short context for the embedder: language, enclosing symbol, signature
    media: Media | None = None  # set for kinds "image" and "pdf-page"; text is then its context
    # A part of a definition split for the embedder: the whole definition's lines (1-based,
    # inclusive; its decorators / doc comment included). 0: the chunk is whole.
    def_start: int = 0
    def_end: int = 0

    @property
    def is_part(self) -> bool:
        return bool(self.def_start and self.def_end)

    @property
    def definition(self) -> tuple[int, int]:
        """The lines of the definition this chunk belongs to (its own lines when whole)."""
        if self.is_part:
            return self.def_start, self.def_end
        return self.start_line, self.end_line

    def embed_text(self) -> str:
        """The exact text given to the embedder, whose hash keys its vector (per-chunk
        embedding; late-chunked vectors are keyed by the file too: ``index.late_vector_key``)."""
        return f"{self.header}\n{self.text}" if self.header else self.text

    @property
    def content_hash(self) -> str:
        return content_hash(self.embed_text())

    def vector_key(self, task: str = "") -> str:
        """The key of this chunk's vector when embedded under ``task`` (see :func:`vector_key`);
        a picture embedded from its pixels (task ``IMAGE_TASK``) is keyed by its own hash."""
        if task == IMAGE_TASK and self.media is not None:
            return vector_key(self.media.hash, task)
        return vector_key(self.content_hash, task)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def vector_key(text_hash: str, task: str = "") -> str:
    """The store's key of a vector: the embedded text's hash, and the task it was embedded for.

    Task "" (a backend without tasks) keeps the bare content hash, so indexes built before
    tasks existed stay valid; otherwise ``"{task}:{hash}"``, which no bare hash (64 hex digits)
    can equal: the same text under two tasks gets two vectors."""
    return f"{task}:{text_hash}" if task else text_hash


@dataclass(frozen=True)
class FileState:
    """What the store remembers about an indexed file, to detect changes."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str  # sha256 of the file's bytes


@dataclass(frozen=True)
class Hit:
    """One search result, as every face reports it."""

    path: str
    start_line: int
    end_line: int
    kind: Kind
    name: str
    language: str
    score: float
    snippet: str
    media: Media | None = None  # pictures: page and size
    referenced_by: tuple[str, ...] = ()  # pictures: the documents that reference them
    # The lines that matched best, inside start_line..end_line: the part of a long definition
    # that was split for the embedder (0: the whole hit matched; the wire record has its span).
    match_start: int = 0
    match_end: int = 0
    # False when the hit scores below the calibrated "good match" threshold
    confident: bool = True

    @property
    def match_range(self) -> tuple[int, int]:
        """The best-matching lines (1-based, inclusive); the whole hit when none were set."""
        if self.match_start and self.match_end:
            return self.match_start, self.match_end
        return self.start_line, self.end_line


@dataclass(frozen=True)
class Filters:
    """Search filters; empty fields do not filter."""

    languages: tuple[str, ...] = ()
    path_globs: tuple[str, ...] = ()  # keep paths matching any (gitignore-style globs)
    kinds: tuple[Kind, ...] = ()
    exclude_globs: tuple[str, ...] = ()  # drop paths matching any (same glob dialect)
    include_tests: bool = True  # False: test code (by path convention and markers) left out


@dataclass(frozen=True)
class IndexStats:
    """What one `index` run did."""

    files_seen: int = 0
    files_indexed: int = 0  # new or changed files re-parsed
    files_unchanged: int = 0
    files_removed: int = 0
    chunks_total: int = 0
    chunks_embedded: int = 0  # chunks whose vector had to be computed
    chunks_reused: int = 0  # chunks whose vector was found by content hash
    skipped: tuple[Skip, ...] = field(default=())
    seconds: float = 0.0
    rebuilt: bool = False  # the model, dimension or chunker changed: everything was redone
    cancelled: bool = False  # stopped early: files_indexed files of the run are kept


@dataclass(frozen=True)
class Progress:
    """A snapshot of an index run, for progress displays."""

    files_done: int
    files_total: int  # files that need (re)indexing in this run
    chunks_embedded: int
    elapsed: float
    phase: str = ""  # a step before the files, in words ("loading the model minilm-code")


class CodesearchError(Exception):
    """An error with a clear one-line message for the user."""

    exit_code = 2


class NotARepository(CodesearchError):
    pass


class IndexMissing(CodesearchError):
    pass


class IndexCorrupt(CodesearchError):
    pass


class IndexLocked(CodesearchError):
    pass


class DiskFull(CodesearchError):
    """The disk that holds an index has no space left: nothing is damaged, writes wait."""


class ModelMismatch(CodesearchError):
    pass


class BadInput(CodesearchError):
    pass


class ModelUnavailable(CodesearchError):
    pass
