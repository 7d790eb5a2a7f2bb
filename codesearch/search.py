"""The searcher: vector KNN + BM25 (+ a verbatim-phrase bonus), fused, filtered, collapsed.

Task routing: with a backend that has task adapters (jina-v4) and an index whose vectors were
embedded for tasks ("code", "retrieval"), each question is embedded once per task present
(one call per task for all questions of ``search_many``), KNN runs per task, and the dense
candidates are merged by cosine similarity, each chunk scored by its own task's question
vector. A backend without tasks takes the plain path: one question vector, one KNN.

Re-ranking (``SearchOptions.rerank``, multi-vector backends only): the top ``rerank`` results
are re-scored by late interaction (MaxSim) between the question's token vectors and the
chunk's, both for the chunk's task, and re-ordered; the rest follow in their fused order.
The score is MaxSim divided by the question's token count (the mean over question tokens of
the best document token's cosine, in [-1, 1]); it orders the same as the unnormalised sum,
and a reranked hit reports it as its score (so with ``rerank >= k`` every score is a MaxSim).

The chunks' token vectors are recomputed at query time from their embed text, not stored:
jina-v4 gives one 128-dim vector per token, so a typical chunk of ~200 tokens would need
200 x 128 x 2 B = 51,200 B (50 KiB) at float16, or 25,600 B (25 KiB, plus a scale per token)
at int8, against 8 KiB for its single 2048-dim float32 vector (4 KiB at 1024 dims): 6.25x
(float16) or 3.1x (int8) the whole vector index, i.e. +5.1 GB or +2.6 GB for 100k chunks,
written on every re-index, for a feature that is opt-in and per question reads only
``rerank`` chunks. The price is one forward pass over ``rerank`` x ~200 tokens per question.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from codesearch.chunk.pieces import PART_MARKER
from codesearch.embed import Embedder
from codesearch.embed.base import PICTURE_TASK, document_task, embedder_tasks
from codesearch.embed.remote import RemoteUnavailable
from codesearch.store import Store, StoredChunk
from codesearch.types import IMAGE_TASK, BadInput, Chunk, Filters, Hit

SNIPPET_LINES = 12
log = logging.getLogger(__name__)


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
    # > 0: re-score the top `rerank` results by late interaction (needs a multi-vector model)
    rerank: int = 0


class Searcher:
    def __init__(self, store: Store, embedder: Embedder, fusion: Fusion | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.fusion = fusion or Fusion()
        # why the last search_many ran on keywords only ("" when it did not): the embedding
        # server was unreachable, so questions could not be embedded
        self.outage = ""

    def search(self, query: str, options: SearchOptions = SearchOptions()) -> list[Hit]:
        return self.search_many([query], options)[0]

    def search_many(
        self, queries: Sequence[str], options: SearchOptions = SearchOptions()
    ) -> list[list[Hit]]:
        """Answer several queries; their embeddings are computed in one batch (per task)."""
        self._check_rerank(options)
        texts = [q.strip() for q in queries]
        wanted = [i for i, q in enumerate(texts) if q]
        asked = [texts[i] for i in wanted]
        routes = self._routes() if wanted else None
        by_index: dict[int, dict[str | None, np.ndarray]]
        self.outage = ""
        try:
            if routes is None:
                vectors = self.embedder.embed_queries(asked) if wanted else []
                by_index = {i: {None: v} for i, v in zip(wanted, vectors, strict=True)}
            else:
                per_task = {task: self._embed_queries(asked, task) for task in routes}
                by_index = {i: {t: per_task[t][j] for t in routes} for j, i in enumerate(wanted)}
        except RemoteUnavailable as exc:  # keyword (BM25) search over what is indexed
            self.outage = str(exc)
            log.info("%s: searching by keywords only", exc)
            by_index = {i: {} for i in wanted}
        results: list[list[Hit]] = []
        for i, query in enumerate(texts):
            if i not in by_index:
                results.append([])
                continue
            results.append(self._one(query, by_index[i], options))
        return results

    def _check_rerank(self, options: SearchOptions) -> None:
        if options.rerank < 0:
            raise BadInput(f"rerank must be 0 (off) or a number of results, not {options.rerank}")
        if options.rerank and not callable(getattr(self.embedder, "embed_multivector", None)):
            raise BadInput(
                "re-ranking needs a multi-vector model such as jina-v4 "
                f"(this index uses {self.embedder.model_id})"
            )

    def _routes(self) -> list[str] | None:
        """The tasks to embed each question for; None for the plain path (a backend without
        tasks, or an index without task vectors)."""
        tasks = embedder_tasks(self.embedder)
        if not tasks:
            return None
        present = [
            t
            for t in self.store.tasks()
            if t == "" or t in tasks or (t == IMAGE_TASK and PICTURE_TASK in tasks)
        ]
        return present if present and present != [""] else None

    def _embed_queries(self, texts: Sequence[str], task: str) -> np.ndarray:
        # task "": vectors from before task routing, embedded with the backend's default task
        if task == IMAGE_TASK:
            task = PICTURE_TASK
        return self.embedder.embed_queries(texts, task=task or None)  # type: ignore[call-arg]

    def _dense(
        self, vectors: Mapping[str | None, np.ndarray], depth: int, filters: Filters
    ) -> list[tuple[int, float]]:
        """KNN per task, merged by distance (each chunk against its own task's question)."""
        if len(vectors) == 1:
            # One task (or none): every live vector is of it, so no need to restrict the scan.
            (vector,) = vectors.values()
            return self.store.knn(vector, depth, filters)
        merged = [
            hit
            for task, vector in vectors.items()
            for hit in self.store.knn(vector, depth, filters, task=task)
        ]
        merged.sort(key=lambda hit: (hit[1], hit[0]))
        return merged[:depth]

    def _one(
        self, query: str, vectors: Mapping[str | None, np.ndarray], options: SearchOptions
    ) -> list[Hit]:
        f = self.fusion
        depth = max(f.candidates, options.k * 4)
        dense = self._dense(vectors, depth, options.filters)
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
        if options.rerank > 0:
            ranked = self._rerank(query, ranked, chunks, options.rerank)
        return self.with_references(collapse(ranked, chunks, options))

    def with_references(self, hits: list[Hit]) -> list[Hit]:
        """Pictures list the documents that reference them."""
        shown = [h.path for h in hits if h.media is not None]
        if not shown:
            return hits
        refs = self.store.refs_to(shown)
        return [
            replace(h, referenced_by=tuple(dict.fromkeys(r.doc_path for r in refs[h.path])))
            if h.media is not None and h.path in refs
            else h
            for h in hits
        ]

    def _rerank(
        self,
        query: str,
        ranked: Sequence[tuple[int, float]],
        chunks: Mapping[int, StoredChunk],
        n: int,
    ) -> list[tuple[int, float]]:
        """The first ``n`` results (one chunk per symbol, as :func:`collapse` shows them)
        re-scored by normalised MaxSim and re-ordered; everything else after, in order."""
        head: list[tuple[int, float]] = []
        rest: list[tuple[int, float]] = []
        seen: set[tuple[object, ...]] = set()
        for cid, score in ranked:
            stored = chunks.get(cid)
            key = None if stored is None else symbol_key(stored.chunk)
            if stored is not None and stored.chunk.media is not None:
                rest.append((cid, score))  # a picture has no token vectors to compare
                continue
            if len(head) < n and stored is not None and key not in seen:
                seen.add(key)
                head.append((cid, score))
            else:
                rest.append((cid, score))
        by_task: dict[str, list[int]] = {}
        for pos, (cid, _) in enumerate(head):
            by_task.setdefault(document_task(self.embedder, chunks[cid].chunk), []).append(pos)
        embed = self.embedder.embed_multivector  # type: ignore[attr-defined]
        scores = np.zeros(len(head), dtype=np.float64)
        for task, positions in by_task.items():
            question = embed([query], task or None, query=True)[0]
            docs = embed([chunks[head[p][0]].chunk.embed_text() for p in positions], task or None)
            scores[positions] = late_interaction(question, docs)
        order = sorted(range(len(head)), key=lambda p: (-scores[p], p))
        return [(head[p][0], float(scores[p])) for p in order] + rest


def late_interaction(query: np.ndarray, docs: Sequence[np.ndarray]) -> np.ndarray:
    """Normalised MaxSim of one question against each document: for each question token the
    best document token's dot product, averaged over the question's tokens (``jina.maxsim``
    divided by the question's token count), as float64. An empty side scores 0."""
    q = np.asarray(query, dtype=np.float32)
    out = np.zeros(len(docs), dtype=np.float64)
    lengths = np.array([len(d) for d in docs], dtype=np.int64)
    keep = np.flatnonzero(lengths > 0)
    if q.size == 0 or not len(keep):
        return out
    stacked = np.concatenate([np.asarray(docs[i], dtype=np.float32) for i in keep])
    starts = np.concatenate(([0], np.cumsum(lengths[keep])[:-1]))
    best = np.maximum.reduceat(q @ stacked.T, starts, axis=1)  # (question tokens, docs)
    out[keep] = best.sum(axis=0, dtype=np.float64) / len(q)
    return out


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
        key = symbol_key(c)
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
                media=c.media,
            )
        )
        if len(hits) >= options.k:
            break
    return hits


def symbol_key(c: Chunk) -> tuple[object, ...]:
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
