"""The chunker on real tree-sitter grammars: one fixture per language, exact symbols and lines."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from codesearch.chunk import CHUNKER_VERSION, chunk_file, language_for
from codesearch.types import KINDS, Chunk

FIXTURES = Path(__file__).parent / "fixtures" / "chunk"

Row = tuple[str, str, int, int]  # kind, name, start_line, end_line

EXPECTED: dict[str, list[Row]] = {
    "python/sessions.py": [
        ("function", "build_url", 10, 12),
        ("function", "parse_header", 15, 22),  # the two comment lines above belong to it
        ("class", "SessionRedirectMixin", 25, 28),
        ("method", "SessionRedirectMixin.get_redirect_target", 30, 34),
        ("method", "SessionRedirectMixin.rebuild_method", 36, 41),  # @staticmethod included
        ("class", "SessionRedirectMixin.Config", 43, 44),
        ("method", "SessionRedirectMixin.Config.describe", 46, 47),
        ("class", "Session", 50, 53),
        ("method", "Session.__init__", 55, 57),
        ("method", "Session.closed", 59, 61),
        ("method", "Session.get", 63, 64),
        ("method", "Session.close", 66, 67),
        ("class", "Session", 69, 69),  # a class attribute after the methods
        ("class", "Empty", 72, 73),
    ],
    "javascript/router.js": [
        ("function", "normalize", 6, 15),
        ("function", "joinPaths", 17, 19),
        ("class", "Router", 21, 23),
        ("method", "Router.constructor", 25, 28),
        ("method", "Router.add", 30, 34),
        ("method", "Router.onError", 36, 38),
        ("method", "Router.dispatch", 40, 48),  # the class's closing brace joins the last method
        ("function", "idGenerator", 50, 55),
    ],
    "typescript/store.ts": [
        ("class", "Entry", 4, 8),
        ("class", "Mode", 10, 13),
        ("function", "parseTtl", 15, 19),
        ("function", "sealed", 21, 23),
        ("class", "Store", 25, 30),
        ("method", "Store.constructor", 32, 32),
        ("method", "Store.get", 34, 41),
        ("method", "Store.set", 43, 49),
        ("method", "Store.clear", 51, 54),
        ("class", "Loader", 56, 57),
        ("method", "Loader.loadJson", 59, 62),
        ("function", "loadConfig", 64, 65),
    ],
    "go/cache.go": [
        ("class", "Cache", 12, 19),
        ("class", "entry", 21, 24),
        ("class", "Getter", 26, 29),
        ("function", "New", 31, 37),
        ("method", "Cache.Get", 39, 48),
        ("method", "Cache.Put", 50, 63),
        ("method", "Cache.removeOldest", 65, 71),
        ("method", "Cache.Len", 73, 74),
    ],
    "rust/shapes.rs": [
        ("class", "Point", 8, 13),  # doc comment and #[derive] included
        ("class", "Shape", 15, 17),
        ("method", "Shape.is_empty", 19, 23),
        ("class", "Kind", 25, 29),
        ("class", "Point", 31, 31),  # impl Point {
        ("method", "Point.origin", 32, 35),
        ("method", "Point.distance", 37, 42),
        ("class", "Point", 44, 44),  # impl fmt::Display for Point {
        ("method", "Point.fmt", 45, 48),
        ("function", "total_area", 50, 53),
        ("function", "distance_is_symmetric", 59, 65),
    ],
    "java/Inventory.java": [
        ("class", "Inventory", 6, 12),
        ("method", "Inventory.Inventory", 14, 17),
        ("method", "Inventory.add", 19, 27),
        ("method", "Inventory.toString", 29, 32),
        ("class", "Inventory.Reservation", 34, 36),
        ("method", "Inventory.Reservation.Reservation", 38, 40),
        ("method", "Inventory.Reservation.sku", 42, 45),
        ("class", "Inventory", 47, 48),
        ("class", "Auditor", 50, 52),
        ("class", "Status", 54, 56),
        ("method", "Status.available", 58, 61),
    ],
    "c/buffer.c": [
        ("class", "buffer", 7, 12),
        ("class", "error_t", 14, 17),
        ("class", "number", 19, 22),
        ("function", "buffer_new", 26, 37),
        ("function", "buffer_append", 39, 56),
        ("function", "buffer_free", 58, 62),
    ],
    "cpp/matrix.cpp": [
        ("class", "Matrix", 10, 12),
        ("method", "Matrix.Matrix", 13, 14),
        ("method", "Matrix.at", 16, 20),
        ("class", "Matrix", 22, 28),
        ("class", "Shape", 30, 33),
        ("method", "Matrix.multiply", 35, 51),  # out-of-line Matrix::multiply
        ("function", "clamp", 53, 58),
        ("function", "main", 60, 64),
    ],
}

MODULE_LINES: dict[str, list[tuple[int, int]]] = {
    "python/sessions.py": [(1, 7), (76, 79)],
    "javascript/router.js": [(1, 4), (57, 60)],
    "typescript/store.ts": [(1, 2), (67, 68)],
    "go/cache.go": [(1, 10), (76, 79)],
    "rust/shapes.rs": [(1, 6), (55, 57)],
    "java/Inventory.java": [(1, 4)],
    "c/buffer.c": [(1, 5), (24, 24)],
    "cpp/matrix.cpp": [(1, 8)],
}

ALL_FIXTURES = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*") if p.is_file())


def read(rel: str) -> str:
    return (FIXTURES / rel).read_text(encoding="utf-8")


def rows(chunks: list[Chunk], *, skip: tuple[str, ...] = ("module",)) -> list[Row]:
    return [(c.kind, c.name, c.start_line, c.end_line) for c in chunks if c.kind not in skip]


def assert_covers(text: str, chunks: list[Chunk]) -> None:
    lines = text.split("\n")
    covered: set[int] = set()
    for c in chunks:
        assert 1 <= c.start_line <= c.end_line <= len(lines), c
        covered.update(range(c.start_line, c.end_line + 1))
    missing = [i for i, line in enumerate(lines, 1) if line.strip() and i not in covered]
    assert missing == []


def assert_exact_text(text: str, chunks: list[Chunk]) -> None:
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    for c in chunks:
        assert c.text == "\n".join(lines[c.start_line - 1 : c.end_line]), c


def word_count(text: str) -> int:
    return len(text.split())


def test_version_is_a_string() -> None:
    assert isinstance(CHUNKER_VERSION, str) and CHUNKER_VERSION


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("a/b.py", "python"),
        ("stubs/x.pyi", "python"),
        ("web/app.jsx", "javascript"),
        ("x.mjs", "javascript"),
        ("x.cjs", "javascript"),
        ("src/a.ts", "typescript"),
        ("a.mts", "typescript"),
        ("a.cts", "typescript"),
        ("ui/App.tsx", "tsx"),
        ("main.go", "go"),
        ("lib.rs", "rust"),
        ("A.java", "java"),
        ("x.c", "c"),
        ("x.h", "c"),
        ("x.cc", "cpp"),
        ("x.hpp", "cpp"),
        ("x.h++", "cpp"),
        ("X.CPP", "cpp"),
        ("README.md", "markdown"),
        ("doc.markdown", "markdown"),
        ("index.rst", "rst"),
        ("pyproject.toml", "text"),
        ("Makefile", "text"),
        ("noext", "text"),
    ],
)
def test_language_for(path: str, language: str) -> None:
    assert language_for(path) == language


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_fixture_definitions(rel: str) -> None:
    chunks = chunk_file(rel, read(rel))
    assert rows(chunks) == EXPECTED[rel]
    modules = [(c.start_line, c.end_line) for c in chunks if c.kind == "module"]
    assert modules == MODULE_LINES[rel]
    assert all(c.name == "" for c in chunks if c.kind == "module")
    assert {c.language for c in chunks} == {language_for(rel)}
    assert all(c.path == rel for c in chunks)


@pytest.mark.parametrize("rel", ALL_FIXTURES)
def test_fixture_covers_every_line_with_exact_text(rel: str) -> None:
    text = read(rel)
    for max_tokens in (256, 40):  # also when definitions are split
        chunks = chunk_file(rel, text, max_tokens=max_tokens, count_tokens=word_count)
        assert chunks
        assert all(c.kind in KINDS for c in chunks)
        assert_covers(text, chunks)
        assert_exact_text(text, chunks)


def test_python_headers_have_signature_and_class() -> None:
    chunks: dict[tuple[str, str], Chunk] = {}
    for c in chunk_file("s.py", read("python/sessions.py")):
        chunks.setdefault((c.kind, c.name), c)  # the first chunk of each symbol
    method = chunks[("method", "SessionRedirectMixin.rebuild_method")]
    assert method.header == (
        "python method SessionRedirectMixin.rebuild_method\n"
        "def rebuild_method(prepared_request: Any, response: Any) -> None:"
    )
    assert method.text.splitlines()[0] == "    @staticmethod"
    assert "s.py" not in method.header
    cls = chunks[("class", "Session")]
    assert cls.header == (
        "python class Session\nclass Session(SessionRedirectMixin):\n"
        "methods: __init__, closed, get, close"
    )
    assert cls.text.startswith('class Session(SessionRedirectMixin):\n    """A requests-like')
    assert chunks[("function", "parse_header")].text.startswith("# Parse a header value")
    assert chunks[("class", "Empty")].header == "python class Empty\nclass Empty:"


