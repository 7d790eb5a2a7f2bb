"""Convert a BERT-like sentence-transformers model (with its adapter merged) to an OpenVINO
model folder, once, for the OpenVINO runtime (``ov_embedder``).

Runs in its own process (``python -m codesearch.embed.minilm.ov_export FOLDER OUT ...``), so the
process that embeds never imports torch or transformers: the conversion needs them, inference
does not. The folder written holds ``model.xml`` / ``model.bin`` (the encoder with its pooling
and L2 normalisation inside the graph: ids and mask in, one unit vector per row out),
``tokenizer.json`` (truncation at the model's length, no padding) and ``meta.json``.

OpenVINO's converter sends usage telemetry unless the user opted out: it is kept out of this
process (its module is blocked before openvino loads, and the converter falls back to its stub).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from codesearch.embed.minilm.files import OPENVINO_FORMAT


def export(
    folder: Path,
    out: Path,
    *,
    model_id: str,
    max_tokens: int | None = None,
    adapter: Path | None = None,
) -> None:
    """Write the OpenVINO folder of ``folder`` (+ ``adapter``) to ``out``, atomically: ``out``
    appears complete or not at all (a concurrent export of the same model loses the race
    harmlessly)."""
    sys.modules.update({"openvino_telemetry": None})  # blocked: the converter uses its stub
    import openvino as ov
    import torch

    from codesearch.embed.minilm.embedder import TransformersEmbedder, pool

    source = TransformersEmbedder(
        folder, model_id=model_id, precision="fp32", max_tokens=max_tokens, adapter=adapter
    )

    class Pooled(torch.nn.Module):
        """The encoder, then mean (or CLS) pooling and L2 normalisation, as one graph."""

        def __init__(self) -> None:
            super().__init__()
            self.model = source.model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if source.uses_token_types:
                inputs["token_type_ids"] = torch.zeros_like(input_ids)
            hidden = self.model(**inputs).last_hidden_state
            pooled = pool(hidden, attention_mask, source.pooling)
            return torch.nn.functional.normalize(pooled, dim=-1)

    example = {
        "input_ids": torch.ones(2, 8, dtype=torch.long),
        "attention_mask": torch.ones(2, 8, dtype=torch.long),
    }
    with torch.inference_mode():
        converted = ov.convert_model(Pooled().eval(), example_input=example)
    meta: dict[str, Any] = {
        "format": OPENVINO_FORMAT,
        "model_id": model_id,
        "dim": source.dim,
        "max_tokens": source.max_tokens,
        "pad_id": source.pad_id,
        "openvino": ov.__version__,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        ov.save_model(converted, work / "model.xml", compress_to_fp16=False)
        (work / "tokenizer.json").write_text(source.tokenizer_json(), encoding="utf-8")
        (work / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        try:
            os.rename(work, out)
        except OSError:
            if not (out / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--model-id", required=True)
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--adapter", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        export(
            args.folder,
            args.out,
            model_id=args.model_id,
            max_tokens=args.max_tokens,
            adapter=args.adapter,
        )
    except Exception as exc:  # one line for the parent to show
        print(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
