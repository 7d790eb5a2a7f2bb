"""The searcher: vector KNN + BM25 (+ a verbatim-phrase bonus), fused, filtered, collapsed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from codesearch.chunk.pieces import PART_MARKER
from codesearch.embed import Embedder
from codesearch.store import Store, StoredChunk
from codesearch.types import Chunk, Filters, Hit

SNIPPET_LINES = 12


@dataclass(frozen=True)
class Fusion:
    """How the vector and BM25 rankings become one.

    mode "score": each ranker's scores min-max normalised over its candidates, then a weighted
    sum; "z": the same with z-scores; "rrf": reciprocal rank fusion, sum of weight / (rrf_k +
    rank). Chunks containing the question verbatim get ``phrase_bonus`` on top. The defaults
    were chosen with benchmarks/tune_fusion.py (numbers in benchmarks/RESULTS.md)."""

    mode: str = "score"
    rrf_k: int = 60
    vector_weight: float = 1.25
    lexical_weight: float = 1.0
    candidates: int = 100  # how deep each ranker is read before fusion
    # added to chunks that contain the question verbatim (a pasted comment or message)
    phrase_bonus: float = 1.0


@dataclass(frozen=True)
class SearchOptions:
    k: int = 10
    filters: Filters = field(default_factory=Filters)
    snippet_lines: int = SNIPPET_LINES


class Searcher:
    def __init__(self, store: Store, embedder: Embedder, fusion: Fusion | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.fusion = fusion or Fusion()

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
        f = self.fusion
        depth = max(f.candidates, options.k * 4)
        dense = self.store.knn(vector, depth, options.filters)  # type: ignore[arg-type]
        lexical = self.store.bm25(query, depth, options.filters)
        if f.mode in ("score", "z"):
            similarity = [(cid, 1.0 - distance) for cid, distance in dense]
            fused = fuse_scores(
                [similarity, lexical], [f.vector_weight, f.lexical_weight], zscore=f.mode == "z"
            )
        else:
            fused = fuse(
                [[cid for cid, _ in dense], [cid for cid, _ in lexical]],
                [f.vector_weight, f.lexical_weight],
                f.rrf_k,
            )
        if f.phrase_bonus:
            for cid in self.store.phrase(query, depth, options.filters):
                fused[cid] = fused.get(cid, 0.0) + f.phrase_bonus
        ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
        chunks = self.store.chunks([cid for cid, _ in ranked[: depth * 2]])
        return collapse(ranked, chunks, options)


def fuse(
    rankings: Sequence[Sequence[int]], weights: Sequence[float], rrf_k: int = 60
) -> dict[int, float]:
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, cid in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + weight / (rrf_k + rank)
    return scores


def fuse_scores(
    rankings: Sequence[Sequence[tuple[int, float]]],
    weights: Sequence[float],
    zscore: bool = False,
) -> dict[int, float]:
    """Weighted sum of each ranker's scores, normalised over its own candidates."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        if not ranking:
            continue
        values = [score for _, score in ranking]
        if zscore:
            mean = sum(values) / len(values)
            std = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5 or 1.0
            low, span = mean, std
        else:
            low = min(values)
            span = max(values) - low or 1.0
        floor = (min(values) - low) / span
        for cid, score in ranking:
            scores[cid] = scores.get(cid, 0.0) + weight * ((score - low) / span - floor)
    return scores


def collapse(
    ranked: Sequence[tuple[int, float]],
    chunks: dict[int, StoredChunk],
    options: SearchOptions,
) -> list[Hit]:
    """Best chunk per symbol (split definitions show once), then the top k as hits."""
    hits: list[Hit] = []
    seen: set[tuple[object, ...]] = set()
    for cid, score in ranked:
        stored = chunks.get(cid)
        if stored is None:
            continue
        c = stored.chunk
        key = _symbol_key(c)
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


def _symbol_key(c: Chunk) -> tuple[object, ...]:
    """Parts of one split definition share a key (their headers differ only in the part
    marker); everything else, overloads included, keeps its own."""
    if c.name and PART_MARKER.search(c.header):
        return (c.path, c.kind, c.name, PART_MARKER.sub("", c.header))
    return (c.path, c.kind, c.name, c.start_line, c.end_line)


def snippet(text: str, max_lines: int) -> str:
    lines = text.split("\n")
    if len(lines) <= max_lines:
        return text
    return "\n".join([*lines[:max_lines], "..."])
