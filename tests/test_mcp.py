"""The MCP server for real: `codesearch mcp` spawned over stdio and driven by the official MCP
client (stdio_client + ClientSession), in front of a real daemon. One daemon and one MCP
session serve the whole module."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from daemon_helpers import Daemon, eventually
from mcp_helpers import McpClient

FIXTURES = Path(__file__).parent / "fixtures"
SCHEMA = json.loads((Path(__file__).parent.parent / "docs/search-result.schema.json").read_text())
HIT_SCHEMA = {"$defs": SCHEMA["$defs"], "$ref": "#/$defs/hit"}
TOOLS = {"search_code", "find_similar", "index_status", "reindex", "list_repos"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mcp") / "shop"
    shutil.copytree(FIXTURES / "repo", root)
    (root / ".git").mkdir()  # a git repository: the server registers it as its default
    return root


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    running = Daemon(tmp_path_factory.mktemp("mcp-home")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def mcp(daemon: Daemon, repo: Path) -> Iterator[McpClient]:
    """`codesearch mcp` started in the repository (which nobody has registered yet)."""
    with McpClient(daemon.settings.home, repo / "src") as client:
        daemon.wait(repo)  # registered at start; its first index is being built
        yield client


def error_text(mcp: McpClient, tool: str, **arguments: object) -> str:
    result = mcp.call(tool, **arguments)
    assert result.is_error, (tool, arguments, mcp.text(result))
    text = mcp.text(result)
    assert text.startswith(f"Error executing tool {tool}: ") and "\n" not in text, text
    return text


def test_the_tools_and_their_input_schemas(mcp: McpClient) -> None:
    tools = {tool.name: tool for tool in mcp.list_tools()}
    assert set(tools) == TOOLS
    search = tools["search_code"]
    props = search.input_schema["properties"]
    assert set(props) == {
        "query",
        "k",
        "path_glob",
        "language",
        "kind",
        "repo",
        "max_lines",
        "include_tests",
    }
    assert props["include_tests"]["default"] is True
    assert search.input_schema["required"] == ["query"]
    assert props["k"]["default"] == 10 and props["k"]["minimum"] == 1
    kinds = next(a["enum"] for a in props["kind"]["anyOf"] if "enum" in a)
    assert "function" in kinds and "method" in kinds
    assert "grep" in (search.description or "")  # when to use grep instead
    assert search.output_schema is not None
    similar = tools["find_similar"].input_schema
    assert set(similar["properties"]) == {"path", "line", "k", "repo"}
    assert similar["required"] == ["path", "line"] and similar["properties"]["line"]["minimum"] == 1
    assert set(tools["index_status"].input_schema["properties"]) == {"repo"}
    assert set(tools["reindex"].input_schema["properties"]) == {"path"}
    assert tools["list_repos"].input_schema.get("properties", {}) == {}
    for tool in tools.values():
        assert len(tool.description or "") > 100, tool.name


def test_the_working_folder_s_repository_is_registered_at_start(
    mcp: McpClient, repo: Path, daemon: Daemon
) -> None:
    assert [r["root"] for r in daemon.call("repos")["repos"]] == [str(repo)]
    result = mcp.call("list_repos")
    assert not result.is_error
    (listed,) = result.structured_content["repos"]  # type: ignore[index]
    assert listed["root"] == str(repo) and listed["default"] is True
    assert listed["files"] == 7 and listed["state"] == "idle"
    assert mcp.text(result).startswith(f"{repo} (default): idle")
    assert "registered" in mcp.stderr()


def test_search_code_puts_the_right_function_first(mcp: McpClient, repo: Path) -> None:
    result = mcp.call("search_code", query="exponential delay with jitter between attempts")
    assert not result.is_error, mcp.text(result)
    out = result.structured_content
    assert out is not None and out["repo"] == str(repo)
    top = out["results"][0]
    assert (top["path"], top["name"]) == ("src/app/retry.py", "compute_backoff")
    assert top["kind"] == "function"
    assert (top["start_line"], top["end_line"]) == (7, 10)
    for hit in out["results"]:
        jsonschema.validate(hit, HIT_SCHEMA)  # the CLI's documented hit fields
    text = mcp.text(result).splitlines()
    assert text[0].startswith(f"{len(out['results'])} results in {repo} for ")
    assert text[2].startswith("[1] src/app/retry.py:7-10 function compute_backoff ")
    assert text[3].startswith("def compute_backoff(attempt: int")


def test_filters_and_snippet_cap(mcp: McpClient) -> None:
    by_language = mcp.call("search_code", query="send a message", language="go", k=5)
    assert {h["language"] for h in by_language.structured_content["results"]} == {"go"}  # type: ignore[index]
    by_path = mcp.call("search_code", query="password", path_glob="web/")
    assert {h["path"] for h in by_path.structured_content["results"]} == {"web/cache.js"}  # type: ignore[index]
    by_kind = mcp.call("search_code", query="password", kind="method", k=3, max_lines=2)
    hits = by_kind.structured_content["results"]  # type: ignore[index]
    assert {h["kind"] for h in hits} == {"method"}
    for hit in hits:
        assert len(hit["snippet"].split("\n")) <= 2
        assert hit["truncated_lines"] == hit["end_line"] - hit["start_line"] - 1
    assert f"[+{hits[0]['truncated_lines']} lines]" in mcp.text(by_kind)
    assert "(method)" in mcp.text(by_kind).splitlines()[0]
    no_tests = mcp.call("search_code", query="password", include_tests=False)
    assert not no_tests.is_error and no_tests.structured_content["results"]  # type: ignore[index]
    assert "(no tests)" in mcp.text(no_tests).splitlines()[0]
    assert all(h["confident"] for h in no_tests.structured_content["results"])  # type: ignore[index]
    nothing = mcp.call("search_code", query="password", language="java")
    assert not nothing.is_error and nothing.structured_content["results"] == []  # type: ignore[index]
    assert "grep" in mcp.text(nothing)


def test_index_status_follows_an_edit(mcp: McpClient, repo: Path) -> None:
    before = mcp.call("index_status").structured_content["repos"][0]  # type: ignore[index]
    assert before["files"] == 7 and before["default"] and before["model"].startswith("minilm")
    (repo / "src/app/ledger.py").write_text(
        "def reconcile_ledger_balances(entries):\n"
        '    """Match every debit with its credit and report the difference."""\n'
        "    return sum(e.amount for e in entries)\n"
    )

    def updated() -> dict | None:
        info = mcp.call("index_status", repo=str(repo)).structured_content["repos"][0]  # type: ignore[index]
        return info if info["files"] == 8 and info["state"] == "idle" else None

    after = eventually(updated, timeout=30, what="the watcher's update")
    assert after["last_update"] > (before["last_update"] or 0)
    top = mcp.call("search_code", query="match debits with credits").structured_content  # type: ignore[union-attr]
    assert top["results"][0]["name"] == "reconcile_ledger_balances"  # type: ignore[index]

    # reindex: re-read one file now and wait for it
    with open(repo / "src/app/settings.py", "a") as handle:
        handle.write("\n\ndef feature_flag_rollout(percent):\n    return percent > 50\n")
    result = mcp.call("reindex", path="src/app/settings.py")
    assert not result.is_error, mcp.text(result)
    out = result.structured_content
    assert out is not None and out["done"] and out["path"] == "src/app/settings.py"
    assert mcp.text(result).startswith("Re-read src/app/settings.py in ")
    found = mcp.call("search_code", query="feature flag rollout percent", k=1)
    assert found.structured_content["results"][0]["name"] == "feature_flag_rollout"  # type: ignore[index]
    whole = mcp.call("reindex")
    assert not whole.is_error and whole.structured_content["path"] == "."  # type: ignore[index]


def test_paths_outside_the_registered_repositories_are_refused(mcp: McpClient, repo: Path) -> None:
    outside = "outside the registered repositories"
    for where in ("/etc", "../", "../../", "/", str(repo.parent), "~"):
        assert outside in error_text(mcp, "search_code", query="password", repo=where)
    for glob in ("../*", "/etc/*", "../../**/*.py"):
        assert outside in error_text(mcp, "search_code", query="password", path_glob=glob)
    assert outside in error_text(mcp, "index_status", repo="/etc")
    for path in ("/etc/passwd", "../", "../../secrets.txt"):
        assert outside in error_text(mcp, "reindex", path=path)
        assert outside in error_text(mcp, "find_similar", path=path, line=1)
    (repo / "escape").symlink_to("/etc")  # a symlink inside that leads out is outside too
    try:
        assert outside in error_text(mcp, "reindex", path="escape/passwd")
        assert outside in error_text(mcp, "search_code", query="x", repo=str(repo / "escape"))
    finally:
        (repo / "escape").unlink()
    # inside is fine: the repository holding a path is the one searched
    inside = mcp.call("search_code", query="password", repo=str(repo / "src/app"), k=1)
    assert not inside.is_error and inside.structured_content["repo"] == str(repo)  # type: ignore[index]


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"query": "x", "k": 0}, "k:"),
        ({"query": "x", "k": "x"}, "k:"),
        ({"query": "x", "k": 1000}, "k:"),
        ({"query": "x", "kind": "banana"}, "kind:"),
        ({"query": "x", "language": "cobol"}, "language:"),
        ({"query": "x", "max_lines": -1}, "max_lines:"),
        ({"k": 3}, "query:"),
        ({"query": "   "}, "query is empty"),
        ({"query": "x", "path_glob": ""}, None),  # an empty filter is no filter
    ],
)
def test_bad_arguments_are_tool_errors(
    mcp: McpClient, arguments: dict[str, object], named: str | None
) -> None:
    result = mcp.call("search_code", **arguments)
    if named is None:
        assert not result.is_error, mcp.text(result)
        return
    assert named in error_text(mcp, "search_code", **arguments)


def test_the_server_keeps_answering_after_errors(mcp: McpClient) -> None:
    assert mcp.call("no_such_tool").is_error
    error_text(mcp, "search_code", query="x", k="many")
    error_text(mcp, "reindex", path="/")
    result = mcp.call("search_code", query="thumbnail image resize", k=1)
    assert not result.is_error
    assert result.structured_content["results"][0]["name"] == "Image.thumbnail"  # type: ignore[index]


def test_a_bad_repo_option_is_a_one_line_error(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "codesearch.cli", "mcp", "--repo", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        env={**os.environ, "CODESEARCH_HOME": str(tmp_path / "home")},
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("codesearch: error: no such directory")
    assert out.stderr.count("\n") == 1


def test_the_server_imports_no_model_code() -> None:
    code = (
        "import sys, codesearch.mcp_server\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'numpy', 'sqlean', 'tree_sitter')]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_readme_describes_these_tools_and_setups(mcp: McpClient) -> None:
    """The README's tool table names each tool's real arguments and defaults; every setup
    snippet starts `codesearch mcp`, which the CLI parses."""
    from codesearch.cli import build_parser

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Coding agents (MCP)", 1)[1].split("\n## ", 1)[0]
    tools = {tool.name: tool for tool in mcp.list_tools()}
    for row in (line for line in section.splitlines() if line.startswith("| `")):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        name = cells[0].strip("`")
        schema = tools[name].input_schema.get("properties", {})
        documented = {a.split("=")[0].rstrip("?") for a in re.findall(r"`([^`]+)`", cells[1])}
        assert documented == set(schema), name
        for arg in re.findall(r"`(\w+)=(\d+)`", cells[1]):
            assert schema[arg[0]]["default"] == int(arg[1]), arg
    assert "claude mcp add codesearch -- codesearch mcp" in section
    cursor = json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])
    assert cursor["mcpServers"]["codesearch"] == {"command": "codesearch", "args": ["mcp"]}
    continue_yaml = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "command: codesearch" in continue_yaml and "- mcp" in continue_yaml
    build_parser().parse_args(["mcp"])
    build_parser().parse_args(["mcp", "--repo", "PATH"])
