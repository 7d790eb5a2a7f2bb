"""The workspace folders the server searches, and each one's registration with the daemon.

A folder is registered (daemon ``add``) once; a search waits for that registration (not for
indexing to finish: the daemon answers from what it has, with a notice). A folder the client
removes is no longer searched; the daemon keeps watching it and its index stays.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from lsp.convert import uri_path


@dataclass
class Folder:
    uri: str
    path: Path  # absolute, symlinks resolved
    name: str
    root: Path | None = None  # the repository root the daemon reported (set once registered)
    error: str = ""  # why registration failed
    registration: asyncio.Task[None] | None = field(default=None, repr=False)


class Folders:
    """Workspace folders by URI, in the order the client gave them."""

    def __init__(self) -> None:
        self._folders: dict[str, Folder] = {}

    def add(self, uri: str, name: str = "") -> Folder | None:
        """Follow the folder at ``uri``; None when it is not a local (``file://``) folder."""
        path = uri_path(uri)
        if path is None:
            return None
        resolved = Path(os.path.realpath(path))
        for folder in self._folders.values():
            if folder.path == resolved:
                return folder
        folder = Folder(uri=uri, path=resolved, name=name or resolved.name or str(resolved))
        self._folders[uri] = folder
        return folder

    def remove(self, uri: str) -> Folder | None:
        folder = self._folders.pop(uri, None)
        if folder is None:  # the client may spell the URI differently: compare paths
            path = uri_path(uri)
            found = self._matching(path) if path is not None else None
            if found is not None and found.path == Path(os.path.realpath(path or "")):
                folder = self._folders.pop(found.uri)
        return folder

    def all(self) -> list[Folder]:
        return list(self._folders.values())

    def find(self, uri: str) -> Folder | None:
        """The workspace folder that is, or holds, the folder at ``uri``."""
        path = uri_path(uri)
        return self._matching(path) if path is not None else None

    def _matching(self, path: Path) -> Folder | None:
        resolved = Path(os.path.realpath(path))
        best: Folder | None = None
        for folder in self._folders.values():
            inside = resolved == folder.path or folder.path in resolved.parents
            if inside and (best is None or len(folder.path.parts) > len(best.path.parts)):
                best = folder
        return best

    def __len__(self) -> int:
        return len(self._folders)


async def registered(folder: Folder, register: Callable[[Folder], Awaitable[None]]) -> Folder:
    """Wait for ``folder``'s registration, starting it (``register``) when none ran yet or the
    last one failed (the daemon could not be started then, the folder was missing...)."""
    last = folder.registration
    if last is None or (last.done() and folder.root is None):
        folder.registration = asyncio.ensure_future(register(folder))
    await asyncio.shield(folder.registration)  # a cancelled search leaves registration be
    return folder