def test_doc_comments_are_included() -> None:
    go = {c.name: c for c in chunk_file("cache.go", read("go/cache.go"))}
    assert go["Cache.Get"].text.startswith("// Get looks up a key")
    assert go["Cache.Get"].header == (
        "go method Cache.Get\nfunc (c *Cache) Get(key string) (any, bool)"
    )
    assert go["Cache"].header.endswith("methods: Get, Put, removeOldest, Len")
    rust = [c for c in chunk_file("shapes.rs", read("rust/shapes.rs")) if c.name == "Point"]
    assert rust[0].text.startswith("/// A point in the plane.\n#[derive(")
    java = {c.name: c for c in chunk_file("Inventory.java", read("java/Inventory.java"))}
    assert java["Inventory.add"].text.startswith("    /**\n     * Adds units of a product.")
    assert java["Inventory.toString"].text.startswith("    @Override")
    cpp = {c.name: c for c in chunk_file("matrix.cpp", read("cpp/matrix.cpp"))}
    assert cpp["Matrix.at"].text.startswith("  /// Element access")
    assert cpp["Matrix.multiply"].header == (
        "cpp method Matrix.multiply\nMatrix Matrix::multiply(const Matrix& other) const"
    )
    ts = {c.name: c for c in chunk_file("store.ts", read("typescript/store.ts"))}
    assert ts["Store"].text.startswith("/**\n * An in-memory store with expiry.\n */\n@sealed")


