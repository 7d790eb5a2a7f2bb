"""One engine behind every face: open a repository's index with the right model, index it,
search it. The daemon owns one for all faces; the CLI uses it in-process with --no-daemon."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from codesearch.config import Settings
from codesearch.datadir import secure_home
from codesearch.embed import Embedder, load_embedder, resolve_auto
from codesearch.index import Indexer, ProgressFn
from codesearch.paths import find_repo_root, resolve_root
from codesearch.search import Searcher, SearchOptions
from codesearch.store import Store
from codesearch.store.writer_lock import delete_database, writer_lock
from codesearch.types import (
    Chunk,
    Hit,
    IndexMissing,
    IndexStats,
    ModelMismatch,
    NotARepository,
    Progress,
)

_LOADED: dict[tuple[str, int, int | None], Embedder] = {}
_LOADING = threading.Lock()


def get_embedder(spec: str, batch_size: int, dim: int | None = None) -> Embedder:
    """Load a model once per process (a daemon or a test session asks many times).

    ``dim``: the vector size (a Matryoshka model offers several); None: the configured one."""
    name = resolve_auto() if spec == "auto" else spec
    key = (name, batch_size, dim)
    with _LOADING:
        if key in _LOADED:
            return _LOADED[key]
        # The writer asks for the configured size, a reader for its index's size: serve both
        # from one model in memory (a Matryoshka model gives other sizes as views).
        loaded = _LOADED.get((name, batch_size, None))
        if dim is not None and loaded is not None and loaded.dim == dim:
            embedder = loaded
        elif dim is not None and loaded is not None and dim in loaded.dims:
            embedder = loaded.with_dim(dim)
        else:
            embedder = load_embedder(spec, batch_size=batch_size, dim=dim)
        _LOADED[key] = embedder
        return embedder


# meta keys
META_ROOT = "repo_root"
META_MODEL_SPEC = "model_spec"  # what to pass to load_embedder to query this index
META_MODEL_AUTO = "model_auto"  # "1": the model was picked by auto, "0": asked for by name


@dataclass(frozen=True)
class IndexStatus:
    root: Path
    index_path: Path
    model_id: str
    model_spec: str
    dim: int
    files: int
    chunks: int
    vectors: int
    bytes: int
    languages: dict[str, int]
    kinds: dict[str, int]
    pictures: int = 0  # picture chunks (images, PDF pages)
    pictures_waiting: int = 0  # ... described by text only: they wait for a multimodal backend


def locate_repo(start: Path, settings: Settings) -> Path:
    """The repository a query from ``start`` is about: the nearest folder that has an index,
    else the enclosing git repository."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if settings.index_path(folder).exists():
            return folder
    try:
        return find_repo_root(start)
    except NotARepository:
        raise NotARepository(
            f"no index covers {start} and it is not inside a git repository: "
            f"run `codesearch index PATH` first"
        ) from None


def index_repo(
    path: Path,
    settings: Settings,
    *,
    rebuild: bool = False,
    progress: ProgressFn | None = None,
    embedder: Embedder | None = None,
    model: str | None = None,
    on_wait: Callable[[], None] | None = None,
) -> IndexStats:
    """Index or update ``path``. The model is ``model`` when given (a different one rebuilds
    the index), else the one that built the existing index, else ``settings.model``.
    ``on_wait``: called once when another process is writing this index (the run waits)."""
    root = resolve_root(path)
    index_path = settings.index_path(root)
    secure_home(settings.home)  # the index holds the code: 0700 all the way down
    index_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # one writer per index, from the deletion of a rebuilt index's files to the run's end
    with writer_lock(index_path, on_wait=on_wait):
        if rebuild:
            delete_database(index_path)
        with Store.open(index_path, create=True) as store:
            embedder = prepare_writer(
                root, store, settings, model=model, embedder=embedder, progress=progress
            )
            if model is None:  # never wipe an index because a server changed its size
                conflict = embedder.dim_conflict(store.get_meta("model_id"))
                if conflict:
                    raise ModelMismatch(conflict)
            return Indexer(root, store, embedder, settings, progress).run()


