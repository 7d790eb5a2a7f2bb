"""Ignore rules and name/content filters used by discovery (see :mod:`codesearch.paths`).

- :class:`IgnoreRules`: git ignore semantics (``.git/info/exclude``, a ``.gitignore`` in every
  directory, nested files override their parents) plus ``.codesearchignore`` files (same syntax,
  any directory), which are consulted after every ``.gitignore`` and so may re-include with ``!``.
- Name filters: version-control, vendored, secret, generated and binary-extension names.
- :func:`sniff`: the content checks on a file's first bytes (binary, minified, generated).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from codesearch import credentials
from codesearch.safe_read import Refused, read_regular
from codesearch.wildmatch import Glob, compile_glob, trim

GITIGNORE = ".gitignore"
CODESEARCHIGNORE = ".codesearchignore"
GIT_EXCLUDE = ".git/info/exclude"
HEAD_BYTES = 8192
IGNORE_FILE_MAX_BYTES = 1_000_000  # a larger ignore file is refused (its rules not applied)

# Told about an ignore file that cannot be used: its absolute path and why.
OnRefused = Callable[[str, Refused], None]

VCS_NAMES = frozenset({".git", ".hg", ".svn"})

# Directory names that are always third-party, generated or cache output.
VENDORED_DIRS = frozenset(
    {
        "node_modules",
        "bower_components",
        ".venv",
        "venv",
        "site-packages",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".eggs",
        "dist",
        "build",
        ".idea",
        ".vscode",
        ".next",
        ".nuxt",
        ".cache",
        "coverage",
        ".gradle",
    }
)

LOCK_FILES = frozenset(
    {
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "cargo.lock",
        "poetry.lock",
        "uv.lock",
        "gemfile.lock",
        "composer.lock",
        "go.sum",
    }
)
GENERATED_SUFFIXES = (".min.js", ".min.css", ".map")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


BINARY_EXTENSIONS = _words(
    """
    png jpg jpeg gif bmp ico icns tif tiff webp avif heic psd xcf raw cr2 nef
    zip gz tgz bz2 xz lz lzma zst 7z rar tar jar war ear whl egg apk ipa dmg iso deb rpm msi cab
    ttf otf woff woff2 eot
    so dll dylib exe o a lib obj ko elf bin dat pyc pyo pyd class wasm beam
    pdf doc docx xls xlsx ppt pptx odt ods odp epub
    sqlite sqlite3 db mdb
    mp3 mp4 m4a m4v wav flac ogg oga ogv opus aac mov avi mkv webm wmv flv mpg mpeg
    npy npz pkl pickle pt pth ckpt safetensors onnx h5 hdf5 parquet feather arrow tflite
    """
)


def is_vcs(name: str) -> bool:
    return name in VCS_NAMES


def vendored_dir(name: str, siblings: Collection[str], has_pyvenv_cfg: bool) -> bool:
    """Whether a directory called ``name`` is vendored/generated output.

    ``siblings`` are the names in the same parent directory; ``has_pyvenv_cfg`` says whether the
    directory itself holds a ``pyvenv.cfg`` (any virtual environment, whatever its name).
    """
    if name in VENDORED_DIRS or name.endswith(".egg-info") or has_pyvenv_cfg:
        return True
    if name == "target":
        return "Cargo.toml" in siblings
    if name == "vendor":
        return "go.mod" in siblings or "composer.json" in siblings
    return False


def secret_file(rel: str) -> bool:
    """Whether ``rel`` (a relative path or a name) is a credential file by its name
    (:func:`codesearch.credentials.secret_path` says which)."""
    return credentials.secret_path(rel) is not None


def generated_name(name: str) -> bool:
    lower = name.lower()
    return lower in LOCK_FILES or lower.endswith(GENERATED_SUFFIXES)


def binary_extension(name: str) -> bool:
    _, dot, ext = name.rpartition(".")
    return bool(dot) and ext.lower() in BINARY_EXTENSIONS


# A generated-code marker counts only on a comment line (not `x = 1  # DO NOT EDIT THIS LINE`).
_COMMENT_STARTS = (b"#", b"//", b"/*", b"*", b"<!--", b"--", b";", b"%", b'"""', b"'''")


def sniff(head: bytes) -> tuple[str, str] | None:
    """Content checks on a file's first bytes: ``(reason, detail)`` or None to index it."""
    if b"\0" in head[:HEAD_BYTES]:
        return ("binary", "NUL byte in the first 8 KiB")
    head = head[:HEAD_BYTES]
    if len(head) > 1000 and len(head) / (head.count(b"\n") + 1) > 200:  # cheap test first
        longest = max(map(len, head.split(b"\n")))
        if longest > 1000:
            return ("minified", f"line of {longest}+ characters")
    for line in head.split(b"\n", 5)[:5]:
        text = line.lstrip()
        if text.startswith(_COMMENT_STARTS) and (b"@generated" in text or b"DO NOT EDIT" in text):
            return ("generated", "generated-code marker in the first lines")
    return None