def test_tsx_uses_the_tsx_grammar() -> None:
    text = (
        "import React from 'react';\n\n"
        "/** A button. */\n"
        "export function Button({ label }: { label: string }) {\n"
        '  return <button className="b">{label}</button>;\n'
        "}\n"
    )
    chunks = chunk_file("ui/Button.tsx", text)
    assert rows(chunks) == [("function", "Button", 3, 6)]
    assert chunks[0].language == "tsx"


SPLIT_SOURCE = '''import os


def big(values):
    """Process values in many small steps."""
    total = 0
    for v in values:
        total += v
    doubled = [v * 2 for v in values]
    tripled = [v * 3 for v in values]
    if total > 10:
        total -= 10
        total *= 2
    names = {str(v): v for v in values}
    result = {
        "total": total,
        "doubled": doubled,
        "tripled": tripled,
        "names": names,
    }

    return result
'''


def test_oversized_function_splits_at_statement_boundaries() -> None:
    chunks = chunk_file("m.py", SPLIT_SOURCE, max_tokens=40, count_tokens=word_count)
    parts = [c for c in chunks if c.kind == "function"]
    # word counts: header 5; def+docstring+total+for+doubled 27; tripled+if+names 27; result 12
    assert [(c.start_line, c.end_line) for c in parts] == [(4, 9), (10, 14), (15, 22)]
    assert {c.name for c in parts} == {"big"}
    assert [c.header.split("\n")[0] for c in parts] == [
        f"python function big (part {i}/3)" for i in range(1, 4)
    ]
    assert all(c.header.endswith("\ndef big(values):") for c in parts)
    assert parts[0].text.startswith("def big(values):\n")
    # later parts start at a statement
    assert parts[1].text.startswith("    tripled = ")
    assert parts[2].text.startswith("    result = {")
    assert_covers(SPLIT_SOURCE, chunks)


