"""`codesearch index`: by the running daemon when there is one (cli_handover), else in this
process under the index's writer lock; a progress bar, one summary line, and on Ctrl-C exactly
what the index kept."""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from codesearch.cli_checks import guard_root
from codesearch.types import CodesearchError, IndexStats

if TYPE_CHECKING:
    from codesearch.config import Settings
    from codesearch.engine import IndexStatus


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from codesearch.engine import index_repo
    from codesearch.render import ProgressBar, format_skips

    guard_root(Path(args.path), args.force)
    before = None if args.quiet or args.rebuild else _built_with(Path(args.path), settings)
    interrupted: KeyboardInterrupt | None = None
    bar = None
    try:
        found = _index_by_daemon(args, settings)  # one writer per index: a running daemon's
        bar = ProgressBar() if not args.quiet and found is None else None
        stats = found or index_repo(
            Path(args.path),
            settings,
            rebuild=args.rebuild,
            progress=bar,
            model=args.model,
            on_wait=_say_waiting,
        )
    except KeyboardInterrupt as exc:  # Ctrl-C: say exactly what the index kept
        interrupted = exc
    finally:
        if bar is not None:
            bar.close()
    if interrupted is not None:
        print(f"codesearch: interrupted: {_kept(interrupted)}", file=sys.stderr)
        return 130
    if args.verbose and stats.skipped:
        print(format_skips(stats), file=sys.stderr)
    if not args.quiet:
        print(_index_summary(args, settings, stats, before), file=sys.stderr)
    return 0


def _say_waiting() -> None:
    print(
        "codesearch: another codesearch process (the daemon?) is writing this index; "
        "waiting until it is done (Ctrl-C to stop)",
        file=sys.stderr,
    )


def _index_by_daemon(args: argparse.Namespace, settings: Settings) -> IndexStats | None:
    """`index` done by a running daemon (cli_handover); None: in this process."""
    if args.no_daemon or not settings.daemon:
        return None
    from codesearch import cli_handover

    if args.max_file_size is not None or args.include_secrets:
        if cli_handover.daemon_runs(settings):
            cli_handover.refuse_settings(args)
        return None
    return cli_handover.index(args, settings)


def _kept(exc: KeyboardInterrupt) -> str:
    """What an interrupted `index` left in the index, in words."""
    from codesearch.index import IndexInterrupted

    if exc.args and isinstance(exc.args[0], str):  # the daemon's run: it goes on
        return exc.args[0]
    kept = exc.files_kept if isinstance(exc, IndexInterrupted) else 0
    if not kept:
        return "no file of this run was finished; the index is as it was before"
    files = "1 file" if kept == 1 else f"{kept} files"
    return f"{files} finished in this run are kept in the index (run it again for the rest)"


def _built_with(path: Path, settings: Settings) -> IndexStatus | None:
    """The model and dims of the existing index of ``path`` (None if there is none)."""
    from codesearch.engine import index_status
    from codesearch.paths import resolve_root

    try:
        return index_status(resolve_root(path), settings)
    except CodesearchError:  # no index yet, or one that index_repo will report on
        return None


def _index_summary(
    args: argparse.Namespace, settings: Settings, stats: IndexStats, before: IndexStatus | None
) -> str:
    """The render summary plus the model that built the index: one line."""
    from codesearch.embed.registry import explain_auto
    from codesearch.engine import index_status
    from codesearch.paths import resolve_root
    from codesearch.render import format_summary

    root = resolve_root(Path(args.path))
    after = index_status(root, settings)
    notes = []
    requested = args.model or (before.model_spec if before else "") or settings.model
    if requested == "auto":
        notes.append(f"picked by auto: {explain_auto()[1]}")
    if before is not None and before.model_id and before.model_id != after.model_id:
        if _without_dim(before.model_id) == _without_dim(after.model_id):
            notes.append(f"rebuilt: the dimension changed from {before.dim} to {after.dim}")
        else:
            notes.append(f"rebuilt: the model changed from {before.model_id} ({before.dim} dims)")
        stats = replace(stats, rebuilt=False)  # said more precisely here
    note = f" ({'; '.join(notes)})" if notes else ""
    return f"{format_summary(stats, str(root))}; model {after.model_id}, {after.dim} dims{note}"


def _without_dim(model_id: str) -> str:
    return re.sub(r":d\d+$", "", model_id)