@dataclass(frozen=True)
class Pattern:
    """One line of an ignore file: its glob (:mod:`codesearch.wildmatch`, the dialect of every
    ``--path`` filter too) and whether it names directories only (a trailing `/`)."""

    glob: Glob
    dir_only: bool

    @property
    def negate(self) -> bool:
        return self.glob.negated

    def matches(self, path: str, name: str, is_dir: bool) -> bool:
        """Whether the pattern matches this entry itself (``path``: below the ignore file's
        folder; ``name``: its last part), not only a folder above it: the walk has decided
        those already. A pattern with no `/` but at its end matches the name, at any depth."""
        if self.dir_only and not is_dir:
            return False
        return self.glob.matches_itself(path if self.glob.anchored else name)


def parse_line(line: str) -> Pattern | None:
    """One line of a gitignore file, or None for blanks, comments and invalid patterns."""
    line = trim(line)
    dir_only = line.endswith("/")
    glob = compile_glob(line[:-1] if dir_only else line)
    return Pattern(glob, dir_only) if glob else None


@dataclass(frozen=True)
class _Layer:
    base: str  # directory of the ignore file, relative to the root, "" or ending in "/"
    patterns: tuple[Pattern, ...]  # in file order: the last match wins


@dataclass(frozen=True)
class Verdict:
    ignored: bool
    kept_by_codesearchignore: bool  # an explicit `!` in a .codesearchignore decided


class IgnoreRules:
    """The ignore layers in force in one directory (immutable; :meth:`child` adds a level).

    Evaluated per entry during a walk, like git: a directory that is ignored is never entered,
    so nothing below it can be re-included.
    """

    __slots__ = ("_codesearch", "_git")

    def __init__(self, git: tuple[_Layer, ...] = (), codesearch: tuple[_Layer, ...] = ()) -> None:
        self._git = git
        self._codesearch = codesearch

    @classmethod
    def for_root(cls, root: str, on_refused: OnRefused | None = None) -> IgnoreRules:
        """The rules of ``.git/info/exclude`` (if any), before any directory is read.
        ``on_refused`` hears of an ignore file that is not used (a FIFO, a device, too large)."""
        patterns = load(f"{root}/{GIT_EXCLUDE}", on_refused, follow_symlinks=True)
        return cls((_Layer("", patterns),) if patterns else ())

    def child(
        self,
        dir_abs: str,
        dir_rel: str,
        names: Collection[str],
        on_refused: OnRefused | None = None,
    ) -> IgnoreRules:
        """The rules inside ``dir_abs`` (``dir_rel`` relative to the root, "" for the root),
        given the names it holds; ``self`` when it has no ignore file."""
        base = f"{dir_rel}/" if dir_rel else ""
        git, codesearch = self._git, self._codesearch
        if GITIGNORE in names and (patterns := load(f"{dir_abs}/{GITIGNORE}", on_refused)):
            git = (*git, _Layer(base, patterns))
        if CODESEARCHIGNORE in names and (
            patterns := load(f"{dir_abs}/{CODESEARCHIGNORE}", on_refused)
        ):
            codesearch = (*codesearch, _Layer(base, patterns))
        if git is self._git and codesearch is self._codesearch:
            return self
        return IgnoreRules(git, codesearch)

    def check(self, rel: str, is_dir: bool) -> Verdict:
        """Decide for ``rel`` (relative to the root): the last matching pattern wins, deeper
        files over shallower ones, and every ``.codesearchignore`` over every ``.gitignore``."""
        name = rel.rpartition("/")[2]
        for layers, ours in ((self._codesearch, True), (self._git, False)):
            for layer in reversed(layers):
                sub = rel[len(layer.base) :]
                for pattern in reversed(layer.patterns):
                    if pattern.matches(sub, name, is_dir):
                        return Verdict(not pattern.negate, ours and pattern.negate)
        return Verdict(False, False)


def load(
    path: str, on_refused: OnRefused | None = None, follow_symlinks: bool = False
) -> tuple[Pattern, ...]:
    """The patterns of one ignore file (empty when it is missing or cannot be used).

    Only a regular file of at most ``IGNORE_FILE_MAX_BYTES`` is read, without ever blocking; a
    symlinked one in the tree is not followed (as git does). A file that exists but is refused
    is reported to ``on_refused``."""
    try:
        data = read_regular(path, IGNORE_FILE_MAX_BYTES, follow_symlinks=follow_symlinks)
    except Refused as exc:
        if exc.reason != "vanished" and on_refused is not None:
            on_refused(path, exc)
        return ()
    text = data.decode("utf-8", "replace")
    lines = (line.removesuffix("\r") for line in text.split("\n"))  # git's lines, not Python's
    return tuple(p for line in lines if (p := parse_line(line)))