def test_parts_know_their_whole_definition() -> None:
    chunks = chunk_file("m.py", SPLIT_SOURCE, max_tokens=40, count_tokens=word_count)
    parts = [c for c in chunks if c.kind == "function"]
    assert len(parts) == 3 and all(c.is_part for c in parts)
    assert {c.definition for c in parts} == {(4, 22)}  # the def line to `return result`
    whole = chunk_file("m.py", SPLIT_SOURCE, max_tokens=1000, count_tokens=word_count)
    assert [c.definition for c in whole if c.kind == "function"] == [(4, 22)]
    assert not any(c.is_part for c in whole)


FOLD_SOURCE = (
    "def fused(values):\n"
    + "".join(
        f"    step{i} = [v + {i} for v in values if v > {i} and v < 100]\n" for i in range(12)
    )
    + "\n    return step0\n"
)


def test_a_lone_return_is_folded_into_the_part_before() -> None:
    chunks = chunk_file("m.py", FOLD_SOURCE, max_tokens=60, count_tokens=word_count)
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 4), (5, 7), (8, 10), (11, 15)]
    assert chunks[-1].text.endswith("    return step0")
    assert {c.definition for c in chunks} == {(1, 15)}
    # whatever the budget, the return is never a part of its own, and a one-line part is
    # only ever a long line (here: 17 words against a budget of ~25)
    for budget in (30, 40, 60, 90):
        parts = chunk_file("m.py", FOLD_SOURCE, max_tokens=budget, count_tokens=word_count)
        assert "step" in parts[-1].text.split("return")[0], budget
        assert all(word_count(c.text) >= 17 for c in parts), budget
        assert_covers(FOLD_SOURCE, parts)


def test_small_definitions_are_not_split() -> None:
    chunks = chunk_file("m.py", SPLIT_SOURCE, max_tokens=1000, count_tokens=word_count)
    assert rows(chunks) == [("function", "big", 4, 22)]


def test_huge_single_statement_becomes_windows() -> None:
    body = "\n".join(f"        {i}," for i in range(200))
    text = f"def table():\n    return [\n{body}\n    ]\n"
    chunks = chunk_file("t.py", text, max_tokens=50, count_tokens=word_count)
    assert len(chunks) > 4
    assert all(c.kind == "function" and c.name == "table" for c in chunks)
    assert chunks[0].start_line == 1 and chunks[-1].end_line == 203
    for a, b in itertools.pairwise(chunks):
        assert b.start_line == a.end_line + 1
    assert_covers(text, chunks)


def test_token_counter_is_not_called_per_line() -> None:
    funcs = "\n\n".join(
        f"def f{i}(x):\n" + "\n".join(f"    x = x + {j}" for j in range(20)) + "\n    return x"
        for i in range(100)
    )
    calls: list[int] = []

    def counting(text: str) -> int:
        calls.append(1)
        return word_count(text)

    chunks = chunk_file("many.py", funcs, max_tokens=10_000, count_tokens=counting)
    assert len(chunks) == 100
    assert len(calls) <= 100  # one count per definition, none per line


