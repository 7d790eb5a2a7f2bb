"""The indexer: discover -> diff against the store -> chunk -> embed what is new -> store.

Each file's update is one store transaction, so an interrupted run keeps everything it
finished. Vectors are keyed by the content hash of the embedded text (and, for a backend with
task adapters, the task: see ``types.vector_key``): a chunk that did not change (also after a
rename or a revert) is never embedded twice.

Task routing (jina-v4): each chunk is embedded for ``Embedder.document_task`` ("code", or
"retrieval" for prose); the chunks that need vectors are embedded in one call per task.

Pictures (:mod:`codesearch.pictures`) are indexed after the text files of a run, because a
picture's description is what the documents that reference it say: a document whose
references changed has its pictures described again (their pixel vectors, keyed by the
picture's hash, are reused). A multimodal backend embeds them from their pixels.

Late chunking (``Settings.late_chunking``, a backend that supports it: jina-v4): the
text chunks of a file are embedded together from one encoding of the whole file, each chunk
pooled over its own source lines (its header is left out: the file around it is its context).
Such a vector depends on the whole file, so its key (:func:`late_vector_key`) holds the file's
hash: a changed file is encoded once and every one of its chunks gets a new vector, in the
file's one transaction. Pictures keep per-chunk vectors. A backend without late chunking
(MiniLM, remote, fake) with the option on is an error before anything is touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codesearch import credentials, pictures
from codesearch.chunk import CHUNKER_VERSION, chunk_file
from codesearch.config import Settings
from codesearch.embed import Embedder
from codesearch.paths import in_scope, normalize_scope, read_source, walk
from codesearch.safe_read import Refused
from codesearch.store import Store
from codesearch.store.writer_lock import writer_lock
from codesearch.types import (
    IMAGE_TASK,
    BadInput,
    Chunk,
    FileState,
    ImageRef,
    IndexStats,
    Progress,
    Skip,
    SourceFile,
    content_hash,
    vector_key,
)

# Documents embedded per embedder call: large enough for length-sorted batching to pay off,
# small enough that progress stays smooth and an interrupt loses little.
EMBED_GROUP = 256
# Pictures rendered and embedded per embedder call (each is up to the backend's pixel budget).
IMAGE_GROUP = 8


ProgressFn = Callable[[Progress], None]


class Cancelled(Exception):
    """Raised by a ``before_embed`` hook to stop a run before its next embedder call: the run
    returns at once (``IndexStats.cancelled``), keeping the files it finished."""


class IndexInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, with how many files of the run are kept in the index (each file is
    one transaction: a file is in the index whole, or as it was before)."""

    def __init__(self, files_kept: int) -> None:
        super().__init__(files_kept)
        self.files_kept = files_kept


@dataclass(frozen=True)
class _Pending:
    state: FileState
    chunks: tuple[Chunk, ...]
    refs: tuple[ImageRef, ...] = ()  # a document's references to pictures
    text: str = ""  # a text file's content (late chunking encodes it whole)


# Vectors no chunk uses any more are kept for a while, so that a revert, a rename or a return
# to a branch reuses them without embedding: the most recently orphaned ones, up to a
# twentieth of the index (at least 64). More would grow a repository's index under edits.
ORPHAN_RESERVE_SHARE = 20
ORPHAN_RESERVE_MIN = 64


def index_rules(settings: Settings) -> str:
    """What decided which chunks an index holds: the chunker's version, and the secret filter's
    (or ``all`` with ``include_secrets``). Recorded as the index's ``chunker_version``: a
    change re-reads and re-chunks every file once, reusing every vector."""
    secrets = "all" if settings.include_secrets else credentials.RULES_VERSION
    return f"{CHUNKER_VERSION}+secrets-{secrets}"