def prepare_writer(
    root: Path,
    store: Store,
    settings: Settings,
    *,
    model: str | None = None,
    embedder: Embedder | None = None,
    progress: ProgressFn | None = None,
) -> Embedder:
    """The embedder that (re)builds ``store``: ``model`` when given, else the one that built
    the index, else ``settings.model``; the index records the choice. ``progress`` hears of
    the model being loaded."""
    requested = model or _built_with(store, settings) or settings.model
    if embedder is None:
        if progress is not None:  # seconds on a CPU: say so before the bar starts
            progress(Progress(0, 0, 0, 0.0, phase=f"loading the embedding model ({requested})"))
        embedder = get_embedder(requested, settings.batch_size)
    store.set_meta(META_ROOT, str(root))
    store.set_meta(META_MODEL_SPEC, _model_spec(requested))
    store.set_meta(META_MODEL_AUTO, "1" if requested == "auto" else "0")
    return embedder


def _built_with(store: Store, settings: Settings) -> str | None:
    """The model an update of ``store`` uses: the one that built it, except that an index
    that ``auto`` built with plain MiniLM moves to the CPU default that replaced it (the code
    adapter): a new model id, so the update rebuilds it and says so."""
    spec = store.get_meta(META_MODEL_SPEC)
    if spec != "minilm" or settings.model != "auto":
        return spec
    # indexes from before the choice was recorded were built by auto (the default)
    if store.get_meta(META_MODEL_AUTO) in (None, "1") and resolve_auto() == "minilm-code":
        return "auto"
    return spec


def _model_spec(requested: str) -> str:
    # "auto" is resolved once, at index time: the index is queried with the model that built
    # it; a model folder is remembered by its absolute path (queries may come from anywhere)
    if requested == "auto":
        return resolve_auto()
    folder = Path(requested).expanduser()
    return str(folder.resolve()) if folder.is_dir() else requested


class RepoSearch:
    """An open index plus the model that built it, ready for queries."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        *,
        model: str | None = None,
        embedder: Embedder | None = None,
        vector_cache: bool = False,
    ) -> None:
        self.root = root
        index_path = settings.index_path(root)
        if not index_path.exists():
            raise IndexMissing(f"no index for {root}: run `codesearch index {root}` first")
        self.store = Store.open(index_path, vector_cache=vector_cache)
        try:
            spec = self.store.get_meta(META_MODEL_SPEC) or "minilm"
            if model and model not in ("auto", spec):
                raise ModelMismatch(
                    f"index of {root} was built with model {spec!r}, not {model!r}: "
                    f"rebuild it with `codesearch index --rebuild --model {model}`"
                )
            # the size the index was built with, whatever the setting says today
            dim = int(self.store.get_meta("dim") or 0) or None
            self.embedder = embedder or get_embedder(spec, settings.batch_size, dim)
            self.store.require_model(self.embedder.model_id)
            self.searcher = Searcher(self.store, self.embedder)
        except BaseException:
            self.store.close()
            raise

    def search_many(self, queries: list[str], options: SearchOptions) -> list[list[Hit]]:
        return self.searcher.search_many(queries, options)

    def similar(self, path: str, line: int, options: SearchOptions) -> tuple[Chunk, list[Hit]]:
        """The chunk at ``path:line`` (relative to the root, or absolute) and the chunks most
        like it (see :mod:`codesearch.similar`)."""
        from codesearch.similar import MoreLikeThis

        return MoreLikeThis(self.searcher, self.root).similar(path, line, options)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> RepoSearch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def index_status(root: Path, settings: Settings) -> IndexStatus:
    index_path = settings.index_path(root)
    if not index_path.exists():
        raise IndexMissing(f"no index for {root}: run `codesearch index {root}` first")
    with Store.open(index_path) as store:
        stats = store.stats()
        pictures, waiting = store.picture_counts()
        return IndexStatus(
            root=root,
            index_path=index_path,
            model_id=store.get_meta("model_id") or "",
            model_spec=store.get_meta(META_MODEL_SPEC) or "",
            dim=int(store.get_meta("dim") or 0),
            files=stats.get("files", 0),
            chunks=stats.get("chunks", 0),
            vectors=stats.get("vectors", 0),
            bytes=stats.get("bytes", 0),
            languages=store.chunk_count_by("language"),
            kinds=store.chunk_count_by("kind"),
            pictures=pictures,
            pictures_waiting=waiting,
        )
