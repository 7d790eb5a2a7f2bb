"""The jina-embeddings-v4 loader and embedder, on a tiny random checkpoint in the real layout.

The checkpoint (tests/jina_tiny.py) is built once per module; everything runs on the CPU.
An independent reference (a plain Qwen2_5_VLModel with the LoRA merged by hand) checks the
forward pass, so the tests do not only compare the loader with itself.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("peft")
torch = pytest.importorskip("torch")

from jina_tiny import (  # noqa: E402
    LORA_ALPHA,
    LORA_R,
    MATRYOSHKA,
    PROJ_DIM,
    SHARD_NAMES,
    SPECIAL_IDS,
    TASKS,
    write_tiny_checkpoint,
)
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from codesearch.embed.base import Embedder  # noqa: E402
from codesearch.embed.jina.build import load_jina_v4  # noqa: E402
from codesearch.embed.jina.embedder import JinaV4Embedder, maxsim  # noqa: E402
from codesearch.embed.jina.load import remap_key  # noqa: E402
from codesearch.embed.jina.notices import LICENSE_MARKER, LICENSE_NOTICE  # noqa: E402
from codesearch.types import BadInput, CodesearchError, ModelUnavailable  # noqa: E402

TEXTS = [
    "def fetch_with_retry(url, attempts=5):\n    return http_get(url)\n",
    "Convert a hex colour string to an RGB tuple.",
    "class UserRepository:\n    def find_by_email(self, email): ...\n" * 3,
    "x",
    "# Installation\n\nRun pip install codesearch to get started.",
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: the tiny model's ops are so small that a second thread only waits
    (badly so on a busy machine). Restored afterwards for the other test modules."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("jina") / "jina-tiny")


@pytest.fixture(scope="module")
def emb(tiny: Path) -> JinaV4Embedder:
    return load_jina_v4(tiny, device="cpu", notice=lambda _msg: None, threads=1)


def _load(folder: Path, **kw: object) -> JinaV4Embedder:
    kw.setdefault("notice", lambda _msg: None)
    kw.setdefault("threads", 1)
    return load_jina_v4(folder, device="cpu", **kw)  # type: ignore[arg-type]


# -- the checkpoint really has the published layout -------------------------------------------


def test_tiny_checkpoint_has_the_published_layout(tiny: Path) -> None:
    index = json.loads((tiny / "model.safetensors.index.json").read_text())
    assert sorted(set(index["weight_map"].values())) == list(SHARD_NAMES)
    keys: set[str] = set()
    for shard in SHARD_NAMES:
        with safe_open(str(tiny / shard), framework="pt") as f:
            keys.update(f.keys())
    assert keys == set(index["weight_map"])
    # the OLD key layout: the loader has to remap every base key
    assert "model.layers.0.self_attn.q_proj.weight" in keys
    assert "model.embed_tokens.weight" in keys and "model.norm.weight" in keys
    assert "visual.blocks.0.attn.qkv.weight" in keys and "visual.merger.mlp.0.weight" in keys
    assert {"multi_vector_projector.weight", "multi_vector_projector.bias"} <= keys
    assert not any(
        k.startswith(("model.language_model.", "model.visual.", "lm_head")) for k in keys
    )
    assert remap_key("model.layers.0.mlp.up_proj.weight") == (
        "model.language_model.layers.0.mlp.up_proj.weight"
    )
    assert remap_key("visual.blocks.1.norm1.weight") == "model.visual.blocks.1.norm1.weight"
    assert remap_key("multi_vector_projector.bias") == "multi_vector_projector.bias"

    adapter = load_file(str(tiny / "adapters" / "adapter_model.safetensors"))
    for task in TASKS:
        assert (
            f"base_model.model.model.language_model.layers.1.mlp.down_proj.lora_B.{task}.weight"
            in adapter
        )
        assert f"base_model.model.multi_vector_projector.lora_A.{task}.weight" in adapter
    assert all(not torch.all(v == 0) for k, v in adapter.items() if ".lora_B." in k)

    config = json.loads((tiny / "config.json").read_text())
    assert "model_type" not in config and "text_config" not in config
    assert config["image_token_id"] == SPECIAL_IDS["<|image_pad|>"] == 151655


# -- single vectors ---------------------------------------------------------------------------


def test_single_vectors_are_normalised_with_the_configured_dim(emb: JinaV4Embedder) -> None:
    assert isinstance(emb, Embedder)
    assert emb.dim == 64 and emb.full_dim == 64 and emb.max_tokens > 0
    assert emb.model_id.startswith("jina-v4:jina-tiny@") and emb.model_id.endswith(":d64")
    for vectors in (emb.embed_documents(TEXTS), emb.embed_queries(TEXTS)):
        assert vectors.shape == (len(TEXTS), 64) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert emb.embed_documents([]).shape == (0, 64)
    assert emb.count_tokens("def foo(): pass") > 0
    assert emb.count_tokens("") == 0


def test_every_matryoshka_dim_is_the_normalised_prefix(tiny: Path, emb: JinaV4Embedder) -> None:
    full = emb.embed_documents(TEXTS)
    for d in MATRYOSHKA:
        prefix = full[:, :d] / np.linalg.norm(full[:, :d], axis=1, keepdims=True)
        np.testing.assert_allclose(emb.truncate(full, d), prefix, atol=1e-6)
    small = _load(tiny, dim=16)
    assert small.dim == 16 and small.model_id.endswith(":d16")
    vectors = small.embed_documents(TEXTS)
    assert vectors.shape == (len(TEXTS), 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors, emb.truncate(full, 16), atol=1e-5)
    with pytest.raises(BadInput, match="12"):
        _load(tiny, dim=12)


def test_a_dim_view_shares_the_loaded_model(emb: JinaV4Embedder) -> None:
    full = emb.embed_documents(TEXTS, task="retrieval")
    view = emb.with_dim(16)
    assert view.dim == 16 and view.model_id == emb.model_id.replace(":d64", ":d16")
    assert view.peft_model is emb.peft_model and emb.dim == 64  # one model; the original kept
    np.testing.assert_allclose(
        view.embed_documents(TEXTS, task="retrieval"), emb.truncate(full, 16), atol=1e-5
    )
    # the adapter state is shared: switching through the view is seen by the original
    np.testing.assert_allclose(emb.embed_documents(TEXTS, task="retrieval"), full, atol=1e-6)
    with pytest.raises(BadInput, match="12"):
        emb.with_dim(12)


def _reference(folder: Path, task: str, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(single vector, multi-vector) per full text (prefix included), without the loader:
    a plain Qwen2_5_VLModel, the old keys renamed by hand, (alpha / r) * B @ A merged by hand,
    one text at a time (no padding).
    """
    from tokenizers import Tokenizer
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLModel

    config = json.loads((folder / "config.json").read_text())
    extras = {"task_names", "matryoshka_dims", "truncate_dim", "multi_vector_projector_dim"}
    extras |= {"single_vector_pool_strategy", "architectures", "auto_map", "torch_dtype"}
    extras |= {"transformers_version"}
    model = Qwen2_5_VLModel(
        Qwen2_5_VLConfig(**{k: v for k, v in config.items() if k not in extras})
    )
    model.eval()
    state: dict[str, torch.Tensor] = {}
    for shard in SHARD_NAMES:
        for key, value in load_file(str(folder / shard)).items():
            state[key] = value.float()
    proj_w = state.pop("multi_vector_projector.weight")
    proj_b = state.pop("multi_vector_projector.bias")
    adapter = load_file(str(folder / "adapters" / "adapter_model.safetensors"))
    scale = LORA_ALPHA / LORA_R
    for key in list(state):
        module = key.removesuffix(".weight")
        target = module.replace("model.", "model.language_model.", 1)
        a = adapter.get(f"base_model.model.{target}.lora_A.{task}.weight")
        if a is not None:
            b = adapter[f"base_model.model.{target}.lora_B.{task}.weight"]
            state[key] = state[key] + scale * (b.float() @ a.float())
    pa = adapter[f"base_model.model.multi_vector_projector.lora_A.{task}.weight"].float()
    pb = adapter[f"base_model.model.multi_vector_projector.lora_B.{task}.weight"].float()
    proj_w = proj_w + scale * (pb @ pa)
    renamed = {
        ("language_model." + k[6:] if k.startswith("model.") else k): v for k, v in state.items()
    }
    missing, unexpected = model.load_state_dict(renamed, strict=False)
    assert not unexpected and all("rotary" in k for k in missing)

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    out = []
    for text in texts:
        with torch.no_grad():
            hidden = model(input_ids=torch.tensor([tokenizer.encode(text).ids])).last_hidden_state[
                0
            ]
            single = hidden.mean(dim=0)
            multi = torch.nn.functional.normalize(hidden @ proj_w.T + proj_b, dim=-1)
        out.append(((single / single.norm()).numpy(), multi.numpy()))
    return out


