"""Ranking by role: the fused scores of a search re-weighed by what each candidate is
(:mod:`codesearch.roles`): tests below the code they exercise (above it when the question
asks for tests; left out with ``include_tests=False``), changelogs below code, a type stub
folded into its implementation. The weights are :class:`codesearch.search.Fusion`'s."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from codesearch.roles import (
    MARKED_ABOVE,
    Role,
    asks_for_changes,
    asks_for_tests,
    role,
    stub_implementations,
)
from codesearch.store import Store, StoredChunk
from codesearch.types import Filters


class RoleWeights(Protocol):
    """The weights this step reads (:class:`codesearch.search.Fusion` has them)."""

    @property
    def test_weight(self) -> float: ...

    @property
    def asked_test_weight(self) -> float: ...

    @property
    def changelog_weight(self) -> float: ...

    @property
    def stub_weight(self) -> float: ...


class RoleRanker:
    """Re-weighs one answer's candidates (one instance per question)."""

    def __init__(self, store: Store, fusion: RoleWeights) -> None:
        self.store = store
        self.fusion = fusion

    def weigh(
        self,
        query: str,
        fused: dict[int, float],
        filters: Filters,
        chunks: Mapping[int, StoredChunk],
    ) -> dict[int, float]:
        """The fused scores re-weighed by each candidate's role (:mod:`codesearch.roles`):
        tests below code (above it when the question asks for tests; left out with
        ``include_tests=False``), changelogs below code, stubs folded into their code.
        ``chunks``: the candidates' chunks (the caller reads them once, for this and for its
        results)."""
        if not fused:
            return fused
        f = self.fusion
        tests = f.asked_test_weight if asks_for_tests(query) else f.test_weight
        changelogs = 1.0 if asks_for_changes(query) else f.changelog_weight
        kinds = {
            cid: role(s.chunk.path, s.chunk.text, s.chunk.language) for cid, s in chunks.items()
        }
        self._role_of_definition(chunks, kinds)
        scores: dict[int, float] = {}
        stubs: dict[str, list[StoredChunk]] = {}
        for cid, score in fused.items():
            stored = chunks.get(cid)
            kind = kinds.get(cid, Role.CODE)
            if kind is Role.TEST:
                if not filters.include_tests:
                    continue
                score *= tests
            elif kind is Role.CHANGELOG:
                score *= changelogs
            elif kind is Role.STUB and stored is not None:
                stubs.setdefault(stored.chunk.path, []).append(stored)
            scores[cid] = score
        # With a path, language or kind filter the implementation may be filtered out: the
        # stub stays.
        if stubs and replace(filters, include_tests=True) == Filters():
            self._fold_stubs(scores, stubs)
        return scores

    def _role_of_definition(
        self, chunks: Mapping[int, StoredChunk], kinds: dict[int, Role]
    ) -> None:
        """A later part of a split definition is a test when its first part is one (the
        markers, ``#[test]``, ``@Test``, sit above the signature, in the first part only)."""
        later = [
            s.chunk
            for cid, s in chunks.items()
            if kinds[cid] is Role.CODE
            and s.chunk.language in MARKED_ABOVE
            and s.chunk.is_part
            and s.chunk.start_line > s.chunk.def_start
        ]
        if not later:
            return
        tests = {
            key
            for key, parts in self.store.parts_of(later).items()
            if parts and role(parts[0].path, parts[0].text, parts[0].language) is Role.TEST
        }
        for cid, s in chunks.items():
            if (s.chunk.path, s.chunk.def_start, s.chunk.def_end) in tests:
                kinds[cid] = Role.TEST

    def _fold_stubs(self, scores: dict[int, float], stubs: Mapping[str, list[StoredChunk]]) -> None:
        """Each stub chunk gives its score to the implementation's chunk of the same name (the
        better score stays); a stub whose file's implementation is indexed but has no such
        chunk is weighed down; a stub without an indexed implementation stays as it is."""
        for path, items in stubs.items():
            code = next(
                (
                    found
                    for impl in stub_implementations(path)
                    if (found := self.store.all_chunks(impl))
                ),
                None,
            )
            if code is None:
                continue
            by_name: dict[str, int] = {}
            for stored in code:
                if stored.chunk.name:
                    by_name.setdefault(stored.chunk.name, stored.id)
            for stored in items:
                score = scores.pop(stored.id)
                target = by_name.get(stored.chunk.name) if stored.chunk.name else None
                if target is None:
                    scores[stored.id] = score * self.fusion.stub_weight
                else:
                    scores[target] = max(scores.get(target, 0.0), score)
