-- :CodeSearch works without setup() (the server is then `codesearch-lsp` on PATH);
-- require('codesearch').setup({...}) configures it and attaches to file buffers.
if vim.g.loaded_codesearch then
  return
end
vim.g.loaded_codesearch = true

vim.api.nvim_create_user_command('CodeSearch', function(c)
  local codesearch = require('codesearch')
  if not codesearch.configured then
    codesearch.setup({ autoattach = false })
  end
  codesearch.search(c.args)
end, { nargs = '+', desc = 'codesearch: semantic search of this workspace' })