@pytest.mark.parametrize(
    ("task", "doc_prefix"), [("code", "Passage: "), ("text-matching", "Query: ")]
)
def test_vectors_match_an_independent_reference(
    tiny: Path, emb: JinaV4Embedder, task: str, doc_prefix: str
) -> None:
    texts = TEXTS[:3]  # different lengths: the embedder pads, the reference does not
    want = _reference(
        tiny, task, [*("Query: " + t for t in texts), *(doc_prefix + t for t in texts)]
    )
    got_single = [*emb.embed_queries(texts, task=task), *emb.embed_documents(texts, task=task)]
    got_multi = [
        *emb.embed_multivector(texts, task=task, query=True),
        *emb.embed_multivector(texts, task=task, query=False),
    ]
    for (want_single, want_multi), single, multi in zip(want, got_single, got_multi, strict=True):
        np.testing.assert_allclose(single, want_single, atol=1e-4)
        np.testing.assert_allclose(multi, want_multi, atol=1e-4)


# -- multi-vector -----------------------------------------------------------------------------


def test_multivector_rows_and_maxsim(emb: JinaV4Embedder) -> None:
    docs = emb.embed_multivector(TEXTS, task="code", query=False)
    queries = emb.embed_multivector(TEXTS[:2], task="code", query=True)
    assert len(docs) == len(TEXTS)
    for text, rows in zip(TEXTS, docs, strict=True):
        assert rows.shape == (emb.count_tokens("Passage: " + text), PROJ_DIM)
        assert rows.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    q, d = queries[0], docs[2]
    manual = sum(max(float(np.dot(qv, dv)) for dv in d) for qv in q)
    assert maxsim(q, d) == pytest.approx(manual, rel=1e-5)
    assert maxsim(q, q) == pytest.approx(len(q), rel=1e-5)
    assert maxsim(q, np.zeros((0, PROJ_DIM), np.float32)) == 0.0


