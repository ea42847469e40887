-- reparse_cjson — what most streaming clients do: append each piece to the text so far and
-- try cjson.decode on all of it, until it parses. MB/s of model text handled, on the same
-- plan corpus as json_bench, for pieces of 4, 16, 64 bytes and whole documents.
--   lua5.4 tests/bench/reparse_cjson.lua tests/fixtures/plans
local cjson = require "cjson"
local dir = assert(arg[1], "usage: reparse_cjson.lua DIR")

local docs = {}
local p = io.popen("ls " .. dir .. "/*.json")
for path in p:lines() do
  local f = assert(io.open(path, "rb"))
  docs[#docs + 1] = f:read("a")
  f:close()
end
p:close()

local function run(piece)
  local bytes, t0 = 0, os.clock()
  repeat
    for _, doc in ipairs(docs) do
      local acc = {}
      local n = piece or #doc
      for i = 1, #doc, n do
        acc[#acc + 1] = doc:sub(i, i + n - 1)
        if pcall(cjson.decode, table.concat(acc)) then break end
      end
      bytes = bytes + #doc
    end
  until os.clock() - t0 > 0.3
  return bytes / (os.clock() - t0) / 1e6
end

local rows = {}
for _, piece in ipairs { false, 4, 16, 64 } do
  local samples = {}
  for i = 1, 5 do samples[i] = run(piece or nil) end
  table.sort(samples)
  rows[#rows + 1] = ("| %s | %.1f |"):format(piece and tostring(piece) or "whole", samples[3])
end
print("| piece | cjson re-parse of the accumulated text, MB/s (Lua 5.4 + lua-cjson) |")
print("|---|---:|")
print(table.concat(rows, "\n"))
