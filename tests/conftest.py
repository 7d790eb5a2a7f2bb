"""Shared fixtures: an isolated CODESEARCH_HOME, fixture repositories, the real MiniLM; and the
test-only model ``fake`` (tests/fake_embedder.py), registered for the whole session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_embedder import register as register_fake

register_fake()  # `--model fake`, load_embedder("fake"): in this process only

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One codesearch cache folder (the OpenVINO exports) for the whole session, not the
    user's: every process the tests start inherits it."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CODESEARCH_CACHE", str(cache))
        yield cache


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own data dir: no test touches the user's real indexes."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("CODESEARCH_HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("CODESEARCH_MODEL", raising=False)
    # Searches stay in-process unless a test starts a daemon (tests/test_daemon.py).
    monkeypatch.setenv("CODESEARCH_DAEMON", "0")
    return home


@pytest.fixture
def own(tmp_path: Path) -> Iterator[object]:
    """A daemon (tests/daemon_helpers.py) in a data dir of its own, not started; stopped at
    the end whatever the test did."""
    from daemon_helpers import Daemon

    daemon = Daemon(tmp_path / "home")
    yield daemon
    daemon.stop()


@pytest.fixture
def demo_repo(tmp_path: Path) -> Path:
    """A copy of tests/fixtures/repo (several languages), as a git-less folder."""
    dest = tmp_path / "demo"
    shutil.copytree(FIXTURES / "repo", dest)
    return dest


@pytest.fixture(scope="session")
def minilm() -> Iterator[object]:
    """The packaged all-MiniLM-L6-v2, loaded once for the whole session."""
    from codesearch.embed import load_embedder

    yield load_embedder("minilm")
