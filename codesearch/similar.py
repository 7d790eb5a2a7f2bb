"""More like this: the code nearest to one indexed chunk (``codesearch similar PATH:LINE``).

The source is the innermost indexed chunk whose lines hold LINE (a method rather than its
class, one part of a split definition). Its neighbours are ranked one of two ways:

- plain (a backend without tasks: MiniLM, a remote server): the source's own stored vector
  is the query of one KNN over the index. No model runs, so this works offline and while an
  embedding server is down.
- text-matching (a backend with that task adapter: jina-v4): the index holds vectors of the
  ``code`` and ``retrieval`` adapters, which compare questions with documents, not documents
  with each other. The stored-vector KNN (restricted to the source's task) picks
  ``MATCH_CANDIDATES`` candidates; the source and the candidates are then embedded with
  ``text-matching`` (``"Query: "`` on both sides, see embed/jina/embedder.py) and re-ranked by
  cosine: one forward pass over ~100 chunks per request, no change to the index.

Left out of the results: the source itself, the other parts of its split definition, and
the chunks of its file that overlap, enclose or lie inside it (the class around a method, the
methods of a class): they are the same code, not more like it. Results are collapsed like
search results (one per symbol) and scored by cosine similarity in [-1, 1].

No BM25 blend: a chunk's identifiers match its own file's neighbours (same names, same
variables) far more than another implementation of the same idea, which is what this is
for; on the test fixture the blend put a same-file sibling above the planted duplicate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from codesearch.paths import relpath
from codesearch.safe_read import read_regular
from codesearch.search import Searcher, SearchOptions, collapse, symbol_key
from codesearch.store import StoredChunk
from codesearch.types import BadInput, Chunk, Hit, Task

MATCH_TASK = Task.TEXT_MATCHING
MATCH_CANDIDATES = 100  # stored-vector neighbours re-ranked by text-matching
EXAMPLE = "src/app/auth.py:42"
MAX_COUNT_BYTES = 64_000_000  # lines are counted in files this size at most


def parse_location(text: str) -> tuple[str, int]:
    """``PATH:LINE`` -> (PATH, LINE); BadInput with one line for anything else."""
    path, colon, number = text.strip().rpartition(":")
    if not colon or not path.strip():
        raise BadInput(f"expected PATH:LINE (e.g. {EXAMPLE}), got {text!r}")
    try:
        line = int(number)
    except ValueError:
        raise BadInput(
            f"expected PATH:LINE with a line number (e.g. {EXAMPLE}), got {text!r}"
        ) from None
    return path, check_line(line)


def check_line(line: int) -> int:
    if line < 1:
        raise BadInput(f"line numbers start at 1, got {line}")
    return line


def _describe(c: Chunk) -> str:
    what = f"{c.kind} {c.name}" if c.name else c.kind
    return f"{c.path}:{c.start_line} ({what}, lines {c.start_line}-{c.end_line})"


def _line_count(file: Path) -> int | None:
    try:  # a regular file only, capped: a FIFO or a device is never waited on
        data = read_regular(file, MAX_COUNT_BYTES)
    except OSError:
        return None
    return len(data.split(b"\n")) - (1 if data.endswith(b"\n") else 0)


class MoreLikeThis:
    """Finds the chunk at a place in a repository and the chunks most like it."""

    def __init__(self, searcher: Searcher, root: Path) -> None:
        self.searcher = searcher
        self.store = searcher.store
        self.embedder = searcher.embedder
        self.root = root

    def locate(self, path: str, line: int) -> StoredChunk:
        """The innermost indexed chunk of ``path`` (relative to the root, or absolute) whose
        lines hold ``line``; BadInput naming the nearest one when none does."""
        check_line(line)
        if not path.strip() or "\x00" in path:
            raise BadInput("the path is empty")
        rel = relpath(self.root, Path(path).expanduser())
        file = self.root / rel
        chunks = self.store.all_chunks(rel)
        if not chunks:
            if not file.is_file():
                raise BadInput(f"no such file in {self.root}: {rel}")
            raise BadInput(
                f"{rel} is not indexed (skipped, or not indexed yet: see `codesearch status`)"
            )
        lines = _line_count(file) or max(s.chunk.end_line for s in chunks)
        if line > lines:
            raise BadInput(f"line {line} is past the end of {rel} ({lines} lines)")
        holding = [s for s in chunks if s.chunk.start_line <= line <= s.chunk.end_line]
        if holding:
            return min(
                holding,
                key=lambda s: (s.chunk.end_line - s.chunk.start_line, -s.chunk.start_line, s.id),
            )

        def gap(s: StoredChunk) -> int:
            return min(abs(s.chunk.start_line - line), abs(s.chunk.end_line - line))

        nearest = min(chunks, key=lambda s: (gap(s), s.chunk.start_line))
        raise BadInput(
            f"no indexed chunk of {rel} holds line {line}; nearest: {_describe(nearest.chunk)}"
        )

    def similar(
        self, path: str, line: int, options: SearchOptions | None = None
    ) -> tuple[Chunk, list[Hit]]:
        """The source chunk at ``path:line`` and the ``options.k`` chunks most like it."""
        options = options or SearchOptions()
        source = self.locate(path, line)
        stored = self.store.chunk_vectors([source.id]).get(source.id)
        if stored is None:
            raise BadInput(f"{_describe(source.chunk)} has no vector: re-index the repository")
        vector, task = stored
        matching = MATCH_TASK in self.embedder.tasks and source.chunk.media is None
        depth = max(MATCH_CANDIDATES if matching else 0, options.k * 4) + 16
        dense = self.store.knn(vector, depth, options.filters, task=task or None)
        chunks = self.store.chunks([cid for cid, _ in dense])
        same = _same_code(source.chunk)
        ranked = [
            (cid, 1.0 - distance)
            for cid, distance in dense
            if cid in chunks and not same(chunks[cid].chunk)
        ]
        if matching:
            ranked = self._match(source.chunk, ranked, chunks)
        hits = collapse(ranked, chunks, options, self.store.parts_of)
        return source.chunk, self.searcher.with_references(hits)

    def _match(
        self,
        source: Chunk,
        ranked: Sequence[tuple[int, float]],
        chunks: dict[int, StoredChunk],
    ) -> list[tuple[int, float]]:
        """The first MATCH_CANDIDATES text candidates (one per symbol) re-scored by the cosine
        of their text-matching vectors with the source's, best first."""
        picked: list[int] = []
        seen: set[tuple[object, ...]] = set()
        for cid, _ in ranked:
            c = chunks[cid].chunk
            key = symbol_key(c)
            if c.media is not None or key in seen:
                continue
            seen.add(key)
            picked.append(cid)
            if len(picked) >= MATCH_CANDIDATES:
                break
        if not picked:
            return []
        texts = [source.embed_text(), *(chunks[cid].chunk.embed_text() for cid in picked)]
        vectors = self.embedder.embed_documents(texts, task=MATCH_TASK)
        scores = vectors[1:] @ vectors[0]
        order = sorted(range(len(picked)), key=lambda i: (-float(scores[i]), i))
        return [(picked[i], float(scores[i])) for i in order]


def _same_code(source: Chunk) -> Callable[[Chunk], bool]:
    """A test: is a chunk the source, a part of the same definition, or code of the same
    file that overlaps it, encloses it or lies inside it (``Cache`` and ``Cache.get``)?"""
    key = symbol_key(source)

    def same(c: Chunk) -> bool:
        if c.path != source.path:
            return False
        if c.start_line <= source.end_line and source.start_line <= c.end_line:
            return True  # overlapping lines (a class chunk's are abridged: see the names)
        nested = bool(c.name and source.name) and (
            source.name.startswith(c.name + ".") or c.name.startswith(source.name + ".")
        )
        return nested or symbol_key(c) == key

    return same
