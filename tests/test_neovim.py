"""The Neovim plugin (lsp/editors/neovim) in a real headless Neovim: it starts the language
server, :CodeSearch fills the quickfix list (byte columns converted from UTF-16) and opens it,
and with telescope.nvim present it opens a picker (a stand-in telescope records the call)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import Daemon
from lsp_helpers import GEOMETRY, NOTE_QUESTION, ROOT, SHOELACE_QUESTION, line_of, make_repo
from lsp_helpers import server_env as lsp_env

PLUGIN = ROOT / "lsp" / "editors" / "neovim"
NVIM = shutil.which("nvim")

if NVIM is None and not os.environ.get("CI"):
    pytest.skip("nvim is not installed (CI installs it)", allow_module_level=True)

FAKE_TELESCOPE = {
    "pickers.lua": """
local M = {}
function M.new(_, spec)
  _G.fake_telescope = { title = spec.prompt_title, results = spec.finder.results }
  return { find = function() _G.fake_telescope.found = true end }
end
return M
""",
    "finders.lua": "return { new_table = function(t) return t end }",
    "make_entry.lua": "return { gen_from_quickfix = function() return function(e) return e end end"
    " }",
    "config.lua": """
return { values = {
  qflist_previewer = function() return 'previewer' end,
  generic_sorter = function() return 'sorter' end,
} }
""",
}

SCRIPT = """
local out = {out}
local function main()
  vim.opt.runtimepath:append({plugin})
  local codesearch = require('codesearch')
  codesearch.setup({{ cmd = {cmd}, picker = 'auto' }})
  vim.cmd('cd ' .. vim.fn.fnameescape({repo}))
  vim.cmd('edit shapes/geometry.py')

  local function ask(question)
    vim.cmd('cclose')
    vim.cmd('CodeSearch ' .. question)
    local title = 'CodeSearch: ' .. question
    local ok = vim.wait(90000, function()
      local qf = vim.fn.getqflist({{ title = 1, size = 1 }})
      return qf.title == title and qf.size > 0
    end, 50)
    local qf = vim.fn.getqflist({{ title = 1, items = 1, winid = 1 }})
    local items = {{}}
    for _, item in ipairs(qf.items) do
      table.insert(items, {{
        filename = vim.fn.fnamemodify(vim.fn.bufname(item.bufnr), ':p'),
        lnum = item.lnum, col = item.col, text = item.text,
      }})
    end
    return {{ ok = ok, title = qf.title, items = items, window = qf.winid ~= 0 }}
  end

  local result = {{ method = ask({q1}), note = ask({q2}) }}
  -- :CodeSimilar on the line of the method's name (the cursor in that buffer)
  vim.cmd('cclose')
  vim.cmd('edit shapes/geometry.py')
  vim.api.nvim_win_set_cursor(0, {{ {similar_line}, 4 }})
  vim.cmd('CodeSimilar')
  local like = 'CodeSearch: like shapes/geometry.py:' .. {similar_line}
  local found = vim.wait(90000, function()
    local qf = vim.fn.getqflist({{ title = 1, size = 1 }})
    return qf.title == like and qf.size > 0
  end, 50)
  local qf = vim.fn.getqflist({{ title = 1, items = 1 }})
  local first = qf.items[1] or {{}}
  result.similar = {{
    ok = found, title = qf.title, size = #qf.items, text = first.text or '',
    filename = first.bufnr and vim.fn.fnamemodify(vim.fn.bufname(first.bufnr), ':p') or '',
    lnum = first.lnum or 0,
  }}
  result.attached = vim.tbl_count(vim.lsp.buf_get_clients(vim.fn.bufnr('shapes/geometry.py')))
  vim.opt.runtimepath:append({fake})
  result.telescope_search = ask({q1})
  result.telescope = _G.fake_telescope
  return result
