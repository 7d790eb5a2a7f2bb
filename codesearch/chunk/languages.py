"""Extension -> language table, and lazily cached tree-sitter grammars, parsers and queries."""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from pathlib import Path
from posixpath import basename, splitext
from typing import Any

EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".c++": "cpp",
    ".h++": "cpp",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
}

# Language guesses for plain-text files: only used in the window header.
TEXT_GUESSES: dict[str, str] = {
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".jsonc": "json",
    ".sh": "shell",
    ".bash": "shell",
    ".zsh": "shell",
    ".fish": "shell",
    ".ini": "ini",
    ".cfg": "ini",
    ".xml": "xml",
    ".html": "html",
    ".htm": "html",
    ".css": "css",
    ".scss": "scss",
    ".sql": "sql",
    ".rb": "ruby",
    ".php": "php",
    ".kt": "kotlin",
    ".swift": "swift",
    ".cs": "csharp",
    ".lua": "lua",
    ".txt": "text",
    ".proto": "protobuf",
    ".gradle": "gradle",
    ".dockerfile": "dockerfile",
}
TEXT_NAME_GUESSES: dict[str, str] = {
    "dockerfile": "dockerfile",
    "makefile": "makefile",
    "cmakelists.txt": "cmake",
}

CODE_LANGUAGES = ("python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp")

# language -> (module, function returning the grammar pointer, query file stem)
_GRAMMARS: dict[str, tuple[str, str, str]] = {
    "python": ("tree_sitter_python", "language", "python"),
    "javascript": ("tree_sitter_javascript", "language", "javascript"),
    "typescript": ("tree_sitter_typescript", "language_typescript", "typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx", "typescript"),
    "go": ("tree_sitter_go", "language", "go"),
    "rust": ("tree_sitter_rust", "language", "rust"),
    "java": ("tree_sitter_java", "language", "java"),
    "c": ("tree_sitter_c", "language", "c"),
    "cpp": ("tree_sitter_cpp", "language", "cpp"),
}

QUERY_DIR = Path(__file__).with_name("queries")

# Parents that belong to a definition: the chunk starts at the parent.
WRAPPERS: frozenset[str] = frozenset(
    {
        "decorated_definition",  # python
        "export_statement",  # js / ts
        "template_declaration",  # c++
        "declaration",  # c / c++: `struct s {...} v;`
        "type_definition",  # c / c++: `typedef struct {...} T;`
        "field_declaration",  # c / c++: nested struct member
    }
)
# Wrappers that only count when they hold this one definition (Go `type ( A struct{}; B ... )`).
SINGLE_WRAPPERS: frozenset[str] = frozenset({"type_declaration"})

# Siblings directly above a definition that belong to it.
LEADING: frozenset[str] = frozenset(
    {
        "comment",
        "line_comment",
        "block_comment",
        "attribute_item",
        "decorator",
        "annotation",
        "marker_annotation",
    }
)


# Every value a Chunk.language can take (the choices of the --lang filter).
LANGUAGES: tuple[str, ...] = tuple(sorted({*EXTENSIONS.values(), "text"}))


def language_for(path: str) -> str:
    """The language of a repo-relative path, from its extension; "text" when unknown."""
    _, ext = splitext(path.lower())
    return EXTENSIONS.get(ext, "text")


def text_guess(path: str) -> str:
    """A language guess for a plain text file ("toml", "shell", ...), or ""."""
    name = basename(path).lower()
    if name in TEXT_NAME_GUESSES:
        return TEXT_NAME_GUESSES[name]
    _, ext = splitext(name)
    guess = TEXT_GUESSES.get(ext, "")
    return "" if guess == "text" else guess


@dataclass(frozen=True)
class Grammar:
    language: Any  # tree_sitter.Language
    parser: Any  # tree_sitter.Parser
    query: Any  # tree_sitter.Query


_cache: dict[str, Grammar] = {}
_lock = threading.Lock()


def grammar(language: str) -> Grammar:
    """The cached grammar, parser and definitions query of a code language."""
    cached = _cache.get(language)
    if cached is not None:
        return cached
    with _lock:
        if language not in _cache:
            from tree_sitter import Language, Parser, Query

            module_name, func, stem = _GRAMMARS[language]
            module = importlib.import_module(module_name)
            lang = Language(getattr(module, func)())
            source = (QUERY_DIR / f"{stem}.scm").read_text(encoding="utf-8")
            _cache[language] = Grammar(lang, Parser(lang), Query(lang, source))
        return _cache[language]


def new_parser(language: str) -> Any:
    """A fresh parser (parsers are not safe to share between threads)."""
    from tree_sitter import Parser

    return Parser(grammar(language).language)
