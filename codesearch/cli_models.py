"""The terminal face's model commands: `codesearch models` (the backends usable here) and
`codesearch embed` (the vector a text or a picture gets). The parser is cli.py's."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from codesearch.types import BadInput

if TYPE_CHECKING:
    from codesearch.config import Settings
    from codesearch.embed.single import TextEmbedding


def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from codesearch.embed import available_backends

    if args.download:
        from codesearch.embed.registry import download

        folder = download(args.download, lambda line: print(f"codesearch: {line}", file=sys.stderr))
        print(
            f"{args.download} weights are in {folder}: `--model {args.download}` (and auto, on a "
            "GPU) use them"
        )
        return 0
    backends = available_backends()
    if args.json:
        print(json.dumps([b.__dict__ for b in backends], indent=2))
        return 0
    for b in backends:
        state = f"not usable: {b.reason}" if not b.usable else "usable"
        if b.usable and b.reason:  # a caveat (jina-v4 without a GPU)
            state += f" ({b.reason})"
        print(f"{b.name:10} {b.description}\n{'':10} needs: {b.needs}\n{'':10} {state}")
    return 0


def cmd_embed(args: argparse.Namespace, settings: Settings) -> int:
    model = args.model or settings.model
    if args.image is not None:
        result, side = _embed_image(args, settings, model), "image"
    else:
        result, side = _embed_text(args, settings, model), "query" if args.query else "passage"
    if args.json:
        print(json.dumps(result.to_json()))
        return 0
    rows = result.vectors
    if result.multivector:
        shape = f"{len(rows)} token vectors of {result.dim} dims"
    else:
        shape = f"{result.dim} dims"
    task = f", task {result.task}" if result.task else ""
    first = ", ".join(f"{v:+.4f}" for v in rows[0][:8]) if len(rows) else ""
    print(f"{result.model} ({side}{task}): {shape}, norm {float((rows[0] ** 2).sum()) ** 0.5:.4f}")
    print(f"[{first}{', ...' if result.dim > 8 else ''}]")
    return 0


def _embed_text(args: argparse.Namespace, settings: Settings, model: str) -> TextEmbedding:
    from codesearch.embed.single import TextEmbedding, embed_text

    if args.text is None:
        raise BadInput('nothing to embed: codesearch embed "TEXT" --query (or --passage)')
    if not (args.query or args.passage):
        raise BadInput("say how to embed the text: --query (a question) or --passage (a chunk)")
    if settings.daemon and not args.no_daemon:  # a running daemon has the model loaded
        from codesearch import cli_handover

        answer = cli_handover.embed(args, settings)
        if answer is not None:
            import numpy as np

            rows = np.asarray(answer.vectors, dtype=np.float32)
            return TextEmbedding(answer.model, answer.task, answer.dim, rows, answer.multivector)
    return embed_text(
        args.text,
        model=model,
        query=args.query,
        task=args.task,
        dim=args.dim,
        multivector=args.multivector,
        home=settings.home,
    )


def _embed_image(args: argparse.Namespace, settings: Settings, model: str) -> TextEmbedding:
    from codesearch.embed.single import embed_image
    from codesearch.pictures import file_picture

    if args.text is not None:
        raise BadInput("embed either a text or a picture (--image), not both")
    if args.query:
        raise BadInput("a picture is embedded as the index embeds it (a passage): drop --query")
    if args.multivector:
        raise BadInput("--multivector embeds text; a picture gets one vector")
    path = Path(args.image).expanduser()
    if not path.is_file():
        raise BadInput(f"--image: no such file: {args.image}")
    picture = file_picture(path.resolve())  # a file that is no picture: said before any model
    return embed_image(picture, model=model, task=args.task, dim=args.dim, home=settings.home)
