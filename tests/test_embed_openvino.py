"""The OpenVINO runtime of the BERT-like models (the default on the CPU): the real
packaged weights converted once by a child process, then run without torch; vectors equal to
the torch runtime's, order kept through parallel requests, the export reused, a broken one made
again; what `auto` picks, and torch when the conversion fails."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from codesearch.embed import load_embedder
from codesearch.embed.minilm import runtime
from codesearch.embed.minilm.embedder import TransformersEmbedder
from codesearch.embed.minilm.files import minilm_code_adapter, packaged_minilm_dir
from codesearch.embed.minilm.ov_embedder import OpenVinoEmbedder
from codesearch.types import BadInput, ModelUnavailable

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def openvino_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here asks for it (as auto does on the CPU)."""
    monkeypatch.setenv("CODESEARCH_EMBED_RUNTIME", "openvino")


TEXTS = [
    "python function parse_header\ndef parse_header(line):\n    key, _, val = line.partition(':')",
    "where are the retry delays computed",
    "go function (c *Command) Execute\nfunc (c *Command) Execute() error {\n\treturn c.run()\n}",
    "x",
    "def fetch(url, attempts=5):\n" + "    retry(url)  # with backoff\n" * 60,  # > 128 tokens
    "class UserRepository:\n    def find_by_email(self, email): ...",
    "SELECT name FROM users WHERE id = ?",
]


def _reference() -> np.ndarray:
    """The torch runtime in fp32: what the vectors must be."""
    folder, adapter = packaged_minilm_dir(), minilm_code_adapter()
    assert folder is not None and adapter is not None
    torch_runtime = TransformersEmbedder(folder, precision="fp32", max_tokens=128, adapter=adapter)
    return torch_runtime.embed_documents(TEXTS)


def test_openvino_gives_the_torch_runtimes_vectors() -> None:
    embedder = load_embedder("minilm-code", batch_size=2)  # requests of 2: several in flight
    assert isinstance(embedder, OpenVinoEmbedder)
    assert embedder.model_id.startswith("minilm-code:all-MiniLM-L6-v2+lora-")
    assert (embedder.dim, embedder.max_tokens) == (384, 128)
    got = embedder.embed_documents(TEXTS)
    assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    cosine = (got * _reference()).sum(axis=1)
    assert cosine.min() > 0.9995, cosine  # bf16 on a CPU that has it: rounding only
    # each text alone (the one-request path) is the same vector as in the batch
    alone = np.concatenate([embedder.embed_queries([t]) for t in TEXTS])
    assert (alone * got).sum(axis=1).min() > 0.9999
    assert embedder.count_tokens("word " * 300) == 300  # counting is not truncated
    assert embedder.embed_documents([]).shape == (0, 384)


def test_a_process_that_embeds_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "from codesearch.embed import load_embedder\n"
        "e = load_embedder('minilm-code')\n"
        "e.embed_documents(['def f(): pass'] * 40); e.embed_queries(['where is auth'])\n"
        "print(type(e).__name__, 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["OpenVinoEmbedder", "False", "False"]


def test_a_question_is_answered_while_documents_are_embedded() -> None:
    embedder = load_embedder("minilm-code", batch_size=4)
    expected = embedder.embed_queries(["where is auth handled"])
    answers: list[np.ndarray] = []
    worker = threading.Thread(target=lambda: embedder.embed_documents(TEXTS * 60))
    worker.start()
    while worker.is_alive() and len(answers) < 20:
        answers.append(embedder.embed_queries(["where is auth handled"]))
    worker.join()
    assert answers and all(np.allclose(a, expected, atol=1e-5) for a in answers)


