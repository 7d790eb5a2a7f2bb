"""The language server for real: ``python -m lsp`` over stdio, driven by pygls's
``LanguageClient``, against a real daemon (MiniLM) and a real index of a small repository.

One daemon and one server serve the module; tests that need a fresh server start their own.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import Daemon
from lsp_helpers import (
    GEOMETRY,
    MAILER,
    NOTE,
    NOTE_QUESTION,
    REPORT,
    REPORT_QUESTION,
    ROOT,
    SHOELACE_QUESTION,
    LspSession,
    line_of,
    make_repo,
    uri,
    utf16_len,
)
from pygls.exceptions import JsonRpcException

INVALID_PARAMS, METHOD_NOT_FOUND, REQUEST_CANCELLED = -32602, -32601, -32800


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lsp-home")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("lsp-repo") / "drawing")


@pytest.fixture(scope="module")
def daemon(home: Path, repo: Path) -> Iterator[Daemon]:
    daemon = Daemon(home).start()
    try:
        daemon.add(repo)
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def lsp(home: Path, repo: Path, daemon: Daemon) -> Iterator[LspSession]:
    session = LspSession(home)
    try:
        session.start([repo])
        yield session
    finally:
        session.stop()


def search(session: LspSession, query: str, **params: Any) -> dict[str, Any]:
    return session.request("codesearch/search", {"query": query, **params})


def error_of(session: LspSession, method: str, params: Any) -> JsonRpcException:
    with pytest.raises(JsonRpcException) as info:
        session.request(method, params, timeout=30)
    return info.value


def shoelace_range(text: str = GEOMETRY) -> tuple[int, int, dict[str, Any]]:
    """Lines and the expected UTF-16 range of Polygon.shoelace_area, computed from the text."""
    lines = text.split("\n")
    start = line_of(text, "def shoelace_area")
    end = line_of(text, "return abs(total)")
    indent = len(lines[start - 1]) - len(lines[start - 1].lstrip())
    return (
        start,
        end,
        {
            "start": {"line": start - 1, "character": indent},
            "end": {"line": end - 1, "character": utf16_len(lines[end - 1])},
        },
    )


# ---------------------------------------------------------------------- the workspace


def test_initialize_answer(home: Path, repo: Path, daemon: Daemon) -> None:
    with LspSession(home) as session:
        init = session.start([repo])
        caps = init["capabilities"]
        assert caps["experimental"]["codesearch"]["search"] is True
        assert set(caps["executeCommandProvider"]["commands"]) == {
            "codesearch.search",
            "codesearch.similar",
            "codesearch.reindex",
            "codesearch.status",
        }
        assert caps["workspaceSymbolProvider"] is not False
        assert caps["textDocumentSync"]["save"] is not False
        assert caps["workspace"]["workspaceFolders"]["changeNotifications"] is True
        assert init["serverInfo"]["name"] == "codesearch"
        code = session.stop()
    assert code == 0  # shutdown + exit: a clean exit


def test_initial_indexing_reports_progress(lsp: LspSession) -> None:
    def ended() -> list[dict[str, Any]]:
        return [p for p in lsp.progress if p["value"]["kind"] == "end"]

    (end,) = lsp.wait_for(ended, what="$/progress end")
    token = end["token"]
    kinds = [p["value"]["kind"] for p in lsp.progress if p["token"] == token]
    assert kinds[0] == "begin" and kinds[-1] == "end"
    begin = lsp.progress[0]["value"]
    assert begin["title"] == "codesearch: indexing drawing"
    assert end["value"]["message"].startswith("5 files")


# ---------------------------------------------------------------------- search


def test_search_finds_the_method_with_utf16_range(lsp: LspSession, repo: Path) -> None:
    answer = search(lsp, SHOELACE_QUESTION, k=5)
    assert answer["query"] == SHOELACE_QUESTION
    assert isinstance(answer["notices"], list)
    first = answer["results"][0]
    start, end, expected = shoelace_range()
    assert (first["name"], first["kind"], first["language"]) == (
        "Polygon.shoelace_area",
        "method",
        "python",
    )
    assert (first["path"], first["root"]) == ("shapes/geometry.py", str(repo.resolve()))
    assert first["uri"] == uri(repo.resolve() / "shapes/geometry.py")
    assert (first["start_line"], first["end_line"]) == (start, end)
    assert first["range"] == expected
    # the end line holds two astral characters: UTF-16 differs from code points and bytes
    last = GEOMETRY.split("\n")[end - 1]
    assert expected["end"]["character"] == len(last) + 2 != len(last.encode("utf-8"))
    assert "shoelace" in first["snippet"]
    scores = [r["score"] for r in answer["results"]]
    assert scores == sorted(scores, reverse=True) and len(scores) <= 5


def test_a_long_definition_is_one_result_with_the_matched_part_selected(
    lsp: LspSession,
) -> None:
    answer = search(lsp, REPORT_QUESTION, k=10)
    found = [r for r in answer["results"] if r["name"] == "build_monthly_report"]
    assert len(found) == 1, "the parts of one definition are one result"
    hit = found[0]
    start = line_of(REPORT, "def build_monthly_report")
    end = line_of(REPORT, 'return "\\n".join(lines)')
    assert (hit["start_line"], hit["end_line"]) == (start, end)
    assert hit["range"]["start"]["line"] == start - 1 and hit["range"]["end"]["line"] == end - 1
    assert hit["snippet"].startswith("def build_monthly_report(orders, month):")
    # the part that matched (the CSV lines at the end) is the selection, inside the range
    assert start < hit["match_start"] <= line_of(REPORT, "spreadsheet.write(") <= hit["match_end"]
    assert hit["match_end"] <= end
    assert hit["selectionRange"]["start"]["line"] == hit["match_start"] - 1
    assert hit["selectionRange"]["end"]["line"] == hit["match_end"] - 1


def test_search_range_starts_at_the_first_non_blank_character(lsp: LspSession) -> None:
    answer = search(lsp, NOTE_QUESTION, k=3)
    first = answer["results"][0]
    assert (first["path"], first["kind"]) == ("notes/lieferung.txt", "window")
    lines = NOTE.split("\n")
    # two ideographic spaces: UTF-16 column 2 (bytes would say 6)
    assert first["range"] == {
        "start": {"line": 0, "character": 2},
        "end": {"line": 1, "character": utf16_len(lines[1])},
    }


def test_search_uses_the_open_documents_text(lsp: LspSession, repo: Path) -> None:
    doc = uri(repo / "shapes/geometry.py")
    edited = GEOMETRY.replace("größer als null 😀😀", "größer als null 😀😀😀 (bearbeitet)")
    lsp.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": doc, "languageId": "python", "version": 1, "text": edited}},
    )
    try:
        first = search(lsp, SHOELACE_QUESTION, k=1)["results"][0]
        assert first["range"] == shoelace_range(edited)[2]
    finally:
        lsp.notify("textDocument/didClose", {"textDocument": {"uri": doc}})
    assert search(lsp, SHOELACE_QUESTION, k=1)["results"][0]["range"] == shoelace_range()[2]


def test_search_filters_and_folder(lsp: LspSession, repo: Path) -> None:
    classes = search(lsp, "cache", filters={"kinds": ["class"]})["results"]
    assert classes and {r["kind"] for r in classes} == {"class"}
    only = search(lsp, "email", filters={"path_globs": ["net/**"]}, folder=uri(repo))
    assert only["results"] and {r["path"] for r in only["results"]} == {"net/mailer.py"}
    err = error_of(lsp, "codesearch/search", {"query": "x", "folder": "file:///nowhere/else"})
    assert err.code == INVALID_PARAMS and "not a workspace folder" in str(err)


def test_execute_command_search_reindex_status(lsp: LspSession, repo: Path) -> None:
    answer = lsp.command("codesearch.search", SHOELACE_QUESTION, {"k": 2})
    assert answer["query"] == SHOELACE_QUESTION and len(answer["results"]) <= 2
    assert answer["results"][0]["name"] == "Polygon.shoelace_area"
    assert lsp.command("codesearch.search", "send welcome email")["results"][0]["path"] == (
        "net/mailer.py"
    )
    assert lsp.command("codesearch.reindex") == {"roots": [str(repo.resolve())]}
    assert lsp.command("codesearch.reindex", uri(repo)) == {"roots": [str(repo.resolve())]}
    status = lsp.command("codesearch.status")
    assert status["daemon"]["pid"] > 0
    assert [r["root"] for r in status["repos"]] == [str(repo.resolve())]
    assert status["lsp"]["folders"][0]["root"] == str(repo.resolve())


def test_workspace_symbol(lsp: LspSession, repo: Path) -> None:
    symbols = lsp.request("workspace/symbol", {"query": "least recently used cache"})
    assert symbols, "no symbols"
    names = [s["name"] for s in symbols]
    assert "LeastRecentlyUsedCache" in names[:3]
    found = symbols[names.index("LeastRecentlyUsedCache")]
    assert found["kind"] == 5  # SymbolKind.Class
    assert found["location"]["uri"] == uri(repo.resolve() / "store/cache.py")
    assert found["containerName"] == "store/cache.py"
    assert lsp.request("workspace/symbol", {"query": "  "}) == []


def test_a_save_is_reflected_in_later_searches(lsp: LspSession, repo: Path) -> None:
    path = repo / "net/mailer.py"
    path.write_text(
        MAILER + '\n\ndef parse_invoice_total(document):\n    """Sum the line items of an invoice'
        ' into its grand total."""\n    return sum(item.amount for item in document.items)\n',
        encoding="utf-8",
    )
    lsp.notify("textDocument/didSave", {"textDocument": {"uri": uri(path)}})

    def found() -> bool:
        results = search(lsp, "sum invoice line items into the grand total", k=3)["results"]
        return bool(results) and results[0]["name"] == "parse_invoice_total"

    lsp.wait_for(found, timeout=30, what="the saved function in the results")


