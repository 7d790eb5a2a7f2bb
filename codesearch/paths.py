"""File discovery: repository roots, the containment check, the walk and reading a file.

The walk applies git ignore semantics (see :mod:`codesearch.ignore`), then the built-in
filters, each with a reason recorded in :attr:`Discovery.skipped`, checked in this order:
``vcs``, ``ignored``, ``vendored``, ``symlink-*``, ``not-regular``, ``secret`` (by name and
path, :mod:`codesearch.credentials`), ``generated`` (by name), ``binary`` (by extension),
``too-large``, ``empty``, then by content ``binary``, ``minified``, ``generated``; reading a
file for the index adds ``secret`` by content. An explicit ``!pattern`` in a
``.codesearchignore`` re-includes a vendored directory or a generated-by-name file (never a
secret: that is ``include_secrets``). A skipped directory counts as one entry; the walk never
descends into it. An ignore file that cannot be used (a FIFO, a device, a symlink, too large)
is recorded as ``ignore-file``, and its rules are not applied.

Every file is read through :mod:`codesearch.safe_read`: regular files only, never blocking.

A *scope* (repository-relative POSIX paths, see :func:`normalize_scope`) restricts a walk to
those paths and what lies inside them, with exactly the full walk's decisions: the walk still
reads the ignore files of every ancestor on the way down, but lists only those ancestors and
records nothing about the other entries it passes.
"""

from __future__ import annotations

import codecs
import os
import posixpath
import re
import stat
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from codesearch import credentials, ignore
from codesearch.config import Settings
from codesearch.media.formats import is_visual
from codesearch.safe_read import Refused, read_regular
from codesearch.types import BadInput, NotARepository, Skip, SourceFile


@dataclass(frozen=True)
class Discovery:
    root: Path
    files: tuple[SourceFile, ...]  # sorted by path
    skipped: tuple[Skip, ...]  # sorted by path


# ---------------------------------------------------------------------------- roots and paths


def find_repo_root(start: Path) -> Path:
    """The nearest ancestor of ``start`` (or ``start`` itself) that holds a ``.git``."""
    here = Path(start).expanduser().resolve()
    if here.is_file():
        here = here.parent
    for candidate in (here, *here.parents):
        if (candidate / ".git").exists():
            return candidate
    raise NotARepository(
        f"not inside a git repository: {start} "
        "(run `codesearch index PATH` on a folder to index it anyway)"
    )


def resolve_root(path: Path) -> Path:
    """The resolved ``path`` of an explicit ``codesearch index PATH``: a readable directory."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.exists():
        raise BadInput(f"no such directory: {path}")
    if not resolved.is_dir():
        raise BadInput(f"not a directory: {path}")
    try:
        with os.scandir(resolved) as entries:
            next(entries, None)
    except OSError as exc:
        raise BadInput(f"cannot read directory: {path} ({exc.strerror or exc})") from None
    return resolved


def _inside(root_real: str, path_real: str) -> bool:
    if path_real == root_real:
        return True
    prefix = root_real if root_real.endswith(os.sep) else root_real + os.sep
    return path_real.startswith(prefix)


def is_inside(root: Path, path: Path) -> bool:
    """THE containment check: ``path`` (symlinks followed; a relative path is taken relative
    to ``root``) lies inside ``root`` (resolved), or is ``root`` itself."""
    full = os.path.join(root, path)  # an absolute ``path`` replaces ``root``
    return _inside(os.path.realpath(root), os.path.realpath(full))


def relpath(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` with POSIX separators; BadInput when it lies outside.

    Containment follows every symlink (:func:`is_inside`); the name returned keeps the last
    component as given, so a symlinked file inside the root is named by its own path.
    """
    root_real = os.path.realpath(root)
    full = os.path.abspath(os.path.join(root, path))
    if not is_inside(Path(root_real), Path(full)):
        raise BadInput(f"path is outside the repository {root}: {path}")
    named = os.path.join(os.path.realpath(os.path.dirname(full)), os.path.basename(full))
    if not _inside(root_real, named):  # only reachable through a symlinked root component
        named = os.path.realpath(full)
    rel = os.path.relpath(named, root_real)
    return "." if rel == os.curdir else rel.replace(os.sep, "/")


# ---------------------------------------------------------------------------- scopes


class Scope(frozenset[str]):
    """Normalised scope paths (see :func:`normalize_scope`); ``""`` stands for the whole repo."""


def normalize_scope(scope: Collection[str]) -> Scope:
    """The scope paths in normal form: POSIX, no leading ``./`` or trailing ``/`` (``""`` for
    the whole repository, also from ``"."``), and none inside another one.

    BadInput for an absolute path or one that climbs out of the repository."""
    if isinstance(scope, Scope):
        return scope
    if isinstance(scope, str):
        raise TypeError("scope must be a collection of paths, not a str")
    norm: set[str] = set()
    for raw in scope:
        path = posixpath.normpath(raw) if raw else "."
        if path.startswith("/") or path == ".." or path.startswith("../"):
            raise BadInput(f"scope path is outside the repository: {raw}")
        norm.add("" if path == "." else path)
    if "" in norm:
        return Scope({""})
    return Scope(p for p in norm if not _under_any(posixpath.dirname(p), norm))


