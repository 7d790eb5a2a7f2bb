-- codesearch for Neovim: starts the codesearch language server (codesearch-lsp), attaches
-- it to file buffers, and asks it natural-language questions with :CodeSearch.
--
--   require('codesearch').setup({ cmd = { 'codesearch-lsp' } })
--   :CodeSearch where is the retry backoff computed
--
-- Works with Neovim 0.7 (vim.lsp.start_client + vim.lsp.buf_attach_client) and newer
-- (vim.lsp.start). Results fill the quickfix list; with telescope.nvim installed they open
-- in a telescope picker as well.

local M = {}

local defaults = {
  cmd = { 'codesearch-lsp' }, -- how to start the server
  cmd_env = nil, -- extra environment for the server (e.g. { CODESEARCH_HOME = '...' })
  name = 'codesearch',
  root_markers = { '.git', '.hg', '.svn', 'pyproject.toml', 'package.json', 'go.mod', 'Cargo.toml' },
  root_dir = nil, -- a folder, or function(path) -> folder; default: root_markers, else cwd
  k = 20, -- results per question
  picker = 'auto', -- 'auto': telescope when installed, else quickfix; 'telescope'; 'quickfix'
  autoattach = true, -- attach the server to every file buffer (saves become freshness hints)
}

M.config = vim.deepcopy(defaults)

local clients = {} -- root folder -> client id
local waiting = {} -- client id -> functions to run once the client is initialized

local function notify(message, level)
  vim.notify('codesearch: ' .. message, level or vim.log.levels.INFO)
end

local function is_dir(path)
  return path ~= '' and vim.fn.isdirectory(path) == 1
end

-- The folder a buffer's file belongs to: the configured root_dir, else the nearest folder
-- with a root marker, else the current directory (when the file lies inside it), else the
-- file's own folder.
function M.root_for(path)
  local root_dir = M.config.root_dir
  if type(root_dir) == 'function' then
    root_dir = root_dir(path)
  end
  if type(root_dir) == 'string' and root_dir ~= '' then
    return (vim.fn.fnamemodify(root_dir, ':p'):gsub('/$', ''))
  end
  local cwd = vim.fn.getcwd()
  if path == '' then
    return cwd
  end
  local dir = vim.fn.fnamemodify(path, ':p:h')
  for _, marker in ipairs(M.config.root_markers) do
    local found = vim.fn.finddir(marker, dir .. ';')
    if found == '' then
      found = vim.fn.findfile(marker, dir .. ';')
    end
    if found ~= '' then
      return vim.fn.fnamemodify(vim.fn.fnamemodify(found, ':p'):gsub('/$', ''), ':h')
    end
  end
  if dir == cwd or vim.startswith(dir, cwd .. '/') then
    return cwd
  end
  return dir
end

local function on_init(client)
  local queued = waiting[client.id] or {}
  waiting[client.id] = nil
  for _, fn in ipairs(queued) do
    fn(client)
  end
end

local function live(id)
  local client = id and vim.lsp.get_client_by_id(id)
  if client and not client.is_stopped() then
    return client
  end
  return nil
end

-- The client id serving `root` (started when none runs), attached to `bufnr` when given.
function M.client_for(root, bufnr)
  local id = clients[root]
  if not live(id) then
    local config = {
      name = M.config.name,
      cmd = M.config.cmd,
      cmd_env = M.config.cmd_env,
      root_dir = root,
      workspace_folders = {
        { uri = vim.uri_from_fname(root), name = vim.fn.fnamemodify(root, ':t') },
      },
      on_init = on_init,
    }
    if vim.lsp.start and bufnr then -- Neovim 0.8+: reuses a client with the same name and root
      id = vim.lsp.start(config, { bufnr = bufnr })
    else
      id = vim.lsp.start_client(config)
    end
    if not id then
      notify('cannot start ' .. table.concat(M.config.cmd, ' '), vim.log.levels.ERROR)
      return nil
    end
    clients[root] = id
  end
  if bufnr and not vim.lsp.buf_is_attached(bufnr, id) then
    vim.lsp.buf_attach_client(bufnr, id)
  end
  return id