# ---------------------------------------------------------------------- robustness


def test_malformed_and_unknown_requests_get_errors(lsp: LspSession) -> None:
    bad = [
        ("codesearch/search", ["a list"], "params must be an object"),
        ("codesearch/search", {"k": 3}, "'query' must be a non-empty string"),
        ("codesearch/search", {"query": "x", "k": 0}, "'k' must be a whole number"),
        ("codesearch/search", {"query": "x", "filters": {"colour": []}}, "unknown filter"),
        ("codesearch/search", {"query": "x", "filters": {"kinds": ["enum"]}}, "unknown kind"),
        ("workspace/symbol", {}, "invalid params for workspace/symbol"),
        ("workspace/executeCommand", {"command": "codesearch.nope"}, "unknown command"),
        (
            "workspace/executeCommand",
            {"command": "codesearch.search", "arguments": [1, 2, 3]},
            "arguments must be",
        ),
        ("workspace/executeCommand", {"command": "codesearch.reindex", "arguments": [7]}, "URI"),
    ]
    for method, params, message in bad:
        err = error_of(lsp, method, params)
        assert err.code == INVALID_PARAMS, (method, params, err)
        assert message in str(err), (method, params, str(err))
        assert "\n" not in str(err)
    err = error_of(lsp, "codesearch/nonsense", {})
    assert err.code == METHOD_NOT_FOUND
    lsp.notify("codesearch/unknownNotification", {"x": 1})
    assert search(lsp, SHOELACE_QUESTION, k=1)["results"]  # still answering


