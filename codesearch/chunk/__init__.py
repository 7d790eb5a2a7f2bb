"""The chunker: turns one file's text into retrievable `Chunk`s.

Code (tree-sitter, one query file per language under `queries/`): functions, methods, class
heads, module code between definitions, windows where the parse failed. Markdown and RST:
sections by heading. Everything else: overlapping line windows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from codesearch.chunk import pieces as P
from codesearch.chunk.languages import CODE_LANGUAGES, language_for
from codesearch.types import Chunk

__all__ = ["CHUNKER_VERSION", "chunk_file", "language_for"]

# Bump whenever the chunks produced for the same input change: the index records it.
# 2: documents record their picture references; 3: parts know their definition's lines, JS/TS
# functions bound by assignment are named, tiny parts are folded into a neighbour
CHUNKER_VERSION = "3"

log = logging.getLogger(__name__)


def chunk_file(
    path: str,
    text: str,
    *,
    max_tokens: int = 256,
    count_tokens: Callable[[str], int] | None = None,
) -> list[Chunk]:
    """Chunks of one file. `path` is repo-relative POSIX; never raises, never loses a line."""
    lines = P.split_lines(text)
    if not any(line.strip() for line in lines):
        return []
    language = language_for(path)
    count = count_tokens or P.estimate_tokens
    try:
        if language in CODE_LANGUAGES:
            from codesearch.chunk.code import chunk_code

            src = text.encode("utf-8", "surrogatepass")
            return chunk_code(path, language, src, lines, max_tokens, count)
        if language in ("markdown", "rst"):
            from codesearch.chunk.text import chunk_sections

            return chunk_sections(path, language, lines, max_tokens, count)
    except Exception:  # a chunker bug must not stop indexing: fall back to windows
        log.warning("chunking %s failed; using line windows", path, exc_info=True)
    from codesearch.chunk.text import chunk_text

    return chunk_text(path, language, lines)
