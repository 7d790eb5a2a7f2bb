"""What `status` reports that is read from the system: an index's contents, the RSS, the
remote embedding servers' health."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codesearch.store import Store
from codesearch.types import CodesearchError


def index_facts(index_path: Path) -> dict[str, Any]:
    """Files, chunks, model and size of an index, read through its own short connection."""
    if not index_path.exists():
        return {"files": 0, "chunks": 0, "model": "", "dim": 0, "index_bytes": 0}
    try:
        with Store.open(index_path) as store:
            stats = store.stats()
            pictures, waiting = store.picture_counts()
            return {
                "files": stats.get("files", 0),
                "chunks": stats.get("chunks", 0),
                "model": store.get_meta("model_id") or "",
                "dim": int(store.get_meta("dim") or 0),
                "index_bytes": stats.get("bytes", 0),
                "pictures": pictures,
                "pictures_waiting": waiting,
            }
    except CodesearchError as exc:
        return {
            "files": 0,
            "chunks": 0,
            "model": "",
            "dim": 0,
            "index_bytes": 0,
            "index_error": str(exc),
        }


def embedder_facts() -> list[dict[str, Any]]:
    """What the embedding backends in use report: each remote embedding server's URL (no
    secrets) and model, and its state: "up", "failing", "down" (with the error and when the
    next try is) or "probing"."""
    from codesearch.embed import backend_status

    return backend_status()


def rss_bytes() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