# -- tasks, prefixes, determinism, batching ----------------------------------------------------


def test_adapters_change_the_output(emb: JinaV4Embedder) -> None:
    single = {t: emb.embed_documents(TEXTS, task=t) for t in TASKS}
    multi = {t: emb.embed_multivector(TEXTS[:1], task=t, query=True)[0] for t in TASKS}
    for a, b in [("code", "retrieval"), ("code", "text-matching"), ("retrieval", "text-matching")]:
        assert np.abs(single[a] - single[b]).max() > 1e-3, (a, b)
        assert np.abs(multi[a] - multi[b]).max() > 1e-3, (a, b)
    # the default task is "code", and a per-call task does not change it
    np.testing.assert_array_equal(emb.embed_documents(TEXTS), single["code"])
    assert emb.task == "code"
    emb.set_task("retrieval")
    try:
        np.testing.assert_array_equal(emb.embed_documents(TEXTS), single["retrieval"])
    finally:
        emb.set_task("code")
    with pytest.raises(BadInput, match="unknown jina-v4 task"):
        emb.embed_documents(TEXTS, task="classification")


def test_query_and_passage_prefixes(emb: JinaV4Embedder) -> None:
    for task in ("code", "retrieval"):
        docs, queries = emb.embed_documents(TEXTS, task=task), emb.embed_queries(TEXTS, task=task)
        assert np.abs(docs - queries).max() > 1e-3
    docs = emb.embed_documents(TEXTS, task="text-matching")
    queries = emb.embed_queries(TEXTS, task="text-matching")
    np.testing.assert_allclose(docs, queries, atol=1e-6)  # "Query: " on both sides


def test_a_reload_gives_identical_vectors(tiny: Path, emb: JinaV4Embedder) -> None:
    again = _load(tiny)
    assert again.model_id == emb.model_id
    np.testing.assert_array_equal(again.embed_documents(TEXTS), emb.embed_documents(TEXTS))
    for a, b in zip(again.embed_multivector(TEXTS), emb.embed_multivector(TEXTS), strict=True):
        np.testing.assert_array_equal(a, b)


