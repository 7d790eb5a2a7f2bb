"""Tests of codesearch.embed: the fake, the registry, and the real packaged MiniLM."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fake_embedder import FakeEmbedder

from codesearch.config import load_settings
from codesearch.embed import (
    BackendInfo,
    Embedder,
    available_backends,
    load_embedder,
)
from codesearch.embed.minilm.files import packaged_minilm_dir
from codesearch.types import BadInput, ModelUnavailable

ROOT = Path(__file__).resolve().parent.parent

RETRY_FN = '''def fetch_with_retry(url, attempts=5):
    """Retry the request with exponential backoff when it fails."""
    delay = 0.5
    for attempt in range(attempts):
        try:
            return http_get(url)
        except ConnectionError:
            time.sleep(delay)
            delay *= 2
    raise RuntimeError("gave up after retries")
'''

COLOUR_FN = '''def hex_to_rgb(colour):
    """Convert a hex colour string like #ff8800 to an RGB tuple."""
    colour = colour.lstrip("#")
    return tuple(int(colour[i : i + 2], 16) for i in (0, 2, 4))
'''

TEXTS = [
    RETRY_FN,
    COLOUR_FN,
    "How do I parse a JSON configuration file?",
    "class UserRepository:\n    def find_by_email(self, email: str) -> User | None: ...",
    "x",
]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# -- import cost ---------------------------------------------------------------------------


def test_import_does_not_load_torch_or_transformers() -> None:
    code = (
        "import sys, fake_embedder, codesearch.embed as e; fake_embedder.register(); "
        "e.available_backends(); e.load_embedder('fake'); "
        "heavy = ('torch', 'transformers', 'sentence_transformers'); "
        "bad = [m for m in heavy if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}", "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == ""


# -- the fake ------------------------------------------------------------------------------


def test_fake_is_deterministic_and_normalised() -> None:
    a = FakeEmbedder().embed_documents([*TEXTS, ""])
    b = FakeEmbedder().embed_documents([*TEXTS, ""])
    assert a.dtype == np.float32 and a.shape == (len(TEXTS) + 1, 64)
    assert np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)
    assert not np.isnan(a).any()
    assert FakeEmbedder().model_id == "fake:hash-64"
    assert FakeEmbedder(dim=32).embed_queries(["hello"]).shape == (1, 32)
    assert isinstance(FakeEmbedder(), Embedder)


def test_fake_word_overlap_means_closer() -> None:
    f = FakeEmbedder()
    q, near, far = f.embed_queries(
        ["retry the request with backoff", "def retry_request_with_backoff(): ...", "hex colour"]
    )
    assert float(q @ near) > float(q @ far)
    # identifier-aware: camelCase and snake_case split into the same words
    a, b, c = f.embed_documents(["parseConfigFile", "parse_config_file", "draw circle"])
    assert float(a @ b) > 0.99
    assert float(a @ c) < float(a @ b)
    assert f.count_tokens("parseHTTPResponse my_var2") == 6  # parse http response my var 2


def test_fake_counts_documents_and_calls() -> None:
    f = FakeEmbedder()
    f.embed_documents(["a", "b", "c"])
    f.embed_documents([])
    f.embed_queries(["q"])
    assert f.documents_embedded == 3
    assert f.calls == 2  # an empty input is answered by the base class
    assert f.embed_documents([]).shape == (0, 64)


# -- the registry --------------------------------------------------------------------------


@pytest.fixture
def no_jina_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever this machine holds: no jina-v4 checkpoint folder, an empty HF cache."""
    for var in ("CODESEARCH_JINA_V4", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))


def test_available_backends(no_jina_weights: None) -> None:
    infos = {b.name: b for b in available_backends()}
    assert all(isinstance(b, BackendInfo) for b in infos.values())
    assert infos["minilm"].usable and infos["minilm"].reason == ""
    assert not infos["jina-v4"].usable
    assert infos["jina-v4"].reason.startswith("weights not found: CODESEARCH_JINA_V4 is not set")
    assert infos["fake"].usable
    assert "hf" in infos


def test_fake_by_name() -> None:
    assert isinstance(load_embedder("fake"), FakeEmbedder)


@pytest.mark.parametrize("name", ["jina-v4", "no-such-model", "./does/not/exist"])
def test_unusable_names_raise_one_line(name: str, no_jina_weights: None) -> None:
    with pytest.raises(ModelUnavailable) as info:
        load_embedder(name)
    msg = str(info.value)
    assert msg and "\n" not in msg
    if name == "jina-v4":
        assert "--model minilm" in msg
    else:
        assert "minilm" in msg  # lists the valid names


def test_embed_dim_setting(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODESEARCH_EMBED_DIM", raising=False)
    assert load_settings().embed_dim is None  # the backend's default
    (isolated_home / "config.toml").write_text("embed_dim = 512\n")
    assert load_settings().embed_dim == 512
    monkeypatch.setenv("CODESEARCH_EMBED_DIM", "256")  # the environment wins over the file
    assert load_settings().embed_dim == 256
    for default in ("", "auto", "default"):
        monkeypatch.setenv("CODESEARCH_EMBED_DIM", default)
        assert load_settings().embed_dim is None
    for bad in ("0", "-8", "big"):
        monkeypatch.setenv("CODESEARCH_EMBED_DIM", bad)
        with pytest.raises(BadInput, match="CODESEARCH_EMBED_DIM: invalid value"):
            load_settings()


def test_an_explicit_dim_must_fit_the_model() -> None:
    assert load_embedder("fake", dim=16).dim == 16
    with pytest.raises(BadInput, match=r"fake: dim 1 is not available \(valid dims: 2 or more\)"):
        load_embedder("fake", dim=1)


def test_folder_without_config_raises(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match=r"config\.json"):
        load_embedder(str(tmp_path))


def test_uncached_hf_id_fails_fast_offline(tmp_path: Path) -> None:
    # A fresh empty HF cache, and no HF_HUB_OFFLINE set by the caller: the loader must still
    # not touch the network (it would hang or fail slowly here) and answer in one line.
    code = (
        "import os, time, sys\n"
        "os.environ.pop('HF_HUB_OFFLINE', None)\n"
        "from codesearch.embed import load_embedder\n"
        "from codesearch.types import ModelUnavailable\n"
        "t = time.time()\n"
        "try:\n"
        "    load_embedder('codesearch-test/no-such-model-xyz')\n"
        "except ModelUnavailable as e:\n"
        "    print('ERR', str(e).replace('\\n', '<NL>'))\n"
        "print('T', time.time() - t)\n"
    )
    env = {
        "HF_HOME": str(tmp_path / "hf"),
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "HTTPS_PROXY": "http://10.255.255.1:9",  # any network attempt would hang, not fail fast
        "HTTP_PROXY": "http://10.255.255.1:9",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT
    )
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    assert "ERR" in lines, out.stdout + out.stderr
    assert "<NL>" not in lines["ERR"]
    assert "local folder" in lines["ERR"] and "unreachable" in lines["ERR"]
    assert float(lines["T"]) < 10


# -- the real packaged MiniLM --------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> Iterator[Embedder]:
    yield load_embedder("minilm", batch_size=2)


def test_minilm_has_one_dim() -> None:
    assert load_embedder("minilm", dim=384).dim == 384
    with pytest.raises(BadInput, match=r"minilm: dim 128 is not available \(valid dims: 384\)"):
        load_embedder("minilm", dim=128)


def test_minilm_shape_and_norm(minilm: Embedder) -> None:
    assert minilm.model_id == "minilm:all-MiniLM-L6-v2"
    assert minilm.dim == 384 and minilm.max_tokens == 128  # what the model was trained on
    v = minilm.embed_documents(TEXTS)
    assert v.shape == (len(TEXTS), 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert minilm.embed_documents([]).shape == (0, 384)
    assert minilm.embed_queries([]).shape == (0, 384)


def test_minilm_order_preserved_despite_sorting(minilm: Embedder) -> None:
    # batch_size=2 and very different lengths: sorting reorders, the output must not
    together = minilm.embed_documents(TEXTS)
    alone = np.stack([minilm.embed_documents([t])[0] for t in TEXTS])
    # each row is its own text's vector; bf16 (the default on CPUs with native bf16) leaves
    # rounding noise that depends on the padded batch shape, fp32 matches to 1e-4
    assert (np.argmax(together @ alone.T, axis=1) == np.arange(len(TEXTS))).all()
    assert _cos(together, alone).min() > 0.9999
    if minilm.precision == "fp32":  # type: ignore[attr-defined]
        assert np.allclose(together, alone, atol=1e-4)


def test_minilm_fp32_order_exact() -> None:
    from codesearch.embed.minilm.embedder import TransformersEmbedder

    folder = packaged_minilm_dir()
    assert folder is not None
    e = TransformersEmbedder(folder, batch_size=2, precision="fp32")
    together = e.embed_documents(TEXTS)
    alone = np.stack([e.embed_documents([t])[0] for t in TEXTS])
    assert np.allclose(together, alone, atol=1e-4)


def test_minilm_matches_sentence_transformers(minilm: Embedder) -> None:
    st = pytest.importorskip("sentence_transformers")
    folder = packaged_minilm_dir()
    assert folder is not None
    model = st.SentenceTransformer(str(folder), device="cpu")
    model.max_seq_length = minilm.max_tokens  # the backend reads 128 tokens on purpose
    texts = [*TEXTS, "word " * 400]
    ref = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    ours = minilm.embed_documents(texts)
    assert _cos(ours, ref).min() > 0.999


def test_minilm_semantic_ranking(minilm: Embedder) -> None:
    q = minilm.embed_queries(["retry a failed request with exponential backoff"])[0]
    docs = minilm.embed_documents([COLOUR_FN, RETRY_FN])
    assert float(docs[1] @ q) > float(docs[0] @ q)


def test_minilm_count_tokens(minilm: Embedder) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(packaged_minilm_dir()), local_files_only=True)
    for text in TEXTS:
        expected = len(tok(text, add_special_tokens=False)["input_ids"])
        assert abs(minilm.count_tokens(text) - expected) <= 1
    assert minilm.count_tokens("") == 0
    # counting is not truncated
    assert minilm.count_tokens("word " * 1000) >= 1000


def test_minilm_truncates_long_input(minilm: Embedder) -> None:
    long = RETRY_FN * 40  # thousands of tokens
    v = minilm.embed_documents([long, long[: len(long) // 2]])
    assert v.shape == (2, 384) and not np.isnan(v).any()
    # both read only the first 128 tokens, which are the same
    assert float(v[0] @ v[1]) > 0.9999


def test_local_folder_copy_loads_same_vectors(minilm: Embedder, tmp_path: Path) -> None:
    folder = packaged_minilm_dir()
    assert folder is not None
    copy = tmp_path / "my-minilm"
    shutil.copytree(folder, copy)
    started = time.time()
    local = load_embedder(str(copy))
    assert time.time() - started < 60
    assert local.model_id.startswith("hf:my-minilm@")
    assert local.dim == 384 and local.max_tokens == 256
    # the packaged backend reads 128 tokens, a plain folder its configured 256: compare on
    # texts shorter than both
    short = [t for t in TEXTS if minilm.count_tokens(t) < 120]
    assert len(short) >= 3
    ours, theirs = local.embed_documents(short), minilm.embed_documents(short)
    assert _cos(ours, theirs).min() > 0.9999  # batch sizes differ: bf16 rounding noise only
    # the id is stable for the same folder contents
    assert load_embedder(str(copy)).model_id == local.model_id
