"""The repositories the daemon watches: a JSON list in the data dir, written atomically; and
the ones removed with `codesearch remove` (a search in them does not watch them again until
`codesearch add`)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from codesearch.datadir import private_dir
from codesearch.types import BadInput


def load(path: Path, key: str = "repositories") -> list[Path]:
    """The watched roots (``key="removed"``: the removed ones)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not a valid repository list ({exc}); fix or delete it") from None
    roots = data.get(key, []) if isinstance(data, dict) else None
    if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
        raise BadInput(f"{path}: not a valid repository list; fix or delete it")
    return [Path(r) for r in roots]


def load_removed(path: Path) -> set[Path]:
    return set(load(path, "removed"))


def save(path: Path, roots: list[Path], removed: Iterable[Path] | None = None) -> None:
    """Write the watched ``roots``; ``removed`` replaces the removed ones (None: kept)."""
    private_dir(path.parent)
    gone = load_removed(path) if removed is None else set(removed)
    gone -= set(roots)
    document = {"repositories": sorted(str(r) for r in roots), "removed": sorted(map(str, gone))}
    text = json.dumps(document, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".repos-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
