"""One writer per index: `codesearch index` and `codesearch embed` hand their work to a daemon
that is already running (it owns the index and keeps the model loaded) instead of doing it
again in this process. No daemon is started for them: without one they run in-process, as
with ``--no-daemon``. Cheap to import (no torch, no numpy)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from codesearch import printable
from codesearch.types import BadInput, IndexStats

if TYPE_CHECKING:
    from codesearch.config import Settings
    from codesearch.wire import daemon as wire

DAEMON_ONLY = "the daemon indexes with its own settings"


def index(args: argparse.Namespace, settings: Settings) -> IndexStats | None:
    """`index PATH` done by the running daemon, its progress drawn here; None when no daemon
    runs (or PATH was `remove`d from it: it stays removed) and the caller indexes in-process.

    The daemon does the work whether or not it was already doing it: a run of it in progress
    is followed, not repeated, and every later change is its to index too."""
    from codesearch.cli_daemon import _EventBar, link
    from codesearch.daemon import registry
    from codesearch.daemon.link import NotRunning
    from codesearch.daemon.runtime import runtime
    from codesearch.paths import resolve_root
    from codesearch.wire import daemon as wire

    root = resolve_root(Path(args.path))
    if root in registry.load_removed(runtime(settings).repos):
        return None
    asked = wire.ReindexParams(path=str(root), rebuild=args.rebuild, wait=True, model=args.model)
    bar = _EventBar() if not args.quiet else None
    try:
        answer = link(settings, start=False).request(asked, wire.ReindexResult, on_progress=bar)
    except NotRunning:
        return None
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"the daemon goes on indexing {root} in the background (`codesearch status`)"
        ) from None
    finally:
        if bar is not None:
            bar.close()
    if answer.added and not args.quiet:
        _say(f"the daemon watches {root} from now on (`codesearch remove` stops it)")
    if answer.error:
        raise IndexFailed(f"the daemon could not index {root}: {answer.error}")
    if answer.stats is None:  # an older daemon, or nothing ran
        return IndexStats()
    return answer.stats.to_stats()


def refuse_settings(args: argparse.Namespace) -> None:
    """A one-off setting of `index` that the running daemon would not apply."""
    if args.max_file_size is not None or args.include_secrets:
        flag = "--max-file-size" if args.max_file_size is not None else "--include-secrets"
        raise BadInput(
            f"{flag}: {DAEMON_ONLY} (config.toml, then `codesearch daemon restart`); "
            "use --no-daemon to index with it in this process"
        )


def daemon_runs(settings: Settings) -> bool:
    from codesearch.daemon.client import running

    return running(settings) is not None


def embed(args: argparse.Namespace, settings: Settings) -> wire.EmbedResult | None:
    """`embed TEXT` by the running daemon's model; None when no daemon runs."""
    from codesearch.cli_daemon import link
    from codesearch.daemon.link import NotRunning
    from codesearch.wire import daemon as wire

    asked = wire.EmbedParams(
        text=args.text,
        query=bool(args.query),
        model=args.model,
        task=args.task,
        dim=args.dim,
        multivector=args.multivector,
    )
    try:
        return link(settings, start=False).request(asked, wire.EmbedResult)
    except NotRunning:
        return None


class IndexFailed(BadInput):
    pass


def _say(message: str) -> None:
    print(printable.name(f"codesearch: {message}"), file=sys.stderr)
