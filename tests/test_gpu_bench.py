"""benchmarks/gpu_jina_v4.py runs end to end (--tiny, on the CPU) and writes the fields it promises.

The GPU run is the same script without --tiny; here it runs as a subprocess, as it runs there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("peft")
pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_jina_v4.py"


def _positive(row: dict, *keys: str) -> None:
    for key in keys:
        assert isinstance(row[key], int | float) and row[key] > 0, (key, row)


def test_tiny_run_writes_every_measurement(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["--tiny", "--device", "cpu", "--json-out", str(out), "--point-seconds", "0.05"]
    args += ["--reps", "3", "--warmup", "1", "--budget-seconds", "3600", "--budgets", "128", "512"]
    args += ["--multi-budgets", "512", "--rerank-budgets", "256", "512"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=tmp_path,  # the script finds the package by its own path
        capture_output=True,
        text=True,
        timeout=900,  # a loaded machine is slow: no step may be skipped for time
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rerank top-50" in proc.stdout and "done in" in proc.stdout
    data = json.loads(out.read_text())

    assert data["complete"] is True
    assert data["errors"] == [] and data["skipped"] == []
    meta = data["meta"]
    for key in ("date", "torch", "transformers", "peft", "device", "dtype"):
        assert meta[key], key
    assert meta["tiny"] is True and meta["device"] == "cpu" and meta["gpu"] is None

    build = data["build"]
    _positive(build, "seconds", "params_base", "params_text_model", "params_lora_all_tasks")
    assert build["lora_r"] == 4 and build["config"]["vocab_size"] == 151936

    assert data["sanity"] == {
        "finite": True,
        "unit_norm": True,
        "adapters_differ": True,
        "multi_vector_rows": data["sanity"]["multi_vector_rows"],
        "dim": 64,
    }
    mix = data["length_mix"]
    _positive(mix, "mean_tokens", "p50_tokens", "p95_tokens", "prefix_tokens", "query_tokens")
    assert mix["min_tokens"] <= mix["p50_tokens"] <= mix["p95_tokens"] <= mix["max_tokens"]

    throughput_keys = (
        "chunks",
        "real_tokens",
        "padded_tokens",
        "seconds",
        "tokens_per_s",
        "padded_tokens_per_s",
        "chunks_per_s",
        "padding_efficiency",
    )
    single = data["single_vector"]
    assert [r["budget"] for r in single] == [128, 512]
    for row in [*single, *data["multi_vector"], *data["single_vector_variants"]]:
        assert row["status"] == "ok", row
        _positive(row, *throughput_keys)
        assert row["real_tokens"] <= row["padded_tokens"]
        assert row["peak_gpu_bytes"] is None  # CPU: no CUDA allocator to ask
    assert {r["kind"] for r in data["multi_vector"]} == {"multi"}
    labels = [r["label"] for r in data["single_vector_variants"]]
    assert labels == ["no-adapter", "indexer-call-size", "indexer-call-size"]

    assert [r["budget"] for r in data["rerank"]] == [256, 512]
    for row in data["rerank"]:
        assert row["candidates"] == 50 and row["reps"] == 3
        for key in ("recompute_ms", "stored_ms", "query_single_ms", "docs_multi_ms"):
            _positive(row[key], "p50", "p95")
            assert row[key]["p50"] <= row[key]["p95"]

    images = data["images"]
    assert [r["megapixels"] for r in images] == [0.05, 0.1, 0.2]  # --tiny's sizes
    for row in images:
        assert row["status"] == "ok" and row["finite"] is True and row["dim"] == 64, row
        _positive(row, "images", "seconds", "images_per_s", "megapixels_per_s", "image_tokens")
        _positive(row, "preprocess_ms_per_image", "images_per_batch")
        assert row["width"] * row["height"] <= row["max_image_pixels"]
        assert row["peak_gpu_bytes"] is None
    tokens = [r["image_tokens"] for r in images]
    assert tokens == sorted(tokens) and tokens[0] < tokens[-1]

    storage = data["storage"]
    assert storage["token_dim"] == 16
    per_token = {fmt: v["bytes_per_token"] for fmt, v in storage["formats"].items()}
    assert per_token == {"float16": 32, "int8": 16, "binary": 2}
    for fmt in per_token:
        _positive(storage["formats"][fmt], "mean_bytes_per_chunk", "gib_per_100k_chunks")
    assert data["flash_attention_2"]["status"].startswith("not run")
