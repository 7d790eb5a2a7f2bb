-- The telescope.nvim picker for codesearch results (quickfix items), with a preview.

local M = {}

function M.pick(title, items)
  local pickers = require('telescope.pickers')
  local finders = require('telescope.finders')
  local make_entry = require('telescope.make_entry')
  local conf = require('telescope.config').values
  pickers
    .new({}, {
      prompt_title = title,
      finder = finders.new_table({ results = items, entry_maker = make_entry.gen_from_quickfix({}) }),
      previewer = conf.qflist_previewer({}),
      sorter = conf.generic_sorter({}),
    })
    :find()
end

return M
