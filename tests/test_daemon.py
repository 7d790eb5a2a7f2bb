"""The daemon, for real: a detached process, its socket, watchdog events in temporary
repositories, kill -9 and restarts. Queries go through the same client the faces use."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_helpers import Daemon, eventually

from codesearch.config import Settings
from codesearch.daemon import lifecycle, protocol
from codesearch.daemon.client import Client
from codesearch.daemon.protocol import SchemaMismatch
from codesearch.daemon.runtime import runtime
from codesearch.types import BadInput

FIXTURES = Path(__file__).parent / "fixtures"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def func(name: str) -> str:
    words = name.replace("_", " ")
    return f'def {name}(value):\n    """{words} of the value."""\n    return value\n'


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon (real MiniLM) for the watching tests: each uses its own repository."""
    daemon = Daemon(tmp_path_factory.mktemp("shared-home")).start()
    yield daemon
    daemon.stop()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(FIXTURES / "repo", root)
    return root


# ---------------------------------------------------------------------- watching


def test_edit_atomic_save_delete_and_rename_are_seen(shared: Daemon, repo: Path) -> None:
    write(repo / "src/marker.py", func("alpha_walrus"))
    shared.add(repo)
    assert "src/marker.py" in shared.paths(repo, "alpha walrus")

    # an edit in place
    write(repo / "src/marker.py", func("beta_walrus"))
    eventually(lambda: "src/marker.py" in shared.paths(repo, "beta walrus"), what="edit")
    assert all(h["name"] != "alpha_walrus" for h in shared.search(repo, "alpha walrus", k=20))

    # an editor's atomic save: write a temp file, rename it onto the target
    tmp = repo / "src/.marker.py.swp"
    write(tmp, func("gamma_walrus"))
    os.replace(tmp, repo / "src/marker.py")
    eventually(lambda: "src/marker.py" in shared.paths(repo, "gamma walrus"), what="atomic save")
    assert "src/.marker.py.swp" not in shared.paths(repo, "gamma walrus")

    # a rename
    (repo / "src/marker.py").rename(repo / "src/renamed.py")
    eventually(
        lambda: (
            shared.paths(repo, "gamma walrus") >= {"src/renamed.py"}
            and "src/marker.py" not in shared.paths(repo, "gamma walrus")
        ),
        what="rename",
    )

    # a delete
    (repo / "src/renamed.py").unlink()
    eventually(lambda: "src/renamed.py" not in shared.paths(repo, "gamma walrus"), what="delete")
    shared.wait(repo)
    assert shared.repo_status(repo)["files"] == 7


def test_folders_created_moved_and_deleted(shared: Daemon, repo: Path) -> None:
    shared.add(repo)
    # a new folder with a file written right after it ("created" only)
    write(repo / "pkg/deep/mod.py", func("otter_lantern"))
    eventually(lambda: "pkg/deep/mod.py" in shared.paths(repo, "otter lantern"), what="new folder")
    # a folder rename moves every file in it
    (repo / "pkg").rename(repo / "lib")
    eventually(
        lambda: (
            shared.paths(repo, "otter lantern") & {"lib/deep/mod.py", "pkg/deep/mod.py"}
            == {"lib/deep/mod.py"}
        ),
        what="folder move",
    )
    # a folder moved out of the repository is gone from the index
    shutil.move(repo / "lib", repo.parent / "outside-lib")
    eventually(lambda: "lib/deep/mod.py" not in shared.paths(repo, "otter lantern"), what="out")
    # and a folder deleted with its files
    shutil.rmtree(repo / "src")
    eventually(lambda: not any(p.startswith("src/") for p in shared.paths(repo, "retry")))


def test_gitignore_edits_move_files_in_and_out(shared: Daemon, repo: Path) -> None:
    write(repo / "notes/ferret.py", func("ferret_compass"))
    shared.add(repo)
    assert "notes/ferret.py" in shared.paths(repo, "ferret compass")
    write(repo / ".gitignore", "notes/\n")
    eventually(lambda: "notes/ferret.py" not in shared.paths(repo, "ferret compass"), what="out")
    write(repo / ".gitignore", "# nothing ignored now\n")
    eventually(lambda: "notes/ferret.py" in shared.paths(repo, "ferret compass"), what="back in")