def test_a_killed_daemon_is_restarted(lsp: LspSession, daemon: Daemon) -> None:
    old = lsp.command("codesearch.status")["daemon"]["pid"]
    daemon.pid = old
    daemon.kill9()
    first = search(lsp, SHOELACE_QUESTION, k=1)["results"][0]
    assert first["name"] == "Polygon.shoelace_area"
    daemon.pid = lsp.command("codesearch.status")["daemon"]["pid"]
    assert daemon.pid != old


def test_a_daemon_that_dies_during_a_request_is_restarted_and_the_request_retried(
    lsp: LspSession, daemon: Daemon
) -> None:
    daemon.pid = lsp.command("codesearch.status")["daemon"]["pid"]
    daemon.kill9()
    daemon.pid = lsp.command("codesearch.status")["daemon"]["pid"]  # a fresh one, no model yet
    future = lsp.send("codesearch/search", {"query": SHOELACE_QUESTION, "k": 1})
    time.sleep(0.3)  # the daemon is loading the model for this search
    assert not future.done(), "the search was too quick to interrupt"
    daemon.kill9()
    assert future.result(60)["results"][0]["name"] == "Polygon.shoelace_area"
    assert lsp.command("codesearch.status")["daemon"]["pid"] != daemon.pid


def test_a_cancelled_request_stops_its_daemon_call(lsp: LspSession, daemon: Daemon) -> None:
    # a freshly started daemon loads the model on its first search: seconds to interrupt
    daemon.pid = lsp.command("codesearch.status")["daemon"]["pid"]
    daemon.kill9()
    assert lsp.command("codesearch.status")["lsp"]["calls_in_flight"] == 0  # restarted
    future = lsp.send("codesearch/search", {"query": SHOELACE_QUESTION}, msg_id="slow-1")
    time.sleep(0.3)
    assert not future.done(), "the search was too quick to cancel"
    started = time.monotonic()
    lsp.notify("$/cancelRequest", {"id": "slow-1"})
    with pytest.raises(JsonRpcException) as info:
        future.result(10)
    assert info.value.code == REQUEST_CANCELLED
    assert time.monotonic() - started < 2
    lsp.wait_for(
        lambda: lsp.command("codesearch.status")["lsp"]["calls_in_flight"] == 0,
        timeout=2,
        what="the cancelled call's thread to return",
    )
    assert search(lsp, SHOELACE_QUESTION, k=1)["results"][0]["name"] == "Polygon.shoelace_area"