def test_the_export_is_made_once_and_remade_when_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODESEARCH_CACHE", str(tmp_path / "cache"))
    first = load_embedder("minilm")
    (folder,) = (tmp_path / "cache" / "openvino").iterdir()
    assert {p.name for p in folder.iterdir()} == {
        "model.xml",
        "model.bin",
        "tokenizer.json",
        "meta.json",
    }
    vectors = first.embed_documents(TEXTS)

    calls: list[list[str]] = []
    real_run = subprocess.run

    def counted(command: list[str], **kwargs: Any) -> Any:
        calls.append(command)
        return real_run(command, **kwargs)

    monkeypatch.setattr(runtime.subprocess, "run", counted)
    again = load_embedder("minilm")
    assert calls == []  # read from the cache: no conversion
    assert np.allclose(again.embed_documents(TEXTS), vectors, atol=1e-6)

    (folder / "model.bin").write_bytes(b"truncated")  # a disk that filled up mid-write
    remade = load_embedder("minilm")
    assert len(calls) == 1
    assert np.allclose(remade.embed_documents(TEXTS), vectors, atol=1e-6)


def test_the_runtime_is_chosen_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODESEARCH_EMBED_RUNTIME")
    # auto: the CPU runs on OpenVINO in either precision, a GPU on torch
    monkeypatch.setenv("CODESEARCH_EMBED_PRECISION", "fp32")
    fp32 = load_embedder("minilm")
    assert isinstance(fp32, OpenVinoEmbedder) and fp32.precision == "fp32"
    assert runtime.chosen_runtime("cuda") == "torch"
    monkeypatch.setenv("CODESEARCH_EMBED_PRECISION", "bf16")
    bf16 = load_embedder("minilm")
    assert isinstance(bf16, OpenVinoEmbedder) and bf16.precision == "bf16"
    monkeypatch.delenv("CODESEARCH_EMBED_PRECISION")
    native = runtime.cpu_has_native_bf16()
    chosen = load_embedder("minilm")
    assert isinstance(chosen, OpenVinoEmbedder)
    assert chosen.precision == ("bf16" if native else "fp32")
    monkeypatch.setenv("CODESEARCH_EMBED_RUNTIME", "torch")
    monkeypatch.setenv("CODESEARCH_EMBED_PRECISION", "fp32")
    assert isinstance(load_embedder("minilm"), TransformersEmbedder)
    monkeypatch.setenv("CODESEARCH_EMBED_RUNTIME", "tensorrt")
    with pytest.raises(BadInput, match=r"CODESEARCH_EMBED_RUNTIME='tensorrt': use one of auto"):
        load_embedder("minilm")
    monkeypatch.setenv("CODESEARCH_EMBED_RUNTIME", "openvino")
    assert runtime.chosen_runtime("cpu") == "openvino"
    with pytest.raises(BadInput, match="runs on the CPU"):
        runtime.chosen_runtime("cuda")


def test_a_conversion_that_fails_gives_way_to_torch_unless_openvino_was_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CODESEARCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CODESEARCH_EMBED_PRECISION", "fp32")

    def failing(*args: Any, **kwargs: Any) -> Any:
        return subprocess.CompletedProcess(args[0], 1, "", "OSError: no space left on device")

    monkeypatch.setattr(runtime.subprocess, "run", failing)
    monkeypatch.delenv("CODESEARCH_EMBED_RUNTIME")  # auto
    embedder = load_embedder("minilm")
    assert isinstance(embedder, TransformersEmbedder) and embedder.precision == "fp32"
    assert embedder.embed_queries(["x"]).shape == (1, 384)
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("no space left on device" in m and "on torch instead" in m for m in said), said

    monkeypatch.setenv("CODESEARCH_EMBED_RUNTIME", "openvino")  # asked for: an error
    with pytest.raises(ModelUnavailable, match="no space left on device"):
        load_embedder("minilm")


def test_the_converter_sends_no_telemetry(tmp_path: Path) -> None:
    """OpenVINO's converter reports usage unless told not to: the export process blocks it."""
    folder = packaged_minilm_dir()
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from codesearch.embed.minilm.ov_export import export\n"
        f"export(Path({str(folder)!r}), Path({str(tmp_path / 'out')!r}), model_id='t')\n"
        "print(sys.modules.get('openvino_telemetry'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "None"
    assert (tmp_path / "out" / "meta.json").is_file()