def test_token_budget_batches_match_one_by_one(tiny: Path) -> None:
    small = _load(tiny, batch_tokens=48)  # several texts per batch, never all of them
    batched = small.embed_documents(TEXTS)
    one_by_one = np.stack([small.embed_documents([t])[0] for t in TEXTS])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    multi = small.embed_multivector(TEXTS)
    for text, rows in zip(TEXTS, multi, strict=True):
        np.testing.assert_allclose(rows, small.embed_multivector([text])[0], atol=1e-5)


def test_out_of_memory_halves_the_budget_and_retries(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _load(tiny, batch_tokens=10_000)
    want = model.embed_documents(TEXTS)
    real_forward = model.forward
    widths: list[int] = []

    def flaky(rows: list[list[int]], width: int) -> tuple[object, object]:
        widths.append(len(rows))
        if len(rows) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_forward(rows, width)

    monkeypatch.setattr(model, "forward", flaky)
    np.testing.assert_allclose(model.embed_documents(TEXTS), want, atol=1e-5)
    assert widths[0] == len(TEXTS) and model.batch_tokens < 10_000

    def always(rows: list[list[int]], width: int) -> tuple[object, object]:
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(model, "forward", always)
    with pytest.raises(CodesearchError, match="out of cpu memory on one text"):
        model.embed_documents(TEXTS)


def test_long_texts_are_truncated_to_max_tokens(tiny: Path) -> None:
    short = _load(tiny, max_tokens=8)
    rows = short.embed_multivector(["word " * 200])[0]
    assert len(rows) <= 8 + short.count_tokens("Passage: ")


# -- the nested config form and the HF cache -----------------------------------------------------


def _linked_copy(src: Path, dest: Path) -> Path:
    """A folder of symlinks to ``src``'s files (subfolders recreated), to break one at a time."""
    for path in src.rglob("*"):
        target = dest / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)
    return dest


def _replace(folder: Path, name: str, data: bytes | str) -> None:
    path = folder / name
    path.unlink()
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)


def test_a_nested_text_config_gives_the_same_vectors(
    tiny: Path, emb: JinaV4Embedder, tmp_path: Path
) -> None:
    folder = _linked_copy(tiny, tmp_path / "nested")
    flat = json.loads((tiny / "config.json").read_text())
    text_keys = {
        "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "rms_norm_eps", "rope_theta", "rope_scaling", "vocab_size",
        "max_position_embeddings", "hidden_act", "attention_dropout",
    }  # fmt: skip
    nested = {k: v for k, v in flat.items() if k not in text_keys}
    nested["text_config"] = {k: flat[k] for k in text_keys} | {"model_type": "qwen2_5_vl_text"}
    nested["model_type"] = "qwen2_5_vl"
    _replace(folder, "config.json", json.dumps(nested))
    np.testing.assert_allclose(
        _load(folder).embed_documents(TEXTS), emb.embed_documents(TEXTS), atol=1e-6
    )


