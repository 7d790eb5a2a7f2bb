"""The indexer: discover -> diff against the store -> chunk -> embed what is new -> store.

Each file's update is one store transaction, so an interrupted run keeps everything it
finished. Vectors are keyed by the content hash of the embedded text: a chunk that did not
change (also after a rename or a revert) is never embedded twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codesearch.chunk import CHUNKER_VERSION, chunk_file
from codesearch.config import Settings
from codesearch.embed import Embedder
from codesearch.paths import in_scope, normalize_scope, read_source, walk
from codesearch.store import Store
from codesearch.types import (
    Chunk,
    FileState,
    IndexStats,
    Progress,
    Skip,
    SourceFile,
    content_hash,
)

# Documents embedded per embedder call: large enough for length-sorted batching to pay off,
# small enough that progress stays smooth and an interrupt loses little.
EMBED_GROUP = 256


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True)
class _Pending:
    state: FileState
    chunks: tuple[Chunk, ...]


def prepare_chunks(path: str, text: str, embedder: Embedder) -> tuple[Chunk, ...]:
    """Chunk a file for this embedder (split to what it reads, counted with its tokenizer).

    The model does not see the file path: with it, a rename would re-embed the file, and it
    measured mixed (benchmarks/RESULTS.md); BM25 indexes the path instead."""
    return tuple(
        chunk_file(path, text, max_tokens=embedder.max_tokens, count_tokens=embedder.count_tokens)
    )


class Indexer:
    def __init__(
        self,
        root: Path,
        store: Store,
        embedder: Embedder,
        settings: Settings,
        progress: ProgressFn | None = None,
        *,
        before_embed: Callable[[], None] | None = None,
        embed_group: int = EMBED_GROUP,
    ) -> None:
        """``before_embed`` is called right before every embedder call (a daemon yields to
        queries there); ``embed_group`` is how many new chunks go to one embedder call."""
        self.root = root
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.progress = progress
        self.before_embed = before_embed
        self.embed_group = max(1, embed_group)
        self._started = 0.0
        self._files_total = 0
        self._files_done = 0
        self._embedded = 0
        self._reused = 0
        self._files_written = 0
        self._files_touched = 0  # stat changed, content did not

    def run(self, scope: Collection[str] | None = None) -> IndexStats:
        """Bring the index up to date: the whole repository, or with a ``scope``
        (repository-relative paths, see :func:`codesearch.paths.walk`) only what lies in it,
        with the same decisions a full run makes; files outside the scope are untouched."""
        self._started = time.monotonic()
        rebuilt = self.store.configure(
            model_id=self.embedder.model_id,
            dim=self.embedder.dim,
            chunker_version=CHUNKER_VERSION,
        )
        roots = None if scope is None else normalize_scope(scope)
        found = walk(self.root, self.settings, roots)
        known = self.store.file_states()
        skipped: list[Skip] = list(found.skipped)
        todo = [f for f in found.files if not _unchanged(f, known.get(f.path))]
        self._files_total = len(todo)
        self._report()

        pending: list[_Pending] = []
        pending_new = 0
        for source in todo:
            item, skip = self._read(source, known.get(source.path))
            self._files_done += 1
            if skip is not None:
                skipped.append(skip)
                continue
            if item is None:
                self._report()
                continue
            pending.append(item)
            pending_new += len(item.chunks)
            if pending_new >= self.embed_group:
                self._flush(pending)
                pending, pending_new = [], 0
        self._flush(pending)

        present = {f.path for f in found.files} - {s.path for s in skipped}
        candidates = known if roots is None else [p for p in known if in_scope(p, roots)]
        removed = [p for p in candidates if p not in present]
        for path in removed:
            self.store.remove_file(path)
        counts = self.store.stats()
        self.store.prune_orphan_vectors(keep=max(2000, counts["vectors"] // 4))
        self._report()
        return IndexStats(
            files_seen=len(found.files),
            files_indexed=self._files_written,
            files_unchanged=len(found.files) - self._files_total + self._files_touched,
            files_removed=len(removed),
            chunks_total=counts["chunks"],
            chunks_embedded=self._embedded,
            chunks_reused=self._reused,
            skipped=tuple(skipped),
            seconds=time.monotonic() - self._started,
            rebuilt=rebuilt,
        )

    def _read(
        self, source: SourceFile, old: FileState | None
    ) -> tuple[_Pending | None, Skip | None]:
        text, skip = read_source(self.root, source.path, self.settings)
        if text is None:
            return None, skip
        digest = content_hash(text)
        state = FileState(source.path, source.size, source.mtime_ns, digest)
        if old is not None and old.content_hash == digest:
            # Touched but not changed: refresh the stat fields; its chunks stand as they are.
            self.store.touch_file(state)
            self._files_touched += 1
            return None, None
        return _Pending(state, prepare_chunks(source.path, text, self.embedder)), None

    def _flush(self, pending: Sequence[_Pending]) -> None:
        if not pending:
            return
        hashes = {c.content_hash: c for p in pending for c in p.chunks}
        have = self.store.has_vectors(hashes)
        missing = [h for h in hashes if h not in have]
        vectors: dict[str, np.ndarray] = {}
        if missing:
            if self.before_embed is not None:
                self.before_embed()
            matrix = self.embedder.embed_documents([hashes[h].embed_text() for h in missing])
            vectors = dict(zip(missing, matrix, strict=True))
        self._embedded += len(missing)
        self._reused += sum(len(p.chunks) for p in pending) - len(missing)
        for item in pending:
            needed = {
                c.content_hash: vectors[c.content_hash]
                for c in item.chunks
                if c.content_hash in vectors
            }
            self.store.replace_file(item.state, item.chunks, needed)
            self._files_written += 1
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(
                Progress(
                    files_done=self._files_done,
                    files_total=self._files_total,
                    chunks_embedded=self._embedded,
                    elapsed=time.monotonic() - self._started,
                )
            )


def _unchanged(source: SourceFile, old: FileState | None) -> bool:
    return old is not None and old.size == source.size and old.mtime_ns == source.mtime_ns