def test_nested_functions_stay_in_their_parent() -> None:
    text = read("python/sessions.py")
    names = [c.name for c in chunk_file("s.py", text)]
    assert "_split" not in names and "parse_header._split" not in names


def test_broken_python_keeps_good_definitions_and_covers_everything() -> None:
    text = (
        "import os\n\n"
        "def good(x):\n    return x\n\n"
        "def bad(:\n    pass\n\n"
        "class K:\n    def m(self):\n        return 1\n"
    )
    chunks = chunk_file("b.py", text)
    assert rows(chunks) == [
        ("window", "", 1, 1),
        ("function", "good", 3, 4),
        ("function", "bad", 6, 7),  # its name survives the error in its parameters
        ("class", "K", 9, 9),
        ("method", "K.m", 10, 11),
    ]
    assert_covers(text, chunks)


def test_several_syntax_errors_keep_the_names_tree_sitter_recognises() -> None:
    """A file in the middle of an edit: each definition the parser still recognises keeps
    its name, cut before what the parser swallowed after the error (the next definition at
    the same indentation); what it cannot name is indexed as text."""
    text = (
        "import os\n\n"
        "def alpha(x):\n    return x +\n\n"
        "def beta(y):\n    return y * 2\n\n"
        "class Gamma:\n    def delta(self):\n        return (1,\n\n"
        "    def epsilon(self):\n        return 3\n\n"
        "def zeta(z):\n    if z\n        return 1\n    return 0\n\n"
        "def eta():\n    return 7\n"
    )
    chunks = chunk_file("m.py", text)
    assert rows(chunks) == [
        ("window", "", 1, 1),
        ("function", "alpha", 3, 4),
        ("function", "beta", 6, 7),
        ("class", "Gamma", 9, 9),
        ("method", "Gamma.delta", 10, 11),
        ("class", "Gamma", 13, 14),
        ("window", "", 16, 19),
        ("function", "eta", 21, 22),
    ]
    assert_covers(text, chunks)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("x.js", "function f( {\n  return 1;\n\nclass {{{\n"),
        ("x.rs", "fn main() {\n    let x = ;\n}\nimpl for {\n"),
        ("x.go", "package x\nfunc (\n}}}\n"),
        ("x.c", "int main( {\n#if\n"),
        ("x.java", "class { void x( }\n"),
        ("x.cpp", "template<> class ::: {\n"),
        ("x.ts", "export const = => {\n"),
        ("x.py", "\x00\x01 def ( ))) \n\tclass:\n"),
        ("x.md", "```\nunclosed fence\n# not a heading\n"),
        ("x.rst", "====\nTitle too long\n====\n"),
    ],
)
def test_broken_inputs_never_raise_and_lose_nothing(path: str, text: str) -> None:
    chunks = chunk_file(path, text)
    assert chunks
    assert_covers(text, chunks)
    assert_exact_text(text, chunks)


def test_empty_and_blank_files() -> None:
    assert chunk_file("e.py", "") == []
    assert chunk_file("e.py", "  \n\n\t\n") == []
    assert chunk_file("e.md", "\n\n") == []
    assert chunk_file("e.txt", "") == []


def test_crlf_line_endings() -> None:
    text = "import os\r\n\r\ndef f(x):\r\n    return x\r\n\r\nclass K:\r\n    def m(self):\r\n"
    text += "        return 1\r\n"
    chunks = chunk_file("c.py", text)
    assert rows(chunks) == [("function", "f", 3, 4), ("class", "K", 6, 6), ("method", "K.m", 7, 8)]
    assert all("\r" not in c.text and "\r" not in c.header for c in chunks)
    assert chunks[1].text == "def f(x):\n    return x"


