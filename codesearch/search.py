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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from codesearch.chunk.pieces import PART_MARKER
from codesearch.embed import Embedder, EmbedderUnavailable
from codesearch.embed.base import PICTURE_TASK
from codesearch.role_rank import RoleRanker
from codesearch.store import Store, StoredChunk
from codesearch.types import IMAGE_TASK, BadInput, Chunk, Filters, Hit

SNIPPET_LINES = 12
log = logging.getLogger(__name__)

# Best cosine similarity (question vs. nearest chunk) below which no answer is a good match, per
# model (its id as the index records it). Calibrated by benchmarks/calibrate_confidence.py:
# hand-written questions asked against another corpus (the answer is absent) vs. their own.
# MiniLM at 0.40, unstripped trees: 203 of 288 absent-answer pairs flagged, 1 of 54 questions
# whose answer was in the top 10 (none of the 25 with a right top hit); stripped: 208/288, 1/39.
# minilm-code at 0.36: 156/288 absent flagged, 0 of 56 found (benchmarks/results/).
CONFIDENT_SIMILARITY: dict[str, float] = {
    "minilm:all-MiniLM-L6-v2": 0.40,
    "minilm-code:all-MiniLM-L6-v2+lora-39f6b94b87": 0.36,  # the shipped code adapter
}


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
    # Roles (codesearch.roles): a test's fused score is multiplied by test_weight, or by
    # asked_test_weight when the question asks for tests; a changelog's by changelog_weight
    # (unless the question is about changes); a type stub (.pyi, .d.ts) whose implementation
    # is indexed gives its score to the implementation's chunk of the same name, or, without
    # one, is multiplied by stub_weight.
    # (0.35: a test whose name says the question verbatim, phrase bonus and all, still
    # lands below a fair match of the implementation)
    test_weight: float = 0.35
    asked_test_weight: float = 1.5
    changelog_weight: float = 0.35
    stub_weight: float = 0.5
    # The "good match" bar: an answer whose best cosine similarity (dense ranking) is below it
    # is flagged not confident. None: the model's value in CONFIDENT_SIMILARITY (no flag for a
    # model that has none).
    confident_similarity: float | None = None


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
        except EmbedderUnavailable as exc:  # keyword (BM25) search over what is indexed
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
        if options.rerank and not self.embedder.supports_multivector:
            raise BadInput(
                "re-ranking needs a multi-vector model such as jina-v4 "
                f"(this index uses {self.embedder.model_id})"
            )

    def _routes(self) -> list[str] | None:
        """The tasks to embed each question for; None for the plain path (a backend without
        tasks, or an index without task vectors)."""
        tasks = self.embedder.tasks
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
        return self.embedder.embed_queries(texts, task=task or None)

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

    def _confident(self, dense: Sequence[tuple[int, float]]) -> bool:
        """Whether the answer has a good match: the best cosine similarity of the dense
        ranking reaches the model's calibrated bar (no bar, or no dense ranking: True)."""
        bar = self.fusion.confident_similarity
        if bar is None:
            bar = CONFIDENT_SIMILARITY.get(self.embedder.model_id)
        if bar is None or not dense:
            return True
        return 1.0 - min(distance for _, distance in dense) >= bar

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
        chunks = self.store.chunks(list(fused))  # read once: for the roles and the results
        fused = RoleRanker(self.store, self.fusion).weigh(query, fused, options.filters, chunks)
        confident = self._confident(dense)
        ranked = sorted(fused.items(), key=lambda item: (-item[1], *_place(chunks, item[0])))
        # a stub's score may have gone to its implementation, which was no candidate
        unread = [cid for cid, _ in ranked[: depth * 2] if cid not in chunks]
        if unread:
            chunks = {**chunks, **self.store.chunks(unread)}
        if options.rerank > 0:
            ranked = self._rerank(query, ranked, chunks, options.rerank)
        hits = self.with_references(collapse(ranked, chunks, options, self.store.parts_of))
        return hits if confident else [replace(h, confident=False) for h in hits]

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
            by_task.setdefault(self.embedder.document_task(chunks[cid].chunk), []).append(pos)
        embed = self.embedder.embed_multivector
        scores = np.zeros(len(head), dtype=np.float64)
        for task, positions in by_task.items():
            question = embed([query], task=task or None, query=True)[0]
            texts = [chunks[head[p][0]].chunk.embed_text() for p in positions]
            docs = embed(texts, task=task or None)
            scores[positions] = late_interaction(question, docs)
        order = sorted(range(len(head)), key=lambda p: (-scores[p], p))
        return [(head[p][0], float(scores[p])) for p in order] + rest