def test_bulk_change_is_one_batch_and_git_or_ignored_events_cost_nothing(
    shared: Daemon, repo: Path
) -> None:
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    write(repo / ".gitignore", "build/\n")
    write(repo / "build/old.py", func("ignored_item_old"))
    shared.add(repo)
    shared.wait(repo)
    before = shared.repo_status(repo)["updates"]

    # like a `git checkout`: hundreds of files changed at once
    for i in range(400):
        write(repo / f"gen/m{i // 50}/f{i}.py", func(f"bulk_item_{i}"))
    eventually(lambda: shared.repo_status(repo)["files"] >= 408, timeout=120, what="bulk")
    shared.wait(repo)
    batches = shared.repo_status(repo)["updates"] - before
    assert 1 <= batches <= 4, f"{batches} batches for one bulk change"

    # churn inside .git/ and inside an ignored folder: no index run at all
    before = shared.repo_status(repo)["updates"]
    for i in range(50):
        write(repo / f".git/objects/aa/obj{i}", "x" * 100)
        write(repo / f"build/out{i}.py", func(f"ignored_item_{i}"))
    time.sleep(1.0)
    shared.wait(repo)
    assert shared.repo_status(repo)["updates"] == before
    assert not any(p.startswith("build/") for p in shared.paths(repo, "ignored item"))


def test_a_file_that_vanishes_before_it_is_read(shared: Daemon, repo: Path) -> None:
    shared.add(repo)
    for i in range(20):  # created and deleted faster than the debounce
        path = repo / f"flash{i}.py"
        write(path, func(f"flash_{i}"))
        path.unlink()
    write(repo / "kept.py", func("kept_marker"))
    eventually(lambda: "kept.py" in shared.paths(repo, "kept marker"))
    shared.wait(repo)
    info = shared.repo_status(repo)
    assert info["files"] == 8 and info["state"] == "idle" and not info["error"]


def test_queries_answer_while_another_repo_indexes(
    shared: Daemon, repo: Path, tmp_path: Path
) -> None:
    shared.add(repo)
    big = tmp_path / "big"
    for i in range(300):
        write(big / f"m{i}.py", func(f"big_function_{i}") + "\n" + func(f"other_function_{i}"))
    shared.add(big, wait=False)
    answered_while_indexing = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            for _ in range(15):
                hits = shared.search(repo, "retry backoff")
                assert hits and hits[0]["path"] == "src/app/retry.py"
                if shared.repo_status(big)["state"] in ("queued", "indexing"):
                    answered_while_indexing.append(1)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert answered_while_indexing
    shared.wait(big)
    assert shared.repo_status(big)["files"] == 300


def test_hint_and_reindex_requests(shared: Daemon, repo: Path) -> None:
    shared.add(repo)
    assert shared.call("hint", {"paths": [str(repo / "src/app/auth.py")]})["queued"] == 1
    assert shared.call("reindex", {"path": str(repo), "wait": True})["root"] == str(repo)
    assert shared.repo_status(repo)["state"] == "idle"


# ---------------------------------------------------------------------- the transport


