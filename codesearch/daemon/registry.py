"""The repositories the daemon watches: a JSON list in the data dir, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from codesearch.datadir import private_dir
from codesearch.types import BadInput


def load(path: Path) -> list[Path]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not a valid repository list ({exc}); fix or delete it") from None
    roots = data.get("repositories", []) if isinstance(data, dict) else None
    if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
        raise BadInput(f"{path}: not a valid repository list; fix or delete it")
    return [Path(r) for r in roots]


def save(path: Path, roots: list[Path]) -> None:
    private_dir(path.parent)
    text = json.dumps({"repositories": sorted(str(r) for r in roots)}, indent=2) + "\n"
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