end
local ok, result = xpcall(main, debug.traceback)
if not ok then result = {{ error = result }} end
result.messages = vim.fn.execute('messages')
vim.fn.writefile({{ vim.fn.json_encode(result) }}, out)
vim.lsp.stop_client(vim.lsp.get_active_clients())
vim.wait(5000, function() return #vim.lsp.get_active_clients() == 0 end, 50)
vim.cmd('qa!')
"""


def lua(value: Any) -> str:
    """A Lua literal for a string or a list of strings."""
    if isinstance(value, list):
        return "{" + ", ".join(lua(v) for v in value) + "}"
    return json.dumps(str(value), ensure_ascii=False)  # a valid Lua string: no \\u escapes


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    home = tmp_path_factory.mktemp("nvim-home")
    repo = make_repo(tmp_path_factory.mktemp("nvim-repo") / "drawing")
    daemon = Daemon(home).start()
    try:
        daemon.add(repo)
        yield home, repo
    finally:
        daemon.stop()


def run_neovim(home: Path, repo: Path, tmp_path: Path) -> dict[str, Any]:
    fake = tmp_path / "fake-telescope"
    (fake / "lua" / "telescope").mkdir(parents=True)
    for name, text in FAKE_TELESCOPE.items():
        (fake / "lua" / "telescope" / name).write_text(text, encoding="utf-8")
    out = tmp_path / "result.json"
    script = tmp_path / "test.lua"
    script.write_text(
        SCRIPT.format(
            out=lua(out),
            plugin=lua(PLUGIN),
            cmd=lua([sys.executable, "-m", "lsp"]),
            repo=lua(repo),
            q1=lua(SHOELACE_QUESTION),
            q2=lua(NOTE_QUESTION),
            fake=lua(fake),
            similar_line=line_of(GEOMETRY, "def shoelace_area"),
        ),
        encoding="utf-8",
    )
    env = {**lsp_env(home), "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state")}
    done = subprocess.run(
        [NVIM or "nvim", "--headless", "-u", "NONE", "-i", "NONE", "-c", f"luafile {script}"],
        env=env,
        cwd=repo,
        capture_output=True,
        timeout=150,
        check=False,
    )
    assert out.exists(), f"no result from Neovim: {done.stdout!r} {done.stderr!r}"
    result = json.loads(out.read_text(encoding="utf-8"))
    assert "error" not in result, result["error"] + result.get("messages", "")
    return result


def test_codesearch_fills_and_opens_the_quickfix_list(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    home, repo = setup
    result = run_neovim(home, repo, tmp_path)

    method = result["method"]
    assert method["ok"], result["messages"]
    assert method["title"] == f"CodeSearch: {SHOELACE_QUESTION}"
    assert method["window"], "the quickfix window is not open"
    first = method["items"][0]
    assert first["filename"] == str(repo / "shapes" / "geometry.py")
    assert first["lnum"] == line_of(GEOMETRY, "def shoelace_area")
    assert first["col"] == 5  # after four spaces
    kind, name, score = first["text"].split(" ", 2)
    assert (kind, name) == ("method", "Polygon.shoelace_area")
    assert score.startswith(" ") and float(score) > 0  # "kind name  score"
    assert result["attached"] == 1  # the open buffer is attached to the server

    note = result["note"]
    assert note["ok"], result["messages"]
    first = note["items"][0]
    assert first["filename"] == str(repo / "notes" / "lieferung.txt")
    # two ideographic spaces: UTF-16 character 2 is byte 6, so quickfix column 7
    assert (first["lnum"], first["col"]) == (1, 7)
    assert first["text"].startswith("window ")

    # :CodeSimilar: code like the method under the cursor, never the method itself
    similar = result["similar"]
    assert similar["ok"], result["messages"]
    assert similar["size"] > 0
    shoelace = (str(repo / "shapes" / "geometry.py"), line_of(GEOMETRY, "def shoelace_area"))
    assert (similar["filename"], similar["lnum"]) != shoelace
    assert "Polygon.shoelace_area" not in similar["text"]

    telescope = result["telescope"]
    assert telescope["found"] and telescope["title"] == f"CodeSearch: {SHOELACE_QUESTION}"
    assert telescope["results"][0]["lnum"] == line_of(GEOMETRY, "def shoelace_area")
    assert not result["telescope_search"]["window"]  # the picker instead of the window