end

-- Run fn(client) once the client has answered `initialize`.
local function when_ready(id, fn)
  local client = live(id)
  if not client then
    notify('the language server is not running', vim.log.levels.ERROR)
    return
  end
  if client.initialized then
    fn(client)
  else
    waiting[id] = waiting[id] or {}
    table.insert(waiting[id], fn)
  end
end

local function file_buffer(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  if vim.bo[bufnr].buftype ~= '' or name == '' then
    return nil
  end
  return name
end

-- Attach the server to a file buffer (what the autocommand does for each one).
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local name = file_buffer(bufnr)
  if name then
    return M.client_for(M.root_for(name), bufnr)
  end
end

-- The text of line `line` (0-based) of `filename`: from its buffer when loaded, else the file.
local function line_text(filename, line)
  local bufnr = vim.fn.bufnr(filename)
  if bufnr ~= -1 and vim.api.nvim_buf_is_loaded(bufnr) then
    return vim.api.nvim_buf_get_lines(bufnr, line, line + 1, false)[1]
  end
  local ok, lines = pcall(vim.fn.readfile, filename, '', line + 1)
  if ok then
    return lines[line + 1]
  end
  return nil
end

-- The quickfix column (1-based, in bytes) of an LSP position's character on `text`.
function M.byte_col(text, character, encoding)
  if not text then
    return 1
  end
  local ok, index
  if encoding == 'utf-8' then
    ok, index = character <= #text, character
  else
    ok, index = pcall(vim.str_byteindex, text, character, encoding ~= 'utf-32')
  end
  if not ok then -- the file changed since: the line's first non-blank character
    index = (text:find('%S') or 1) - 1
  end
  return index + 1
end

-- Quickfix items for a codesearch/search answer.
function M.items(answer, encoding)
  local items = {}
  for _, r in ipairs(answer.results or {}) do
    local filename = vim.uri_to_fname(r.uri)
    local start = r.range.start
    local text = string.format('%s %s  %.3f', r.kind, r.name, r.score)
    -- a part of a long definition matched: the entry spans the definition, its text names
    -- the lines that matched
    local sel = r.selectionRange
    if sel and (sel.start.line ~= start.line or sel['end'].line ~= r.range['end'].line) then
      text = text .. string.format('  (lines %d-%d matched)', sel.start.line + 1, sel['end'].line + 1)
    end
    if r.confident == false then
      text = text .. '  (weak match)'
    end
    table.insert(items, {
      filename = filename,
      lnum = start.line + 1,
      col = M.byte_col(line_text(filename, start.line), start.character, encoding),
      end_lnum = r.range['end'].line + 1,
      text = text,
    })
  end
  return items
end

local function has_telescope()
  return pcall(require, 'telescope.pickers')
end

-- Show an answer: the quickfix list always; telescope or the quickfix window on top.
function M.show(question, answer, encoding)
  for _, notice in ipairs(answer.notices or {}) do
    notify(notice)
  end
  local items = M.items(answer, encoding)
  local title = 'CodeSearch: ' .. question
  vim.fn.setqflist({}, ' ', { title = title, items = items })
  if #items == 0 then
    notify('no results for ' .. question, vim.log.levels.WARN)
    return
  end
  local picker = M.config.picker
  if picker == 'telescope' or (picker == 'auto' and has_telescope()) then
    require('codesearch.telescope').pick(title, items)
  else
    vim.cmd('botright copen')
  end
end

-- Ask the server `question`; opts: { k, filters = { languages, path_globs, kinds }, root }.
function M.search(question, opts)
  opts = opts or {}
  if not question or vim.trim(question) == '' then
    notify('usage: :CodeSearch {question}', vim.log.levels.ERROR)
    return
  end
  local bufnr = vim.api.nvim_get_current_buf()
  local name = file_buffer(bufnr)
  local root = opts.root or M.root_for(name or '')
  local id = M.client_for(root, name and bufnr or nil)
  if not id then
    return
  end
  local params = { query = question, k = opts.k or M.config.k, filters = opts.filters }
  when_ready(id, function(client)
    client.request('codesearch/search', params, function(err, answer)
      if err then
        notify(err.message or vim.inspect(err), vim.log.levels.ERROR)
        return
      end
      M.show(question, answer or {}, client.offset_encoding or 'utf-16')
    end, name and bufnr or nil)
  end)
end

-- Code like the chunk under the cursor (codesearch/similar): duplicates, other
-- implementations, its tests; opts: { k, filters }.
function M.similar(opts)
  opts = opts or {}
  local bufnr = vim.api.nvim_get_current_buf()
  local name = file_buffer(bufnr)
  if not name then
    notify('CodeSimilar works on a file buffer', vim.log.levels.ERROR)
    return
  end
  local id = M.client_for(M.root_for(name), bufnr)
  if not id then
    return
  end
  local row = vim.api.nvim_win_get_cursor(0)[1]
  local title = 'like ' .. vim.fn.fnamemodify(name, ':.') .. ':' .. row
  when_ready(id, function(client)
    local params = vim.lsp.util.make_position_params()
    params.k = opts.k or M.config.k
    params.filters = opts.filters
    client.request('codesearch/similar', params, function(err, answer)
      if err then
        notify(err.message or vim.inspect(err), vim.log.levels.ERROR)
        return
      end
      M.show(title, answer or {}, client.offset_encoding or 'utf-16')
    end, bufnr)
  end)
end

local function command(name, args)
  local bufnr = vim.api.nvim_get_current_buf()
  local file = file_buffer(bufnr)
  local id = M.client_for(M.root_for(file or ''), file and bufnr or nil)
  if not id then
    return
  end
  when_ready(id, function(client)
    local params = { command = name, arguments = args }
    client.request('workspace/executeCommand', params, function(err, answer)
      if err then
        notify(err.message or vim.inspect(err), vim.log.levels.ERROR)
      elseif name == 'codesearch.reindex' then
        notify('re-indexing ' .. table.concat(answer.roots or {}, ', '))
      else
        for _, repo in ipairs(answer.repos or {}) do
          notify(string.format('%s: %s, %d files, %d chunks', repo.root, repo.state,
            repo.files or 0, repo.chunks or 0))
        end
      end
    end, file and bufnr or nil)
  end)
end

function M.reindex()
  command('codesearch.reindex', {})
end

function M.status()
  command('codesearch.status', {})
end

-- Create the commands and (with autoattach) the autocommand; safe to call again.
function M.setup(opts)
  M.config = vim.tbl_deep_extend('force', vim.deepcopy(defaults), opts or {})
  vim.api.nvim_create_user_command('CodeSearch', function(c)
    M.search(c.args)
  end, { nargs = '+', desc = 'codesearch: semantic search of this workspace' })
  vim.api.nvim_create_user_command('CodeSimilar', function()
    M.similar()
  end, { desc = 'codesearch: code like the function under the cursor' })
  vim.api.nvim_create_user_command('CodeSearchReindex', M.reindex, { desc = 'codesearch: re-index' })
  vim.api.nvim_create_user_command('CodeSearchStatus', M.status, { desc = 'codesearch: status' })
  local group = vim.api.nvim_create_augroup('codesearch', { clear = true })
  if M.config.autoattach then
    vim.api.nvim_create_autocmd({ 'BufReadPost', 'BufNewFile' }, {
      group = group,
      callback = function(args)
        M.attach(args.buf)
      end,
    })
  end
  M.configured = true
end

return M