def orphan_reserve(chunks: int) -> int:
    """How many orphan vectors an index of ``chunks`` chunks keeps after a run."""
    return max(ORPHAN_RESERVE_MIN, chunks // ORPHAN_RESERVE_SHARE)


def prepare_chunks(path: str, text: str, embedder: Embedder) -> tuple[Chunk, ...]:
    """Chunk a file for this embedder (split to what it reads, counted with its tokenizer).

    The model does not see the file path: with it, a rename would re-embed the file, and it
    measured mixed (benchmarks/RESULTS.md); BM25 indexes the path instead."""
    return tuple(
        chunk_file(path, text, max_tokens=embedder.max_tokens, count_tokens=embedder.count_tokens)
    )


def late_vector_key(file_hash: str, chunk: Chunk, task: str, variant: str) -> str:
    """The key of ``chunk``'s late-chunked vector: "late" + the hash of the backend's windowing
    (``variant``), the file's hash, the chunk's lines and text, behind the task like every key
    (``types.vector_key``). 68 characters: no text hash (64 hex digits) can equal it, so a
    late vector is never taken for a per-chunk one, nor the other way round."""
    material = "\0".join(
        (variant, file_hash, f"{chunk.start_line}-{chunk.end_line}", chunk.content_hash)
    )
    return vector_key("late" + content_hash(material), task)


def char_spans(text: str, chunks: Sequence[Chunk]) -> list[tuple[int, int]]:
    """Each chunk's source lines as character offsets [begin, end) into ``text``: from the
    start of its first line to the end of its last (without the line break, or the "\r" the
    chunker strips)."""
    starts = [0]
    for line in text.split("\n"):
        starts.append(starts[-1] + len(line) + 1)
    spans = []
    for chunk in chunks:
        last = chunk.end_line - 1
        end = starts[last + 1] - 1
        if end > starts[last] and text[end - 1] == "\r":
            end -= 1
        spans.append((starts[chunk.start_line - 1], min(end, len(text))))
    return spans


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
        on_wait: Callable[[], None] | None = None,
    ) -> None:
        """``before_embed`` is called right before every embedder call (a daemon yields to
        queries there); ``embed_group`` is how many new chunks go to one embedder call (at least
        the embedder's ``preferred_group``). ``on_wait`` is called once when another process is
        writing this index (the run waits for it: one writer per index)."""
        self.root = root
        self.on_wait = on_wait
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.progress = progress
        self.before_embed = before_embed
        self.embed_group = max(1, embed_group, embedder.preferred_group)
        self._started = 0.0
        self._files_total = 0
        self._files_done = 0
        self._embedded = 0
        self._reused = 0
        self._files_written = 0
        self._files_touched = 0  # stat changed, content did not
        self._pixels = embedder.supports_images  # pictures embedded from their pixels
        self._redescribe: set[str] = set()  # pictures whose references changed in this run
        self._skipped: list[Skip] = []  # files left out
        self._partial: list[Skip] = []  # parts left out of files that are indexed
        self._late = ""  # late chunking on: the backend's late_chunking_id (else "")
        self._known: dict[str, FileState] | None = None  # the index's files as the run began

    def run(self, scope: Collection[str] | None = None) -> IndexStats:
        """Bring the index up to date: the whole repository, or with a ``scope``
        (repository-relative paths, see :func:`codesearch.paths.walk`) only what lies in it,
        with the same decisions a full run makes; files outside the scope are untouched.
        A run that had to wipe the index (``rebuilt``) covers the whole repository.

        A ``before_embed`` hook that raises :class:`Cancelled` stops it before the next
        embedder call: the stats say ``cancelled``, ``files_indexed`` being the files kept.
        Ctrl-C raises :class:`IndexInterrupted` with that count."""
        self._started = time.monotonic()
        self._known = None
        try:
            # one writer per index: another process's run goes first
            path, hook = self.store.path, self.before_embed
            with writer_lock(path, on_wait=self.on_wait, while_waiting=hook):
                return self._run(scope)
        except Cancelled:
            return IndexStats(
                files_indexed=self._files_kept(),
                chunks_embedded=self._embedded,
                seconds=time.monotonic() - self._started,
                cancelled=True,
            )
        except KeyboardInterrupt:
            raise IndexInterrupted(self._files_kept()) from None

    def _files_kept(self) -> int:
        """Files this run wrote that are in the index now (new content, read from the store:
        exact even when the run stopped in the middle of a file's transaction)."""
        if self._known is None:  # stopped before it read the index: nothing written yet
            return 0
        known = self._known
        now = self.store.file_states()
        return sum(
            1
            for path, state in now.items()
            if (old := known.get(path)) is None or old.content_hash != state.content_hash
        )

    def _run(self, scope: Collection[str] | None) -> IndexStats:
        self._late = self._late_variant()
        rebuilt = self.store.configure(
            model_id=self.embedder.model_id,
            dim=self.embedder.dim,
            chunker_version=index_rules(self.settings),
            late_chunking=bool(self._late),
        )
        if self.embedder.tasks and "" in self.store.tasks():
            # Built by this model before task routing: re-read and re-embed every file.
            self.store.forget_files()
            rebuilt = True
        if rebuilt:
            scope = None  # every file was forgotten, not only the scope's
        roots = None if scope is None else normalize_scope(scope)
        found = walk(self.root, self.settings, roots)
        known = self._known = self.store.file_states()
        self._skipped = list(found.skipped)
        self._partial = []
        todo = [f for f in found.files if not _unchanged(f, known.get(f.path))]
        self._files_total = len(todo)
        self._report()

        self._redescribe = set()
        self._index([f for f in todo if not pictures.is_visual(f.path)], known)
        candidates = known if roots is None else [p for p in known if in_scope(p, roots)]
        listed = {f.path for f in found.files}
        for path in candidates:  # documents gone: their pictures lose those descriptions
            if path not in listed and pictures.is_document(path):
                self._redescribe.update(ref.target for ref in self.store.refs_from(path))
                self.store.remove_file(path)
        # Pictures last: their descriptions read the references just written.
        todo_paths = {f.path for f in todo}
        described = [
            source
            for path in sorted(self._redescribe - todo_paths)
            if path in known and (source := self._source(path)) is not None
        ]
        self._files_total += len(described)
        self._index([f for f in todo if pictures.is_visual(f.path)] + described, known)

        skipped = self._skipped + self._partial
        present = listed - {s.path for s in self._skipped}
        removed = [p for p in candidates if p not in present]
        for path in removed:
            self.store.remove_file(path)
        counts = self.store.stats()
        self.store.prune_orphan_vectors(keep=orphan_reserve(counts["chunks"]))
        self._report()
        return IndexStats(
            files_seen=len(present),  # listed and readable
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

    def _late_variant(self) -> str:
        """The backend's late-chunking id when the option is on; a clear error when the backend
        cannot late-chunk (nothing is touched yet)."""
        if not self.settings.late_chunking:
            return ""
        if not self.embedder.supports_late_chunking:
            raise BadInput(
                f"late_chunking is on but {self.embedder.model_id} cannot encode whole files "
                "(it needs a long-context backend: --model jina-v4); turn it off "
                "(late_chunking = false, CODESEARCH_LATE_CHUNKING=0)"
            )
        return self.embedder.late_chunking_id

    def _index(self, sources: Sequence[SourceFile], known: dict[str, FileState]) -> None:
        """Read, chunk, embed and store ``sources``, a group of new chunks at a time."""
        pending: list[_Pending] = []
        pending_new = 0
        for source in sources:
            item, skip = self._read(source, known.get(source.path))
            self._files_done += 1
            if skip is not None:
                self._skipped.append(skip)
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

    def _read(
        self, source: SourceFile, old: FileState | None
    ) -> tuple[_Pending | None, Skip | None]:
        if pictures.is_visual(source.path):
            return self._read_picture(source, old)
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
        refs = pictures.document_refs(source.path, text)
        # only a document (by its extension) can have recorded references: no query otherwise
        known = old is not None and pictures.is_document(source.path)
        before = set(self.store.refs_from(source.path)) if known else set()
        if before != set(refs):
            self._redescribe.update(ref.target for ref in before.symmetric_difference(refs))
        chunks = prepare_chunks(source.path, text, self.embedder)
        return _Pending(state, chunks, refs, text if self._late else ""), None

    def _read_picture(
        self, source: SourceFile, old: FileState | None
    ) -> tuple[_Pending | None, Skip | None]:
        """A picture file's chunks: described again when its references changed, re-read
        when its bytes did."""
        try:
            digest = pictures.file_digest(source.abs_path)
        except Refused as exc:
            return None, Skip(source.path, exc.reason, exc.detail)
        except OSError as exc:
            return None, Skip(source.path, "unreadable", exc.strerror or str(exc))
        state = FileState(source.path, source.size, source.mtime_ns, digest)
        unchanged = old is not None and old.content_hash == digest
        if unchanged and source.path not in self._redescribe:
            self.store.touch_file(state)
            self._files_touched += 1
            return None, None
        visuals, skips = pictures.read_picture(self.root, source.path, self.settings)
        if not visuals:
            return None, skips[0] if skips else Skip(source.path, "corrupt-image")
        self._partial.extend(skips)  # e.g. the pages of a PDF beyond the page limit
        refs = self.store.refs_to([source.path]).get(source.path, [])
        return _Pending(state, tuple(pictures.describe(self.root, v, refs) for v in visuals)), None

    def _source(self, path: str) -> SourceFile | None:
        """An indexed picture to describe again (it may lie outside a scoped run's scope);
        None when it is gone (the run that sees it gone removes it)."""
        full = self.root / path
        try:
            st = full.stat()
        except OSError:
            return None
        return SourceFile(path, full, st.st_size, st.st_mtime_ns)

    def _task(self, chunk: Chunk) -> str:
        """The task ``chunk`` is embedded for: a picture's pixels on a multimodal backend."""
        if chunk.media is not None and self._pixels:
            return IMAGE_TASK
        return self.embedder.document_task(chunk)

    def _embed_pictures(
        self, chunks: Sequence[Chunk], failed: dict[str, Skip]
    ) -> list[np.ndarray | None]:
        """Pixel vectors of picture chunks, a few at a time; None (and a ``failed`` entry) for
        a picture that can no longer be read."""
        limit = pictures.pixel_limit(self.embedder.max_image_pixels)
        out: list[np.ndarray | None] = []
        for start in range(0, len(chunks), IMAGE_GROUP):
            group = chunks[start : start + IMAGE_GROUP]
            images, where = [], []
            for i, chunk in enumerate(group):
                try:
                    images.append(pictures.pixels(self.root, chunk, limit))
                    where.append(i)
                except BadInput as exc:
                    failed[chunk.path] = Skip(chunk.path, "corrupt-image", str(exc))
            vectors: list[np.ndarray | None] = [None] * len(group)
            if images:
                if self.before_embed is not None:
                    self.before_embed()
                matrix = self.embedder.embed_images(images, task=pictures.PICTURE_TASK)
                for i, row in zip(where, matrix, strict=True):
                    vectors[i] = row
            out.extend(vectors)
        return out

    def _is_late(self, chunk: Chunk, task: str) -> bool:
        """Whether ``chunk`` is late-chunked: the option is on and it is text, not a picture."""
        return bool(self._late) and chunk.media is None and task != IMAGE_TASK

    def _keys(self, item: _Pending, tasks: Sequence[str]) -> list[str]:
        return [
            late_vector_key(item.state.content_hash, c, task, self._late)
            if self._is_late(c, task)
            else c.vector_key(task)
            for c, task in zip(item.chunks, tasks, strict=True)
        ]

    def _flush(self, pending: Sequence[_Pending]) -> None:
        if not pending:
            return
        tasks = {id(p): [self._task(c) for c in p.chunks] for p in pending}
        keys = {id(p): self._keys(p, tasks[id(p)]) for p in pending}
        wanted: dict[str, tuple[str, Chunk]] = {}  # vector key -> (task, a chunk with it)
        late: dict[str, tuple[_Pending, int]] = {}  # late vector key -> (its file, chunk index)
        for p in pending:
            triples = zip(p.chunks, tasks[id(p)], keys[id(p)], strict=True)
            for i, (c, task, key) in enumerate(triples):
                if self._is_late(c, task):
                    late.setdefault(key, (p, i))
                else:
                    wanted.setdefault(key, (task, c))
        have = self.store.has_vectors([*wanted, *late])
        by_task: dict[str, list[str]] = {}
        for key, (task, _) in wanted.items():
            if key not in have:
                by_task.setdefault(task, []).append(key)
        vectors: dict[str, np.ndarray] = {}
        missing = {key: where for key, where in late.items() if key not in have}
        if missing:
            vectors.update(self._embed_late(missing, tasks))
        failed: dict[str, Skip] = {}
        for task, task_keys in by_task.items():
            if task == IMAGE_TASK:
                found = self._embed_pictures([wanted[key][1] for key in task_keys], failed)
                vectors.update(
                    (k, v) for k, v in zip(task_keys, found, strict=True) if v is not None
                )
                continue
            if self.before_embed is not None:
                self.before_embed()
            texts = [wanted[key][1].embed_text() for key in task_keys]
            matrix = self.embedder.embed_documents(texts, task=task or None)
            vectors.update(zip(task_keys, matrix, strict=True))
        self._embedded += len(vectors)
        self._reused += sum(len(p.chunks) for p in pending) - len(vectors)
        for item in pending:
            if item.state.path in failed:  # unreadable since it was inspected: left out
                self._skipped.append(failed[item.state.path])
                continue
            item_keys = keys[id(item)]
            needed = {key: vectors[key] for key in item_keys if key in vectors}
            self.store.replace_file(
                item.state, item.chunks, needed, tasks[id(item)], item.refs, keys=item_keys
            )
            self._files_written += 1
        self._report()

    def _embed_late(
        self, missing: dict[str, tuple[_Pending, int]], tasks: dict[int, list[str]]
    ) -> dict[str, np.ndarray]:
        """Late vectors for ``missing`` keys: one embedder call per task, one encoding per file
        (of its spans that need a vector), all of the group's files batched together."""
        by_task: dict[str, dict[int, tuple[_Pending, list[tuple[str, int]]]]] = {}
        for key, (item, i) in missing.items():
            files = by_task.setdefault(tasks[id(item)][i], {})
            files.setdefault(id(item), (item, []))[1].append((key, i))
        out: dict[str, np.ndarray] = {}
        for task, files in by_task.items():
            entries = list(files.values())
            requests = []
            for item, wanted in entries:
                spans = char_spans(item.text, item.chunks)
                requests.append((item.text, [spans[i] for _, i in wanted]))
            if self.before_embed is not None:
                self.before_embed()
            found = self.embedder.embed_late_files(requests, task=task or None)
            for (_, wanted), matrix in zip(entries, found, strict=True):
                out.update((key, row) for (key, _), row in zip(wanted, matrix, strict=True))
        return out

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