def test_non_ascii_identifiers_and_strings() -> None:
    text = (
        "# héllo wörld ✓\n"
        'nom = "ça va — 日本語"\n\n'
        "def größe(x: str) -> str:\n"
        '    """Größe — 大きさ."""\n'
        "    return x\n\n"
        "class Ünïcode:\n"
        "    def méthode(self) -> str:\n"
        '        return "日本語"\n'
    )
    chunks = chunk_file("u.py", text)
    assert rows(chunks, skip=()) == [
        ("module", "", 1, 2),
        ("function", "größe", 4, 6),
        ("class", "Ünïcode", 8, 8),
        ("method", "Ünïcode.méthode", 9, 10),
    ]
    assert chunks[1].header == "python function größe\ndef größe(x: str) -> str:"
    assert chunks[3].text == '    def méthode(self) -> str:\n        return "日本語"'


def test_absurdly_long_line() -> None:
    text = 'x = "' + "a" * 5000 + '"\nfunction f() {\n  return 1;\n}\n'
    chunks = chunk_file("long.js", text)
    assert rows(chunks, skip=()) == [("module", "", 1, 1), ("function", "f", 2, 4)]
    text_chunks = chunk_file("long.txt", "b" * 5000 + "\nend\n")
    assert [(c.start_line, c.end_line) for c in text_chunks] == [(1, 2)]


def test_module_code_is_grouped_in_at_most_60_lines() -> None:
    text = "\n".join(f"CONST_{i} = {i}" for i in range(150)) + "\n"
    chunks = chunk_file("consts.py", text)
    assert all(c.kind == "module" for c in chunks)
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 60), (61, 120), (121, 150)]


def test_markdown_sections() -> None:
    chunks = chunk_file("docs/README.md", read("markdown/README.md"))
    assert rows(chunks) == [
        ("section", "README.md", 1, 1),
        ("section", "Project", 3, 5),
        ("section", "Project > Install", 7, 12),  # the fenced "# not a heading" stays inside
        ("section", "Project > Install > From source", 14, 16),
        ("section", "Project > Usage", 18, 21),  # setext heading
        ("section", "Reference", 23, 23),
    ]
    assert chunks[2].header == "markdown section Project > Install"
    assert chunks[2].language == "markdown"


def test_long_markdown_section_is_windowed_with_its_name() -> None:
    text = "# Big\n\n" + "\n".join(f"line {i} of the section" for i in range(150)) + "\n"
    chunks = chunk_file("big.md", text)
    assert len(chunks) == 3
    assert {c.name for c in chunks} == {"Big"}
    assert chunks[0].header == "markdown section Big (part 1/3)"
    assert_covers(text, chunks)


def test_rst_sections() -> None:
    chunks = chunk_file("guide.rst", read("rst/guide.rst"))
    assert rows(chunks) == [
        ("section", "User Guide", 1, 5),
        ("section", "User Guide > Installation", 7, 10),
        ("section", "User Guide > Installation > From source", 12, 15),
        ("section", "User Guide > Configuration", 17, 20),
    ]
    assert chunks[0].header == "rst section User Guide"


def test_text_windows_overlap() -> None:
    text = "\n".join(f"key{i} = {i}" for i in range(100)) + "\n"
    chunks = chunk_file("conf/settings.toml", text)
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 40), (31, 70), (61, 100)]
    assert all(c.kind == "window" and c.name == "" for c in chunks)
    assert chunks[0].header == "text window toml"
    assert chunks[0].language == "text"
    assert chunk_file("notes", "hello\n")[0].header == "text window"
    assert chunk_file("run.sh", "echo hi\n")[0].header == "text window shell"


def test_cpp_header_with_h_extension() -> None:
    text = (
        "#pragma once\n\n"
        "namespace ns {\n"
        "/// A widget.\n"
        "class Widget {\n"
        " public:\n"
        "  int size() const { return n_; }\n\n"
        " private:\n"
        "  int n_ = 0;\n"
        "};\n"
        "}  // namespace ns\n"
    )
    chunks = chunk_file("include/widget.h", text)
    assert rows(chunks) == [
        ("class", "Widget", 4, 6),
        ("method", "Widget.size", 7, 7),
        ("class", "Widget", 9, 12),
    ]
    assert {c.language for c in chunks} == {"c"}