# ---------------------------------------------------------------------- folders


def test_workspace_folders_added_and_removed(
    home: Path, repo: Path, daemon: Daemon, tmp_path: Path
) -> None:
    other = tmp_path / "billing"
    (other / "src").mkdir(parents=True)
    (other / "src/tax.py").write_text(
        'def value_added_tax(net_amount, rate):\n    """Add the value added tax to a net'
        ' amount."""\n    return net_amount * (1 + rate)\n',
        encoding="utf-8",
    )
    with LspSession(home) as session:
        session.start([repo])
        session.notify(
            "workspace/didChangeWorkspaceFolders",
            {"event": {"added": [{"uri": uri(other), "name": "billing"}], "removed": []}},
        )

        def billing_done() -> bool:
            ends = [p for p in session.progress if p["value"]["kind"] == "end"]
            titles = {
                p["token"]: p["value"]["title"]
                for p in session.progress
                if p["value"]["kind"] == "begin"
            }
            return any(titles.get(e["token"]) == "codesearch: indexing billing" for e in ends)

        session.wait_for(billing_done, timeout=60, what="billing indexed")
        assert any(
            p["value"].get("message", "").startswith("1 files, ")
            for p in session.progress
            if p["value"]["kind"] == "end"
        )
        tax = search(session, "add value added tax", folder=uri(other), k=3)["results"]
        assert tax[0]["name"] == "value_added_tax"
        assert tax[0]["root"] == str(other.resolve())
        both = {r["root"] for r in search(session, "tax, email, cache, polygon", k=30)["results"]}
        assert both == {str(repo.resolve()), str(other.resolve())}

        session.notify(
            "workspace/didChangeWorkspaceFolders",
            {"event": {"added": [], "removed": [{"uri": uri(repo), "name": repo.name}]}},
        )
        session.wait_for(
            lambda: (
                {r["root"] for r in search(session, "polygon area", k=10)["results"]}
                == {str(other.resolve())}
            ),
            what="the removed folder to leave the results",
        )
        # removing a folder does not delete its index, and the daemon still has it
        assert str(repo.resolve()) in {r["root"] for r in daemon.call("repos")["repos"]}


def test_no_workspace_folder_is_a_clear_error(home: Path, daemon: Daemon) -> None:
    with LspSession(home) as session:
        session.start([])
        err = error_of(session, "codesearch/search", {"query": "anything"})
        assert err.code == -32803 and "no workspace folder is open" in str(err)
        err = error_of(session, "workspace/symbol", {"query": "anything"})
        assert err.code == -32803 and "no workspace folder is open" in str(err)


def test_entry_point() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "lsp", "--version"], capture_output=True, text=True, cwd=ROOT
    )
    assert version.returncode == 0 and version.stdout.startswith("codesearch-lsp ")
    helped = subprocess.run(
        [sys.executable, "-m", "lsp", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert helped.returncode == 0 and "--stdio" in helped.stdout
