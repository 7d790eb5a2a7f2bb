"""Which runtime runs a BERT-like model, and the OpenVINO export it needs. No torch here.

``auto`` (the default) runs the model on OpenVINO on the CPU (``ov_embedder``), in the precision
the CPU computes fastest: bf16 where it has native bf16 (1.68x torch's bf16 chunks/s on a whole
index of django, half the memory), fp32 elsewhere (1.2-1.6x torch's fp32 chunks/s with the same
answers: cosine 1.0, not one dev question moved). bf16 moves vectors by a cosine of about
0.99999 on either runtime, which swaps near-tied answers: on the hand-written dev questions half
of all draws of that much noise move some corpus's MRR@10 by more than 0.005, either way
(``benchmarks/noise_floor.py``; benchmarks/RESULTS.md). A GPU is torch's
(``TransformersEmbedder``), as is a CPU whose export cannot be made (a warning says why).
``CODESEARCH_EMBED_RUNTIME=openvino|torch`` picks one (openvino: the CPU only).

The model is converted once per model, length and OpenVINO version, in a child process
(``ov_export``), into codesearch's cache folder (``$CODESEARCH_CACHE``, else
``$XDG_CACHE_HOME/codesearch`` or ``~/.cache/codesearch``: derived files that any data folder
can share), under ``openvino/``; later loads read that folder.
``CODESEARCH_EMBED_PRECISION=fp32|bf16`` overrides the precision both runtimes pick (bf16
where the CPU computes it natively).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from codesearch.embed.minilm.files import OPENVINO_FORMAT
from codesearch.types import BadInput, ModelUnavailable

log = logging.getLogger("codesearch.embed.minilm")

RUNTIMES = ("auto", "openvino", "torch")
EXPORT_TIMEOUT_S = 600


def cpu_has_native_bf16() -> bool:
    """True if the CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 is ~2x faster."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def chosen_precision(device: str | None) -> str:
    """ "bf16" or "fp32": CODESEARCH_EMBED_PRECISION when set, else bf16 on a GPU or a CPU with
    native bf16."""
    env = os.environ.get("CODESEARCH_EMBED_PRECISION", "").strip().lower()
    if env in ("fp32", "bf16"):
        return env
    on_gpu = bool(device) and not str(device).startswith("cpu")
    return "bf16" if on_gpu or cpu_has_native_bf16() else "fp32"


def asked_runtime() -> str:
    """CODESEARCH_EMBED_RUNTIME: auto (unset), openvino or torch."""
    asked = os.environ.get("CODESEARCH_EMBED_RUNTIME", "auto").strip().lower() or "auto"
    if asked not in RUNTIMES:
        raise BadInput(f"CODESEARCH_EMBED_RUNTIME={asked!r}: use one of {', '.join(RUNTIMES)}")
    return asked


def chosen_runtime(device: str | None) -> str:
    """ "openvino" or "torch" for a model on ``device`` (None: the CPU); see the docstring."""
    asked = asked_runtime()
    on_cpu = device is None or str(device).startswith("cpu")
    installed = importlib.util.find_spec("openvino") is not None
    if asked == "openvino":
        if not on_cpu:
            raise BadInput(f"the openvino runtime runs on the CPU, not on {device}")
        if not installed:
            raise ModelUnavailable("CODESEARCH_EMBED_RUNTIME=openvino: openvino is not installed")
        return "openvino"
    if asked == "auto" and on_cpu and installed:
        return "openvino"
    return "torch"


def cache_root() -> Path:
    """The folder of the OpenVINO exports, read from the environment now."""
    own = os.environ.get("CODESEARCH_CACHE")
    if own:
        return Path(own).expanduser() / "openvino"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "codesearch" / "openvino"


def export_folder(model_id: str, max_tokens: int | None) -> Path:
    """Where the OpenVINO export of this model lives."""
    import openvino

    # the model id names the weights (and the adapter's): folders with the same id share one
    key = "\0".join([model_id, str(max_tokens), openvino.__version__, str(OPENVINO_FORMAT)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._+-]+", "_", model_id)[:60]
    return cache_root() / f"{name}-{digest}"


def ensure_export(
    out: Path, folder: Path, model_id: str, max_tokens: int | None, adapter: Path | None
) -> Path:
    """``out``, exported first (in a child process, once) when it is not there yet."""
    if (out / "meta.json").is_file():
        return out
    log.info("converting %s for OpenVINO (once) into %s", model_id, out)
    command = [sys.executable, "-m", "codesearch.embed.minilm.ov_export", str(folder), str(out)]
    command += ["--model-id", model_id]
    if max_tokens:
        command += ["--max-tokens", str(max_tokens)]
    if adapter is not None:
        command += ["--adapter", str(adapter)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelUnavailable(f"converting {model_id} for OpenVINO failed: {exc}") from exc
    if done.returncode != 0 or not (out / "meta.json").is_file():
        lines = (done.stderr or "").strip().splitlines()
        raise ModelUnavailable(
            f"converting {model_id} for OpenVINO failed: {lines[-1] if lines else done.returncode}"
        )
    return out


def discard(out: Path) -> None:
    """Remove an export that does not load (it is made again)."""
    shutil.rmtree(out, ignore_errors=True)
