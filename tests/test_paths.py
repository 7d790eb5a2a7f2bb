"""Tests for file discovery: codesearch.paths (and the rules in codesearch.ignore)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from codesearch import paths
from codesearch.config import Settings
from codesearch.paths import (
    Discovery,
    find_repo_root,
    in_scope,
    is_inside,
    normalize_scope,
    read_source,
    relpath,
    resolve_root,
    walk,
)
from codesearch.types import BadInput, NotARepository, Skip

HAS_GIT = shutil.which("git") is not None


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "_home")


def write(root: Path, rel: str, content: str | bytes = "x = 1\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def files_of(d: Discovery) -> list[str]:
    return [f.path for f in d.files]


def reasons(d: Discovery) -> Counter[str]:
    return Counter(s.reason for s in d.skipped)


def skip_map(d: Discovery) -> dict[str, str]:
    return {s.path: s.reason for s in d.skipped}


def reason_of(result: tuple[str | None, Skip | None]) -> str:
    text, skip = result
    assert text is None and skip is not None
    return skip.reason


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(cwd),
        "XDG_CONFIG_HOME": str(cwd / ".xdg-none"),
    }
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout


# ---------------------------------------------------------------------------- ignore rules

# A tricky fixture: (ignore files, files). Every file has content and a harmless name, so only
# the ignore rules decide; git must agree with the walk on every path.
TRICKY_IGNORES = {
    ".gitignore": "\n".join(
        [
            "# comment line",
            "*.log",
            "!important.log",
            "/anchored.txt",
            "build-out/",
            "docs/**/draft.md",
            "**/tmp",
            "foo/**",
            "!foo/keep.txt",
            "excluded_dir/",
            "!excluded_dir/re.txt",
            "a?c.txt",
            "[Tt]emp*",
            "\\#hash.txt",
            "logs/*",
            "!logs/.gitkeep",
            "only-dir/",
            "deep/a/b/",
            "*.out",
            "",
        ]
    ),
    "sub/.gitignore": "\n".join(
        ["!*.log", "/local-only.txt", "nested/", "*.txt", "!keep-*.txt", "*.out/", ""]
    ),
    "sub/deeper/.gitignore": "!*.txt\n",
    ".git/info/exclude": "exclude-me.md\n",
}
TRICKY_FILES = [
    "main.py",
    "app.log",
    "important.log",
    "anchored.txt",
    "sub/anchored.txt",
    "build-out/x.py",
    "src/build-out/y.py",
    "docs/draft.md",
    "docs/a/b/draft.md",
    "docs/a/final.md",
    "tmp/t.py",
    "src/tmp/t.py",
    "src/tmpfile.py",
    "foo/x.py",
    "foo/keep.txt",
    "foo/bar/y.py",
    "excluded_dir/a.py",
    "excluded_dir/re.txt",
    "abc.txt",
    "abbc.txt",
    "Temp1.py",
    "temp2.py",
    "attempt.py",
    "#hash.txt",
    "logs/a.txt",
    "logs/.gitkeep",
    "only-dir",
    "x/only-dir/z.py",
    "deep/a/b/c.py",
    "deep/a/c.py",
    "x/deep/a/b/c.py",
    "sub/s.log",
    "sub/local-only.txt",
    "sub/x/local-only.py",
    "sub/nested/n.py",
    "sub/notes.txt",
    "sub/keep-me.txt",
    "sub/deeper/d.txt",
    "sub/deeper/nested/q.py",
    "sub/r.out",
    "sub/dir.out/r.py",
    "exclude-me.md",
    "sub/exclude-me.md",
    "unicode-é.py",
    "with space.py",
]


def make_tricky(root: Path) -> None:
    if HAS_GIT:
        git(root, "init", "-q")
    else:
        (root / ".git" / "info").mkdir(parents=True)
    for rel, text in TRICKY_IGNORES.items():
        write(root, rel, text)
    for rel in TRICKY_FILES:
        write(root, rel, f"# {rel}\n")


@pytest.mark.skipif(not HAS_GIT, reason="git is not installed")
def test_walk_matches_git_ls_files(tmp_path: Path, settings: Settings) -> None:
    make_tricky(tmp_path)
    expected = sorted(
        git(tmp_path, "ls-files", "--others", "--cached", "--exclude-standard", "-z").split("\0")
    )
    expected = [p for p in expected if p]
    d = walk(tmp_path, settings)
    assert files_of(d) == expected
    assert set(reasons(d)) == {"ignored", "vcs"}
    # git's view of what is ignored, file by file: each one is an "ignored" skip of ours or
    # lies below one (a directory is one skip), and each of ours covers some of git's.
    listed = git(tmp_path, "ls-files", "--others", "--ignored", "--exclude-standard", "-z")
    theirs = {p for p in listed.split("\0") if p}
    ours = {s.path for s in d.skipped if s.reason == "ignored"}

    def covered(path: str) -> bool:
        parts = path.split("/")
        return any("/".join(parts[:i]) in ours for i in range(1, len(parts) + 1))

    assert {p for p in theirs if not covered(p)} == set()
    assert {e for e in ours if not any(p == e or p.startswith(e + "/") for p in theirs)} == set()


GLOB_IGNORES = {
    ".gitignore": "\n".join(
        [
            "[!a]x.py",
            "[a-c]y.py",
            "[[:digit:]]z.py",
            "\\!bang.txt",
            "trailing.txt   ",
            "*/mid/*.py",
            "a/**/",
            "q/**/r/**",
            "***.tmp3",
            "lit[.txt",
            "sp\\ ace.txt",
            "",
        ]
    ),
}
GLOB_FILES = [
    "ax.py",
    "bx.py",
    "ay.py",
    "dy.py",
    "1z.py",
    "zz.py",
    "!bang.txt",
    "bang.txt",
    "trailing.txt",
    "x/mid/m.py",
    "x/y/mid/m.py",
    "mid/m.py",
    "a/f.py",
    "a/sub/f.py",
    "q/r/f.py",
    "q/s/r/t/f.py",
    "q/r.py",
    "w.tmp3",
    "d/w.tmp3",
    "lit[.txt",
    "sp ace.txt",
]


@pytest.mark.skipif(not HAS_GIT, reason="git is not installed")
def test_glob_syntax_matches_git(tmp_path: Path, settings: Settings) -> None:
    git(tmp_path, "init", "-q")
    for rel, text in GLOB_IGNORES.items():
        write(tmp_path, rel, text)
    for rel in GLOB_FILES:
        write(tmp_path, rel, f"# {rel}\n")
    listed = git(tmp_path, "ls-files", "--others", "--exclude-standard", "-z")
    assert files_of(walk(tmp_path, settings)) == sorted(p for p in listed.split("\0") if p)


def test_tricky_rules_by_hand(tmp_path: Path, settings: Settings) -> None:
    """The same fixture without git: the decisions that matter, spelled out."""
    make_tricky(tmp_path)
    d = walk(tmp_path, settings)
    got = set(files_of(d))
    skipped = skip_map(d)
    assert {"main.py", "important.log", "foo/keep.txt", "sub/s.log"} <= got
    assert {"docs/a/final.md", "src/tmpfile.py", "deep/a/c.py", "abbc.txt", "attempt.py"} <= got
    assert {"sub/keep-me.txt", "sub/deeper/d.txt", "sub/x/local-only.py", "only-dir"} <= got
    assert "logs/.gitkeep" in got
    for rel in [
        "app.log",  # *.log
        "anchored.txt",  # /anchored.txt
        "build-out",  # a directory: one entry
        "src/build-out",
        "docs/draft.md",  # docs/**/draft.md matches zero directories too
        "docs/a/b/draft.md",
        "tmp",
        "src/tmp",
        "foo/x.py",  # foo/** ignores the contents, not foo itself ...
        "foo/bar",
        "excluded_dir",  # ... but a file cannot come back once its directory is excluded
        "abc.txt",
        "Temp1.py",
        "temp2.py",
        "#hash.txt",
        "logs/a.txt",
        "x/only-dir",
        "deep/a/b",
        "sub/local-only.txt",
        "sub/anchored.txt",  # sub/.gitignore: *.txt
        "sub/nested",
        "sub/notes.txt",
        "sub/deeper/nested",
        "sub/r.out",
        "sub/dir.out",
        "exclude-me.md",  # .git/info/exclude, at any depth
        "sub/exclude-me.md",
    ]:
        assert skipped.get(rel) == "ignored", rel
    assert "x/deep/a/b/c.py" in got  # deep/a/b/ has a slash inside: anchored to the root
    assert "excluded_dir/re.txt" not in got and "excluded_dir/re.txt" not in skipped
    assert skipped[".git"] == "vcs"


def test_codesearchignore(tmp_path: Path, settings: Settings) -> None:
    write(tmp_path, ".gitignore", "*.gen.py\ngenerated/\n")
    write(tmp_path, ".codesearchignore", "!keep.gen.py\nfixtures/\n*.snap\n!dist/\n")
    write(tmp_path, "pkg/.codesearchignore", "local.py\n!wanted.snap\n")
    for rel in [
        "a.py",
        "drop.gen.py",
        "keep.gen.py",
        "generated/x.py",
        "fixtures/f.py",
        "t.snap",
        "pkg/local.py",
        "pkg/wanted.snap",
        "pkg/other.snap",
        "local.py",
        "dist/bundle.py",
        "build/out.py",
    ]:
        write(tmp_path, rel)
    d = walk(tmp_path, settings)
    assert files_of(d) == [
        ".codesearchignore",
        ".gitignore",
        "a.py",
        "dist/bundle.py",  # an explicit `!dist/` re-includes a vendored directory
        "keep.gen.py",
        "local.py",
        "pkg/.codesearchignore",
        "pkg/wanted.snap",
    ]
    assert skip_map(d) == {
        "build": "vendored",
        "drop.gen.py": "ignored",
        "generated": "ignored",
        "fixtures": "ignored",
        "t.snap": "ignored",
        "pkg/local.py": "ignored",
        "pkg/other.snap": "ignored",
    }


def test_gitignore_does_not_re_include_vendored_or_secrets(tmp_path: Path, settings: Settings):
    write(tmp_path, ".gitignore", "*\n!*/\n!*.py\n!.env\n")
    write(tmp_path, ".codesearchignore", "!.env\n")
    write(tmp_path, "node_modules/m.py")
    write(tmp_path, "src/a.py")
    write(tmp_path, "src/a.txt")
    write(tmp_path, ".env", "TOKEN=1\n")
    d = walk(tmp_path, settings)
    assert files_of(d) == ["src/a.py"]
    assert skip_map(d) == {
        ".codesearchignore": "ignored",
        ".env": "secret",
        ".gitignore": "ignored",
        "node_modules": "vendored",
        "src/a.txt": "ignored",
    }


# ---------------------------------------------------------------------------- built-in filters


def test_vcs_and_vendored_directories(tmp_path: Path, settings: Settings) -> None:
    write(tmp_path, ".git/config", "[core]\n")
    write(tmp_path, ".hg/store", "x")
    write(tmp_path, "lib/.svn/entries", "x")
    write(tmp_path, "sub/.git", "gitdir: ../.git/modules/sub\n")  # a submodule's .git file
    write(tmp_path, "sub/s.py")
    for rel in [
        "node_modules/a/index.js",
        "web/bower_components/b.js",
        ".venv/lib/x.py",
        "venv/x.py",
        "env/pyvenv.cfg",
        "myenv/pyvenv.cfg",
        "pkg/__pycache__/m.cpython-311.pyc",
        ".mypy_cache/x.json",
        ".pytest_cache/v",
        ".ruff_cache/c",
        ".tox/t",
        "pkg.egg-info/PKG-INFO",
        "dist/d.py",
        "build/b.py",
        ".idea/w.xml",
        ".vscode/settings.json",
        "coverage/index.html",
        "rust/Cargo.toml",
        "rust/target/debug/x.rs",
        "go/go.mod",
        "go/vendor/v.go",
        # kept: conditions not met, or not on the list
        "other/env/e.py",
        "other/target/t.py",
        "other/vendor/v.py",
        "third_party/t.py",
        "out/o.py",
    ]:
        write(tmp_path, rel)
    d = walk(tmp_path, settings)
    assert reasons(d) == Counter({"vcs": 4, "vendored": 19})
    assert files_of(d) == [
        "go/go.mod",
        "other/env/e.py",
        "other/target/t.py",
        "other/vendor/v.py",
        "out/o.py",
        "rust/Cargo.toml",
        "sub/s.py",
        "third_party/t.py",
    ]
    assert skip_map(d)["sub/.git"] == "vcs"
    assert skip_map(d)["myenv"] == "vendored"


SECRETS = [
    ".env",
    ".env.local",
    ".env.production",
    "conf/server.pem",
    "conf/server.KEY",
    "cert.p12",
    "cert.pfx",
    "app.keystore",
    "app.jks",
    ".ssh/id_rsa",
    ".ssh/id_ed25519",
    "id_dsa",
    "id_ecdsa",
    ".netrc",
    ".npmrc",
    ".pypirc",
    "gcp/credentials.json",
    "vault.kdbx",
]
NOT_SECRETS = [
    ".env.example",
    ".env.sample",
    ".env.template",
    ".ssh/id_rsa.pub",
    "environment.py",
    "keys.py",
    "credentials.py",
]


@pytest.mark.parametrize("include", [False, True])
def test_secrets(tmp_path: Path, settings: Settings, include: bool) -> None:
    for rel in SECRETS + NOT_SECRETS:
        write(tmp_path, rel, "secret = 'x'\n")
    s = Settings(home=settings.home, include_secrets=include)
    d = walk(tmp_path, s)
    if include:
        assert sorted(files_of(d)) == sorted(SECRETS + NOT_SECRETS)
        assert d.skipped == ()
    else:
        assert sorted(files_of(d)) == sorted(NOT_SECRETS)
        assert reasons(d) == Counter({"secret": len(SECRETS)})


def test_binary_size_empty_generated_minified(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "_home", max_file_bytes=2000)
    write(tmp_path, "nul.txt", b"abc\0def")
    write(tmp_path, "ok.py", "print('hi')\n")
    write(tmp_path, "big.py", "x = 1\n" * 1000)  # 6000 bytes > 2000
    write(tmp_path, "exact.py", ("#" * 99 + "\n") * 20)  # exactly the limit
    write(tmp_path, "empty.py", "")
    for rel in ["font.woff2", "lib.so", "m.pyc", "a.zip", "d.sqlite", "logo.png", "doc.PDF"]:
        write(tmp_path, rel, "this is text, the extension decides\n")
    for rel in [
        "app.min.js",
        "style.min.css",
        "app.js.map",
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "Cargo.lock",
        "poetry.lock",
        "uv.lock",
        "Gemfile.lock",
        "composer.lock",
        "go.sum",
    ]:
        write(tmp_path, rel, "{}\n")
    write(tmp_path, "bundle.js", "var a=1;" * 200)  # one 1600-character line
    write(tmp_path, "long-line.py", "x = 1\n" * 100 + "y = '" + "z" * 1200 + "'\n")
    write(tmp_path, "gen.go", "// Code generated by protoc-gen-go. DO NOT EDIT.\npackage x\n")
    write(tmp_path, "gen.h", "#pragma once\n// @generated by torchgen\nint x;\n")
    write(tmp_path, "late.py", "\n" * 6 + "# DO NOT EDIT\n")  # after the first 5 lines
    write(tmp_path, "version.py", '__version__ = "1.0"  # DO NOT EDIT THIS LINE MANUALLY\n')
    d = walk(tmp_path, s)
    # pictures are listed by extension (the indexer reads them as pictures, with their checks)
    assert files_of(d) == [
        "doc.PDF",
        "exact.py",
        "late.py",
        "logo.png",
        "long-line.py",
        "ok.py",
        "version.py",
    ]
    assert reasons(d) == Counter(
        {"binary": 6, "too-large": 1, "empty": 1, "generated": 14, "minified": 1}
    )
    by_path = {x.path: x for x in d.skipped}
    assert by_path["big.py"].detail == "6000 bytes > limit 2000"
    assert by_path["nul.txt"].reason == "binary"
    assert by_path["bundle.js"].reason == "minified"
    assert by_path["gen.go"].reason == "generated"


def test_nul_after_the_first_8_kib_is_not_sniffed(tmp_path: Path, settings: Settings) -> None:
    write(tmp_path, "late-nul.py", b"x = 1\n" * 2000 + b"\0")
    assert files_of(walk(tmp_path, settings)) == ["late-nul.py"]


def test_binary_extension_is_never_opened(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "font.woff2", "text")
    write(tmp_path, "image.jpg", "text")
    write(tmp_path, "a.py")
    opened: list[str] = []
    real_open = os.open  # every read of a repository's file opens it here (safe_read)

    def spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    d = walk(tmp_path, settings)
    assert skip_map(d) == {"font.woff2": "binary"}
    assert files_of(d) == ["a.py", "image.jpg"]  # a picture: the indexer opens it, not the walk
    assert not any(p.endswith(("font.woff2", "image.jpg")) for p in opened)
    assert any(p.endswith("a.py") for p in opened)


# ---------------------------------------------------------------------------- symlinks & oddities


def test_symlinks(tmp_path: Path, settings: Settings) -> None:
    root = tmp_path / "repo"
    outside = tmp_path / "outside"
    write(outside, "o.py")
    write(root, "real/r.py")
    write(root, "a.py")
    (root / "out-file.py").symlink_to(outside / "o.py")
    (root / "out-dir").symlink_to(outside)
    (root / "dup.py").symlink_to(root / "a.py")
    (root / "dup-dir").symlink_to("real")  # relative target
    (root / "self").symlink_to(root)  # would recurse forever if followed
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    (root / "dangling.py").symlink_to("nowhere.py")
    d = walk(root, settings)
    assert files_of(d) == ["a.py", "real/r.py"]
    assert skip_map(d) == {
        "out-file.py": "symlink-outside",
        "out-dir": "symlink-outside",
        "dup.py": "symlink-duplicate",
        "dup-dir": "symlink-duplicate",
        "self": "symlink-duplicate",
        "loop1": "symlink-broken",
        "loop2": "symlink-broken",
        "dangling.py": "symlink-broken",
    }


def test_walk_through_symlinked_root(tmp_path: Path, settings: Settings) -> None:
    write(tmp_path, "real/a.py")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    d = walk(tmp_path / "link", settings)
    assert d.root == (tmp_path / "real").resolve()
    assert files_of(d) == ["a.py"]
    assert d.files[0].abs_path == (tmp_path / "real" / "a.py").resolve()


def test_source_file_fields_and_order(tmp_path: Path, settings: Settings) -> None:
    for rel in ["b.py", "a/z.py", "a.py", "A.py", "a/b/c.py"]:
        write(tmp_path, rel, "print(1)\n")
    d = walk(tmp_path, settings)
    assert files_of(d) == sorted(["b.py", "a/z.py", "a.py", "A.py", "a/b/c.py"])
    first = d.files[0]
    st = os.stat(first.abs_path)
    assert (first.size, first.mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert first.abs_path == tmp_path.resolve() / first.path
    assert [s.path for s in d.skipped] == sorted(s.path for s in d.skipped)


def test_fifo_and_bad_names(tmp_path: Path, settings: Settings) -> None:
    write(tmp_path, "a.py")
    os.mkfifo(tmp_path / "pipe")
    try:
        write(tmp_path, os.fsdecode(b"bad-\xff.py"))
    except (OSError, UnicodeError):  # a file system that refuses non-UTF-8 names
        pytest.skip("file system refuses non-UTF-8 names")
    d = walk(tmp_path, settings)
    assert files_of(d) == ["a.py"]
    assert reasons(d) == Counter({"not-regular": 1, "bad-name": 1})
    assert skip_map(d)["bad-\ufffd.py"] == "bad-name"


def test_unreadable_directory_and_file_simulated(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "ok/a.py")
    write(tmp_path, "locked/b.py")
    write(tmp_path, "secret-ish.py")
    write(tmp_path, "gone.py")
    real_scandir, real_open = os.scandir, os.open

    def scandir(path: Any) -> Any:
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    def fake_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file).endswith("secret-ish.py"):
            raise PermissionError(13, "Permission denied", str(file))
        if str(file).endswith("gone.py"):
            raise FileNotFoundError(2, "No such file or directory", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "open", fake_open)
    d = walk(tmp_path, settings)
    assert files_of(d) == ["ok/a.py"]
    assert skip_map(d) == {
        "locked": "unreadable",
        "secret-ish.py": "unreadable",
        "gone.py": "vanished",
    }
    assert "Permission denied" in {s.path: s for s in d.skipped}["locked"].detail
    text, skip = read_source(tmp_path, "secret-ish.py", settings)
    assert text is None and skip is not None and skip.reason == "unreadable"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads through chmod 000")
def test_unreadable_real_chmod(tmp_path: Path, settings: Settings) -> None:
    write(tmp_path, "locked/b.py")
    write(tmp_path, "c.py")
    (tmp_path / "c.py").chmod(0)
    (tmp_path / "locked").chmod(0)
    try:
        d = walk(tmp_path, settings)
        assert skip_map(d) == {"locked": "unreadable", "c.py": "unreadable"}
        assert read_source(tmp_path, "c.py", settings)[1] == Skip(
            "c.py", "unreadable", "Permission denied"
        )
    finally:
        (tmp_path / "locked").chmod(0o755)
        (tmp_path / "c.py").chmod(0o644)


def test_walk_rejects_missing_root(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(BadInput, match="cannot read directory"):
        walk(tmp_path / "missing", settings)


def test_walk_is_fast_on_3000_files(tmp_path: Path, settings: Settings) -> None:
    write(tmp_path, ".gitignore", "*.log\nbuild/\n!keep.log\n")
    for i in range(3000):
        write(tmp_path, f"d{i % 30}/s{i % 7}/f{i}.py", f"x = {i}\n")
    for i in range(10):
        write(tmp_path, f"d{i}/.gitignore", "*.tmp\n!s1/\n")
    start = time.perf_counter()
    d = walk(tmp_path, settings)
    elapsed = time.perf_counter() - start
    assert len(d.files) == 3011
    assert elapsed < 2.0, elapsed


# ---------------------------------------------------------------------------- scoped walks


def test_normalize_scope_and_in_scope() -> None:
    assert normalize_scope(["./a/", "a/b.py", "c//d/", "c/d/e", "x/./y"]) == {"a", "c/d", "x/y"}
    assert normalize_scope(["a", "."]) == {""}
    assert normalize_scope([""]) == {""}
    assert normalize_scope([]) == set()
    assert normalize_scope(["ab", "a"]) == {"a", "ab"}  # a prefix of the name is not a parent
    for bad in ["/etc/passwd", "..", "../x", "a/../../x"]:
        with pytest.raises(BadInput, match="outside the repository"):
            normalize_scope([bad])
    assert in_scope("a/b/c.py", ["./a/"])
    assert in_scope("a", ["a"])
    assert not in_scope("ab/c.py", ["a"])
    assert not in_scope("a", ["a/b"])
    assert in_scope("anything/at/all", ["."])
    assert not in_scope("a", [])


def make_scoped_fixture(root: Path) -> Settings:
    """The tricky ignore fixture plus every built-in filter: vendored and ignored build
    directories, symlinks, a secret, a file over the size limit, an empty one, a lock file."""
    make_tricky(root)
    write(root, ".gitignore", TRICKY_IGNORES[".gitignore"] + "gen/\n")
    for rel in [
        "node_modules/pkg/index.js",
        "web/node_modules/m.js",
        "web/app.js",
        "build/b.py",
        "gen/g.py",
        "gen/deeper/h.py",
        "sub/deeper/more/m.py",
        "real/r.py",
    ]:
        write(root, rel)
    write(root, ".env", "TOKEN=1\n")
    write(root, "sub/.env.local", "TOKEN=1\n")
    write(root, "sub/big.py", "x = 1\n" * 1000)
    write(root, "sub/empty.py", "")
    write(root, "web/package-lock.json", "{}\n")
    write(root, "web/logo.png", "not really\n")
    (root / "link-dir").symlink_to("real")
    (root / "sub/link.py").symlink_to("../main.py")
    (root / "dangling").symlink_to("nowhere")
    return Settings(home=root.parent / "_home", max_file_bytes=2000)


def every_path(root: Path) -> list[str]:
    """Every file, directory and symlink below ``root`` (symlinks not followed)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            found.append(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    return sorted(found)


def assert_scoped_equals_filtered(
    root: Path, settings: Settings, full: Discovery, scope: list[str]
) -> None:
    d = walk(root, settings, scope)
    assert d.root == full.root
    assert d.files == tuple(f for f in full.files if in_scope(f.path, scope)), scope
    assert d.skipped == tuple(s for s in full.skipped if in_scope(s.path, scope)), scope


def test_scoped_walk_equals_the_full_walk_filtered(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    settings = make_scoped_fixture(root)
    full = walk(root, settings)
    skipped = skip_map(full)
    # the fixture exercises what it should
    assert {"vcs", "ignored", "vendored", "secret", "too-large", "empty", "generated"} <= set(
        skipped.values()
    )
    assert {"link-dir", "sub/link.py", "dangling"} <= set(skipped)
    assert walk(root, settings, None) == full
    for scope in [[""], ["."], ["./"], ["sub", "."]]:
        assert walk(root, settings, scope) == full
    # every path in the tree (and a few that do not exist), alone and in combinations
    singles = [*every_path(root), "missing.py", "missing/dir/x.py", "main.py/below-a-file"]
    for rel in singles:
        assert_scoped_equals_filtered(root, settings, full, [rel])
    for scope in [
        [],
        ["./sub/", "sub/s.log", "sub/deeper/d.txt"],
        ["foo/keep.txt", "foo/bar/y.py", "excluded_dir/re.txt", "sub/nested/n.py"],
        ["node_modules/pkg/index.js", "gen/deeper/h.py", "build/b.py", "link-dir/r.py"],
        ["node_modules", "web", ".git", ".env", "sub/big.py", "deep/a"],
        ["docs/a/b/draft.md", "x/deep/a/b/c.py", "logs/.gitkeep", "unicode-é.py"],
    ]:
        assert_scoped_equals_filtered(root, settings, full, scope)


def test_scoped_walk_below_skipped_directories_yields_nothing(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    settings = make_scoped_fixture(root)
    for rel in [
        "node_modules/pkg/index.js",  # vendored
        "web/node_modules",  # vendored, nested
        "gen/deeper/h.py",  # ignored by the root .gitignore
        "sub/nested/n.py",  # ignored by sub/.gitignore
        "excluded_dir/re.txt",  # negated, but its directory is excluded
        ".git/info/exclude",  # vcs
        "link-dir/r.py",  # through a symlinked directory
    ]:
        d = walk(root, settings, [rel])
        assert d.files == () and all(s.path == rel for s in d.skipped), rel
    assert skip_map(walk(root, settings, ["gen"])) == {"gen": "ignored"}
    assert skip_map(walk(root, settings, ["web/node_modules"])) == {"web/node_modules": "vendored"}
    assert skip_map(walk(root, settings, [".git"])) == {".git": "vcs"}
    assert skip_map(walk(root, settings, ["link-dir"])) == {"link-dir": "symlink-duplicate"}
    assert skip_map(walk(root, settings, ["sub/.env.local", "sub/big.py"])) == {
        "sub/.env.local": "secret",
        "sub/big.py": "too-large",
    }
    # a negation in a nested .gitignore still applies to a file named alone
    assert files_of(walk(root, settings, ["sub/deeper/d.txt"])) == ["sub/deeper/d.txt"]
    assert skip_map(walk(root, settings, ["sub/notes.txt"])) == {"sub/notes.txt": "ignored"}


def test_scoped_walk_lists_only_the_ancestors(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, ".gitignore", "*.log\n")
    for i in range(2000):
        write(tmp_path, f"d{i % 20}/s{i % 5}/f{i}.py", f"x = {i}\n")
    write(tmp_path, "d3/s3/.gitignore", "skip-*.py\n")
    write(tmp_path, "d3/s3/skip-me.py")
    write(tmp_path, "d3/s3/deep/z.py")
    listed: list[str] = []
    real_scandir = os.scandir

    def spy(path: Any) -> Any:
        listed.append(os.path.relpath(path, tmp_path).replace(os.sep, "/"))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", spy)
    d = walk(tmp_path, settings, ["d3/s3/f1003.py", "d3/s3/skip-me.py"])
    assert files_of(d) == ["d3/s3/f1003.py"]
    assert skip_map(d) == {"d3/s3/skip-me.py": "ignored"}
    assert sorted(listed) == [".", "d3", "d3/s3"]

    listed.clear()
    d = walk(tmp_path, settings, ["d3/s3"])
    assert sorted(listed) == [".", "d3", "d3/s3", "d3/s3/deep"]
    assert len(d.files) == 100 + 2  # f3, f23, ... and .gitignore, deep/z.py
    listed.clear()
    assert walk(tmp_path, settings, ["nope/x.py", "d3/nope/y.py"]) == Discovery(
        tmp_path.resolve(), (), ()
    )
    assert sorted(listed) == [".", "d3"]


def test_scoped_walk_unreadable_directories(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "locked/inner/b.py")
    write(tmp_path, "ok/a.py")
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert skip_map(walk(tmp_path, settings, ["locked"])) == {"locked": "unreadable"}
    assert walk(tmp_path, settings, ["locked/inner/b.py"]).skipped == ()  # not in scope
    assert files_of(walk(tmp_path, settings, ["ok", "locked/inner"])) == ["ok/a.py"]


# ---------------------------------------------------------------------------- read_source


def test_read_source_decoding(tmp_path: Path, settings: Settings) -> None:
    write(tmp_path, "plain.py", "name = 'héllo'\n")
    write(tmp_path, "bom.py", b"\xef\xbb\xbfx = 1\n")
    few_bad = b"# caf\xe9\n" + b"x = 1\n" * 200  # one bad byte in ~1200
    write(tmp_path, "few.py", few_bad)
    garbage = b"ok " + bytes(range(0x80, 0x100)) * 4  # mostly invalid, no NUL
    write(tmp_path, "latin.txt", garbage)
    assert read_source(tmp_path, "plain.py", settings) == ("name = 'héllo'\n", None)
    assert read_source(tmp_path, "bom.py", settings) == ("x = 1\n", None)
    text, skip = read_source(tmp_path, "few.py", settings)
    assert skip is None and text is not None and text.startswith("# caf\ufffd\nx = 1\n")
    text, skip = read_source(tmp_path, "latin.txt", settings)
    assert text is None and skip == Skip("latin.txt", "not-utf8", "invalid UTF-8 at byte 3")
    write(tmp_path, "bom-bad.txt", b"\xef\xbb\xbfab" + b"\xff" * 50)
    assert read_source(tmp_path, "bom-bad.txt", settings)[1] == Skip(
        "bom-bad.txt", "not-utf8", "invalid UTF-8 at byte 5"
    )


def test_read_source_skips(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "_home", max_file_bytes=100)
    write(tmp_path, "grown.py", "x = 1\n" * 50)
    write(tmp_path, "bin.dat", b"\x00\x01\x02")
    assert read_source(tmp_path, "gone.py", s) == (
        None,
        Skip("gone.py", "vanished", "file disappeared before it was read"),
    )
    assert read_source(tmp_path, "grown.py", s)[1] == Skip(
        "grown.py", "too-large", "more than 100 bytes"
    )
    assert reason_of(read_source(tmp_path, "bin.dat", s)) == "binary"
    big = Settings(home=tmp_path / "_home")
    write(tmp_path, "min.js", "var a=1;" * 300)
    assert reason_of(read_source(tmp_path, "min.js", big)) == "minified"
    write(tmp_path, "empty.py", "")
    assert read_source(tmp_path, "empty.py", big) == ("", None)


def test_read_source_containment(tmp_path: Path, settings: Settings) -> None:
    root = tmp_path / "repo"
    write(tmp_path, "outside.py")
    write(root, "a.py")
    (root / "link.py").symlink_to(tmp_path / "outside.py")
    with pytest.raises(BadInput):
        read_source(root, "../outside.py", settings)
    with pytest.raises(BadInput):
        read_source(root, str(tmp_path / "outside.py"), settings)
    assert reason_of(read_source(root, "link.py", settings)) == "symlink-outside"
    assert read_source(root, "sub/../a.py", settings) == ("x = 1\n", None)


# ---------------------------------------------------------------------------- roots and paths


def test_find_repo_root(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo, ".git/HEAD", "ref: refs/heads/main\n")
    write(repo, "src/pkg/mod.py")
    assert find_repo_root(repo / "src" / "pkg") == repo.resolve()
    assert find_repo_root(repo) == repo.resolve()
    assert find_repo_root(repo / "src" / "pkg" / "mod.py") == repo.resolve()
    worktree = tmp_path / "wt"
    write(worktree, ".git", "gitdir: /somewhere/else\n")  # a worktree's or submodule's .git file
    write(worktree, "a/b.py")
    assert find_repo_root(worktree / "a") == worktree.resolve()
    nested = repo / "src" / "vendored-repo"
    (nested / ".git").mkdir(parents=True)
    assert find_repo_root(nested) == nested.resolve()


def test_find_repo_root_outside(tmp_path: Path) -> None:
    if any((p / ".git").exists() for p in (tmp_path, *tmp_path.parents)):
        pytest.skip("tmp_path lies inside a git repository")
    (tmp_path / "plain").mkdir()
    with pytest.raises(NotARepository) as info:
        find_repo_root(tmp_path / "plain")
    message = str(info.value)
    assert message.startswith(f"not inside a git repository: {tmp_path / 'plain'}")
    assert "codesearch index PATH" in message and "\n" not in message


def test_resolve_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "dir/a.py")
    write(tmp_path, "file.py")
    (tmp_path / "link").symlink_to(tmp_path / "dir")
    assert resolve_root(tmp_path / "dir") == (tmp_path / "dir").resolve()
    assert resolve_root(tmp_path / "link") == (tmp_path / "dir").resolve()
    assert resolve_root(tmp_path / "dir" / ".." / "dir") == (tmp_path / "dir").resolve()
    with pytest.raises(BadInput, match=r"^no such directory: "):
        resolve_root(tmp_path / "missing")
    with pytest.raises(BadInput, match=r"^not a directory: "):
        resolve_root(tmp_path / "file.py")
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        if str(path).endswith("dir"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(BadInput, match=r"^cannot read directory: .*Permission denied"):
        resolve_root(tmp_path / "dir")


def test_is_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, "a/b.py")
    write(tmp_path, "root2/x.py")
    write(tmp_path, "outside.py")
    (root / "in-link").symlink_to(root / "a")
    (root / "out-link").symlink_to(tmp_path / "outside.py")
    (root / "out-dir").symlink_to(tmp_path / "root2")
    assert is_inside(root, root)
    assert is_inside(root, root / "a" / "b.py")
    assert is_inside(root, Path("a/b.py"))  # relative: taken relative to the root
    assert is_inside(root, root / "a" / ".." / "a" / "b.py")
    assert is_inside(root, root / "new-file-not-yet-created.py")
    assert is_inside(root, root / "in-link" / "b.py")
    assert not is_inside(root, root / ".." / "outside.py")
    assert not is_inside(root, Path("../outside.py"))
    assert not is_inside(root, Path("a/../../outside.py"))
    assert not is_inside(root, tmp_path / "root2" / "x.py")  # a sibling sharing the prefix
    assert not is_inside(root, root / "out-link")
    assert not is_inside(root, root / "out-dir" / "x.py")
    assert not is_inside(root, Path("/etc/passwd"))
    # through a symlinked root
    (tmp_path / "root-link").symlink_to(root)
    assert is_inside(tmp_path / "root-link", root / "a" / "b.py")
    assert is_inside(root, tmp_path / "root-link" / "a" / "b.py")


def test_relpath(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, "a/b.py")
    write(tmp_path, "outside.py")
    (root / "link.py").symlink_to(root / "a" / "b.py")
    (root / "out.py").symlink_to(tmp_path / "outside.py")
    (tmp_path / "root-link").symlink_to(root)
    assert relpath(root, root / "a" / "b.py") == "a/b.py"
    assert relpath(root, Path("a/b.py")) == "a/b.py"
    assert relpath(root, root / "x" / ".." / "a" / "b.py") == "a/b.py"
    assert relpath(root, root) == "."
    assert relpath(root, root / "link.py") == "link.py"  # named by its own path
    assert relpath(tmp_path / "root-link", root / "a" / "b.py") == "a/b.py"
    assert relpath(root, tmp_path / "root-link" / "a" / "b.py") == "a/b.py"
    for bad in [tmp_path / "outside.py", Path("../outside.py"), root / "out.py"]:
        with pytest.raises(BadInput, match="outside the repository"):
            relpath(root, bad)


def test_module_surface() -> None:
    assert {"Discovery", "walk", "read_source", "is_inside", "relpath", "in_scope"} <= set(
        dir(paths)
    )