def in_scope(path: str, scope: Collection[str]) -> bool:
    """Whether the repository-relative ``path`` is a scope path or lies inside one."""
    roots = normalize_scope(scope)
    return "" in roots or _under_any(path, roots)


def _under_any(path: str, roots: Collection[str]) -> bool:
    """``path`` or one of its ancestors (not the root) is in ``roots``."""
    while path:
        if path in roots:
            return True
        path = path.rpartition("/")[0]
    return False


# ---------------------------------------------------------------------------- the walk


class _Walker:
    def __init__(self, root: Path, settings: Settings, scope: Scope | None = None) -> None:
        self.root = root
        self.root_str = str(root)
        self.settings = settings
        self.files: list[SourceFile] = []
        self.skipped: list[Skip] = []
        # With a scope: the scope paths, and the directories on the way to them (proper
        # ancestors, the root included) that are themselves outside the scope.
        self.scope = None if scope is None or "" in scope else scope
        self.ancestors: set[str] = set()
        for path in self.scope or ():
            while path:
                path = path.rpartition("/")[0]
                self.ancestors.add(path)

    def skip(self, rel: str, reason: str, detail: str = "") -> None:
        self.skipped.append(Skip(rel, reason, detail))

    def refused_ignore_file(self, path: str, exc: Refused) -> None:
        """An ignore file that is not used (recorded only inside the scope)."""
        rel = os.path.relpath(path, self.root_str).replace(os.sep, "/")
        if self.scope is None or in_scope(rel, self.scope):
            self.skip(rel, "ignore-file", f"{exc.detail}: its rules are not applied")

    def run(self) -> Discovery:
        try:
            top = list(os.scandir(self.root_str))
        except OSError as exc:
            raise BadInput(f"cannot read directory: {self.root} ({exc.strerror or exc})") from None
        rules = ignore.IgnoreRules.for_root(self.root_str, self.refused_ignore_file)
        # (directory, its relative path, the rules of its parent, its entries if listed,
        # whether it lies in the scope)
        stack: list[tuple[str, str, ignore.IgnoreRules, list[os.DirEntry[str]] | None, bool]] = [
            (self.root_str, "", rules, top, self.scope is None)
        ]
        while stack:
            dir_abs, dir_rel, rules, entries, inside = stack.pop()
            if entries is None:
                try:
                    with os.scandir(dir_abs) as iterator:
                        entries = list(iterator)
                except FileNotFoundError:
                    if inside:
                        self.skip(dir_rel, "vanished", "directory disappeared during the walk")
                    continue
                except OSError as exc:
                    if inside:
                        self.skip(dir_rel, "unreadable", f"cannot list directory: {_why(exc)}")
                    continue
            names = {entry.name for entry in entries}
            rules = rules.child(dir_abs, dir_rel, names, self.refused_ignore_file)
            for entry in entries:
                rel = f"{dir_rel}/{entry.name}" if dir_rel else entry.name
                if inside or (self.scope is not None and rel in self.scope):
                    if self.entry(entry, rel, rules, names):
                        stack.append((entry.path, rel, rules, None, True))
                elif rel in self.ancestors and self.passes(entry, rel, rules, names):
                    stack.append((entry.path, rel, rules, None, False))
        files = tuple(sorted(self.files, key=lambda f: f.path))
        skipped = tuple(sorted(self.skipped, key=lambda s: (s.path, s.reason)))
        return Discovery(self.root, files, skipped)

    def passes(
        self, entry: os.DirEntry[str], rel: str, rules: ignore.IgnoreRules, names: set[str]
    ) -> bool:
        """Whether the full walk descends into this out-of-scope entry; records nothing."""
        try:
            if not entry.is_dir(follow_symlinks=False):
                return False
        except OSError:
            return False
        mark = len(self.skipped)
        descend = self.entry(entry, rel, rules, names)  # a directory: at most one skip
        del self.skipped[mark:]
        return descend

    def entry(
        self, entry: os.DirEntry[str], rel: str, rules: ignore.IgnoreRules, names: set[str]
    ) -> bool:
        """Classify one entry; True when it is a directory to descend into."""
        name = entry.name
        if ignore.is_vcs(name):
            self.skip(rel, "vcs")
            return False
        try:
            is_link = entry.is_symlink()
            is_dir = not is_link and entry.is_dir(follow_symlinks=False)
        except OSError as exc:
            self.skip(rel, "unreadable", _why(exc))
            return False
        verdict = rules.check(rel, is_dir)
        if verdict.ignored:
            self.skip(rel, "ignored")
            return False
        keep = verdict.kept_by_codesearchignore
        if is_dir:
            cfg = os.path.exists(os.path.join(entry.path, "pyvenv.cfg"))
            if not keep and ignore.vendored_dir(name, names, cfg):
                self.skip(rel, "vendored")
                return False
            return True
        if is_link:
            self.symlink(entry, rel)
            return False
        if _bad_name(rel):
            self.skip(_printable(rel), "bad-name", "file name is not valid UTF-8")
            return False
        if not self.settings.include_secrets and (why := credentials.secret_path(rel)):
            self.skip(rel, "secret", credentials.detail(why))
            return False
        if not keep and ignore.generated_name(name):
            self.skip(rel, "generated", "lock file or minified bundle")
            return False
        if is_visual(name):
            if self.settings.images:
                self.file(entry, rel, visual=True)
            else:
                self.skip(rel, "image", "pictures are off (images = false)")
            return False
        if ignore.binary_extension(name):
            self.skip(rel, "binary", "binary file extension")
            return False
        self.file(entry, rel)
        return False

    def symlink(self, entry: os.DirEntry[str], rel: str) -> None:
        try:
            target = os.path.realpath(entry.path, strict=True)
        except OSError as exc:
            self.skip(rel, "symlink-broken", _why(exc))
            return
        if not _inside(self.root_str, target):
            self.skip(rel, "symlink-outside", "target is outside the root")
        else:
            target_rel = os.path.relpath(target, self.root_str).replace(os.sep, "/")
            self.skip(rel, "symlink-duplicate", f"target {target_rel} is inside the root")

    def file(self, entry: os.DirEntry[str], rel: str, visual: bool = False) -> None:
        """Keep a regular file within the size limit whose first bytes look like text (a
        picture: only the size; the indexer reads pictures with their own checks)."""
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            self.skip(rel, "vanished", "file disappeared during the walk")
            return
        except OSError as exc:
            self.skip(rel, "unreadable", _why(exc))
            return
        if not stat.S_ISREG(st.st_mode):
            self.skip(rel, "not-regular", "not a regular file (fifo, socket, device)")
            return
        limit = self.settings.max_image_bytes if visual else self.settings.max_file_bytes
        if st.st_size > limit:
            self.skip(rel, "too-large", f"{st.st_size} bytes > limit {limit}")
            return
        if st.st_size == 0:
            self.skip(rel, "empty")
            return
        if visual:
            self.files.append(SourceFile(rel, Path(entry.path), st.st_size, st.st_mtime_ns))
            return
        try:
            head = read_regular(entry.path, ignore.HEAD_BYTES, follow_symlinks=False, head=True)
        except Refused as exc:
            if exc.reason == "vanished":
                self.skip(rel, "vanished", "file disappeared during the walk")
            else:
                self.skip(rel, exc.reason, exc.detail)
            return
        verdict = ignore.sniff(head)
        if verdict:
            self.skip(rel, *verdict)
            return
        self.files.append(SourceFile(rel, Path(entry.path), st.st_size, st.st_mtime_ns))


