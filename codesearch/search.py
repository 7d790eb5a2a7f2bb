"""The searcher: vector KNN + BM25, fused by reciprocal rank, filtered, collapsed to hits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from codesearch.embed import Embedder
from codesearch.store import Store, StoredChunk
from codesearch.types import Filters, Hit

# Reciprocal rank fusion: score = sum over rankers of weight / (RRF_K + rank).
RRF_K = 60
VECTOR_WEIGHT = 1.0
LEXICAL_WEIGHT = 1.0
# How deep each ranker is read before fusion.
CANDIDATES = 100
SNIPPET_LINES = 12


@dataclass(frozen=True)
class SearchOptions:
    k: int = 10
    filters: Filters = field(default_factory=Filters)
    snippet_lines: int = SNIPPET_LINES


class Searcher:
    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def search(self, query: str, options: SearchOptions = SearchOptions()) -> list[Hit]:
        return self.search_many([query], options)[0]

    def search_many(
        self, queries: Sequence[str], options: SearchOptions = SearchOptions()
    ) -> list[list[Hit]]:
        """Answer several queries; their embeddings are computed in one batch."""
        texts = [q.strip() for q in queries]
        wanted = [i for i, q in enumerate(texts) if q]
        vectors = self.embedder.embed_queries([texts[i] for i in wanted]) if wanted else []
        by_index = dict(zip(wanted, vectors, strict=True))
        results: list[list[Hit]] = []
        for i, query in enumerate(texts):
            if i not in by_index:
                results.append([])
                continue
            results.append(self._one(query, by_index[i], options))
        return results

    def _one(self, query: str, vector: object, options: SearchOptions) -> list[Hit]:
        depth = max(CANDIDATES, options.k * 4)
        dense = self.store.knn(vector, depth, options.filters)  # type: ignore[arg-type]
        lexical = self.store.bm25(query, depth, options.filters)
        fused = fuse(
            [[cid for cid, _ in dense], [cid for cid, _ in lexical]],
            [VECTOR_WEIGHT, LEXICAL_WEIGHT],
        )
        ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
        chunks = self.store.chunks([cid for cid, _ in ranked[: depth * 2]])
        return collapse(ranked, chunks, options)


def fuse(rankings: Sequence[Sequence[int]], weights: Sequence[float]) -> dict[int, float]:
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, cid in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + weight / (RRF_K + rank)
    return scores


def collapse(
    ranked: Sequence[tuple[int, float]],
    chunks: dict[int, StoredChunk],
    options: SearchOptions,
) -> list[Hit]:
    """Best chunk per symbol (split definitions show once), then the top k as hits."""
    hits: list[Hit] = []
    seen: set[tuple[str, str, str, int, int]] = set()
    for cid, score in ranked:
        stored = chunks.get(cid)
        if stored is None:
            continue
        c = stored.chunk
        # parts of one split definition share path, kind and name; windows have no name,
        # so their own lines keep them apart
        key = (
            (c.path, c.kind, c.name, 0, 0)
            if c.name
            else (c.path, c.kind, "", c.start_line, c.end_line)
        )
        if key in seen:
            continue
        seen.add(key)
        hits.append(
            Hit(
                path=c.path,
                start_line=c.start_line,
                end_line=c.end_line,
                kind=c.kind,
                name=c.name,
                language=c.language,
                score=score,
                snippet=snippet(c.text, options.snippet_lines),
            )
        )
        if len(hits) >= options.k:
            break
    return hits


def snippet(text: str, max_lines: int) -> str:
    lines = text.split("\n")
    if len(lines) <= max_lines:
        return text
    return "\n".join([*lines[:max_lines], "..."])
