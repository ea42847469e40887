-- jsonstream: the incremental tokenizer, through planhost.json.tokens.
-- Every case is also fed in pieces of 1..31 bytes and must give the same outcome; the
-- JSONTestSuite part reads ../shared (beside the repository) and is skipped when it is absent.
local json = require("planhost").json

local MAX_PIECE = 31

-- The repository root, from this file's own path (tests/unit/jsonstream_spec.lua).
local function repo_root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local root = src:gsub("[^/]*$", ""):gsub("/?tests/unit/?$", "")
  return root == "" and "." or root
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function list_dir(dir)
  local ok, lfs = pcall(require, "lfs")
  local names = {}
  if ok and lfs.attributes(dir, "mode") == "directory" then
    for name in lfs.dir(dir) do
      if name:sub(1, 1) ~= "." then names[#names + 1] = name end
    end
  end
  table.sort(names)
  return names
end

-- One run, packed so outcomes compare with assert.same.
local function outcome(text, opts)
  local toks, a, b, c = json.tokens(text, opts)
  if toks == nil then return { error = a, offset = b } end
  return { tokens = toks, ["end"] = a, status = b, stops = c }
end

local function with(opts, extra)
  local t = {}
  for k, v in pairs(opts or {}) do t[k] = v end
  for k, v in pairs(extra) do t[k] = v end
  return t
end

-- The outcome fed whole, after checking that every piece size gives the same one.
local function at_all_sizes(text, opts)
  local whole = outcome(text, opts)
  for n = 1, MAX_PIECE do
    local got = outcome(text, with(opts, { piece = n }))
    if not require("luassert.util").deepcompare(got, whole, true) then
      assert.same(whole, got, ("piece size %d differs from whole feed"):format(n))
    end
  end
  return whole
end

local function kinds(toks)
  local out = {}
  for i, t in ipairs(toks) do out[i] = t.text and (t.kind .. ":" .. t.text) or t.kind end
  return out
end

local function accepts(text, opts)
  local r = at_all_sizes(text, opts)
  assert.is_nil(r.error, ("expected %q to be accepted, got %s"):format(text, tostring(r.error)))
  return r
end

local function rejects(text, offset, pattern, opts)
  local r = at_all_sizes(text, opts)
  assert.is_not_nil(r.error, ("expected %q to be rejected"):format(text))
  if offset then assert.equal(offset, r.offset, r.error) end
  if pattern then assert.matches(pattern, r.error) end
  return r
end

describe("jsonstream tokens", function()
  it("delivers every token kind with offsets, ends and depths", function()
    local r = accepts('{"a":[1,"x",true,false,null],"b":{}}')
    assert.same({ "begin_object", "key:a", "begin_array", "number:1", "string:x", "true", "false",
      "null", "end_array", "key:b", "begin_object", "end_object", "end_object" }, kinds(r.tokens))
    local t = r.tokens
    assert.same({ 0, 1, 0 }, { t[1].offset, t[1]["end"], t[1].depth })
    assert.same({ 1, 4, 1 }, { t[2].offset, t[2]["end"], t[2].depth })
    assert.same({ 6, 7, 2 }, { t[4].offset, t[4]["end"], t[4].depth })
    assert.same({ 8, 11, 2 }, { t[5].offset, t[5]["end"], t[5].depth })
    assert.same({ 12, 16 }, { t[6].offset, t[6]["end"] })
    assert.same({ 27, 28, 1 }, { t[9].offset, t[9]["end"], t[9].depth })
    assert.same({ 35, 36, 0, true }, { t[13].offset, t[13]["end"], t[13].depth, t[13].value_end })
    assert.is_nil(t[12].value_end)
    assert.equal(36, r["end"])
  end)

  it("accepts any scalar as the top-level value, with whitespace around", function()
    for _, s in ipairs({ "0", "-1.5e+3", '"s"', "true", "false", "null", " \t\r\n[] \n" }) do
      local r = accepts(s)
      assert.is_true(r.tokens[#r.tokens].value_end)
    end
    assert.equal(3, accepts(" 12 ")["end"])
  end)

  it("rejects empty input, a second value and stray bytes in strict mode", function()
    rejects("", 0, "no JSON value")
    rejects("   ", 3, "no JSON value")
    rejects("1 2", 2, "trailing characters")
    rejects("[] x", 3, "trailing characters")
    rejects("{}{}", 2, "trailing characters")
    rejects("\239\187\191{}", 0)
  end)

  it("reports error offsets at the offending byte", function()
    rejects('{"a" 1}', 5, "expected ':'")
    rejects("[1 2]", 3, "expected ','")
    rejects('{"a":1]', 6, "expected ',' or '}'")
    rejects("[tru]", 4, "invalid literal")
    rejects("[nul", 4, "end of input")
    rejects('"abc', 4, "end of input in a string")
    rejects("[1,2", 4, "end of input in an array")
    rejects('{"a":', 5, "end of input in an object")
    rejects('{"a":01}', 6, "invalid number")
    rejects("[1.]", 3, "invalid number")
    rejects("[-]", 2, "invalid number")
    rejects("1e", 2, "end of input in a number")
    rejects('"a\\qb"', 2, "invalid escape")
    rejects('"a\\u12G4"', 2, "invalid \\u escape")
    rejects('"a\nb"', 2, "control character")
    rejects("[1}", 2, "expected ','")
    rejects("{1:2}", 1, "expected a string key")
    rejects("]", 0, "expected a value")
  end)

  it("handles trailing commas only when allowed", function()
    rejects("[1,2,]", 5, "trailing comma")
    rejects('{"a":1,}', 7, "trailing comma")
    local on = { trailing_comma = true }
    assert.same({ "begin_array", "number:1", "number:2", "end_array" }, kinds(accepts("[1,2,]", on).tokens))
    assert.same({ "begin_object", "key:a", "number:1", "end_object" }, kinds(accepts('{"a":1,}', on).tokens))
    accepts("[[],{},]", on)
    rejects("[,]", 1, nil, on)
    rejects("[1,,]", 3, nil, on)
    rejects('{"a":1,,}', 7, nil, on)
    rejects("{,}", 1, nil, on)
  end)

  it("accepts several top-level values in multiple mode", function()
    local r = accepts('1 "two" [3]\n{"four":4}\nnull', { multiple = true })
    assert.same({ "number:1", "string:two", "begin_array", "number:3", "end_array", "begin_object",
      "key:four", "number:4", "end_object", "null" }, kinds(r.tokens))
    local ends = {}
    for _, t in ipairs(r.tokens) do if t.value_end then ends[#ends + 1] = t["end"] end end
    assert.same({ 1, 7, 11, 22, 27 }, ends)
    assert.equal(27, r["end"])
    assert.is_nil(accepts("", { multiple = true })["end"])
    assert.equal(4, #accepts("[][]", { multiple = true }).tokens)
    rejects("1 ]", 2, nil, { multiple = true })
  end)

  it("stops after the first value in trailing-garbage mode", function()
    local g = { trailing_garbage = true }
    local r = accepts('{"a":1} and then some prose {', g)
    assert.same({ "begin_object", "key:a", "number:1", "end_object" }, kinds(r.tokens))
    assert.equal(7, r["end"])
    assert.equal(3, accepts("123abc", g)["end"])
    assert.equal(5, accepts("  [1] ]]]", g)["end"])
    assert.equal(2, accepts("{}", g)["end"])
    rejects("x{}", 0, nil, g)
    rejects("", 0, nil, g)
    rejects('{"a":}', 5, nil, g)
    assert.has_error(function() json.tokens("1", { trailing_garbage = true, multiple = true }) end)
  end)

  it("caps nesting depth", function()
    accepts(("["):rep(64) .. ("]"):rep(64))
    rejects(("["):rep(65) .. ("]"):rep(65), 64, "max_depth %(64%)")
    accepts('{"a":[{}]}', { max_depth = 3 })
    rejects('{"a":[{"b":[]}]}', 11, "max_depth %(3%)", { max_depth = 3 })
    rejects(("["):rep(100000), 64, "max_depth")
  end)

  it("caps token length in input bytes", function()
    local o = { max_token = 8 }
    assert.equal("abcdefgh", accepts('"abcdefgh"', o).tokens[1].text)
    rejects('"abcdefghi"', 9, "max_token %(8 bytes%)", o)
    rejects('["abcdefghi"]', 10, "max_token", o)
    rejects('{"abcdefghi":1}', 10, "max_token", o)
    assert.equal("12345678", accepts("[12345678]", o).tokens[2].text)
    rejects("[123456789]", 9, "max_token", o)
    rejects("123456789", 8, "max_token", o)
    -- escapes count as written: \n is two bytes of the eight
    assert.equal("abcdef\n", accepts('"abcdef\\n"', o).tokens[1].text)
    rejects('"abcdefg\\n"', 9, "max_token", o)
    rejects('"\\u00e9\\u00e9"', 9, "max_token", o)
    local big = ("x"):rep(64 * 1024)
    assert.equal(big, accepts('"' .. big .. '"').tokens[1].text)
    rejects('"' .. big .. 'x"', 64 * 1024 + 1, "max_token")
  end)

  it("stops from the callback and resumes where it stopped", function()
    local text = '{"plan_id":"p1","steps":[{"act":"Wait","duration":1.5},{"act":"Scan"}]}'
    local full = accepts(text).tokens
    for n = 1, #full do
      local r = at_all_sizes(text, { stop_after = n })
      assert.equal("stopped", r.status)
      assert.equal(n, #r.tokens)
      assert.equal(full[n]["end"], r["end"])
      assert.same({ full[n]["end"] }, r.stops)
      local res = at_all_sizes(text, { stop_after = n, resume = true })
      assert.same(full, res.tokens)
      for i, off in ipairs(res.stops) do assert.equal(full[i * n]["end"], off) end
    end
    local top = at_all_sizes("42", { stop_after = 1 })
    assert.same({ "stopped", 2 }, { top.status, top["end"] })
  end)

  it("delivers numbers as raw text", function()
    for _, s in ipairs({ "123456789012345678901234567890", "-0.0000001e-999", "1E400", "-0",
      "0.1e+01", "18446744073709551616", "1.7976931348623157e309" }) do
      assert.equal(s, accepts("[" .. s .. "]").tokens[2].text)
      assert.equal(s, accepts(s).tokens[1].text)
    end
  end)

  it("decodes escapes and surrogate pairs to UTF-8", function()
    local r = accepts([=["\"\\\/\b\f\n\r\t"]=])
    assert.equal('"\\/\b\f\n\r\t', r.tokens[1].text)
    assert.equal("A\195\169\226\130\172", accepts('"\\u0041\\u00e9\\u20AC"').tokens[1].text)
    assert.equal("\240\159\152\128", accepts('"\\uD83D\\uDE00"').tokens[1].text)
    assert.equal("x\244\143\191\191y", accepts('"x\\udbff\\udfffy"').tokens[1].text)
    assert.equal("a\0b", accepts('"a\\u0000b"').tokens[1].text)
    assert.equal("k\n", accepts('{"k\\n":1}').tokens[2].text)
    assert.equal("日本語 😀 é", accepts('"日本語 😀 é"').tokens[1].text)
  end)

  it("rejects lone surrogates at their escape", function()
    rejects('"\\uD800"', 1, "lone surrogate")
    rejects('"ab\\uDC00"', 3, "lone surrogate")
    rejects('"\\uD800\\u0041"', 1, "lone surrogate")
    rejects('"\\uD800x"', 1, "lone surrogate")
    rejects('"\\uD800\\n"', 1, "lone surrogate")
    rejects('"\\uDBFF\\uDBFF"', 1, "lone surrogate")
  end)

  it("rejects invalid UTF-8 at the first bad byte", function()
    rejects('"\192\128"', 1, "invalid UTF%-8")        -- overlong NUL
    rejects('"\224\128\128"', 2, "invalid UTF%-8")    -- overlong 3-byte
    rejects('"\237\160\128"', 2, "invalid UTF%-8")    -- encoded surrogate U+D800
    rejects('"\244\144\128\128"', 2, "invalid UTF%-8") -- above U+10FFFF
    rejects('"a\128"', 2, "invalid UTF%-8")           -- lone continuation
    rejects('"\226\130"', 3, "invalid UTF%-8")        -- truncated by the quote
    rejects('"\255"', 1, "invalid UTF%-8")
    rejects('{"\226\130x":1}', 4, "invalid UTF%-8")
  end)

  it("finds quotes, escapes and bad bytes at every position of a long string", function()
    for i = 0, 40 do
      local a, b = ("a"):rep(i), ("b"):rep(41 - i)
      assert.equal(a .. "\n" .. b, accepts('"' .. a .. '\\n' .. b .. '"').tokens[1].text)
      assert.equal(a .. "é" .. b, accepts('"' .. a .. 'é' .. b .. '"').tokens[1].text)
      assert.equal(a, accepts('["' .. a .. '",1]').tokens[2].text)
      rejects('"' .. a .. '\1' .. b .. '"', i + 1, "control character")
      rejects('"' .. a .. '\255' .. b .. '"', i + 1, "invalid UTF%-8")
      rejects('"' .. a .. '\127\128' .. b .. '"', i + 2, "invalid UTF%-8")
    end
  end)

  it("skips whitespace runs of any length", function()
    for i = 0, 40 do
      local r = accepts("[\n" .. (" "):rep(i) .. "1,\r\n\t" .. (" "):rep(40 - i) .. "2 ]")
      assert.same({ "begin_array", "number:1", "number:2", "end_array" }, kinds(r.tokens))
      assert.equal(2 + i, r.tokens[2].offset)
      rejects("[" .. (" "):rep(i) .. "\f1]", 1 + i, "expected a value")
    end
  end)

  it("gives the same outcome at every piece size on random input", function()
    local frags = { "{", "}", "[", "]", '"', '"ab', 'c"', "\\", "\\u", "D83D", "DE00", "00e9", ":",
      ",", "1", "0", "-", ".", "e", "+", " ", "\n", "true", "nul", "l", "é", "\255", "\237\160",
      '"k":', "12345", '"x"', "[[", "]]" }
    local seed = 42
    local function rand(n)
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n + 1
    end
    local modes = { {}, { max_token = 6, max_depth = 3 }, { trailing_comma = true, multiple = true },
      { trailing_garbage = true } }
    for _ = 1, 600 do
      local parts = {}
      for k = 1, rand(30) do parts[k] = frags[rand(#frags)] end
      local text = table.concat(parts)
      for _, m in ipairs(modes) do at_all_sizes(text, m) end
    end
  end)

  it("passes text in place when a token lies in one feed and needs no decoding", function()
    local function borrowed(text, opts)
      local out = {}
      for _, t in ipairs(assert(json.tokens(text, with(opts, { borrowed = true })))) do
        if t.text then out[#out + 1] = t.borrowed end
      end
      return out
    end
    assert.same({ true, true, true, true, false, true }, borrowed('{"plan_id":"p1","n":[12,"a\\nb","日本"]}'))
    assert.same({ false }, borrowed('"abcdef"', { piece = 3 }))
    assert.same({ true, false }, borrowed('["ab","cdef"]', { piece = 8 }))
    assert.same({ false }, borrowed("123"))
    assert.same({ true }, borrowed("[123]"))
  end)

  it("rejects unknown and mistyped options", function()
    assert.has_error(function() json.tokens("1", { pieces = 2 }) end)
    assert.has_error(function() json.tokens("1", { piece = 0 }) end)
    assert.has_error(function() json.tokens("1", { multiple = 1 }) end)
  end)
end)

describe("jsonstream plan fixtures", function()
  local dir = repo_root() .. "/tests/fixtures/plans"
  local names = list_dir(dir)
  it("has a corpus", function() assert.is_true(#names >= 20) end)
  for _, name in ipairs(names) do
    it("tokenizes " .. name .. " the same at every piece size", function()
      local r = accepts(assert(read_file(dir .. "/" .. name)))
      assert.is_true(#r.tokens > 0)
    end)
  end
end)

describe("JSONTestSuite (../shared)", function()
  local dir = repo_root() .. "/../shared/testdata/JSONTestSuite/test_parsing"
  local names = list_dir(dir)
  if #names == 0 then
    pending("JSONTestSuite not found at " .. dir .. " (user clones have no ../shared): skipped")
    return
  end
  for _, name in ipairs(names) do
    local verdict = name:sub(1, 1)
    it(name, function()
      local text = assert(read_file(dir .. "/" .. name))
      local r = at_all_sizes(text)
      if verdict == "y" then
        assert.is_nil(r.error, r.error)
      elseif verdict == "n" then
        assert.is_not_nil(r.error, "accepted")
      end
    end)
  end
end)
