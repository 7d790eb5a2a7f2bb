"""What loading jina-embeddings-v4 tells the user once: the weights' non-commercial license
(remembered across processes in a marker file), and that the CPU is slow. No torch here."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("codesearch.embed.jina")

LICENSE_NOTICE = (
    "jina-embeddings-v4 weights are licensed CC-BY-NC-4.0: non-commercial use only "
    "(https://huggingface.co/jinaai/jina-embeddings-v4)"
)
CPU_NOTICE = (
    "jina-v4 is running on the CPU: this is slow (about 0.3 snippets/s for the real 3.75B model "
    "on 2 cores); use a CUDA GPU, or --model minilm"
)
LICENSE_MARKER = "jina-v4-license-notice-shown"

_shown: set[str] = set()  # notices already given in this process
_shown_lock = threading.Lock()


def notify_once(key: str, message: str, notice: Callable[[str], None] | None) -> bool:
    """Give ``message`` (to ``notice``, default: the log) unless ``key`` was given already in
    this process; True if it was given now."""
    with _shown_lock:
        if key in _shown:
            return False
        _shown.add(key)
    (notice or log.warning)(message)
    return True


def license_notice(
    notice: Callable[[str], None] | None = None, marker_dir: str | os.PathLike[str] | None = None
) -> bool:
    """Tell the user once about the non-commercial license; True if it was shown now.

    With ``marker_dir`` the notice is remembered across processes in a marker file there.
    """
    marker = Path(marker_dir) / LICENSE_MARKER if marker_dir is not None else None
    if marker is not None and marker.is_file():
        return False
    shown = notify_once(f"license:{marker}", LICENSE_NOTICE, notice)
    if marker is not None:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(LICENSE_NOTICE + "\n", encoding="utf-8")
        except OSError:
            pass
    return shown
