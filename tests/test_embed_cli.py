"""jina-v4 behind the registry and the CLI: names, folders, the HF cache, `codesearch embed`,
an index built and searched with it, the dim setting, `auto` and `codesearch models`.

Everything runs the tiny random checkpoint in the published layout (tests/jina_tiny.py), built
once for the module, on the CPU with one torch thread.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("peft")
torch = pytest.importorskip("torch")

from jina_tiny import MATRYOSHKA, PROJ_DIM, write_tiny_checkpoint  # noqa: E402

from codesearch import engine  # noqa: E402
from codesearch.cli import main  # noqa: E402
from codesearch.embed.jina import backend as jina_backend  # noqa: E402
from codesearch.embed.jina import build as jina_build  # noqa: E402
from codesearch.embed.jina import notices  # noqa: E402
from codesearch.embed.jina.backend import (  # noqa: E402
    JINA_CPU_NOTE,
    JINA_HUB_ID,
    find_jina_v4,
    is_jina_folder,
)
from codesearch.embed.jina.build import load_jina_v4  # noqa: E402
from codesearch.embed.jina.embedder import JinaV4Embedder  # noqa: E402
from codesearch.embed.jina.notices import LICENSE_MARKER  # noqa: E402
from codesearch.embed.minilm.files import packaged_minilm_dir  # noqa: E402
from codesearch.embed.registry import explain_auto, load_embedder, resolve_auto  # noqa: E402
from codesearch.types import BadInput, ModelUnavailable  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REAL_CUDA_CHECK = jina_backend.cuda_available
TEXT = "def fetch_with_retry(url, attempts=5):\n    return http_get(url)\n"


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread (the tiny model's ops are too small for two), also for the loads the
    registry does (load_jina_v4 would set every CPU). Restored for the other modules."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jina_build, "cpu_count", lambda: 1)
        yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _no_outside_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No weights unless a test provides them (an empty HF cache), no GPU unless a test says so,
    no dim setting, and no model cached by the engine from another test."""
    for var in ("CODESEARCH_EMBED_DIM", "CODESEARCH_JINA_V4", "HF_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    monkeypatch.setattr(jina_backend, "cuda_available", lambda: False)
    monkeypatch.setattr(engine, "_LOADED", {})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("jina") / "jina-tiny")


@pytest.fixture(scope="module")
def ref(tiny: Path) -> JinaV4Embedder:
    """The checkpoint loaded directly, to compare what the registry and the CLI give."""
    return load_jina_v4(tiny, device="cpu", notice=lambda _m: None, threads=1)


def _linked_copy(tiny: Path, folder: Path) -> Path:
    """``folder`` with every file of the checkpoint symlinked (the folder name is its own)."""
    for path in sorted(p for p in tiny.rglob("*") if p.is_file()):
        link = folder / path.relative_to(tiny)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
    return folder


def _fill_hf_cache(tiny: Path, hf_home: Path) -> Path:
    """jinaai/jina-embeddings-v4 in a Hugging Face cache, laid out as huggingface_hub does."""
    repo = hf_home / "hub" / "models--jinaai--jina-embeddings-v4"
    revision = "0123456789abcdef0123456789abcdef01234567"
    snapshot = _linked_copy(tiny, repo / "snapshots" / revision)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot


def _embed(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(["embed", *argv, "--json"]) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert set(out) in ({"model", "task", "dim", "vector"}, {"model", "task", "dim", "vectors"})
    return out


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("codesearch: error: "), err
    return err


# -- names, folders, the HF cache ----------------------------------------------------------------


def test_a_jina_folder_loads_through_load_jina_v4(tiny: Path, ref: JinaV4Embedder) -> None:
    assert is_jina_folder(tiny)
    minilm = packaged_minilm_dir()
    assert minilm is not None and not is_jina_folder(minilm)
    model = load_embedder(str(tiny))
    assert isinstance(model, JinaV4Embedder)
    # 1024 is not one of the tiny checkpoint's dims: it keeps its own default (the full 64)
    assert model.model_id == ref.model_id and model.model_id.endswith(":d64")
    np.testing.assert_allclose(model.embed_queries([TEXT]), ref.embed_queries([TEXT]), atol=1e-6)
    assert load_embedder(str(tiny), dim=16).model_id.endswith(":d16")
    with pytest.raises(BadInput, match=r"dim 100 is not one of \[8, 16, 32, 64\]") as info:
        load_embedder(str(tiny), dim=100)
    assert "\n" not in str(info.value)


def test_the_dim_setting_and_its_errors(
    tiny: Path, monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    monkeypatch.setenv("CODESEARCH_EMBED_DIM", "32")
    assert load_embedder(str(tiny)).dim == 32
    assert load_embedder(str(tiny), dim=8).dim == 8  # an explicit dim wins
    assert load_embedder("fake").dim == 64  # the setting is for Matryoshka models only
    monkeypatch.setenv("CODESEARCH_EMBED_DIM", "100")
    with pytest.raises(BadInput, match=r"\[8, 16, 32, 64\].*CODESEARCH_EMBED_DIM"):
        load_embedder(str(tiny))
    monkeypatch.delenv("CODESEARCH_EMBED_DIM")
    (isolated_home / "config.toml").write_text("embed_dim = 16\n")
    assert load_embedder(str(tiny)).dim == 16


def test_the_name_jina_v4_loads_the_folder_in_the_environment(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ModelUnavailable) as info:
        load_embedder("jina-v4")
    msg = str(info.value)
    assert "CODESEARCH_JINA_V4 is not set" in msg and str(tmp_path / "empty-hf" / "hub") in msg
    assert "--model minilm" in msg and "\n" not in msg

    monkeypatch.setenv("CODESEARCH_JINA_V4", str(tmp_path))  # a folder, but not a checkpoint
    with pytest.raises(ModelUnavailable, match=r"has no jina-embeddings-v4 config\.json"):
        load_embedder("jina-v4")
    monkeypatch.setenv("CODESEARCH_JINA_V4", str(tiny))
    model = load_embedder("jina-v4")
    assert isinstance(model, JinaV4Embedder)
    assert model.model_id.startswith("jina-v4:jina-tiny@")


def test_jina_v4_from_a_filled_hf_cache_with_the_license_notice(
    tiny: Path,
    ref: JinaV4Embedder,
    tmp_path: Path,
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    snapshot = _fill_hf_cache(tiny, tmp_path / "hf")
    assert find_jina_v4()[:2] == (snapshot, JINA_HUB_ID)
    for name in ("jina-v4", JINA_HUB_ID):  # the backend name, and the hub id itself
        model = load_embedder(name)
        assert isinstance(model, JinaV4Embedder)
        assert model.model_id.startswith(f"jina-v4:{JINA_HUB_ID}@")
        np.testing.assert_allclose(model.embed_documents([TEXT]), ref.embed_documents([TEXT]))
    err = capsys.readouterr().err
    # the name says these are the published weights: told once, remembered in the data dir
    assert err.count("CC-BY-NC-4.0") == 1 and "codesearch: jina-embeddings-v4 weights" in err
    assert (isolated_home / LICENSE_MARKER).is_file()


def test_the_license_notice_is_shown_once_across_processes(
    tiny: Path,
    tmp_path: Path,
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # config.py's rule: a checkpoint named jina-embeddings-v4 is the published one
    folder = _linked_copy(tiny, tmp_path / "jina-embeddings-v4")
    argv = ["embed", "x", "--query", "--model", str(folder)]
    notice = "codesearch: jina-embeddings-v4 weights are licensed CC-BY-NC-4.0"
    assert main(argv) == 0
    assert capsys.readouterr().err.count(notice) == 1
    assert (isolated_home / LICENSE_MARKER).is_file()
    monkeypatch.setattr(notices, "_shown", set())  # a new process: only the marker file remembers
    assert main(argv) == 0
    assert "CC-BY-NC-4.0" not in capsys.readouterr().err
    (isolated_home / LICENSE_MARKER).unlink()  # without it, the user is told again
    monkeypatch.setattr(notices, "_shown", set())
    assert main(argv) == 0
    assert notice in capsys.readouterr().err


# -- codesearch embed -------------------------------------------------------------------------


def test_embed_json_is_what_the_embedder_gives(
    tiny: Path, ref: JinaV4Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ["--model", str(tiny)]
    query = _embed(capsys, TEXT, "--query", *model)
    passage = _embed(capsys, TEXT, "--passage", *model)
    assert query["model"] == ref.model_id and query["task"] == "code" and query["dim"] == 64
    np.testing.assert_allclose(query["vector"], ref.embed_queries([TEXT], task="code")[0])
    np.testing.assert_allclose(passage["vector"], ref.embed_documents([TEXT], task="code")[0])
    assert not np.allclose(query["vector"], passage["vector"], atol=1e-3)  # "Query: " / "Passage: "

    retrieval = _embed(capsys, TEXT, "--query", "--task", "retrieval", *model)
    assert retrieval["task"] == "retrieval"
    assert not np.allclose(retrieval["vector"], query["vector"], atol=1e-3)  # another adapter
    # text-matching embeds both sides as "Query: ": the embedder's rule, not the CLI's
    match_q = _embed(capsys, TEXT, "--query", "--task", "text-matching", *model)
    match_p = _embed(capsys, TEXT, "--passage", "--task", "text-matching", *model)
    np.testing.assert_allclose(match_q["vector"], match_p["vector"], atol=1e-6)

    for d in MATRYOSHKA[:2]:
        small = _embed(capsys, TEXT, "--query", "--dim", str(d), *model)
        assert small["dim"] == d == len(small["vector"])  # type: ignore[arg-type]
        assert str(small["model"]).endswith(f":d{d}")
        prefix = np.asarray(query["vector"])[:d]
        np.testing.assert_allclose(small["vector"], prefix / np.linalg.norm(prefix), atol=1e-6)

    multi = _embed(capsys, TEXT, "--passage", "--multivector", *model)
    rows = np.asarray(multi["vectors"])
    (expected,) = ref.embed_multivector([TEXT], task="code", query=False)
    assert multi["dim"] == PROJ_DIM and rows.shape == expected.shape
    np.testing.assert_allclose(rows, expected, atol=1e-6)

    assert main(["embed", TEXT, "--query", *model]) == 0  # the human summary
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{ref.model_id} (query, task code): 64 dims, norm 1.0000")
    assert out[1].startswith("[") and out[1].endswith(", ...]")


def test_embed_with_a_backend_without_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    out = _embed(capsys, "parse the config", "--query", "--model", "fake")
    assert out["model"] == "fake:hash-64" and out["task"] is None and out["dim"] == 64
    assert _embed(capsys, "x", "--passage", "--model", "fake", "--dim", "8")["dim"] == 8
    err = _error(capsys, ["embed", "x", "--query", "--model", "fake", "--task", "code"])
    assert "has no tasks" in err and "omit --task" in err
    err = _error(capsys, ["embed", "x", "--query", "--model", "fake", "--multivector"])
    assert "--multivector needs jina-v4" in err


def test_embed_an_image_as_the_index_does(
    tiny: Path, ref: JinaV4Embedder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`embed --image` gives a picture file the vector the index gives it: its pixels through
    the multimodal model, task retrieval; a text-only model says it cannot."""
    from PIL import Image

    from codesearch.pictures import file_picture

    rng = np.random.default_rng(3)
    picture = tmp_path / "diagram.png"
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(picture)
    out = _embed(capsys, "--image", str(picture), "--model", str(tiny))
    assert (out["model"], out["task"], out["dim"]) == (ref.model_id, "retrieval", ref.dim)
    rendered = file_picture(picture)(ref.max_image_pixels)  # as the indexer renders it
    expected = ref.embed_images([rendered], task="retrieval")[0]
    np.testing.assert_allclose(np.asarray(out["vector"]), expected, atol=1e-6)
    assert main(["embed", "--image", str(picture), "--model", str(tiny)]) == 0
    assert capsys.readouterr().out.startswith(f"{ref.model_id} (image, task retrieval): ")

    err = _error(capsys, ["embed", "--image", str(picture), "--model", "fake"])
    assert "embeds text only" in err and "--model jina-v4" in err
    err = _error(capsys, ["embed", "--image", str(picture), "--query", "--model", str(tiny)])
    assert "drop --query" in err
    assert "not both" in _error(capsys, ["embed", "x", "--image", str(picture)])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    err = _error(capsys, ["embed", "--image", str(tmp_path / "broken.png"), "--model", "fake"])
    assert "broken.png" in err


def test_embed_errors_are_one_line(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = ["--model", str(tiny)]
    err = _error(capsys, ["embed", "x", "--query", "--dim", "100", *model])
    assert "dim 100 is not one of [8, 16, 32, 64]" in err
    err = _error(capsys, ["embed", "x", "--query", "--dim", "16", "--multivector", *model])
    assert "--dim" in err
    assert "no such file: diagram.png" in _error(capsys, ["embed", "--image", "diagram.png"])
    assert "--query" in _error(capsys, ["embed", "x", *model])  # which side is it?
    with pytest.raises(SystemExit) as exc:
        main(["embed", "x", "--query", "--task", "summarize", *model])
    assert exc.value.code == 2
    assert "invalid choice: 'summarize'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["embed", "x", "--query", "--passage"])
    capsys.readouterr()


# -- an index built with it ---------------------------------------------------------------------


def test_index_and_search_with_the_tiny_checkpoint_and_a_dim_change(
    tiny: Path,
    demo_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["index", str(demo_repo), "--model", str(tiny)]) == 0
    err = capsys.readouterr().err
    assert "model jina-v4:jina-tiny@" in err and ":d64, 64 dims" in err and "rebuilt" not in err
    assert main(["search", "compute_backoff", "--repo", str(demo_repo), "--json", "-k", "3"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert "src/app/retry.py" in {r["path"] for r in results}
    assert main(["status", str(demo_repo), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["repos"][0]["model"] == (
        load_embedder(str(tiny)).model_id
    )

    monkeypatch.setenv("CODESEARCH_EMBED_DIM", "32")
    monkeypatch.setattr(engine, "_LOADED", {})  # a new process
    assert main(["index", str(demo_repo)]) == 0  # the index's model, at the new dim
    err = capsys.readouterr().err
    assert "(rebuilt: the dimension changed from 64 to 32)" in err and ":d32, 32 dims" in err
    assert "7 updated" in err
    assert main(["search", "compute_backoff", "--repo", str(demo_repo), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"]
    # the dim setting changed again, the index was not rebuilt: it is still queried at its own
    monkeypatch.setenv("CODESEARCH_EMBED_DIM", "16")
    monkeypatch.setattr(engine, "_LOADED", {})
    argv = ["search", "compute_backoff", "--repo", str(demo_repo), "--json", "--rerank", "3"]
    assert main(argv) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert results and all(-1.0 <= r["score"] <= 1.0 for r in results[:3])  # MaxSim scores


def test_rerank_needs_a_multi_vector_model(
    demo_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["index", str(demo_repo), "--model", "fake", "-q"]) == 0
    assert main(["search", "retry", "--repo", str(demo_repo), "--rerank", "5"]) == 2
    assert "re-ranking needs a multi-vector model" in capsys.readouterr().err
    assert main(["search", "retry", "--repo", str(demo_repo), "--rerank", "-1"]) == 2


# -- auto and `codesearch models` -----------------------------------------------------------------


def test_auto_picks_jina_v4_only_with_a_gpu_and_the_weights(
    tiny: Path,
    demo_repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert explain_auto() == ("minilm-code", "no jina-v4 weights found")
    monkeypatch.setattr(jina_backend, "cuda_available", lambda: True)
    assert resolve_auto() == "minilm-code"  # a GPU alone is not enough
    monkeypatch.setenv("CODESEARCH_JINA_V4", str(tiny))
    assert resolve_auto() == "jina-v4"
    assert main(["index", str(demo_repo), "--model", "auto"]) == 0
    err = capsys.readouterr().err
    assert "model jina-v4:jina-tiny@" in err
    assert "(picked by auto: a CUDA GPU and the jina-v4 weights were found)" in err
    monkeypatch.setattr(jina_backend, "cuda_available", lambda: False)
    assert explain_auto() == ("minilm-code", "jina-v4 weights found, but no CUDA GPU")

    monkeypatch.setattr(jina_backend, "cuda_available", REAL_CUDA_CHECK)  # this machine, for real
    assert resolve_auto() == ("jina-v4" if torch.cuda.is_available() else "minilm-code")


def test_models_says_why_jina_v4_is_or_is_not_usable(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def jina_v4() -> dict[str, object]:
        assert main(["models", "--json"]) == 0
        return {b["name"]: b for b in json.loads(capsys.readouterr().out)}["jina-v4"]

    info = jina_v4()
    assert info["usable"] is False
    assert str(info["reason"]).startswith("weights not found: CODESEARCH_JINA_V4 is not set")
    assert str(tmp_path / "empty-hf" / "hub") in str(info["reason"])  # where it looked
    monkeypatch.setenv("CODESEARCH_JINA_V4", str(tiny))
    info = jina_v4()
    assert info["usable"] is True and info["reason"] == JINA_CPU_NOTE
    assert "works on CPU but very slow (~0.3 chunks/s)" in JINA_CPU_NOTE
    assert main(["models"]) == 0
    assert f"usable ({JINA_CPU_NOTE})" in capsys.readouterr().out
    monkeypatch.setattr(jina_backend, "cuda_available", lambda: True)
    assert jina_v4() == {**info, "reason": ""}


def test_models_imports_no_torch_without_jina_weights(tmp_path: Path) -> None:
    code = (
        "import sys; from codesearch.cli import main; main(['models', '--json']); "
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "HF_HOME": str(tmp_path / "hf"),
        "CODESEARCH_HOME": str(tmp_path / "home"),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == "False"
    backends = {b["name"]: b for b in json.loads(out.stdout)}
    assert not backends["jina-v4"]["usable"] and backends["minilm-code"]["usable"]
    # the product's list: the test-only fake (registered by conftest.py) is not in it
    assert list(backends) == ["minilm-code", "minilm", "jina-v4", "hf", "remote"]


# -- models --download ----------------------------------------------------------------------------


def test_download_needs_the_network_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["models", "--download", "jina-v4"]) == 2
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE is set" in err and len(err.strip().splitlines()) == 1

    monkeypatch.delenv("HF_HUB_OFFLINE")
    import huggingface_hub

    def unreachable(*args: object, **kw: object) -> str:
        raise OSError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    assert main(["models", "--download", "jina-v4"]) == 2
    err = capsys.readouterr().err
    assert "CC-BY-NC-4.0" in err  # the license comes before the transfer
    assert "cannot download jinaai/jina-embeddings-v4 (OSError" in err.splitlines()[-1]


def test_download_fills_the_cache_that_jina_v4_then_loads_from(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("CODESEARCH_JINA_V4", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))

    def fake_download(repo_id: str, cache_dir: Path, **kw: object) -> str:
        # what huggingface_hub leaves behind: refs/main and a snapshot folder
        repo = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
        shutil.copytree(tiny, repo / "snapshots" / "abc123")
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text("abc123")
        return str(repo / "snapshots" / "abc123")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    assert main(["models", "--download", "jina-v4"]) == 0
    assert "abc123" in capsys.readouterr().out
    folder, source, _ = find_jina_v4()
    assert folder is not None and source == "jinaai/jina-embeddings-v4"
