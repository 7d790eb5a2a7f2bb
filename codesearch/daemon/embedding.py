"""`codesearch embed` answered by the daemon, with the model it keeps loaded (no second
load in the CLI: the same vector, without the seconds a model takes to load)."""

from __future__ import annotations

from codesearch.config import Settings
from codesearch.types import BadInput
from codesearch.wire import daemon as wire


def embed(params: wire.EmbedParams, settings: Settings) -> wire.EmbedResult:
    from codesearch.embed.single import embed_with
    from codesearch.engine import get_embedder

    if params.multivector and params.dim is not None:
        raise BadInput("--dim sets the single vector's size; multi-vectors have a fixed size")
    model = params.model or settings.model
    embedder = get_embedder(model, settings.batch_size, params.dim)
    got = embed_with(
        embedder,
        model,
        params.text,
        query=params.query,
        task=params.task,
        multivector=params.multivector,
    )
    return wire.EmbedResult(
        model=got.model,
        task=got.task,
        dim=got.dim,
        vectors=got.vectors.tolist(),
        multivector=got.multivector,
    )
