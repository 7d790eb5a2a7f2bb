"""The CPU default: all-MiniLM-L6-v2 with codesearch's own code adapter (a peft LoRA shipped in
codesearch/embed/adapters/minilm-code), merged into the weights at load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from codesearch.cli import main
from codesearch.embed import available_backends, load_embedder
from codesearch.embed.minilm.embedder import TransformersEmbedder
from codesearch.embed.minilm.files import (
    MINILM_CODE_ADAPTER,
    minilm_code_adapter,
    packaged_minilm_dir,
)
from codesearch.embed.registry import explain_auto

TEXTS = [
    "python function parse_header\ndef parse_header(line):\n    key, _, val = line.partition(':')",
    "where are the retry delays computed",
    "go function (c *Command) Execute\nfunc (c *Command) Execute() error {\n\treturn c.run()\n}",
]


def test_the_adapter_ships_with_its_model_card() -> None:
    adapter = minilm_code_adapter()
    assert adapter == MINILM_CODE_ADAPTER
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA"
    # a few MB at most: it ships inside the package
    assert (adapter / "adapter_model.safetensors").stat().st_size < 8_000_000
    card = (adapter / "MODEL_CARD.md").read_text()
    for needed in ("Training data", "licence", "Hyperparameters", "Evaluation"):
        assert needed in card


def test_it_is_the_cpu_default_and_listed_beside_plain_minilm() -> None:
    names = {b.name: b for b in available_backends()}
    assert names["minilm-code"].usable and names["minilm"].usable
    assert explain_auto()[0] == "minilm-code"  # no jina-v4 weights on this machine


def test_loading_merges_the_adapter_like_peft_unmerged() -> None:
    """The merged model (what search runs) gives the vectors of peft's own un-merged forward
    pass, and they are not plain MiniLM's."""
    from peft import PeftModel

    folder, adapter = packaged_minilm_dir(), minilm_code_adapter()
    assert folder is not None and adapter is not None
    merged = TransformersEmbedder(folder, precision="fp32", max_tokens=128, adapter=adapter)
    plain = TransformersEmbedder(folder, precision="fp32", max_tokens=128)
    base_vectors = plain.embed_documents(TEXTS)
    unmerged = TransformersEmbedder(folder, precision="fp32", max_tokens=128)
    unmerged.model = PeftModel.from_pretrained(unmerged.model, str(adapter)).eval()
    expected = unmerged.embed_documents(TEXTS)
    got = merged.embed_documents(TEXTS)
    assert np.abs(got - expected).max() < 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = (got * base_vectors).sum(axis=1)
    assert cosines.min() < 0.999, "the adapter changes the vectors"


def test_the_backend_has_its_own_model_id() -> None:
    embedder = load_embedder("minilm-code", batch_size=4)
    assert embedder.model_id.startswith("minilm-code:all-MiniLM-L6-v2+lora-")
    assert embedder.dim == 384 and embedder.max_tokens == 128
    assert embedder.model_id != load_embedder("minilm").model_id
    # a retrained adapter is a new model: its "no good match" bar must be calibrated anew
    # (benchmarks/calibrate_confidence.py)
    from codesearch.search import CONFIDENT_SIMILARITY

    assert embedder.model_id in CONFIDENT_SIMILARITY


def test_models_lists_both(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "minilm-code" in out and "\nminilm " in out


def test_an_index_auto_built_with_plain_minilm_moves_to_the_code_adapter(
    demo_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from codesearch.config import load_settings
    from codesearch.engine import META_MODEL_AUTO
    from codesearch.store import Store

    assert main(["index", str(demo_repo), "-q", "--model", "minilm"]) == 0
    settings = load_settings()
    with Store.open(settings.index_path(demo_repo)) as store:
        assert store.get_meta("model_id") == "minilm:all-MiniLM-L6-v2"
        assert store.get_meta(META_MODEL_AUTO) == "0"
    # asked for by name: an update keeps it
    assert main(["index", str(demo_repo)]) == 0
    assert "model minilm:all-MiniLM-L6-v2" in capsys.readouterr().err
    # an index from before the choice was recorded (auto was the default): rebuilt, with the notice
    with Store.open(settings.index_path(demo_repo)) as store:
        store._conn.execute("DELETE FROM meta WHERE key = ?", (META_MODEL_AUTO,))
    assert main(["index", str(demo_repo)]) == 0
    err = capsys.readouterr().err
    assert "model minilm-code:all-MiniLM-L6-v2+lora-" in err
    assert "rebuilt: the model changed from minilm:all-MiniLM-L6-v2" in err


def test_the_model_card_is_written_from_the_measurements() -> None:
    """Its numbers come from training_log.json, data_manifest.json and the eval results in
    benchmarks/results (python -m training.model_card), not typed: regenerating changes nothing."""
    from training.model_card import main as model_card

    assert model_card(["--check"]) == 0