def walk(root: Path, settings: Settings, scope: Collection[str] | None = None) -> Discovery:
    """Every file under ``root`` to index, and every path left out with its reason.

    With a ``scope`` (repository-relative POSIX paths of files or folders, existing or not;
    ``""`` or ``"."`` for the whole repository): the full walk's result restricted to the
    paths :func:`in_scope` accepts, found by listing only the directories on the way to the
    scope paths and inside them. A scope path below something the full walk does not enter
    (an ignored or vendored directory, ``.git``, a symlink) yields nothing.
    """
    norm = None if scope is None else normalize_scope(scope)
    return _Walker(Path(os.path.realpath(root)), settings, norm).run()


# ---------------------------------------------------------------------------- reading


_SURROGATES = re.compile("[\udc80-\udcff]")


def read_source(root: Path, path: str, settings: Settings) -> tuple[str | None, Skip | None]:
    """Read and decode ``root/path`` for indexing: ``(text, None)`` or ``(None, Skip)``.

    ``path`` must be relative and stay inside ``root`` (BadInput otherwise); a symlink whose
    target leaves the root is skipped as ``symlink-outside``.
    """
    norm = os.path.normpath(path)
    if os.path.isabs(norm) or norm.split(os.sep)[0] == os.pardir:
        raise BadInput(f"path is outside the repository {root}: {path}")
    full = os.path.join(root, norm)
    if not is_inside(root, Path(norm)):
        return None, Skip(path, "symlink-outside", "target is outside the root")
    try:
        data = read_regular(full, settings.max_file_bytes)
    except Refused as exc:
        return None, Skip(path, exc.reason, exc.detail)
    verdict = ignore.sniff(data[: ignore.HEAD_BYTES])
    if verdict and verdict[0] != "generated":  # the name/marker rules belong to the walk
        return None, Skip(path, *verdict)
    if not settings.include_secrets and (what := credentials.secret_content(data)):
        return None, Skip(path, "secret", credentials.detail(f"holds {what}"))
    offset = 0
    if data.startswith(codecs.BOM_UTF8):
        data, offset = data[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        first_bad = exc.start + offset
    bad = len(_SURROGATES.findall(data.decode("utf-8", "surrogateescape")))
    if bad * 100 < len(data):
        return data.decode("utf-8", "replace"), None
    return None, Skip(path, "not-utf8", f"invalid UTF-8 at byte {first_bad}")


# ---------------------------------------------------------------------------- helpers


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _bad_name(rel: str) -> bool:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _printable(rel: str) -> str:
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
