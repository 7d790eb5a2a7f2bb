"""One writer per index, with a real daemon and real `codesearch` processes: `index` hands
its work to a running daemon (a run in progress is followed, not repeated, and its progress
is drawn), a no-op `index` and `embed` are answered by the warm daemon without loading a
model in the CLI, and `index --rebuild` leaves the daemon no descriptor on a deleted file.

Embeddings are counted with the scripted remote server of tests/test_remote_parts.py; the
no-model-in-the-CLI tests use the daemon's real MiniLM."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_helpers import Daemon, eventually
from test_daemon_cancel import cli, daemon, indexed_files, make_repo, server, watched
from test_remote_parts import FakeServer

from codesearch.store import Store

__all__ = ["daemon", "server"]  # fixtures

ROOT = Path(__file__).resolve().parent.parent


def cli_on_terminal(home: Path, *args: str, timeout: float = 120) -> tuple[int, str]:
    """`codesearch ARGS` with its stderr on a pseudo-terminal (progress bars draw there)."""
    master, slave = os.openpty()
    env = {**os.environ, "CODESEARCH_HOME": str(home), "CODESEARCH_DAEMON": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "codesearch.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the other side is closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    rc = proc.wait(timeout=timeout)
    reader.join(timeout=10)
    os.close(master)
    return rc, b"".join(chunks).decode(errors="replace")


def deleted_index_fds(pid: int, home: Path) -> list[str]:
    """What the process ``pid`` holds open of index files that were deleted."""
    held = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith(str(home)) and target.endswith("(deleted)"):
            held.append(target)
    return held


# ---------------------------------------------------------------------- index hands over


def test_index_while_the_daemon_indexes_embeds_once_and_shows_progress(
    daemon: Daemon, server: FakeServer, tmp_path: Path
) -> None:
    server.delay = 0.15  # 8 inputs per request: 20 slow requests
    repo, index = watched(daemon, tmp_path / "repo", 160, wait=False)
    eventually(lambda: indexed_files(index) >= 8, timeout=60, what="the daemon indexing")

    rc, err = cli_on_terminal(daemon.settings.home, "index", str(repo))
    assert rc == 0, err
    assert "indexing [" in err and "files" in err, err  # the daemon's progress, drawn here
    assert f"indexed {repo.resolve()}: 160 files" in err, err
    assert indexed_files(index) == 160
    # every chunk was embedded once: by the daemon only
    counts = Counter(text for text in server.embedded if "Stage" in text)
    assert len(counts) == 160 and max(counts.values()) == 1, counts.most_common(3)

    # a no-op index: nothing embedded, by anyone
    asked = len(server.requests)
    out = cli(daemon.settings.home, "index", str(repo))
    assert out.returncode == 0, out.stderr
    assert "(0 updated, 160 unchanged" in out.stderr, out.stderr
    assert len(server.requests) == asked

    # --no-daemon: in this process, as before (a no-op here too)
    out = cli(daemon.settings.home, "index", "--no-daemon", str(repo))
    assert out.returncode == 0 and "160 unchanged" in out.stderr, out.stderr


def test_index_of_a_repository_the_daemon_does_not_watch_adds_it(
    daemon: Daemon, server: FakeServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", 5)
    daemon.start()
    out = cli(daemon.settings.home, "index", str(repo))
    assert out.returncode == 0, out.stderr
    assert "the daemon watches" in out.stderr and "5 files (5 updated" in out.stderr, out.stderr
    assert daemon.repo_status(repo.resolve())["state"] == "idle"

    # a removed repository stays removed: it is indexed in this process
    assert cli(daemon.settings.home, "remove", str(repo)).returncode == 0
    (repo / "gen" / "extra.py").write_text("def extra():\n    return 1\n")
    out = cli(daemon.settings.home, "index", str(repo))
    assert out.returncode == 0 and "(1 updated" in out.stderr, out.stderr
    assert daemon.call("status")["repos"] == []


def test_index_rebuild_leaves_the_daemon_no_descriptor_on_a_deleted_file(
    daemon: Daemon, server: FakeServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", 5)
    daemon.start()
    daemon.add(repo, wait=True)
    assert daemon.paths(repo, "stage")  # its reader is open too

    out = cli(daemon.settings.home, "index", "--rebuild", str(repo))
    assert out.returncode == 0, out.stderr
    assert "5 files (5 updated" in out.stderr, out.stderr  # all of it again, in a new file
    assert deleted_index_fds(daemon.pid, daemon.settings.home) == []
    assert daemon.paths(repo, "stage")  # and it answers from the new file
    assert deleted_index_fds(daemon.pid, daemon.settings.home) == []


# ---------------------------------------------------------------------- the warm model


NO_MODEL = (
    "import sys; sys.argv = ['codesearch', *sys.argv[1:]]\n"
    "from codesearch.cli import main\n"
    "rc = main()\n"
    "loaded = {'codesearch.embed.minilm.ov_embedder', 'codesearch.embed.minilm.embedder'}\n"
    "print('model loaded' if loaded & set(sys.modules) else 'no model', file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


@pytest.fixture
def minilm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    monkeypatch.delenv("CODESEARCH_MODEL", raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    d = Daemon(tmp_path / "home")
    yield d
    d.stop()


def test_a_no_op_index_and_embed_are_answered_by_the_warm_daemon(
    minilm: Daemon, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", 3)
    minilm.start()
    minilm.add(repo, wait=True)
    env = {**os.environ, "CODESEARCH_HOME": str(minilm.settings.home), "CODESEARCH_DAEMON": "1"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", NO_MODEL, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )

    out = run("index", str(repo))
    assert out.returncode == 0, out.stderr
    assert "3 unchanged" in out.stderr and "no model" in out.stderr, out.stderr

    out = run("embed", "retry backoff", "--query", "--json")
    assert out.returncode == 0, out.stderr
    assert "no model" in out.stderr, out.stderr
    import json

    answer = json.loads(out.stdout)
    assert answer["dim"] == 384 and len(answer["vector"]) == 384

    # the same vector as in-process (--no-daemon loads the model here)
    here = run("embed", "retry backoff", "--query", "--json", "--no-daemon")
    assert here.returncode == 0 and "model loaded" in here.stderr, here.stderr
    mine = json.loads(here.stdout)
    assert mine["model"] == answer["model"]
    assert max(abs(a - b) for a, b in zip(mine["vector"], answer["vector"], strict=True)) < 1e-4


def test_index_model_switches_the_daemons_index_to_that_model(
    daemon: Daemon, server: FakeServer, tmp_path: Path
) -> None:
    repo, index = watched(daemon, tmp_path / "repo", 5)
    assert daemon.call("status")["repos"][0]["model"].startswith("remote:")

    asked = len(server.requests)
    out = cli(daemon.settings.home, "index", "--model", "minilm", str(repo), timeout=300)
    assert out.returncode == 0, out.stderr
    # the daemon did it (the model changed, all of it again), not this process on the side
    assert "rebuilt: the model changed from remote:" in out.stderr, out.stderr
    assert "5 files (5 updated" in out.stderr, out.stderr
    assert len(server.requests) == asked  # the remote server embedded nothing more
    assert daemon.call("status")["repos"][0]["model"].startswith("minilm")
    with Store.open(index) as store:
        assert store.get_meta("model_spec") == "minilm"
    assert "gen/mod_003.py" in daemon.paths(repo, "Stage 3")
    assert indexed_files(index) == 5