def test_loads_from_a_filled_hf_cache_and_shows_the_license_once(
    tiny: Path, emb: JinaV4Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "hf"
    repo = home / "hub" / "models--jinaai--jina-embeddings-v4"
    revision = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / revision
    # as huggingface_hub lays it out: files in blobs/, symlinked from the snapshot
    for i, path in enumerate(sorted(p for p in tiny.rglob("*") if p.is_file())):
        blob = repo / "blobs" / f"blob{i:03d}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, blob)
        link = snapshot / path.relative_to(tiny)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    shown: list[str] = []
    markers = tmp_path / "state"
    model = load_jina_v4(
        "jinaai/jina-embeddings-v4",
        device="cpu",
        notice=shown.append,
        license_marker_dir=markers,
        threads=1,
    )
    assert model.model_id.startswith("jina-v4:jinaai/jina-embeddings-v4@")
    np.testing.assert_allclose(model.embed_documents(TEXTS), emb.embed_documents(TEXTS), atol=1e-6)
    assert LICENSE_NOTICE in shown and "CC-BY-NC-4.0" in LICENSE_NOTICE
    assert (markers / LICENSE_MARKER).is_file()
    shown.clear()
    load_jina_v4(
        "jinaai/jina-embeddings-v4",
        device="cpu",
        notice=shown.append,
        license_marker_dir=markers,
        threads=1,
    )
    assert LICENSE_NOTICE not in shown

    with pytest.raises(ModelUnavailable, match="not in the local Hugging Face cache"):
        load_jina_v4("jinaai/not-downloaded", device="cpu", allow_download=True)


def test_the_tiny_checkpoint_shows_no_license_notice(tiny: Path, tmp_path: Path) -> None:
    shown: list[str] = []
    load_jina_v4(tiny, device="cpu", notice=shown.append, license_marker_dir=tmp_path, threads=1)
    assert LICENSE_NOTICE not in shown and not (tmp_path / LICENSE_MARKER).exists()


# -- broken folders ------------------------------------------------------------------------------

MISSING = [
    "config.json",
    "model.safetensors.index.json",
    SHARD_NAMES[1],
    "adapters/adapter_config.json",
    "adapters/adapter_model.safetensors",
    "tokenizer.json",
]


@pytest.mark.parametrize("name", MISSING)
def test_a_missing_file_is_named(tiny: Path, tmp_path: Path, name: str) -> None:
    folder = _linked_copy(tiny, tmp_path / "broken")
    (folder / name).unlink()
    with pytest.raises(ModelUnavailable, match=name.replace(".", r"\.")) as info:
        _load(folder)
    assert "\n" not in str(info.value)


def _shard_without(tiny: Path, key: str) -> bytes:
    tensors = load_file(str(tiny / SHARD_NAMES[1]))
    del tensors[key]
    return _to_bytes(tensors)


def _shard_with_shape(tiny: Path, key: str) -> bytes:
    tensors = load_file(str(tiny / SHARD_NAMES[1]))
    tensors[key] = torch.zeros(3, 5, dtype=torch.bfloat16)
    return _to_bytes(tensors)


def _to_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save(tensors, metadata={"format": "pt"})


def _adapter_config_with_r(tiny: Path, r: int) -> str:
    config = json.loads((tiny / "adapters" / "adapter_config.json").read_text())
    return json.dumps(config | {"r": r})


def _adapter_without_task(tiny: Path, task: str) -> bytes:
    tensors = load_file(str(tiny / "adapters" / "adapter_model.safetensors"))
    return _to_bytes({k: v for k, v in tensors.items() if f".{task}." not in k})


MALFORMED = {
    "config-json": ("config.json", lambda t: "{not json"),
    "config-sizes": ("config.json", lambda t: json.dumps({"vision_config": {}, "hidden_size": 60})),
    "index-json": ("model.safetensors.index.json", lambda t: '{"weight_map": '),
    "shard-bytes": (SHARD_NAMES[0], lambda t: b"\x00" * 64),
    "shard-lacks-key": (SHARD_NAMES[1], lambda t: _shard_without(t, "visual.merger.ln_q.weight")),
    "shard-shape": (
        SHARD_NAMES[1],
        lambda t: _shard_with_shape(t, "multi_vector_projector.weight"),
    ),
    "adapter-r": ("adapters/adapter_model.safetensors", None),
    "adapter-task": (
        "adapters/adapter_model.safetensors",
        lambda t: _adapter_without_task(t, "retrieval"),
    ),
    "adapter-json": ("adapters/adapter_config.json", lambda t: "[]"),
    "tokenizer": ("tokenizer.json", lambda t: '{"model": 1}'),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_file_is_named(tiny: Path, tmp_path: Path, case: str) -> None:
    name, make = MALFORMED[case]
    folder = _linked_copy(tiny, tmp_path / "broken")
    if case == "adapter-r":  # the config says r=8, the file holds r=4 matrices
        _replace(folder, "adapters/adapter_config.json", _adapter_config_with_r(tiny, 8))
    else:
        _replace(folder, name, make(tiny))
    with pytest.raises(ModelUnavailable, match=name.replace(".", r"\.")) as info:
        _load(folder)
    assert "\n" not in str(info.value)


def test_an_unknown_source_is_model_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="neither a checkpoint folder"):
        load_jina_v4(str(tmp_path / "no-such-folder"), device="cpu")