def late_interaction(query: np.ndarray, docs: Sequence[np.ndarray]) -> np.ndarray:
    """Normalised MaxSim of one question against each document: for each question token the
    best document token's dot product, averaged over the question's tokens (jina's ``maxsim``
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


PartsReader = Callable[[Sequence[Chunk]], Mapping[tuple[str, int, int], Sequence[Chunk]]]


def collapse(
    ranked: Sequence[tuple[int, float]],
    chunks: Mapping[int, StoredChunk],
    options: SearchOptions,
    parts_of: PartsReader | None = None,
) -> list[Hit]:
    """Best chunk per symbol (split definitions show once), then the top k as hits.

    A part of a split definition is reported as its definition (``parts_of`` reads the other
    parts: ``Store.parts_of``), the part's own lines as ``match_start``/``match_end``."""
    picked: list[tuple[Chunk, float]] = []
    seen: set[tuple[object, ...]] = set()
    for cid, score in ranked:
        stored = chunks.get(cid)
        if stored is None:
            continue
        key = symbol_key(stored.chunk)
        if key in seen:
            continue
        seen.add(key)
        picked.append((stored.chunk, score))
        if len(picked) >= options.k:
            break
    wholes = parts_of([c for c, _ in picked]) if parts_of is not None else {}
    return [
        to_hit(c, score, options.snippet_lines, wholes.get((c.path, c.def_start, c.def_end)))
        for c, score in picked
    ]


def to_hit(c: Chunk, score: float, snippet_lines: int, parts: Sequence[Chunk] | None) -> Hit:
    """One chunk as a hit: a part with its definition's other ``parts`` becomes the whole
    definition (lines and snippet), the part's lines marked as the match."""
    start, end, text = c.start_line, c.end_line, c.text
    match = (0, 0)
    whole = definition_text(c, parts) if c.is_part and parts else None
    if whole is not None:
        start, end = c.definition
        text = whole
        match = (c.start_line, c.end_line)
    return Hit(
        path=c.path,
        start_line=start,
        end_line=end,
        kind=c.kind,
        name=c.name,
        language=c.language,
        score=score,
        snippet=snippet(text, snippet_lines),
        media=c.media,
        match_start=match[0],
        match_end=match[1],
    )


def definition_text(c: Chunk, parts: Sequence[Chunk]) -> str | None:
    """The source of the definition ``c`` is a part of, put together from its parts (blank
    lines between parts restored); None when the parts do not cover its first line."""
    start, end = c.definition
    rows = [""] * (end - start + 1)
    covered = False
    for part in parts:
        for offset, line in enumerate(part.text.split("\n")):
            row = part.start_line - start + offset
            if 0 <= row < len(rows):
                rows[row] = line
                covered = covered or row == 0
    return "\n".join(rows) if covered else None


def symbol_key(c: Chunk) -> tuple[object, ...]:
    """Parts of one split definition share a key (their definition's lines; in an index from
    before those were stored, their headers without the part marker); everything else,
    overloads included, keeps its own."""
    if c.is_part:
        return (c.path, c.kind, c.name, "def", c.def_start, c.def_end)
    if c.name and PART_MARKER.search(c.header):
        return (c.path, c.kind, c.name, PART_MARKER.sub("", c.header))
    return (c.path, c.kind, c.name, c.start_line, c.end_line)


def snippet(text: str, max_lines: int) -> str:
    lines = text.split("\n")
    if len(lines) <= max_lines:
        return text
    return "\n".join([*lines[:max_lines], "..."])


def _place(chunks: Mapping[int, StoredChunk], cid: int) -> tuple[str, int, int, int]:
    """Where a chunk is (path, lines), the order among results of equal score: an index
    updated by edits, whose chunk ids differ, ranks exactly as a fresh one."""
    found = chunks.get(cid)
    if found is None:
        return ("\U0010ffff", 0, 0, cid)
    chunk = found.chunk
    return (chunk.path, chunk.start_line, chunk.end_line, cid)
