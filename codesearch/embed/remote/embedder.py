"""The remote backend: an OpenAI-compatible ``/embeddings`` server (vLLM, text-embeddings-
inference, infinity, OpenAI itself) behind the Embedder base class. Standard library only; the
HTTP in transport.py, retries and the breaker in policy.py, settings in backend.py.

Names: ``remote`` (the model in the ``remote_model`` setting) or ``remote:NAME``. The server's
base URL comes from ``remote_url`` / ``CODESEARCH_REMOTE_URL``; the API key only from the
environment variable that ``remote_api_key_env`` names (``CODESEARCH_REMOTE_API_KEY``), and it
is never written to disk, logs, errors or status. The index records ``remote:NAME@DIM`` (no
URL), so moving the server elsewhere keeps the index.

- Dimension: asked of the server (one probe request) when the index is being written, checked
  on every answer against the index's when it is read. ``embed_dim`` is sent as the
  ``dimensions`` field (Matryoshka); a server that refuses or ignores it is told so clearly,
  except for jina-v4, whose vectors are Matryoshka-trained and are cut on this side.
- jina-embeddings-v4 served by name (``jinaai/jina-embeddings-v4-vllm-code`` ...): the
  "Query: " / "Passage: " prefixes are added here ("text-matching": "Query: " on both sides).
- Throughput: batches of ``remote_batch_size`` inputs of similar length (lowered to the
  server's advertised or enforced limit: TEI's ``max_client_batch_size``, an HTTP 413),
  ``remote_concurrency`` requests in flight, float32 vectors as base64 when the server offers
  it.
- Manners: see policy.py (retries with back-off and jitter, Retry-After, the breaker).
  Vectors of the batches that did succeed are kept (a bounded cache), so after an outage the
  retry sends only what is still missing: nothing is embedded twice.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from codesearch.embed.base import Embedder, EmbedderUnavailable, l2_normalise
from codesearch.embed.remote.policy import (
    RETRY_AFTER_MAX_S,
    BreakerOpen,
    backoff_delay,
    breaker_for,
)
from codesearch.embed.remote.transport import Endpoint, HttpFailure, Transport
from codesearch.types import BadInput, ModelMismatch, ModelUnavailable

log = logging.getLogger("codesearch.embed.remote")

QUERY_PREFIX, PASSAGE_PREFIX = "Query: ", "Passage: "  # as the local jina-v4 backend
JINA_MAX_TOKENS = 1024  # chunk size for jina-v4, as the local backend
DEFAULT_MAX_TOKENS = 256  # chunk size for other models (and at most half a server's window)
QUERY_RETRIES = 1  # a question waits for one retry at most, then falls back to keywords
QUERY_TIMEOUT_S = 10.0
CACHE_BYTES = 16 << 20  # vectors of finished batches kept for a retry after an outage
PROBE_TEXT = "def probe():\n    return 'codesearch'"
_BATCH_LIMIT = re.compile(r"batch|at most \d+ items|too many (inputs|items)", re.I)
_JINA = re.compile(r"jina-(embeddings-)?v4", re.I)


class RemoteUnavailable(EmbedderUnavailable):
    """The embedding server is down, overloaded or unreachable: a pause, not a failure.
    ``retry_in``: when it is worth trying again (seconds)."""


def is_jina_v4(model: str) -> bool:
    return bool(_JINA.search(model))


class RemoteEmbedder(Embedder):
    """Embeddings from an OpenAI-compatible server. Thread-safe."""

    def __init__(
        self,
        endpoint: Endpoint,
        model: str,
        *,
        dim: int | None = None,
        ask_dim: int | None = None,
        dim_source: str = "server",
        prefixes: str = "auto",
        concurrency: int = 4,
        batch_size: int = 32,
        max_tokens: int | None = None,
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 0.5,
        api_key_env: str = "CODESEARCH_REMOTE_API_KEY",
    ) -> None:
        if prefixes not in ("auto", "jina-v4", "none"):
            raise BadInput(f"remote_prefixes must be auto, jina-v4 or none, not {prefixes!r}")
        self.endpoint = endpoint
        self.model = model
        self.url = endpoint.shown
        self.jina = prefixes == "jina-v4" or (prefixes == "auto" and is_jina_v4(model))
        self.concurrency = max(1, concurrency)
        self.batch_size = max(1, batch_size)
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.api_key_env = api_key_env
        self.transport = Transport(endpoint, timeout)
        self.breaker = breaker_for(f"{endpoint.shown} ({model})")
        # dim: the index's size (no probe; answers are checked against it); ask_dim: the size
        # to ask for (sent as `dimensions`); dim_source: where it came from, "index",
        # "setting" (embed_dim) or "server" (nothing asked: the probe tells)
        self._dim_source = dim_source
        self._want_dim = dim if dim is not None else ask_dim
        self._sent_dim = self._want_dim
        self._format = "base64"
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._refused_dimensions = ""
        self.requests = 0  # HTTP requests sent to /embeddings (tests, benchmarks)
        self.retried = 0
        self.server_max_tokens: int | None = None
        if dim is None:
            self._discover()
            dim = len(self._embed_batch([PROBE_TEXT], query=False, attempts=self.retries + 1)[0])
        self.dim = self._want_dim = int(dim)
        self.max_tokens = max_tokens or self._default_max_tokens()
        self.model_id = f"remote:{model}@{self.dim}"
        # the daemon hands this many chunks to one call, so all requests can be in flight
        self.preferred_group = self.batch_size * self.concurrency

    def __repr__(self) -> str:
        return f"RemoteEmbedder({self.url!r}, {self.model!r}, dim={getattr(self, 'dim', None)})"

    # -- the Embedder core ------------------------------------------------------------------

    def embed_batch(self, texts: Sequence[str], *, query: bool, task: str | None) -> np.ndarray:
        if query:
            return self._embed([QUERY_PREFIX * self.jina + str(t) for t in texts], query=True)
        prefix = (QUERY_PREFIX if "text-matching" in self.model else PASSAGE_PREFIX) * self.jina
        return self._embed([prefix + str(t) for t in texts], query=False)

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def dim_conflict(self, built_model_id: str | None) -> str:
        """The index ``built_model_id`` holds this same remote model at another size, and
        nobody asked for this one: the server changed behind the index's back."""
        if not built_model_id or self._dim_source != "server":
            return ""
        name, _, dim = built_model_id.rpartition("@")
        if name != f"remote:{self.model}" or dim == str(self.dim):
            return ""
        return (
            f"embedding server {self.url} now serves {self.model} with {self.dim}-dim vectors, "
            f"but the index holds {dim}-dim ones: serve the same size again, set embed_dim to "
            f"{dim} if the server offers it, or rebuild with `codesearch index --rebuild`"
        )

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        self.transport.close()

    # -- batching, concurrency, the cache ---------------------------------------------------

    def _embed(self, inputs: list[str], *, query: bool) -> np.ndarray:
        out = np.zeros((len(inputs), self.dim), dtype=np.float32)
        keys = [hashlib.sha1(t.encode("utf-8", "surrogatepass")).hexdigest() for t in inputs]
        todo: list[int] = []
        with self._lock:
            for i, key in enumerate(keys):
                row = None if query else self._cache.get(key)
                if row is None:
                    todo.append(i)
                else:
                    out[i] = row
        # longest first, so each request holds similar lengths: servers that pad a batch to
        # its longest input (TEI, infinity) waste less
        todo.sort(key=lambda i: -len(inputs[i]))
        size = self.batch_size
        batches = [todo[i : i + size] for i in range(0, len(todo), size)]
        attempts = (min(self.retries, QUERY_RETRIES) if query else self.retries) + 1

        def run(batch: list[int]) -> None:
            vectors = self._embed_batch([inputs[i] for i in batch], query=query, attempts=attempts)
            out[batch] = vectors
            if not query:
                self._remember([keys[i] for i in batch], vectors)

        if len(batches) <= 1 or self.concurrency == 1:
            for batch in batches:
                run(batch)
            return out
        futures = [self._executor().submit(run, batch) for batch in batches]
        errors = [f.exception() for f in futures]  # waits for all: finished batches are kept
        failed = [e for e in errors if e is not None]
        if failed:  # the most telling error: a refusal before an outage
            failed.sort(key=lambda e: isinstance(e, RemoteUnavailable))
            raise failed[0]
        return out

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="remote")
            return self._pool

    def _remember(self, keys: list[str], vectors: np.ndarray) -> None:
        limit = max(1024, CACHE_BYTES // max(1, 4 * vectors.shape[1]))
        with self._lock:
            for key, row in zip(keys, vectors, strict=True):
                self._cache[key] = row
                self._cache.move_to_end(key)
            while len(self._cache) > limit:
                self._cache.popitem(last=False)

    # -- one request, with retries ----------------------------------------------------------

    def _embed_batch(self, inputs: list[str], *, query: bool, attempts: int) -> np.ndarray:
        """Vectors for ``inputs``; a batch the server finds too large is split in halves."""
        try:
            answer = self._post(inputs, query=query, attempts=attempts)
        except HttpFailure as exc:
            if len(inputs) > 1 and _batch_too_large(exc):
                half = len(inputs) // 2
                with self._lock:
                    if half < self.batch_size:
                        log.info("%s: batches lowered to %d inputs (%s)", self.url, half, exc)
                        self.batch_size = half
                head = self._embed_batch(inputs[:half], query=query, attempts=attempts)
                tail = self._embed_batch(inputs[half:], query=query, attempts=attempts)
                return np.concatenate([head, tail])
            raise self._refused(exc) from None
        return self._vectors(answer, len(inputs))

    def _post(self, inputs: list[str], *, query: bool, attempts: int) -> Any:
        """The JSON answer of POST /embeddings, retried on 429 / 5xx / timeouts / no answer.
        Raises RemoteUnavailable, or HttpFailure for an answer that retrying will not change."""
        timeout = min(self.timeout, QUERY_TIMEOUT_S) if query else self.timeout
        attempt = 0
        while True:
            body: dict[str, Any] = {
                "model": self.model,
                "input": inputs,
                "encoding_format": self._format,
            }
            if self._sent_dim is not None:
                body["dimensions"] = self._sent_dim
            try:
                self.breaker.admit(wait=timeout)
            except BreakerOpen as exc:
                raise self._unavailable(exc.reason, exc.retry_in, paused=True) from None
            try:
                with self._lock:
                    self.requests += 1
                answer = self.transport.request("POST", "/embeddings", body, timeout=timeout)
            except HttpFailure as exc:
                if not exc.retryable:
                    self.breaker.answered()
                    if self._adapt(exc):
                        continue  # the same request without what the server refused
                    raise
                if exc.outage:
                    self.breaker.attempt_failed(exc.message)
                else:
                    self.breaker.answered()  # busy (429), not down
                attempt += 1
                retry_after = exc.retry_after or 0.0
                if attempt >= attempts or retry_after > RETRY_AFTER_MAX_S:
                    if exc.outage:
                        self.breaker.request_failed(exc.message)
                    wait = max(retry_after, self.breaker.retry_in())
                    raise self._unavailable(exc.message, wait, attempts=attempt) from None
                delay = max(backoff_delay(attempt - 1, self.backoff), retry_after)
                with self._lock:
                    self.retried += 1
                log.info(
                    "%s: %s; retry %d of %d in %.1f s",
                    self.url,
                    exc.message,
                    attempt,
                    attempts - 1,
                    delay,
                )
                self.breaker.sleep(delay)
                continue
            self.breaker.answered()
            return answer

    def _adapt(self, exc: HttpFailure) -> bool:
        """Drop what a server refused (base64 output, the dimensions field); True to retry."""
        if exc.status not in (400, 422):
            return False
        text = exc.message.lower()
        if self._format == "base64" and ("encoding" in text or "base64" in text):
            self._format = "float"
            return True
        if self._sent_dim is not None and ("dimension" in text or "matryoshka" in text):
            self._refused_dimensions = exc.message
            self._sent_dim = None
            return True
        return False

    # -- answers ----------------------------------------------------------------------------

    def _vectors(self, answer: Any, count: int) -> np.ndarray:
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or len(data) != count:
            got = len(data) if isinstance(data, list) else "no"
            raise ModelUnavailable(
                f"embedding server {self.url} answered {got} vectors for {count} inputs: "
                "not an OpenAI-compatible /embeddings answer"
            )
        rows: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * count
        for pos, item in enumerate(data):
            index = item.get("index", pos) if isinstance(item, dict) else pos
            raw = item.get("embedding") if isinstance(item, dict) else None
            try:
                if isinstance(raw, str):
                    vector = np.frombuffer(base64.b64decode(raw), dtype="<f4")
                else:
                    vector = np.asarray(raw, dtype=np.float32)
            except (ValueError, TypeError):  # bad base64, a ragged or non-numeric list
                vector = np.zeros((0, 0), dtype=np.float32)
            if not isinstance(index, int) or not 0 <= index < count or vector.ndim != 1:
                raise ModelUnavailable(f"embedding server {self.url} sent a malformed vector")
            rows[index] = vector
        widths = {len(r) for r in rows}
        if len(widths) != 1:
            raise ModelUnavailable(f"embedding server {self.url} sent vectors of mixed sizes")
        matrix = np.stack(rows).astype(np.float32, copy=False)
        return l2_normalise(self._fit(matrix))

    def _fit(self, matrix: np.ndarray) -> np.ndarray:
        """Check the answer's width against the dimension in force; cut jina-v4's."""
        width = matrix.shape[1]
        want = self._want_dim
        if want is None or width == want:
            return matrix
        if width > want and self.jina:
            return matrix[:, :want]  # Matryoshka: the first dims are a valid smaller vector
        why = f" (it refused `dimensions`: {self._refused_dimensions})"
        why = why if self._refused_dimensions else ""
        if self._dim_source != "setting":  # the size an index was (or is being) built with
            raise ModelMismatch(
                f"embedding server {self.url} serves {self.model} with {width}-dim vectors, but "
                f"{want} dims were asked for, the size of the index{why}: serve the size the "
                "index was built with, or rebuild it with `codesearch index --rebuild`"
            )
        raise BadInput(
            f"embedding server {self.url} gives {self.model} vectors of {width} dims, not the "
            f"{want} set by embed_dim / CODESEARCH_EMBED_DIM{why}: unset it or pick {width}"
        )

    # -- errors -----------------------------------------------------------------------------

    def _unavailable(
        self, reason: str, retry_in: float, *, attempts: int = 0, paused: bool = False
    ) -> RemoteUnavailable:
        if paused:
            tail = f"paused, next try in {max(retry_in, 0.1):.0f} s"
        elif attempts > 1:
            tail = f"after {attempts} attempts"
        else:
            tail = ""
        return RemoteUnavailable(
            f"embedding server {self.url} ({self.model}) is unavailable: {reason or 'down'}"
            + (f" ({tail})" if tail else ""),
            retry_in,
        )

    def _refused(self, exc: HttpFailure) -> Exception:
        """A clear one-line error for an answer that retrying will not change."""
        if exc.status in (401, 403):
            if os.environ.get(self.api_key_env):
                return ModelUnavailable(
                    f"embedding server {self.url} rejected the API key in ${self.api_key_env} "
                    f"(HTTP {exc.status}): set it to the server's key"
                )
            return ModelUnavailable(
                f"embedding server {self.url} wants an API key (HTTP {exc.status}): "
                f"export it as ${self.api_key_env}"
            )
        if exc.status == 404 and "model" not in exc.message.lower():
            return ModelUnavailable(
                f"{self.url}/embeddings does not exist (HTTP 404): remote_url is the base under "
                "which /embeddings lives (vLLM, TEI, OpenAI: http://HOST:PORT/v1)"
            )
        return BadInput(f"embedding server {self.url} refused the request: {exc.message}")

    # -- what the server says about itself ---------------------------------------------------

    def _discover(self) -> None:
        """The served models and limits, where the server tells them (best effort): vLLM's
        max_model_len in /models, TEI's /info (max_client_batch_size, max_input_length)."""
        models = self._get("/models")
        data = models.get("data") if isinstance(models, dict) else None
        if isinstance(data, list) and data:
            served = {str(m.get("id")): m for m in data if isinstance(m, dict)}
            if self.model not in served:
                raise ModelUnavailable(
                    f"embedding server {self.url} does not serve {self.model!r} (it serves: "
                    f"{', '.join(sorted(served)[:10])}): set remote_model"
                )
            length = served[self.model].get("max_model_len")
            if isinstance(length, int) and length > 0:
                self.server_max_tokens = length
        info = self._get("/info")
        if not isinstance(info, dict) and self.endpoint.path:
            info = self._get("/info", absolute=True)
        if isinstance(info, dict):
            limit = info.get("max_client_batch_size")
            if isinstance(limit, int) and 0 < limit < self.batch_size:
                self.batch_size = limit
            length = info.get("max_input_length")
            if isinstance(length, int) and length > 0:
                self.server_max_tokens = length

    def _get(self, route: str, absolute: bool = False) -> Any:
        attempts = self.retries + 1
        for attempt in range(attempts):
            try:
                self.breaker.admit(wait=self.timeout)
            except BreakerOpen as exc:
                raise self._unavailable(exc.reason, exc.retry_in, paused=True) from None
            try:
                answer = self.transport.request("GET", route, absolute=absolute)
            except HttpFailure as exc:
                if exc.status in (401, 403):
                    self.breaker.answered()
                    raise self._refused(exc) from None
                if not exc.retryable or not exc.outage:
                    self.breaker.answered()
                    return None  # not offered here: fine
                self.breaker.attempt_failed(exc.message)
                if attempt + 1 >= attempts:
                    self.breaker.request_failed(exc.message)
                    raise self._unavailable(
                        exc.message, self.breaker.retry_in(), attempts=attempts
                    ) from None
                self.breaker.sleep(backoff_delay(attempt, self.backoff))
                continue
            self.breaker.answered()
            return answer
        return None

    def _default_max_tokens(self) -> int:
        if self.jina:
            return JINA_MAX_TOKENS
        if self.server_max_tokens:
            return max(16, min(DEFAULT_MAX_TOKENS, self.server_max_tokens // 2))
        return DEFAULT_MAX_TOKENS


_PIECES = re.compile(r"[^\W\d_]+|\d+|[^\w\s]|_")


def estimate_tokens(text: str) -> int:
    """Tokens without the server's tokenizer, on the high side for code (WordPiece and BPE
    alike): a run of letters counts one per 6 letters, a run of digits one per 3, any other
    symbol one."""
    total = 0
    for piece in _PIECES.findall(text):
        if piece[0].isdigit():
            total += -(-len(piece) // 3)
        elif piece[0].isalpha():
            total += -(-len(piece) // 6)
        else:
            total += 1
    return total


def _batch_too_large(exc: HttpFailure) -> bool:
    return exc.status == 413 or (
        exc.status in (400, 422) and bool(_BATCH_LIMIT.search(exc.message))
    )
