"""The CLI's checks of what it is given, before any work starts: flags that must not repeat,
counts that must not be negative, folders too big to index by accident, and batches cut to
fit the daemon's request limit."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codesearch.types import BadInput

BATCH_REQUEST_BYTES = 256 * 1024  # queries per daemon request: well under its 1 MiB limit


class Once(argparse.Action):
    """A flag that takes one value: given twice, an error, not the last one silently."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} takes one value: it was given more than once")
        setattr(namespace, self.dest, values)


def count(text: str) -> int:
    """An argparse ``type``: a whole number from 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def guard_root(path: Path, force: bool) -> None:
    """Refuse to index the whole filesystem or a home folder itself, unless ``force``."""
    resolved = Path(path).expanduser().resolve()
    homes = {Path.home().resolve()}
    if resolved == Path(resolved.anchor):
        what = "the whole filesystem"
    elif resolved in homes:
        what = "your whole home folder"
    else:
        return
    if not force:
        raise BadInput(
            f"refusing to index {resolved}: that is {what}; index a project folder, "
            "or pass --force to index it anyway"
        )


def batches(queries: list[str]) -> list[list[str]]:
    """``queries`` cut into runs that each fit one daemon request, in order."""
    runs: list[list[str]] = [[]]
    size = 0
    for query in queries:
        cost = len(json.dumps(query, ensure_ascii=False).encode("utf-8")) + 1
        if runs[-1] and size + cost > BATCH_REQUEST_BYTES:
            runs.append([])
            size = 0
        runs[-1].append(query)
        size += cost
    return runs
