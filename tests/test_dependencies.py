"""Every third-party module the product imports is a declared dependency: an install from
pyproject.toml alone must be able to import all of codesearch/ and lsp/."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("codesearch", "lsp")


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules(folder: Path, root: Path = ROOT) -> dict[str, set[str]]:
    """The top-level names of every absolute import under ``folder`` (at any depth: inside
    functions and ``if TYPE_CHECKING`` too), each with the files that import it."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.partition(".")[0], set()).add(
                    path.relative_to(root).as_posix()
                )
    return found


def third_party_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for module, files in imported_modules(ROOT / package).items():
            found.setdefault(module, set()).update(files)
    return {
        module: files
        for module, files in found.items()
        if module not in sys.stdlib_module_names and module not in PACKAGES
    }


def declared() -> set[str]:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        requirements = tomllib.load(handle)["project"]["dependencies"]
    names = (re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r.strip()) for r in requirements)
    return {normalize(m.group()) for m in names if m}


def test_every_imported_module_is_a_declared_dependency() -> None:
    distributions = importlib.metadata.packages_distributions()
    ours = declared()
    missing: list[str] = []
    for module, files in sorted(third_party_imports().items()):
        owners = {normalize(d) for d in distributions.get(module, [])}
        where = ", ".join(sorted(files)[:3])
        if not owners:
            missing.append(f"{module} (imported by {where}) is not installed")
        elif not owners & ours:
            missing.append(f"{module} (imported by {where}): declare {' or '.join(sorted(owners))}")
    assert not missing, "undeclared dependencies:\n" + "\n".join(missing)


def test_the_scan_sees_imports_at_any_depth(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "import os.path\nfrom a.b import c\nfrom . import d\n"
        "def f():\n    import e\n"
        "if TYPE_CHECKING:\n    from g import h\n",
        encoding="utf-8",
    )
    assert set(imported_modules(tmp_path, tmp_path)) == {"os", "a", "e", "g"}


def test_names_compare_as_pep_503_says() -> None:
    assert normalize("sqlean.py") == normalize("sqlean-py") == "sqlean-py"
    assert normalize("huggingface_hub") == "huggingface-hub"
    assert normalize("Resvg__Py") == "resvg-py"
    assert {"torch", "pathspec", "sqlean-py"} <= declared()
