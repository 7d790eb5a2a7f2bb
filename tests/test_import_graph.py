"""The import graph of codesearch/, from the AST of every module (imports at the top, inside
functions and under ``if TYPE_CHECKING`` all count): no cycle, and no module outside
codesearch/embed/ reaches into a backend package; the embed layer probes no embedder and
silences no type checker."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "codesearch"
BACKENDS = ("codesearch.embed.minilm", "codesearch.embed.jina", "codesearch.embed.remote")


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imported(module: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(the codesearch module imported, line) for every import statement in ``path``."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (found := known(alias.name)) is not None:
                    yield found, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found = full if full in modules else known(base)
                if found is not None:
                    yield found, node.lineno


def _graph() -> dict[str, dict[str, int]]:
    modules = _modules()
    return {
        m: {target: line for target, line in _imported(m, path, modules) if target != m}
        for m, path in modules.items()
    }


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = _graph()
    assert "codesearch.embed.jina.build" in graph["codesearch.embed.jina.backend"]  # in a function
    assert "codesearch.embed.jina" in graph["codesearch.embed.registry"]  # from package import
    assert "codesearch.embed.base" in graph["codesearch.embed.jina.embedder"]
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [
        ["a", "b", "c"]
    ]


def test_codesearch_has_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_only_the_embed_layer_knows_the_backends() -> None:
    graph = _graph()
    outside = [
        f"{module} imports {target} (line {line})"
        for module, targets in graph.items()
        if not module.startswith("codesearch.embed")
        for target, line in targets.items()
        if target.startswith(BACKENDS)
    ]
    assert outside == []
    # and the backends do not know each other, nor the registry
    for module, targets in graph.items():
        own = next((b for b in BACKENDS if module.startswith(b)), None)
        if own is not None:
            foreign = [t for t in targets if t.startswith(BACKENDS) and not t.startswith(own)]
            assert foreign == [], module
            assert "codesearch.embed.registry" not in targets, module


def test_no_embedder_is_probed_and_no_type_check_silenced() -> None:
    """Callers read an embedder's declared capabilities: no getattr / hasattr / callable on
    an embedder anywhere; the embed layer has no ``# type: ignore``."""
    probes = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr", "callable")
                and node.args
                and "embedder" in ast.unparse(node.args[0])
            ):
                probes.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert probes == []
    silenced = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((PACKAGE / "embed").rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "type: ignore" in line
    ]
    assert silenced == []