def test_socket_is_private_and_one_daemon_per_user(own: Daemon) -> None:
    own.start()
    rt = runtime(own.settings)
    assert stat.S_IMODE(rt.run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(rt.socket.stat().st_mode) == 0o600
    again = Daemon(own.settings.home).start()  # a second start reports the running one
    assert again.pid == own.pid
    out = subprocess.run(
        [sys.executable, "-m", "codesearch.daemon"],
        env={**os.environ, "CODESEARCH_HOME": str(own.settings.home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and f"already running (pid {own.pid})" in out.stderr
    assert own.call("ping")["pid"] == own.pid  # and the first one is unharmed


def test_bad_requests_get_clear_errors_and_the_daemon_stays_up(own: Daemon) -> None:
    own.start()
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(runtime(own.settings).socket))
    reader = sock.makefile("rb")

    def send(raw: bytes) -> dict[str, object]:
        sock.sendall(raw.replace(b'"v": V', b'"v": %d' % protocol.SCHEMA_VERSION))
        return json.loads(reader.readline())

    answer = send(b'{"v": 99, "id": 1, "method": "ping"}\n')
    assert answer["error"]["type"] == "SchemaMismatch"  # type: ignore[index]
    message = answer["error"]["message"]  # type: ignore[index]
    assert f"schema version {protocol.SCHEMA_VERSION}" in message
    assert send(b"this is not json\n")["error"]["type"] == "ProtocolError"  # type: ignore[index]
    assert send(b"[1, 2]\n")["error"]["type"] == "ProtocolError"  # type: ignore[index]
    answer = send(b'{"v": V, "id": 2, "method": "drop_tables"}\n')
    assert "unknown method" in answer["error"]["message"]  # type: ignore[index]
    answer = send(
        b'{"v": V, "id": 3, "method": "search", "params": {"queries": ["x"], "k": "9"}}\n'
    )
    assert answer["error"]["type"] == "BadInput"  # type: ignore[index]
    answer = send(b'{"v": V, "id": 4, "method": "ping"}\n')  # the same connection still works
    assert answer["result"]["pid"] == own.pid  # type: ignore[index]
    sock.close()

    with Client.connect(own.settings) as client:
        with pytest.raises(BadInput, match="no such directory"):
            client.call("add", {"path": "/definitely/not/here"})
        with pytest.raises(BadInput, match="'queries'"):
            client.call("search", {"queries": []})


def test_a_daemon_with_another_schema_is_reported_and_can_be_restarted(
    own: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    own.start()
    old_pid = own.pid
    with monkeypatch.context() as patch:  # this client is "newer" than the running daemon
        patch.setattr(protocol, "SCHEMA_VERSION", protocol.SCHEMA_VERSION + 1)
        with Client.connect(own.settings) as client, pytest.raises(SchemaMismatch, match="rest"):
            client.call("ping")
        own.stop()  # `daemon restart` must work across versions: stop by pid
        assert not lifecycle._alive(old_pid)


def test_a_stale_socket_from_a_dead_daemon_is_replaced(own: Daemon) -> None:
    rt = runtime(own.settings)
    rt.run_dir.mkdir(parents=True, mode=0o700)
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(rt.socket))  # a socket file that nobody listens on any more
    dead.close()
    assert rt.socket.exists()
    own.start()
    assert own.call("ping")["pid"] == own.pid
    own.kill9()  # a kill -9 leaves its socket behind too
    assert rt.socket.exists()
    own.start()
    assert own.call("ping")["pid"] == own.pid


# ---------------------------------------------------------------------- restarts and crashes


def test_catch_up_after_restart_and_a_vanished_repository(own: Daemon, repo: Path) -> None:
    own.start()
    own.add(repo)
    own.stop()
    write(repo / "src/app/auth.py", func("heron_ledger"))  # changed while down
    (repo / "svc/mail.go").unlink()
    write(repo / "added.py", func("pelican_anchor"))
    gone = repo.parent / "gone"
    shutil.copytree(FIXTURES / "repo", gone)
    own.start()
    own.add(gone)
    own.stop()
    shutil.rmtree(gone)

    own.start()
    own.wait(repo)
    assert "src/app/auth.py" in own.paths(repo, "heron ledger")
    assert "added.py" in own.paths(repo, "pelican anchor")
    assert not any(p.startswith("svc/") for p in own.paths(repo, "send mail"))
    info = own.repo_status(gone)
    assert info["state"] == "missing" and "gone" in info["error"]
    assert own.call("ping")["pid"] == own.pid


def _fresh_index_facts(repo: Path, tmp_path: Path) -> tuple[set[tuple], set[tuple]]:
    """Files and chunks of a clean, in-process index of ``repo`` (the reference)."""
    from codesearch.engine import index_repo

    settings = Settings(home=tmp_path / "reference-home")
    index_repo(repo, settings)
    return _index_facts(settings, repo)


def _index_facts(settings: Settings, repo: Path) -> tuple[set[tuple], set[tuple]]:
    from codesearch.store import Store

    with Store.open(settings.index_path(repo)) as store:
        assert store.check() == []
        files = {(s.path, s.content_hash) for s in store.file_states().values()}
        chunks = {
            (c.chunk.path, c.chunk.start_line, c.chunk.end_line, c.chunk.name, c.chunk.kind)
            for c in store.all_chunks()
        }
    return files, chunks


def test_kill_9_during_indexing_then_restart_is_consistent(own: Daemon, tmp_path: Path) -> None:
    big = tmp_path / "big"
    for i in range(150):
        write(big / f"pkg{i % 5}/m{i}.py", func(f"crash_fn_{i}") + "\n" + func(f"spare_fn_{i}"))
    own.start()
    own.add(big, wait=False)
    for fraction in (0.2, 0.6):  # killed early, and late, in the run

        def far_enough(fraction: float = fraction) -> bool:
            p = own.repo_status(big).get("progress") or {}
            total = p.get("files_total", 0)
            return bool(total) and p["files_done"] >= fraction * total

        eventually(far_enough, timeout=120, what="indexing progress")
        own.kill9()
        # the files change while it is down
        write(big / f"pkg0/m{int(fraction * 100)}.py", func(f"changed_fn_{fraction}"))
        own.start()
    own.kill9()  # and once right after a start, while the model loads
    own.start()
    own.wait(big, timeout=300)
    assert _index_facts(own.settings, big) == _fresh_index_facts(big, tmp_path)


def test_a_corrupted_index_is_detected_and_rebuilt(own: Daemon, repo: Path) -> None:
    own.start()
    own.add(repo)
    own.stop()
    index = own.settings.index_path(repo)
    data = bytearray(index.read_bytes())
    for offset in range(8192, len(data) - 4096, 4096):  # trash every page after the second
        data[offset : offset + 512] = os.urandom(512)
    index.write_bytes(bytes(data))

    own.start()
    own.wait(repo)
    info = own.repo_status(repo)
    assert info["notice"] == ""  # said while it was rebuilt; no longer true once it is
    assert info["files"] == 7
    assert own.search(repo, "retry backoff")[0]["path"] == "src/app/retry.py"
    log = runtime(own.settings).log.read_text()
    assert "index damaged" in log


# ---------------------------------------------------------------------- the CLI as a client


def test_cli_starts_the_daemon_on_first_use_and_goes_through_it(
    own: Daemon, repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from codesearch.cli import main

    monkeypatch.setenv("CODESEARCH_HOME", str(own.settings.home))
    monkeypatch.setenv("CODESEARCH_DAEMON", "1")
    assert main(["index", str(repo), "-q"]) == 0
    monkeypatch.chdir(repo / "src")
    assert main(["--json", "-k", "3", "retry backoff"]) == 0
    captured = capsys.readouterr()
    assert "starting the codesearch daemon" in captured.err
    assert "now watching" in captured.err  # an indexed repository searched: kept fresh
    assert json.loads(captured.out)["results"][0]["path"] == "src/app/retry.py"
    info = lifecycle.running(own.settings)
    assert info is not None
    own.pid = int(info["pid"])
    assert main(["repos", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["repos"][0]["root"] == str(repo)

    # the status of a watched repository, as the daemon sees it
    own.wait(repo)
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["daemon"]["pid"] == own.pid and status["daemon"]["rss_bytes"] > 10_000_000
    assert {"uptime_s", "queue_depth"} <= status["daemon"].keys()
    (info,) = status["repos"]
    assert info["state"] == "idle" and info["watching"] and info["files"] == 7
    assert info["model"].startswith("minilm") and info["dim"] == 384 and info["index_bytes"] > 0
    assert info["pending"] == 0 and info["last_update"] > time.time() - 300

    # the client process imports neither torch nor transformers (nor numpy)
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "codesearch.cli", "--json", "retry backoff"],
        cwd=repo,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["results"][0]["path"] == "src/app/retry.py"
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "codesearch.daemon.client" in imported
    heavy = {m for m in imported if m.split(".")[0] in ("torch", "transformers", "numpy")}
    assert not heavy, sorted(heavy)[:5]

    # --no-daemon answers in-process; `remove` stops watching
    assert main(["search", "--no-daemon", "--json", "retry backoff"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["path"] == "src/app/retry.py"
    assert main(["remove", str(repo)]) == 0
    assert "stopped watching" in capsys.readouterr().out
    assert own.call("repos")["repos"] == []


def test_cli_daemon_commands(
    own: Daemon,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from codesearch.cli import main

    monkeypatch.setenv("CODESEARCH_HOME", str(own.settings.home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert main(["daemon", "status"]) == 1
    assert "not running" in capsys.readouterr().out
    assert main(["daemon", "start"]) == 0
    assert "started" in capsys.readouterr().out
    own.pid = int(lifecycle.running(own.settings)["pid"])  # type: ignore[index]
    assert main(["daemon", "start"]) == 0
    assert f"already running (pid {own.pid}" in capsys.readouterr().out
    assert main(["daemon", "status"]) == 0
    assert f"running (pid {own.pid}" in capsys.readouterr().out
    assert main(["daemon", "logs", "-n", "5"]) == 0
    assert "listening on" in capsys.readouterr().out
    assert main(["daemon", "restart"]) == 0
    assert "restarted" in capsys.readouterr().out
    assert not lifecycle._alive(own.pid)
    assert main(["daemon", "stop"]) == 0
    assert "stopped" in capsys.readouterr().out
    assert main(["daemon", "stop"]) == 0
    assert "was not running" in capsys.readouterr().out

    assert main(["daemon", "install"]) == 0
    unit = tmp_path / "config/systemd/user/codesearch.service"
    text = unit.read_text()
    assert f"ExecStart={sys.executable} -m codesearch.daemon" in text
    assert f"CODESEARCH_HOME={own.settings.home}" in text
    assert str(unit) in capsys.readouterr().out


def test_an_index_rebuilt_by_another_process_is_reopened(shared: Daemon, repo: Path) -> None:
    from codesearch.engine import index_repo

    shared.add(repo)
    assert shared.search(repo, "retry backoff")[0]["path"] == "src/app/retry.py"
    index_repo(repo, shared.settings, rebuild=True)  # `codesearch index --rebuild`, in-process
    write(repo / "src/walrus.py", func("walrus_compass"))
    eventually(lambda: "src/walrus.py" in shared.paths(repo, "walrus compass"), what="reopen")
    shared.wait(repo)
    assert shared.repo_status(repo)["files"] == 8


def test_a_failed_update_is_reported_and_retried_nothing_lost(shared: Daemon, repo: Path) -> None:
    import sqlean

    shared.add(repo)
    holder = sqlean.connect(str(shared.settings.index_path(repo)), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the index
    try:
        write(repo / "src/locked.py", func("llama_harness"))
        info = eventually(
            lambda: (s := shared.repo_status(repo))["state"] == "error" and s, timeout=60
        )
        assert "locked" in info["error"] and "retrying" in info["error"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    eventually(lambda: "src/locked.py" in shared.paths(repo, "llama harness"), timeout=60)
    assert shared.repo_status(repo)["error"] == ""


def test_cli_restarts_a_daemon_of_another_version(
    own: Daemon, repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from codesearch.cli import main

    monkeypatch.setenv("CODESEARCH_HOME", str(own.settings.home))
    monkeypatch.setenv("CODESEARCH_DAEMON", "1")
    own.start()
    own.add(repo)
    old = own.pid
    with monkeypatch.context() as patch:
        patch.setattr(protocol, "SCHEMA_VERSION", protocol.SCHEMA_VERSION + 1)  # a newer client
        # the new daemon is this test's codesearch (the real schema) again, so the retry still
        # disagrees: the point is that the old one was stopped and the error is one line
        assert main(["search", "--repo", str(repo), "retry backoff"]) == 2
    err = capsys.readouterr().err
    assert "from another codesearch version: restarting it" in err
    assert "codesearch daemon restart" in err.splitlines()[-1]
    assert not lifecycle._alive(old)
    own.pid = int(lifecycle.running(own.settings)["pid"])  # type: ignore[index]
    assert own.pid != old
