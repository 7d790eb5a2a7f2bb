"""watchdog observers, one per repository: raw file-system events become repository-relative
paths for the scheduler, which debounces and coalesces them into batches.

What costs nothing: events inside ``.git/`` (except ``.git/info/exclude``, an ignore file),
events under folders the last walk left out as ignored or vendored, reads (opened / closed
without writing: the indexer's own reads must not wake it), and folder "modified" events
(their entries report for themselves).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

log = logging.getLogger(__name__)

IGNORE_FILES = (".gitignore", ".codesearchignore")
GIT_EXCLUDE = ".git/info/exclude"
WHOLE_REPO = ""  # a scope that means: reconcile everything

# Events that can change what is indexed; reads and attribute changes cannot.
EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]

PathsFn = Callable[[set[str]], None]


class SkipPrefixes:
    """Folders (and files) the last walk left out by name (ignored, vendored): events under
    them are dropped until an ignore file changes. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._prefixes: set[str] = set()

    def update(self, scope: Iterable[str], skipped: Iterable[str]) -> None:
        """Replace what is known inside ``scope`` with ``skipped`` (found by walking it)."""
        from codesearch.paths import in_scope

        scope = list(scope)
        with self._lock:
            self._prefixes = {p for p in self._prefixes if not in_scope(p, scope)}
            self._prefixes.update(skipped)

    def covers(self, rel: str) -> bool:
        with self._lock:
            if not self._prefixes:
                return False
            parts = rel.split("/")
            return any("/".join(parts[:i]) in self._prefixes for i in range(1, len(parts) + 1))

    def __len__(self) -> int:
        return len(self._prefixes)


def classify(rel: str, is_directory: bool, skip: SkipPrefixes) -> str | None:
    """The scope an event at ``rel`` asks to re-examine, or None when it changes nothing."""
    if rel in ("", "."):
        return None  # the root itself: its entries report for themselves
    if rel == GIT_EXCLUDE:
        return WHOLE_REPO
    parts = rel.split("/")
    if ".git" in parts:
        return None
    name = parts[-1]
    if name in IGNORE_FILES and not is_directory:
        # What is in and out may have changed below this folder: walk all of it again.
        return "/".join(parts[:-1])
    if skip.covers(rel):
        return None
    return rel


class _Handler(FileSystemEventHandler):
    def __init__(self, root: str, skip: SkipPrefixes, on_paths: PathsFn) -> None:
        super().__init__()
        self.root = root
        self.skip = skip
        self.on_paths = on_paths

    def _rel(self, path: str | bytes) -> str | None:
        text = os.fsdecode(path)
        if text == self.root:
            return ""
        prefix = self.root + os.sep
        if not text.startswith(prefix):
            return None
        return text[len(prefix) :].replace(os.sep, "/")

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write") or (
            event.is_directory and event.event_type == "modified"
        ):
            return
        found: set[str] = set()
        paths = [event.src_path]
        if event.event_type == "moved":
            paths.append(event.dest_path)
        for path in paths:
            rel = self._rel(path)
            if rel is None:
                continue
            scope = classify(rel, event.is_directory, self.skip)
            if scope is not None:
                found.add(scope)
        if found:
            self.on_paths(found)


class RepoWatcher:
    """A started observer on one repository; ``on_paths`` gets sets of scopes."""

    def __init__(self, root: Path, skip: SkipPrefixes, on_paths: PathsFn) -> None:
        self.root = root
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.schedule(
            _Handler(str(root), skip, on_paths), str(root), recursive=True, event_filter=EVENTS
        )
        self._observer.start()  # OSError: e.g. the inotify watch limit

    def alive(self) -> bool:
        return self._observer.is_alive()

    def stop(self) -> None:
        self._observer.stop()
        if self._observer.is_alive() and threading.current_thread() is not self._observer:
            self._observer.join(timeout=5)
