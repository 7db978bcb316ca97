-- Headless Neovim as a real LSP client of `dsl lsp` (Neovim 0.7's built-in client: start_client
-- and buf_attach_client; vim.lsp.start exists from 0.8). Opens CNN_FILE, waits for the server's
-- diagnostics, asks for inlay hints and a hover, optionally replaces a line and times the new
-- diagnostics, and writes what Neovim holds as JSON to CNN_REPORT.
local report = { }
local function finish()
  local f = assert(io.open(os.getenv('CNN_REPORT'), 'w'))
  f:write(vim.fn.json_encode(report))
  f:close()
  vim.cmd('qa!')
end

local ok, err = pcall(function()
  local publishes = 0
  local default = vim.lsp.handlers['textDocument/publishDiagnostics']
  vim.lsp.handlers['textDocument/publishDiagnostics'] = function(e, result, ctx, config)
    publishes = publishes + 1
    return default(e, result, ctx, config)
  end

  local file = os.getenv('CNN_FILE')
  vim.cmd('edit ' .. vim.fn.fnameescape(file))
  local buf = vim.api.nvim_get_current_buf()
  local id = vim.lsp.start_client({
    name = 'dsl',
    cmd = { os.getenv('CNN_DSL'), 'lsp' },
    root_dir = vim.fn.fnamemodify(file, ':h'),
  })
  assert(id, 'the client did not start')
  vim.lsp.buf_attach_client(buf, id)
  assert(vim.wait(10000, function() return publishes >= 1 end, 10), 'no diagnostics published')

  local function diagnostics()
    local out = {}
    for _, d in ipairs(vim.diagnostic.get(buf)) do
      local code = d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code)
      table.insert(out, { lnum = d.lnum, col = d.col, code = code, message = d.message })
    end
    table.sort(out, function(a, b) return a.lnum < b.lnum end)
    return out
  end
  report.diagnostics = diagnostics()

  local uri = vim.uri_from_bufnr(buf)
  local function request(method, params)
    local answers = vim.lsp.buf_request_sync(buf, method, params, 10000)
    assert(answers and answers[id], method .. ': no answer')
    assert(not answers[id].err, method .. ': ' .. vim.inspect(answers[id].err))
    return answers[id].result
  end

  local hints = request('textDocument/inlayHint', {
    textDocument = { uri = uri },
    range = { start = { line = 0, character = 0 }, ['end'] = { line = vim.api.nvim_buf_line_count(buf), character = 0 } },
  })
  report.hints = {}
  for _, h in ipairs(hints or {}) do table.insert(report.hints, h.label) end

  local hover = os.getenv('CNN_HOVER')
  if hover then
    local line, col = hover:match('(%d+),(%d+)')
    local result = request('textDocument/hover', { textDocument = { uri = uri }, position = { line = tonumber(line), character = tonumber(col) } })
    report.hover = result and result.contents and result.contents.value or vim.NIL
  end

  local edit = os.getenv('CNN_EDIT')
  if edit then
    local line, text = edit:match('^(%d+)|(.*)$')
    line = tonumber(line)
    local expect = os.getenv('CNN_EXPECT')
    local started = vim.loop.hrtime()
    vim.api.nvim_buf_set_lines(buf, line, line + 1, false, { text })
    local arrived = vim.wait(5000, function()
      for _, d in ipairs(diagnostics()) do
        if d.code == expect then return true end
      end
      return false
    end, 1)
    report.edit_ms = (vim.loop.hrtime() - started) / 1e6
    assert(arrived, expect .. ' did not arrive within 5 s of the edit')
    report.edited = diagnostics()
  end
  vim.lsp.stop_client(id)
end)
if not ok then report.error = tostring(err) end
finish()
