"""The daemon's parts in-process: the event classifier, the schema, the query gate, and the
service with the fake model (fast), including paths a real process makes hard to reach."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codesearch.config import Settings
from codesearch.daemon import protocol, registry, service, writer
from codesearch.daemon.runtime import MAX_SOCKET_PATH, runtime
from codesearch.daemon.service import Service
from codesearch.daemon.watcher import WHOLE_REPO, SkipPrefixes, classify
from codesearch.daemon.writer import QueryGate
from codesearch.search import SearchOptions
from codesearch.types import BadInput

FIXTURES = Path(__file__).parent / "fixtures"


# ---------------------------------------------------------------------- the event classifier


def test_classify_events() -> None:
    skip = SkipPrefixes()
    skip.update([WHOLE_REPO], ["node_modules", "build", "docs/secret.key"])
    assert classify("src/a.py", False, skip) == "src/a.py"
    assert classify("src", True, skip) == "src"
    assert classify(".git/objects/ab/cdef", False, skip) is None
    assert classify(".git", True, skip) is None
    assert classify("sub/.git/HEAD", False, skip) is None  # a nested repository's git dir
    assert classify(".git/info/exclude", False, skip) == WHOLE_REPO
    assert classify(".gitignore", False, skip) == ""  # the root: everything is re-examined
    assert classify("src/.gitignore", False, skip) == "src"
    assert classify("src/.codesearchignore", False, skip) == "src"
    assert classify("node_modules/left-pad/index.js", False, skip) is None
    assert classify("build", True, skip) is None
    assert classify("buildx/a.py", False, skip) == "buildx/a.py"  # a prefix is a whole name
    # an ignore file inside an ignored folder still re-examines (it may un-ignore nothing,
    # but the walk decides, not the event filter)
    assert classify("node_modules/.gitignore", False, skip) == "node_modules"
    assert classify("", True, skip) is None


def test_skip_prefixes_are_replaced_within_a_scope() -> None:
    skip = SkipPrefixes()
    skip.update([WHOLE_REPO], ["a/build", "b/build"])
    skip.update(["a"], [])  # a walk of a/ found nothing skipped there any more
    assert not skip.covers("a/build/x.py") and skip.covers("b/build/x.py")


# ---------------------------------------------------------------------- the schema


def test_schema_parsing() -> None:
    req = protocol.parse_request({"v": protocol.SCHEMA_VERSION, "id": 3, "method": "ping"})
    assert (req.id, req.method, req.params) == (3, "ping", {})
    other = protocol.SCHEMA_VERSION + 1
    with pytest.raises(protocol.SchemaMismatch, match=f"schema version {protocol.SCHEMA_VERSION}"):
        protocol.parse_request({"v": other, "id": 1, "method": "ping"})
    with pytest.raises(protocol.SchemaMismatch):
        protocol.parse_request({"id": 1, "method": "ping"})
    with pytest.raises(protocol.ProtocolError, match="unknown method"):
        protocol.parse_request({"v": protocol.SCHEMA_VERSION, "id": 1, "method": "nope"})
    with pytest.raises(protocol.ProtocolError, match="'id'"):
        protocol.parse_request({"v": protocol.SCHEMA_VERSION, "id": True, "method": "ping"})
    with pytest.raises(protocol.ProtocolError, match="'params'"):
        protocol.parse_request(
            {"v": protocol.SCHEMA_VERSION, "id": 1, "method": "ping", "params": [1]}
        )
    with pytest.raises(protocol.ProtocolError, match="not JSON"):
        protocol.decode(b"\xff\xfe")
    # errors travel by type name and come back as the same exception
    line = protocol.error(5, BadInput("bad k"))
    message = protocol.decode(line)
    with pytest.raises(BadInput, match="bad k"):
        protocol.raise_error(message["error"])
    with pytest.raises(protocol.DaemonError, match="boom"):
        protocol.raise_error(protocol.decode(protocol.error(1, RuntimeError("boom")))["error"])


def test_a_deep_data_dir_gets_a_short_private_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    rt = runtime(Settings(home=deep))
    assert len(str(rt.socket)) <= MAX_SOCKET_PATH
    assert rt.log.is_relative_to(deep)  # only the socket moves
    assert runtime(Settings(home=deep)).socket == rt.socket  # stable for one home


# ---------------------------------------------------------------------- the query gate


def test_the_writer_waits_for_queries_in_flight() -> None:
    gate = QueryGate()
    waited: list[float] = []

    def writer() -> None:
        started = time.monotonic()
        gate.wait_idle(timeout=5)
        waited.append(time.monotonic() - started)

    with gate:
        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(0.3)
    thread.join()
    assert waited[0] >= 0.25


# ---------------------------------------------------------------------- the service, in-process


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    settings = Settings(home=tmp_path / "home", model="fake")
    settings.home.mkdir()
    s = Service(settings, runtime(settings))
    s.start()
    yield s
    s.stop()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "repo", root)
    return root


def _names(svc: Service, root: Path, query: str) -> set[str]:
    results, _ = svc.search(root, [query], SearchOptions(k=20), None)
    return {h.name for h in results[0]}


def test_many_pending_paths_collapse_into_one_whole_repository_pass(
    svc: Service, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r, _ = svc.add(str(repo))
    assert svc.wait(repo, 30)
    with svc._lock:  # hold the writer off while the events pile up
        svc.notify(r, {f"f{i}.py" for i in range(service.MAX_PENDING_SCOPES)})
        assert len(r.pending) == service.MAX_PENDING_SCOPES
        svc.notify(r, {"one-more.py"})
        assert r.pending == {WHOLE_REPO}  # bounded: one pass instead of an endless queue
    assert svc.wait(repo, 30)


def test_a_repository_that_cannot_be_watched_is_rescanned(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_watch(*args: object, **kw: object) -> None:
        raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr(writer, "RepoWatcher", no_watch)
    monkeypatch.setattr(writer, "RESCAN_S", 0.5)
    settings = Settings(home=tmp_path / "home", model="fake")
    settings.home.mkdir()
    svc = Service(settings, runtime(settings))
    svc.start()
    try:
        svc.add(str(repo))
        deadline = time.monotonic() + 20
        while (info := svc.status(repo).repos[0]).files < 7:
            assert time.monotonic() < deadline, "the first index did not finish"
            time.sleep(0.05)
        assert not info.watching and "inotify watch limit" in info.error
        (repo / "polled.py").write_text("def polled_marker():\n    return 1\n")
        deadline = time.monotonic() + 20
        while "polled_marker" not in _names(svc, repo, "polled marker"):
            assert time.monotonic() < deadline, "the periodic rescan did not pick up the file"
            time.sleep(0.1)
    finally:
        svc.stop()


def test_remove_and_unknown_repositories(svc: Service, repo: Path, tmp_path: Path) -> None:
    svc.add(str(repo))
    assert svc.wait(repo, 30)
    with pytest.raises(BadInput, match="not a watched repository"):
        svc.remove(str(tmp_path / "elsewhere"))
    svc.remove(str(repo))
    assert svc.status().repos == []
    assert repo not in registry.load(runtime(svc.settings).repos)
    # removed sticks: searching it does not watch it again, `add` does
    with pytest.raises(BadInput, match="was removed with `codesearch remove`"):
        svc.search(repo, ["retry backoff"], SearchOptions(k=3), None)
    assert svc.status().repos == []
    svc.add(str(repo))
    assert svc.wait(repo, 30)
    results, _ = svc.search(repo, ["retry backoff"], SearchOptions(k=3), None)
    assert results[0]
