"""One command from nothing to the adapter: prepare the pairs (fetching the training corpora
that are missing, reusing the cached pairs), then train.

    .venv/bin/python -m training.run --out codesearch/embed/adapters/minilm-code --scale 0.5

Every option of training/prepare.py and training/train.py is accepted (``--help``).
``--scale S`` multiplies the trained adapter's LoRA alpha by S (the update is merged at that
strength): the shipped adapter is merged at half strength, chosen by leave-one-corpus-out
on mined and hand-written questions (benchmarks/adapter_scale.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training import prepare, train


def scale_adapter(out: Path, scale: float) -> None:
    """Merge the adapter in ``out`` at ``scale`` times its trained strength (LoRA's update is
    alpha / rank x B A: alpha scaled), and record it in its training log."""
    config_path, log_path = out / "adapter_config.json", out / "training_log.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["lora_alpha"] = config["lora_alpha"] * scale
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    log = json.loads(log_path.read_text(encoding="utf-8"))
    log["merge_scale"] = scale
    log_path.write_text(json.dumps(log, indent=1) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    prepare.add_arguments(p)
    train.add_arguments(p, with_common=False)
    p.add_argument("--seed", type=int, default=0, help="seeds the pair variants and the training")
    p.add_argument(
        "--scale", type=float, default=1.0, help="merge the adapter at this share of its strength"
    )
    args = p.parse_args(argv)
    prepare.run(args)
    train.train(args)
    if args.scale != 1.0:
        scale_adapter(Path(args.out), args.scale)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
