-- The C JSON encoder (host.json_encode, host/script_jsonenc.c) against the Lua reference
-- (json.encode_lua in lua/json.lua): the same bytes on every example snapshot, on
-- snapshot.for_prompt, on generated tables and on read-only views, and the same errors.
-- Every comparison runs inside the real sandbox through host:exec.
local H = require "helpers"
local planhost = require "planhost"

-- Sandbox prelude: `same(v, what)` encodes `v` both ways and raises unless both give the same
-- bytes or both fail with the same message; returns true when they encoded.
local PRELUDE = [[
local json = require "json"
local function same(v, what)
  local okc, c = pcall(json.encode_native, v)
  local okl, l = pcall(json.encode_lua, v)
  if okc and c == nil then error(what .. ": the C encoder declined", 0) end
  if okc ~= okl or c ~= l then
    error(string.format("%s: C %s %q, Lua %s %q", what, okc, c, okl, l), 0)
  end
  return okc
end
]]

-- Sandbox generator of random values: `gen(0)` after math.randomseed(seed).
local GENERATOR = [[
local R = math.random
local KEYS = {
  "agent", "me", "player", "enemies", "allies", "pois", "obstacles", "objective", "agent_id",
  "plan_id", "steps", "act", "id", "k", "name", "pos", "x", "y", "hp", "orders", "waypoints",
  "cooldowns", "a", "b", "B", "_", "aa", "a\0b", "é", "zz", "\127", "\u{10FFFF}", "\xff", "",
}
local PIECES = {
  "a", "Z", " ", "0", "\"", "\\", "/", "\0", "\1", "\8", "\9", "\10", "\13", "\27", "\31",
  "\127", "é", "✓", "🍺", "\u{7FF}", "\u{800}", "\u{FFFF}", "\u{FFFD}", "\u{10FFFF}",
  "\xff", "\xfe", "\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80",
  "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80",
  "\xfc\x84\x80\x80\x80\x80", "\xe2\x82", "\xf0\x9f\x8d", "\xc3", "\xe0\x9f\xbf",
  "\xf0\x8f\xbf\xbf", "\xf0\x90\x80\x80", "\xe0\xa0\x80",
}
local NUMBERS = {
  0, -0.0, 1, -1, 0.5, 0.1, 1 / 3, -2 / 3, 12.5, 0.8, 1e-4, 9.99999e-5, 9.999995e-5, 1e-5,
  1.5e-7, -1.5e-7, 1e-300, -1e-300, 5e-324, 2.2250738585072014e-308, 123456.7, 999999.5,
  1234567.25, 1e6, 1e15, 1e16, 1.5e300, 1.7976931348623157e308, 2 ^ 53 - 1, 2 ^ 53,
  2 ^ 53 + 2, -(2 ^ 53), 2 ^ 63, -(2 ^ 63), 2 ^ 64, math.maxinteger, math.mininteger,
  9007199254740991, 9007199254740992, 9007199254740993, -9007199254740993, 1 / 0, -1 / 0,
  0 / 0, 3.0, -7.0, 1e100, math.pi, -math.pi * 1e-9, 1.234567e-28, -3.3e-26, 7.77e-31,
}
local function rstring()
  local p = {}
  for i = 1, R(0, 8) do p[i] = PIECES[R(#PIECES)] end
  return table.concat(p)
end
local function rnumber()
  local c = R(4)
  if c == 1 then return NUMBERS[R(#NUMBERS)] end
  if c == 2 then return R(-1000000, 1000000) end
  if c == 3 then return (R() - 0.5) * 10.0 ^ R(-40, 22) end
  return R(math.mininteger, math.maxinteger)
end
local function rkey()
  local c = R(6)
  if c <= 3 then return KEYS[R(#KEYS)] end
  if c == 4 then return rstring() end
  if c == 5 then return R(2, 50) end
  local n = NUMBERS[R(#NUMBERS)]
  return n == n and n or 0.25
end
local gen
local function rarray(d)
  local t = R(3) == 1 and json.array() or {}
  for i = 1, R(0, 5) do t[i] = gen(d + 1) end
  if R(25) == 1 then t[#t + 2] = true end -- a hole
  return t
end
local function robject(d)
  local t = R(4) == 1 and json.array() or {}
  for _ = 1, R(0, 6) do t[rkey()] = gen(d + 1) end
  return t
end
function gen(d)
  local c = R(d >= 4 and 7 or 10)
  if c <= 2 then return rstring() end
  if c <= 4 then return rnumber() end
  if c == 5 then return R(2) == 1 end
  if c == 6 then return cjson.null end
  if c == 7 then return R(2) == 1 and json.array() or {} end
  if c == 8 then return rarray(d) end
  return robject(d)
end
]]

describe("json encoder in C", function()
  local host

  setup(function() host = assert(planhost.open(H.root)) end)
  teardown(function()
    host:close()
    H.cleanup()
  end)

  -- Runs `body` after the prelude in `h` (default: the host on the repo root); returns its
  -- result, failing the test on any error.
  local function run(body, h)
    local out, msg = (h or host):exec(PRELUDE .. body, "jsonenc_spec.lua")
    assert(out, msg)
    return out
  end

  local function snapshot_files()
    local names = {}
    local p = io.popen("ls " .. H.q(H.root) .. "/examples/snapshots/*.json")
    for line in p:lines() do names[#names + 1] = line end
    p:close()
    assert.is_true(#names >= 10)
    return names
  end

  it("is what json.encode runs in the sandbox", function()
    assert.equal("function", run("return type(host.json_encode)"))
    assert.equal("true", run([[
      local v = { b = 1, a = { 2.5, "x" }, enemies = {} }
      return json.encode_native(v) ~= nil and json.encode(v) == json.encode_native(v) ]]))
    assert.equal('{"enemies":[],"a":[2.5,"x"],"b":1}', run([[
      return json.encode_native({ b = 1, a = { 2.5, "x" }, enemies = {} }) ]]))
  end)

  it("matches the Lua encoder on every example snapshot", function()
    for _, path in ipairs(snapshot_files()) do
      local src = ("local v = cjson.decode(%q) same(v, %q) return 'ok'"):format(H.read(path), path)
      assert.equal("ok", run(src))
    end
  end)

  it("matches the Lua encoder through snapshot.for_prompt", function()
    -- lua/snapshot.lua once more, in an environment whose json encodes in Lua only
    local src = ([[
      local json_lua = { encode = json.encode_lua, array = json.array, null = json.null }
      local env = setmetatable({
        require = function(name)
          if name == "json" then return json_lua end
          return require(name)
        end,
      }, { __index = _G })
      local lua_snapshot = load(%q, "=snapshot(lua)", "t", env)()
      local snapshot = require "snapshot"
      for i, text in ipairs({ %s }) do
        local v = cjson.decode(text)
        local c, l = snapshot.for_prompt(v), lua_snapshot.for_prompt(v)
        if c ~= l then error(string.format("snapshot %%d: C %%q, Lua %%q", i, c, l), 0) end
        if c ~= json.encode_native(cjson.decode(c)) then error("re-encode differs", 0) end
      end
      return "ok" ]])
    local texts = {}
    for i, path in ipairs(snapshot_files()) do texts[i] = ("%q"):format(H.read(path)) end
    local module = H.read(H.root .. "/lua/snapshot.lua")
    assert.equal("ok", run(src:format(module, table.concat(texts, ", "))))
  end)

  it("matches the Lua encoder on 400 generated tables", function()
    local encoded = 0
    for seed = 1, 8 do
      local out = run(GENERATOR .. ([[
        math.randomseed(%d)
        local n = 0
        for i = 1, 50 do
          local v = gen(0)
          if same(v, "seed %d value " .. i) then n = n + 1 end
          local wrapped = { me = v, enemies = { v }, pois = {} }
          if same(wrapped, "seed %d wrapped " .. i) then n = n + 1 end
        end
        return n ]]):format(seed, seed, seed))
      encoded = encoded + tonumber(out)
    end
    assert.is_true(encoded >= 600, "only " .. encoded .. " of 800 encoded without an error")
  end)

  it("matches on large values: long output, many keys", function()
    assert.equal("ok", run(GENERATOR .. [[
      math.randomseed(99)
      local big, list, parts = {}, {}, {}
      local function good(d) -- a value both encoders take
        local v
        repeat v = gen(d) until pcall(json.encode_lua, v)
        return v
      end
      local seen = {} -- key texts: 0 and "0", or inf and -inf ("null"), would be duplicates
      for _ = 1, 400 do
        local k = rkey()
        local text = type(k) == "number" and json.encode_lua(k) or k
        if k ~= 1 and not seen[text] then seen[text], big[k] = true, good(2) end
      end
      for i = 1, 3000 do list[i] = good(3) end
      for i = 1, 20000 do parts[i] = PIECES[R(#PIECES)] end
      assert(same(big, "many keys"), "many keys: an error")
      assert(same(list, "3000 items"), "3000 items: an error")
      assert(same(table.concat(parts), "a long string"))
      assert(same({ big = big, list = list, s = table.concat(parts), enemies = {} }, "all"))
      return "ok" ]]))
  end)

  it("matches on numbers at the edges", function()
    assert.equal("ok", run([[
      for _, v in ipairs({ 2 ^ 53 - 1, 2 ^ 53, 2 ^ 53 + 2, 2 ^ 63, -(2 ^ 63), math.maxinteger,
          math.mininteger, 5e-324, -5e-324, 1e-5, 1.5e-7, 9.99999e-5, 9.999995e-5, 1e300,
          -1e300, 1.7976931348623157e308, 1.234567e-28, -1e-25, 7.77e-31, -0.0, 0.0,
          999999.5, 1e6 + 0.5, 0.1 + 0.2, 1 / 0, -1 / 0, 0 / 0 }) do
        same(v, "number " .. string.format("%a", v))
        same({ [v == v and v or 0.5] = 1 }, "key " .. string.format("%a", v))
      end
      return "ok" ]]))
    assert.equal("[9007199254740992,0,0.00000015,null,9223372036854775807]", run([[
      return json.encode_native({ 2 ^ 53, -0.0, 1.5e-7, 0 / 0, math.maxinteger }) ]]))
  end)

  it("replaces invalid UTF-8 with U+FFFD and escapes control characters", function()
    assert.equal('"a\\u0000\\u001f\\"\\\\\127\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDé"', run([[
      local s = "a\0\31\"\\\127\xed\xa0\x80é"
      same(s, "string")
      return json.encode_native(s) ]]))
  end)

  it("judges UTF-8 as utf8.len does, for every lead byte", function()
    assert.equal("ok", run([[
      local seconds = { 0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff }
      local list = {}
      for b1 = 0, 255 do
        for _, b2 in ipairs(seconds) do
          for _, b3 in ipairs({ 0x80, 0xbf, 0x41 }) do
            for _, b4 in ipairs({ 0x80, 0x41 }) do
              list[#list + 1] = string.char(b1, b2, b3, b4)
              list[#list + 1] = string.char(b1, b2, b3)
            end
          end
        end
      end
      same(list, "byte sequences")
      return "ok" ]]))
  end)

  it("matches on read-only views, where json.array() marks do not show", function()
    assert.equal("ok", run("same(require 'tools', 'tools') return 'ok'"))
    local dir = H.scratch_tree()
    H.write(dir .. "/lua/jsonenc_fixture.lua",
      "local M = { store = {} }\nfunction M.put(k, v) M.store[k] = v end\nreturn M\n")
    local h = assert(planhost.open(dir))
    local out = run([[
      local fx = require "jsonenc_fixture"
      fx.put("a", { enemies = {}, list = json.array(), two = json.array({ 1, 2 }),
        nested = { json.array(), { x = 1, pos = { y = -0.0 } } }, null = cjson.null })
      local view = fx.store.a
      assert(getmetatable(view) == "read-only")
      same(view, "view")
      same({ inner = view, marked = json.array() }, "view inside a raw table")
      return json.encode_native(view) ]], h)
    h:close()
    assert.equal('{"enemies":[],"list":{},"nested":[{},{"pos":{"y":0},"x":1}],"null":null,' ..
      '"two":[1,2]}', out)
  end)

  it("leaves tables with other metatables to the Lua encoder", function()
    assert.equal('nil {"obj":{"x":1}}', run([[
      local v = { obj = setmetatable({ x = 1 }, { __index = function() return nil end }) }
      return tostring(json.encode_native(v)) .. " " .. json.encode(v) ]]))
    local dir = H.scratch_tree()
    local h = assert(planhost.open(dir))
    assert.equal("nil []", run([[
      local mt = getmetatable(json.array()) -- json.lua would honour a metamethod set here
      mt.__index = function() return nil end
      local r = tostring(json.encode_native(json.array()))
      local ok, l = pcall(json.encode, json.array())
      mt.__index = nil
      return r .. " " .. (ok and l or "error") ]], h))
    h:close()
  end)

  it("raises the Lua encoder's errors", function()
    local out = run([[
      local deep = {}
      for _ = 1, 70 do deep = { deep } end
      local cycle = {}
      cycle.self = cycle
      local cases = {
        { 1, nil, 3 }, { 1, x = 2 }, { f = print }, { [true] = 1 }, { [2] = 1, ["2"] = 2 },
        { [1 / 0] = 1, null = 2 }, deep, cycle, print, { { { string.len } } },
      }
      local msgs = {}
      for i, v in ipairs(cases) do
        local okc, c = pcall(json.encode_native, v)
        local okl, l = pcall(json.encode_lua, v)
        if okc or okl or c ~= l then
          error(string.format("case %d: %s %s / %s %s", i, okc, c, okl, l), 0)
        end
        msgs[#msgs + 1] = c
      end
      for depth = 60, 70 do
        local t = {}
        for _ = 1, depth do t = { t } end
        same(t, "depth " .. depth)
      end
      return table.concat(msgs, "\n") ]])
    assert.matches("holes", out, 1, true)
    assert.matches("json: cannot encode a function", out, 1, true)
    assert.matches("json: cannot encode a boolean key", out, 1, true)
    assert.matches("json: duplicate key '2'", out, 1, true)
    assert.matches("json: duplicate key 'null'", out, 1, true)
    assert.matches("json: nesting deeper than 64", out, 1, true)
  end)

  it("stops an input that expands, and no pcall keeps the stop", function()
    local out, msg, code = host:exec([[
      local json = require "json"
      local t = {}
      for _ = 1, 64 do t = { t, t } end
      pcall(json.encode_native, t)
      return "survived" ]])
    assert.is_nil(out)
    assert.equal("budget", code)
    assert.matches("instruction budget exceeded", msg, 1, true)
    assert.equal("ok", run("same({ 1 }, 'after a stop') return 'ok'"))
  end)
end)
