"""The remote backend's parts against a scripted OpenAI-compatible server (stdlib http.server in
a thread): retries, Retry-After, timeouts, batching by the server's limits, the breaker,
jina-v4 prefixes, Matryoshka dimensions, the API key's secrecy, and the daemon's pause."""

from __future__ import annotations

import base64
import json
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_embedder import FakeEmbedder

from codesearch import config, engine
from codesearch.config import Settings, load_settings
from codesearch.daemon.runtime import runtime
from codesearch.daemon.service import Service
from codesearch.embed import available_backends, load_embedder
from codesearch.embed.remote import policy
from codesearch.embed.remote.embedder import RemoteEmbedder, RemoteUnavailable
from codesearch.embed.remote.transport import Endpoint, display_url, parse_retry_after
from codesearch.search import SearchOptions
from codesearch.types import BadInput, ModelMismatch, ModelUnavailable

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "sk-test-5ecret-Zq9x"
MODEL = "test-embedder"


# ---------------------------------------------------------------------- the scripted server


class FakeServer:
    """Embeds with FakeEmbedder(dim); ``script`` answers first when it returns a reply:
    (status, headers, body) or "drop" (close without answering)."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.model = MODEL
        self.key = ""
        self.max_batch = 0  # > 0: more inputs than this is an HTTP 413
        self.info: dict[str, Any] | None = None  # TEI's /info
        self.dimensions = "honour"  # honour | ignore | refuse
        self.base64 = True
        self.delay = 0.0
        self.script: Callable[[dict[str, Any]], Any] | None = None
        self.requests: list[dict[str, Any]] = []
        self.embedded: list[str] = []  # inputs answered with vectors
        self.headers: list[dict[str, str]] = []
        self.inflight = self.max_inflight = 0
        self._lock = threading.Lock()
        self.fake = FakeEmbedder(dim)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.headers.append(dict(self.headers))
                if server.key and self.headers.get("Authorization") != f"Bearer {server.key}":
                    return self._send(401, {"detail": "Unauthorized"})
                if self.path == "/v1/models":
                    return self._send(200, {"data": [{"id": server.model, "object": "model"}]})
                if self.path in ("/info", "/v1/info") and server.info is not None:
                    return self._send(200, server.info)
                return self._send(404, {"error": "Not Found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with server._lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                try:
                    self._embeddings(body)
                finally:
                    with server._lock:
                        server.inflight -= 1

            def _embeddings(self, body: dict[str, Any]) -> None:
                if server.delay:
                    time.sleep(server.delay)
                if server.script is not None:
                    reply = server.script(body)
                    if reply == "drop":
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if reply is not None:
                        status, headers, payload = reply
                        return self._send(status, payload, headers)
                if server.key and self.headers.get("Authorization") != f"Bearer {server.key}":
                    return self._send(401, {"error": {"message": f"bad key {KEY}"}})
                if self.path != "/v1/embeddings":
                    return self._send(404, {"error": "Not Found"})
                inputs = body["input"]
                if server.max_batch and len(inputs) > server.max_batch:
                    return self._send(413, {"error": f"batch size {len(inputs)} > maximum"})
                if "dimensions" in body and server.dimensions == "refuse":
                    return self._send(400, {"error": "`dimensions` is not supported"})
                if not server.base64 and body.get("encoding_format") == "base64":
                    return self._send(422, {"detail": "encoding_format must be float"})
                vectors = server.fake.embed_documents(inputs) * 3.0  # not normalised
                if "dimensions" in body and server.dimensions == "honour":
                    vectors = vectors[:, : body["dimensions"]]
                data = []
                for i, v in enumerate(vectors):
                    if body.get("encoding_format") == "base64" and server.base64:
                        emb: Any = base64.b64encode(v.astype("<f4").tobytes()).decode()
                    else:
                        emb = [float(x) for x in v]
                    data.append({"object": "embedding", "index": i, "embedding": emb})
                data.reverse()  # the order comes from "index", not from the list
                with server._lock:
                    server.embedded.extend(inputs)
                self._send(200, {"object": "list", "data": data, "model": server.model})

            def _send(
                self, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # dropped connections: quiet
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def inputs(self) -> list[str]:
        return [text for body in self.requests for text in body["input"]]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    s = FakeServer()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No breaker or loaded model carries over between tests."""
    policy.reset_breakers()
    monkeypatch.setattr(engine, "_LOADED", {})
    for var in ("CODESEARCH_REMOTE_URL", "CODESEARCH_REMOTE_MODEL", "CODESEARCH_REMOTE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    yield
    policy.reset_breakers()


def make(server: FakeServer, **kw: Any) -> RemoteEmbedder:
    options: dict[str, Any] = {"retries": 3, "backoff": 0.01, "timeout": 5.0}
    options.update(kw)
    key = options.pop("key", "")
    return RemoteEmbedder(Endpoint.parse(server.url, key), options.pop("model", MODEL), **options)


# ---------------------------------------------------------------------- basics


def test_vectors_are_normalised_in_input_order_and_batched(server: FakeServer) -> None:
    texts = [f"def function_{i}(value):\n    return value + {i}" for i in range(70)]
    emb = make(server, batch_size=16, concurrency=3)
    assert (emb.dim, emb.model_id) == (64, f"remote:{MODEL}@64")
    got = emb.embed_documents(texts)
    assert got.shape == (70, 64) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.allclose(got, FakeEmbedder(64).embed_documents(texts), atol=1e-5)
    sizes = [len(b["input"]) for b in server.requests[1:]]  # after the probe
    assert sorted(sizes) == [6, 16, 16, 16, 16]
    assert all(b["encoding_format"] == "base64" for b in server.requests)
    assert emb.embed_documents([]).shape == (0, 64)


def test_float_output_when_the_server_refuses_base64(server: FakeServer) -> None:
    server.base64 = False
    emb = make(server)
    want = FakeEmbedder(64).embed_queries(["parse json"])
    assert np.allclose(emb.embed_queries(["parse json"]), want, atol=1e-5)
    assert server.requests[-1]["encoding_format"] == "float"


def test_batches_follow_the_servers_limits(server: FakeServer) -> None:
    texts = [f"text number {i}" for i in range(40)]
    server.info = {"max_client_batch_size": 5, "max_input_length": 512}  # TEI's /info
    server.delay = 0.05
    emb = make(server, batch_size=32, concurrency=4)
    assert emb.batch_size == 5 and emb.max_tokens == 256
    emb.embed_documents(texts)
    assert max(len(b["input"]) for b in server.requests) == 5
    assert 1 < server.max_inflight <= 4  # concurrent, within the pool's bound
    # a limit the server enforces without telling (HTTP 413): halve until it fits, remember
    server.info, server.max_batch, server.delay = None, 6, 0.0
    emb = make(server, batch_size=32, concurrency=1)
    got = emb.embed_documents([f"other text {i}" for i in range(40)])
    assert got.shape == (40, 64) and emb.batch_size == 4
    assert np.allclose(got[7], FakeEmbedder(64).embed_documents(["other text 7"])[0], atol=1e-5)


# ---------------------------------------------------------------------- retries


def test_429_waits_for_retry_after(server: FakeServer) -> None:
    emb = make(server)
    calls = {"n": 0}

    def busy_once(body: dict[str, Any]) -> Any:
        calls["n"] += 1
        return (429, {"Retry-After": "1"}, {"error": "slow down"}) if calls["n"] == 1 else None

    server.script = busy_once
    started = time.monotonic()
    emb.embed_documents(["a b c"])
    assert 1.0 <= time.monotonic() - started < 3.0  # the server's 1 s, not our 0.01 s
    assert calls["n"] == 2 and emb.breaker.state == "closed"  # busy is not down
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_a_retry_after_beyond_the_cap_pauses_instead_of_sleeping(server: FakeServer) -> None:
    emb = make(server)
    server.script = lambda body: (503, {"Retry-After": "600"}, {"error": "maintenance"})
    started = time.monotonic()
    with pytest.raises(RemoteUnavailable, match="maintenance") as info:
        emb.embed_documents(["x"])
    assert time.monotonic() - started < 1.0 and info.value.retry_in >= 599


def test_5xx_is_retried_with_exponential_backoff(server: FakeServer) -> None:
    emb = make(server, backoff=0.2, retries=3)
    failures = {"left": 2}

    def flaky(body: dict[str, Any]) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            return (503, {}, {"error": "warming up"})
        return None

    server.script = flaky
    started = time.monotonic()
    emb.embed_documents(["retry me"])
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.5  # 0.1-0.2 s, then 0.2-0.4 s
    assert emb.retried == 2
    # the delays: doubling, capped, half of each one random ("equal jitter")
    assert [policy.backoff_delay(n, 0.5, rng=lambda: 0.0) for n in range(3)] == [0.25, 0.5, 1.0]
    assert policy.backoff_delay(2, 0.5, rng=lambda: 1.0) == 2.0
    assert policy.backoff_delay(20, 0.5, rng=lambda: 1.0) == policy.BACKOFF_MAX_S


def test_timeouts_are_retried_then_reported(server: FakeServer) -> None:
    emb = make(server, timeout=0.3, retries=2, backoff=0.01)
    slow = {"left": 1}

    def slow_once(body: dict[str, Any]) -> Any:
        if slow["left"]:
            slow["left"] -= 1
            time.sleep(1.0)
        return None

    server.script = slow_once
    assert emb.embed_documents(["eventually"]).shape == (1, 64)
    server.script = lambda body: time.sleep(1.0)
    with pytest.raises(RemoteUnavailable, match=r"no answer within 0.3 s \(after 3 attempts\)"):
        emb.embed_documents(["never"])


def test_a_dropped_connection_is_retried(server: FakeServer) -> None:
    emb = make(server)
    drops = {"left": 2}

    def drop(body: dict[str, Any]) -> Any:
        if drops["left"]:
            drops["left"] -= 1
            return "drop"
        return None

    server.script = drop
    assert emb.embed_documents(["still here"]).shape == (1, 64)


# ---------------------------------------------------------------------- the breaker


def test_the_breaker_opens_on_an_outage_and_closes_when_the_server_is_back(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(policy, "COOLDOWN_S", 0.4)
    emb = make(server, retries=1)
    server.script = lambda body: (502, {}, {"error": "bad gateway"})
    for _ in range(policy.THRESHOLD):
        with pytest.raises(RemoteUnavailable, match="after 2 attempts"):
            emb.embed_documents(["x"])
    assert emb.breaker.state == "open"
    sent = len(server.requests)
    with pytest.raises(RemoteUnavailable, match=r"bad gateway \(paused, next try in"):
        emb.embed_queries(["fails fast"])
    assert len(server.requests) == sent  # an open breaker does not touch the network
    snapshot = policy.breaker_snapshots()[0]
    assert snapshot["state"] == "down" and "bad gateway" in snapshot["error"]
    assert snapshot["server"] == f"{server.url} ({MODEL})"
    time.sleep(0.45)  # half-open: one trial; it fails: open again, for twice as long
    with pytest.raises(RemoteUnavailable):
        emb.embed_documents(["trial"])
    assert emb.breaker.state == "open" and emb.breaker.cooldown == pytest.approx(0.8)
    server.script = None
    time.sleep(0.85)
    assert emb.embed_documents(["back"]).shape == (1, 64)
    assert emb.breaker.state == "closed" and emb.breaker.cooldown == pytest.approx(0.4)


def test_half_open_lets_one_trial_through_and_the_others_wait_for_it() -> None:
    now = {"t": 0.0}
    breaker = policy.Breaker("s", threshold=1, cooldown=10, clock=lambda: now["t"])
    breaker.request_failed("refused")
    with pytest.raises(policy.BreakerOpen) as info:
        breaker.admit(wait=0)
    assert info.value.retry_in == 10 and info.value.reason == "refused"
    now["t"] = 11
    breaker.admit(wait=0)  # the trial
    assert breaker.state == "half-open"
    results: list[str] = []

    def second() -> None:
        breaker.admit(wait=5)
        results.append("admitted")

    waiter = threading.Thread(target=second)
    waiter.start()
    time.sleep(0.2)
    assert results == []  # waiting for the trial
    breaker.answered()
    waiter.join(5)
    assert results == ["admitted"] and breaker.state == "closed"


def test_nothing_is_embedded_twice_across_an_outage(server: FakeServer) -> None:
    emb = make(server, batch_size=4, concurrency=2, retries=0)
    texts = [f"chunk {i}" for i in range(16)]
    failed: list[str] = []

    def refuse_one_batch(body: dict[str, Any]) -> Any:
        if "chunk 9" in body["input"]:
            failed.extend(body["input"])
            return (503, {}, {})
        return None

    server.script = refuse_one_batch
    with pytest.raises(RemoteUnavailable):
        emb.embed_documents(texts)
    assert len(failed) == 4
    server.script = None
    got = emb.embed_documents(texts)
    assert np.allclose(got, FakeEmbedder(64).embed_documents(texts), atol=1e-5)
    sent = [t for body in server.requests[1:] for t in body["input"]]
    # the failed batch twice (once refused, once embedded), every other text once
    assert sorted(sent) == sorted(texts + failed)


# ---------------------------------------------------------------------- jina-v4, dimensions


@pytest.mark.parametrize(
    ("model", "setting", "doc", "query"),
    [
        ("jinaai/jina-embeddings-v4-vllm-code", "auto", "Passage: ", "Query: "),
        ("jina-embeddings-v4-vllm-retrieval", "auto", "Passage: ", "Query: "),
        ("jinaai/jina-embeddings-v4-vllm-text-matching", "auto", "Query: ", "Query: "),
        ("all-MiniLM-L6-v2", "auto", "", ""),
        ("my-alias", "jina-v4", "Passage: ", "Query: "),
        ("jinaai/jina-embeddings-v4-vllm-code", "none", "", ""),
    ],
)
def test_prefixes_for_jina_v4_names(
    server: FakeServer, model: str, setting: str, doc: str, query: str
) -> None:
    server.model = model
    emb = make(server, model=model, prefixes=setting)
    emb.embed_documents(["def f(): pass"])
    emb.embed_queries(["where is f"])
    assert server.requests[-2]["input"] == [doc + "def f(): pass"]
    assert server.requests[-1]["input"] == [query + "where is f"]
    assert emb.max_tokens == (1024 if doc else 256)


def test_matryoshka_dimensions_are_passed_through(server: FakeServer) -> None:
    emb = make(server, ask_dim=32, dim_source="setting")
    assert emb.dim == 32 and emb.model_id == f"remote:{MODEL}@32"
    assert server.requests[-1]["dimensions"] == 32
    texts = [" ".join(f"word{i}x{j}" for j in range(40)) for i in range(3)]
    assert np.allclose(np.linalg.norm(emb.embed_documents(texts), axis=1), 1.0, atol=1e-5)


def test_a_server_without_dimensions_support(server: FakeServer) -> None:
    server.dimensions = "refuse"
    with pytest.raises(BadInput, match=r"vectors of 64 dims, not the 32 set by embed_dim.*refused"):
        make(server, ask_dim=32, dim_source="setting")
    server.dimensions = "ignore"
    with pytest.raises(BadInput, match="vectors of 64 dims, not the 32"):
        make(server, ask_dim=32, dim_source="setting")
    # jina-v4 is Matryoshka-trained: its first dims are a valid smaller vector, cut here
    server.model = "jinaai/jina-embeddings-v4-vllm-code"
    emb = make(server, model=server.model, ask_dim=32, dim_source="setting")
    full = FakeEmbedder(64).embed_documents(["Passage: x y"])[0]
    got = emb.embed_documents(["x y"])[0]
    assert emb.dim == 32 and np.allclose(got, full[:32] / np.linalg.norm(full[:32]), atol=1e-5)


def test_the_dimension_is_checked_against_the_index(server: FakeServer) -> None:
    server.dimensions = "ignore"
    reader = make(server, dim=48, dim_source="index")  # an index built with 48 dims
    assert reader.model_id == f"remote:{MODEL}@48" and server.requests == []  # no probe
    with pytest.raises(ModelMismatch, match="64-dim vectors, but 48 dims were asked for"):
        reader.embed_queries(["q"])
    # the writer: the same model served at another size must not wipe the index
    writer = make(server)
    assert "now serves test-embedder with 64-dim vectors, but the index holds 48" in (
        writer.dim_conflict(f"remote:{MODEL}@48")
    )
    assert writer.dim_conflict(f"remote:{MODEL}@64") == ""
    assert writer.dim_conflict("minilm:all-MiniLM-L6-v2") == ""


# ---------------------------------------------------------------------- configuration, errors


def test_configuration_from_the_environment(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ModelUnavailable, match="needs the server's URL: set remote_url"):
        load_embedder("remote")
    monkeypatch.setenv("CODESEARCH_REMOTE_URL", server.url)
    with pytest.raises(ModelUnavailable, match=r"set remote_model.*serves: test-embedder"):
        load_embedder("remote")
    emb = load_embedder(f"remote:{MODEL}")
    assert emb.model_id == f"remote:{MODEL}@64"
    monkeypatch.setenv("CODESEARCH_REMOTE_MODEL", MODEL)
    monkeypatch.setenv("CODESEARCH_REMOTE_CONCURRENCY", "2")
    monkeypatch.setenv("CODESEARCH_REMOTE_RETRIES", "0")
    monkeypatch.setenv("CODESEARCH_REMOTE_TIMEOUT", "2.5")
    emb = load_embedder("remote", dim=64)
    assert isinstance(emb, RemoteEmbedder)
    assert (emb.concurrency, emb.retries, emb.timeout) == (2, 0, 2.5)
    with pytest.raises(ModelUnavailable, match="does not serve 'other'"):
        load_embedder("remote:other")
    infos = {b.name: b for b in available_backends()}
    assert infos["remote"].usable and server.url in infos["remote"].description
    monkeypatch.setenv("CODESEARCH_REMOTE_TIMEOUT", "soon")
    with pytest.raises(BadInput, match="CODESEARCH_REMOTE_TIMEOUT: invalid value"):
        load_settings()


def test_the_documented_settings_are_the_real_ones() -> None:
    """The settings table of docs/remote.md (the README's remote section once pasted there)
    names real settings and their environment variables, all of them."""
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    doc = readme if "## A remote embedding server" in readme else None
    doc = doc or (root / "docs" / "remote.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| `(CODESEARCH_\w+)` \| ([^|]*) \|", doc, re.M)
    assert len(rows) >= 10
    defaults = Settings(home=root)
    for name, var, default in rows:
        assert config._ENV[name] == var
        value = getattr(defaults, name)
        default = default.strip().strip("`")
        if isinstance(value, str) and value:
            assert default == value, name
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            assert float(default) == value, name
    assert {n for n in config._ENV if n.startswith("remote_")} <= {n for n, _, _ in rows}


def test_the_api_key_is_read_from_the_environment_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'remote_url = "http://x"\nremote_api_key = "{KEY}"\n')
    with pytest.raises(BadInput, match="read from the environment only") as info:
        load_settings(home)
    assert KEY not in str(info.value)


def test_http_errors_are_one_clear_line(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.key = KEY
    with pytest.raises(ModelUnavailable, match=r"wants an API key \(HTTP 401\): export it as"):
        make(server)
    monkeypatch.setenv("CODESEARCH_REMOTE_API_KEY", "wrong-key-123")
    with pytest.raises(
        ModelUnavailable, match=r"rejected the API key in \$CODESEARCH_REMOTE_API_KEY"
    ):
        make(server, key="wrong-key-123")
    server.key = ""
    wrong_base = RemoteEmbedder(
        Endpoint.parse(server.url.removesuffix("/v1")), MODEL, dim=64, dim_source="index"
    )
    with pytest.raises(ModelUnavailable, match=r"/embeddings does not exist \(HTTP 404\)"):
        wrong_base.embed_documents(["x"])
    server.script = lambda body: (400, {}, {"error": {"message": "input too odd"}})
    with pytest.raises(BadInput, match="refused the request: HTTP 400: input too odd"):
        make(server, dim=64, dim_source="index").embed_documents(["x"])


def test_the_api_key_never_reaches_logs_errors_status_or_the_index(
    server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    server.key = KEY
    monkeypatch.setenv("CODESEARCH_REMOTE_URL", server.url)
    monkeypatch.setenv("CODESEARCH_REMOTE_MODEL", MODEL)
    monkeypatch.setenv("CODESEARCH_REMOTE_API_KEY", KEY)
    monkeypatch.setenv("CODESEARCH_REMOTE_BACKOFF", "0.01")
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "repo", repo)
    settings = load_settings()
    stats = engine.index_repo(repo, settings, model="remote")
    assert stats.chunks_embedded > 0
    assert all(h.get("Authorization") == f"Bearer {KEY}" for h in server.headers)
    texts: list[str] = [repr(settings), repr(engine._LOADED)]
    emb = next(iter(engine._LOADED.values()))
    texts += [
        repr(emb),
        repr(emb.endpoint),
        repr(vars(emb)),
        json.dumps(policy.breaker_snapshots()),
    ]
    # a server that echoes the key, an outage, a refusal: the errors and logs say "***"
    server.script = lambda body: (500, {}, {"error": f"auth {KEY} exploded"})
    with pytest.raises(RemoteUnavailable) as outage:
        emb.embed_documents(["boom"])
    texts += [str(outage.value), json.dumps(policy.breaker_snapshots())]
    server.script = lambda body: (400, {}, {"error": f"key {KEY} is not allowed here"})
    with pytest.raises(BadInput) as refused:
        emb.embed_queries(["q"])
    texts.append(str(refused.value))
    assert "***" in str(refused.value)
    texts += [r.getMessage() for r in caplog.records]
    svc = Service(settings, runtime(settings))
    texts.append(json.dumps(svc.daemon_info(), default=str))
    for text in texts:
        assert KEY not in text
    index_bytes = b"".join(p.read_bytes() for p in settings.index_dir.rglob("*") if p.is_file())
    assert KEY.encode() not in index_bytes and b"remote:test-embedder@64" in index_bytes
    assert display_url(f"https://user:{KEY}@host:8443/v1?key={KEY}#x") == "https://host:8443/v1"
    basic = Endpoint.parse(f"https://user:{KEY}@host/v1")
    assert KEY not in repr(basic) and KEY not in basic.scrub(f"echo {KEY}")


# ---------------------------------------------------------------------- the daemon


@pytest.fixture
def remote_env(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    monkeypatch.setenv("CODESEARCH_MODEL", "remote")
    monkeypatch.setenv("CODESEARCH_REMOTE_URL", server.url)
    monkeypatch.setenv("CODESEARCH_REMOTE_MODEL", MODEL)
    monkeypatch.setenv("CODESEARCH_REMOTE_RETRIES", "1")
    monkeypatch.setenv("CODESEARCH_REMOTE_BACKOFF", "0.01")
    monkeypatch.setattr(policy, "COOLDOWN_S", 0.5)
    return server


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_the_daemon_pauses_during_an_outage_and_resumes_after_it(
    remote_env: FakeServer, tmp_path: Path
) -> None:
    server = remote_env
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "repo", repo)
    for i in range(30):
        (repo / f"gen_{i}.py").write_text(f"def generated_{i}(x):\n    return x * {i}\n")
    settings = load_settings()
    svc = Service(settings, runtime(settings))
    svc.start()
    try:
        svc.add(str(repo))
        assert svc.wait(repo, 30)
        assert svc.status(repo)["repos"][0]["state"] == "idle"
        down = {"on": True}
        server.script = lambda body: (503, {}, {"error": "gpu on fire"}) if down["on"] else None
        for i in range(30, 40):
            (repo / f"gen_{i}.py").write_text(f"def generated_{i}(x):\n    return x - {i}\n")

        def paused() -> bool:
            return svc.status(repo)["repos"][0]["state"] == "paused"

        _wait_for(paused, 30, "indexing did not pause")
        info = svc.status(repo)
        error = info["repos"][0]["error"]
        assert "gpu on fire" in error and "indexing paused, searches use what is indexed" in error

        def server_down() -> bool:
            return svc.status(repo)["daemon"]["embedders"][0]["state"] == "down"

        _wait_for(server_down, 20, "the breaker did not open")  # after THRESHOLD failed runs
        assert "gpu on fire" in svc.status(repo)["daemon"]["embedders"][0]["error"]
        # queries keep working: keywords only, and they say so
        results, notices = svc.search(repo, ["generated_3"], SearchOptions(k=5), None)
        assert "generated_3" in {h["name"] for h in results[0]}
        assert any("keywords only" in n and "gpu on fire" in n for n in notices)
        down["on"] = False

        def caught_up() -> bool:
            return svc.status(repo)["repos"][0]["state"] == "idle" and svc.wait(repo, 0.1)

        _wait_for(caught_up, 30, "indexing did not resume")
        info = svc.status(repo)["repos"][0]
        assert info["error"] == "" and info["files"] == 7 + 40
        results, notices = svc.search(repo, ["generated 37"], SearchOptions(k=3), None)
        assert notices == [] and results[0][0]["name"] == "generated_37"
        assert svc.status()["daemon"]["embedders"][0]["state"] == "up"
    finally:
        svc.stop()
    # nothing was embedded twice: each text got its vector once (the probe aside)
    embedded = [t for t in server.embedded if not t.startswith("def probe")]
    assert len(embedded) == len(set(embedded))
    assert sum("generated_35" in t for t in embedded) == 1


def test_queries_fall_back_to_keywords_while_the_server_is_down(
    remote_env: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from codesearch.cli import main

    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "repo", repo)
    settings = load_settings()
    engine.index_repo(repo, settings)
    remote_env.script = lambda body: (503, {}, {"error": "gpu on fire"})
    with engine.RepoSearch(repo, settings) as searcher:
        hits = searcher.search_many(["send an email message"], SearchOptions(k=3))[0]
        assert hits and hits[0].path == "svc/mail.go"  # BM25 alone finds it
        assert "gpu on fire" in searcher.searcher.outage
        assert main(["search", "send an email", "--repo", str(repo), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["results"][0]["path"] == "svc/mail.go"
        remote_env.script = None
        searcher.search_many(["send an email message"], SearchOptions(k=3))
        assert searcher.searcher.outage == ""


def test_settings_dataclass_has_no_key_field() -> None:
    assert not any("key" in name and "env" not in name for name in Settings.__dataclass_fields__)
