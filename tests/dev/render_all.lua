-- tests/dev/render_all.lua — dev harness: renders every prompt template against every example
-- snapshot inside a plain-Lua imitation of the host's sandbox, prints a size table and fails
-- (exit 1) when a template breaks its contract.
--
-- Run from the repository root:  lua5.4 tests/dev/render_all.lua
--
-- The imitation follows the sandbox contract given to script authors: each file is loaded as
-- text with a fresh globals table whose __index is a frozen base of allow-listed globals;
-- writing a global is an error here (scripts must use locals); `require "x"` loads lua/x.lua
-- the same way, once, and hands back a deep read-only view; snapshots and ctx are read-only
-- views too, so code that mutates its inputs, or reads them with next/rawget/#, shows up here.
--
-- Checked for every template: its table shape (name, tools, system, user, options keys,
-- schema), determinism (two renders are byte-identical), that the text names every tool of
-- its subset and no registry tool outside it, the exact output shape, a "JSON only"
-- instruction, that every example step in the text is valid against the registry, and that
-- the snapshot JSON in the user part decodes. Size targets on hello_companion:
-- full 6,000-13,000, simplified <= 2,000, compact <= 1,000 characters (system + user).
-- Depends on lua5.4 and lua-cjson; reads lua/, prompts/, examples/snapshots/.

local cjson = require "cjson"

local HELLO = "hello_companion"
local TEMPLATES = { "full", "simplified", "compact", "batch" }
-- Registry subset each template must list; full lists all 37 tools.
local SUBSET_OF = { simplified = "simplified", compact = "compact", batch = "simplified" }
local LIMITS = { full = { 6000, 13000 }, simplified = { 0, 2000 }, compact = { 0, 1000 } }
local OPTION_KEYS = {
  temperature = "number", top_p = "number", top_k = "number", seed = "number",
  num_predict = "number", num_ctx = "number", stop = "table",
}
local TEMPLATE_KEYS = {
  name = true, tools = true, system = true, user = true, options = true, schema = true,
  batch = true,
}
local SHAPE = '{"plan_id":"...","steps":[{"act":"...",...}]}'
local BATCH_SHAPE = '[{"agent_id":"...","plan_id":"...","steps":[{"act":"...",...}]},...]'

local failures = {}
local function fail(where, msg) failures[#failures + 1] = where .. ": " .. msg end

-- Sandbox imitation -----------------------------------------------------------------------------

local function readonly(t, seen)
  if type(t) ~= "table" then return t end
  seen = seen or {}
  if seen[t] then return seen[t] end
  local proxy = {}
  seen[t] = proxy
  setmetatable(proxy, {
    __index = function(_, k) return readonly(t[k], seen) end,
    __newindex = function(_, k)
      error("attempt to modify a read-only table (key " .. tostring(k) .. ")", 2)
    end,
    __len = function() return #t end,
    __pairs = function()
      return function(_, k)
        local nk, nv = next(t, k)
        return nk, readonly(nv, seen)
      end, proxy, nil
    end,
    __metatable = false,
  })
  return proxy
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

local base = {}
local module_cache, loading = {}, {}

local function new_env()
  return setmetatable({}, {
    __index = base,
    __newindex = function(_, k) error("global write '" .. tostring(k) .. "' (use a local)", 2) end,
  })
end

local function load_script(path)
  local src, err = read_file(path)
  if not src then error(err, 0) end
  local chunk, cerr = load(src, "@" .. path, "t", new_env())
  if not chunk then error(cerr, 0) end
  return chunk()
end

local function sandbox_require(name)
  if type(name) ~= "string" or not name:match("^[%w_]+$") then
    error("require: bad module name " .. tostring(name), 2)
  end
  if module_cache[name] ~= nil then return module_cache[name] end
  if loading[name] then error("require: cycle through " .. name, 2) end
  loading[name] = true
  local value = load_script("lua/" .. name .. ".lua")
  loading[name] = nil
  module_cache[name] = readonly(value)
  return module_cache[name]
end

local function copy_without(t, drop)
  local out = {}
  for k, v in pairs(t) do if not drop[k] then out[k] = v end end
  return out
end

do
  for _, k in ipairs({ "assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall", "select",
      "tonumber", "tostring", "type", "rawequal", "rawget", "rawlen", "setmetatable",
      "getmetatable", "print", "_VERSION" }) do
    base[k] = _G[k]
  end
  base.load = function(chunk, name, _, env)
    if type(chunk) ~= "string" then error("load: text only", 2) end
    return load(chunk, name, "t", env or new_env())
  end
  base.require = sandbox_require
  base.string = readonly(copy_without(string, { dump = true }))
  base.table = readonly(table)
  base.math = readonly(math)
  base.utf8 = readonly(utf8)
  base.cjson = readonly({ encode = cjson.encode, decode = cjson.decode, null = cjson.null })
  base.os = readonly({ clock = os.clock, time = os.time })
  base.host = readonly({ tokens = function(s) return math.ceil(#s / 4) end })
  setmetatable(base, { __newindex = function() error("base environment is frozen", 2) end })
end

-- Checks ----------------------------------------------------------------------------------------

local function has_word(text, word)
  return text:find("%f[%w]" .. word .. "%f[^%w]") ~= nil
end

local function count_named(text, names)
  local n, missing = 0, {}
  for _, name in ipairs(names) do
    if has_word(text, name) then n = n + 1 else missing[#missing + 1] = name end
  end
  return n, missing
end

local function check_value(p, v)
  local ty = p.type
  -- lua-cjson 2.1 decodes every number as a float: an int is any integral number.
  local function int(x) return type(x) == "number" and math.tointeger(x) ~= nil end
  local function pos(x) return type(x) == "table" and int(x.x) and int(x.y) end
  if ty == "int" then return int(v) end
  if ty == "uint" then return int(v) and v >= 0 end
  if ty == "float" then return type(v) == "number" end
  if ty == "string" then return type(v) == "string" end
  if ty == "entity" then return type(v) == "number" or type(v) == "string" end
  if ty == "position" then return pos(v) end
  if ty == "enum" then
    for _, value in ipairs(p.values) do if value == v then return true end end
    return false
  end
  if ty == "positions" then
    if type(v) ~= "table" or #v < (p.min_items or 0) then return false end
    for _, item in ipairs(v) do if not pos(item) then return false end end
    return true
  end
  return false
end

-- Validate one decoded step against the registry and the template's subset.
local function check_step(where, step, by_name, allowed)
  local t = by_name[step.act]
  if not t or not allowed[step.act] then
    return fail(where, "example step uses tool outside the subset: " .. tostring(step.act))
  end
  local known = { act = true }
  for _, p in ipairs(t.params) do
    known[p.name] = true
    local v = step[p.name]
    if v == nil and not p.optional then fail(where, step.act .. ": example misses " .. p.name) end
    if v ~= nil and not check_value(p, v) then fail(where, step.act .. ": bad " .. p.name) end
  end
  for k in pairs(step) do
    if not known[k] then fail(where, step.act .. ": example has unknown parameter " .. k) end
  end
end

-- Every {"act":...} object in the text must be a valid step.
local function check_examples(where, text, by_name, allowed)
  local n = 0
  local pos = 1
  while true do
    local s = text:find('{"act":"', pos, true)
    if not s then break end
    local depth, e = 0, nil
    for i = s, #text do
      local c = text:sub(i, i)
      if c == "{" then depth = depth + 1 elseif c == "}" then depth = depth - 1 end
      if depth == 0 then e = i break end
    end
    if not e then fail(where, "unterminated example step") break end
    local ok, step = pcall(cjson.decode, text:sub(s, e))
    if not ok then
      if not text:sub(s, e):find('"..."', 1, true) then fail(where, "example step is not JSON") end
    elseif step.act ~= "..." then
      check_step(where, step, by_name, allowed)
      n = n + 1
    end
    pos = e + 1
  end
  return n
end

local function check_template_table(name, tpl, registry)
  local where = "prompts/" .. name .. ".lua"
  if type(tpl) ~= "table" then return fail(where, "does not return a table") end
  for k in pairs(tpl) do
    if not TEMPLATE_KEYS[k] then fail(where, "unknown key '" .. tostring(k) .. "'") end
  end
  if tpl.name ~= name then fail(where, "name is " .. tostring(tpl.name)) end
  if type(tpl.system) ~= "function" or type(tpl.user) ~= "function" then
    fail(where, "system and user must be functions")
  end
  for k, v in pairs(tpl.options or {}) do
    if OPTION_KEYS[k] ~= type(v) then fail(where, "bad option " .. tostring(k)) end
  end
  if tpl.schema ~= nil and type(tpl.schema) ~= "boolean" then fail(where, "schema not boolean") end
  if (tpl.batch == true) ~= (name == "batch") then fail(where, "batch flag") end
  local expected = SUBSET_OF[name] and registry.subsets[SUBSET_OF[name]] or nil
  local names = {}
  for i, n in ipairs(tpl.tools or {}) do names[i] = n end
  if expected then
    local want = {}
    for i, n in ipairs(expected) do want[i] = n end
    if table.concat(names, ",") ~= table.concat(want, ",") then
      fail(where, "tools differ from subset " .. SUBSET_OF[name])
    end
  elseif #names ~= 37 then
    fail(where, "tools must list all 37 registry tools")
  end
  return names
end

-- JSON encoder self-checks (deterministic output is a contract of lua/json.lua).
local function check_json(json)
  local cases = {
    { 1, "1" }, { 1.0, "1" }, { -0.0, "0" }, { 0.8, "0.8" }, { 12.5, "12.5" },
    { 1 / 3, "0.333333" }, { 1234567.25, "1234567" }, { 0.0000123456, "0.0000123456" },
    { 0 / 0, "null" }, { "a\"b\\c\n\1", '"a\\"b\\\\c\\u000a\\u0001"' },
    { "é✓🍺", '"é✓🍺"' }, { "\255x", '"\u{FFFD}x"' }, { {}, "{}" },
    { { enemies = {} }, '{"enemies":[]}' },
    { { b = 1, a = 2, objective = "x", agent = "c2", me = {} },
      '{"agent":"c2","me":{},"objective":"x","a":2,"b":1}' },
    { { 1, 2, { x = 1, y = 2 } }, '[1,2,{"x":1,"y":2}]' }, { cjson.null, "null" },
    { json.array(), "[]" }, { true, "true" },
  }
  for _, c in ipairs(cases) do
    local ok, got = pcall(json.encode, c[1])
    if not ok or got ~= c[2] then
      fail("lua/json.lua", "encode(" .. tostring(c[1]) .. ") = " .. tostring(got) ..
        ", want " .. c[2])
    end
  end
  for _, bad in ipairs({ { 1, nil, 3 }, { 1, x = 2 }, { f = print } }) do
    if pcall(json.encode, bad) then
      fail("lua/json.lua", "encode accepted a table it cannot hold")
    end
  end
end

-- Snapshots and rendering -----------------------------------------------------------------------

local function list_snapshots()
  local names = {}
  local p = io.popen("ls examples/snapshots/*.json 2>/dev/null")
  for line in p:lines() do names[#names + 1] = line:match("([^/]+)%.json$") end
  p:close()
  table.sort(names, function(a, b)
    if a == HELLO or b == HELLO then return a == HELLO and b ~= HELLO end
    return a < b
  end)
  return names
end

local function load_snapshots()
  local list, by = {}, {}
  for _, name in ipairs(list_snapshots()) do
    local src = assert(read_file("examples/snapshots/" .. name .. ".json"))
    local ok, value = pcall(cjson.decode, src)
    if not ok then
      fail("examples/snapshots/" .. name .. ".json", tostring(value))
    else
      list[#list + 1] = { name = name, data = value }
      by[name] = value
    end
  end
  if not by[HELLO] then fail("examples/snapshots", HELLO .. ".json missing") end
  return list
end

local function make_ctx(name, tool_names, registry)
  local records = {}
  for i, n in ipairs(tool_names) do
    records[i] = registry.by_name[n]
    if records[i] == nil then
      fail("prompts/" .. name .. ".lua", "unknown tool " .. tostring(n))
    end
  end
  return readonly({ template = name, tools = records })
end

local function render(where, tpl, ctx, input)
  local ok1, sys = pcall(tpl.system, ctx)
  local ok2, usr = pcall(tpl.user, input, ctx)
  if not ok1 or type(sys) ~= "string" then return fail(where, "system: " .. tostring(sys)) end
  if not ok2 or type(usr) ~= "string" then return fail(where, "user: " .. tostring(usr)) end
  local ok3, sys2 = pcall(tpl.system, ctx)
  local ok4, usr2 = pcall(tpl.user, input, ctx)
  if not (ok3 and ok4) or sys2 ~= sys or usr2 ~= usr then
    fail(where, "render is not deterministic")
  end
  return sys, usr
end

local function check_render(where, name, text, usr, names, registry, snapshots_json)
  local allowed = {}
  for _, n in ipairs(names) do allowed[n] = true end
  local named, missing = count_named(text, names)
  if #missing > 0 then fail(where, "does not name " .. table.concat(missing, ", ")) end
  for _, t in ipairs(registry.tools) do
    if not allowed[t.name] and has_word(text, t.name) then
      fail(where, "names " .. t.name .. ", which is not in its subset")
    end
  end
  if not text:find(SHAPE, 1, true) then fail(where, "output shape line missing") end
  if name == "batch" and not text:find(BATCH_SHAPE, 1, true) then
    fail(where, "batch answer shape missing")
  end
  if not text:find("JSON only", 1, true) then fail(where, "no 'JSON only' instruction") end
  for _, sj in ipairs(snapshots_json) do
    if not usr:find(sj, 1, true) then fail(where, "user part lacks the snapshot JSON") end
    local ok = pcall(cjson.decode, sj)
    if not ok then fail(where, "snapshot JSON does not decode") end
  end
  check_examples(where, text, registry.by_name, allowed)
  return named
end

local function check_normalize(snapshot, snaps)
  for _, s in ipairs(snaps) do
    local where = "lua/snapshot.lua (" .. s.name .. ")"
    local ok, n = pcall(snapshot.normalize, readonly(s.data))
    if not ok then fail(where, tostring(n))
    elseif type(n.me) ~= "table" or type(n.me.hp) ~= "number" or type(n.enemies) ~= "table" then
      fail(where, "normalize misses defaults")
    end
    local ok2, j = pcall(snapshot.for_prompt, readonly(s.data))
    if not ok2 then fail(where, tostring(j))
    elseif j:find('"last_seen"', 1, true) or j:find('"t":', 1, true) then
      fail(where, "for_prompt keeps t or last_seen")
    end
  end
  local ok, d = pcall(snapshot.normalize, readonly({}))
  if not ok or d.agent ~= "agent" or d.me.hp ~= 100 or d.me.ammo ~= 0 or d.me.morale ~= 1.0
      or d.me.pos.x ~= 0 or d.objective ~= "none" then
    fail("lua/snapshot.lua", "defaults of an empty snapshot are wrong")
  end
end

-- Main ------------------------------------------------------------------------------------------

local function row(cols)
  print(string.format("%-11s %-20s %7s %7s %7s", table.unpack(cols)))
end

-- Inputs for one template: one per snapshot, or one array of all snapshots for a batch one.
local function inputs_for(tpl, snapshot, snaps)
  local inputs = {}
  if tpl.batch then
    local all, jsons = {}, {}
    for i, s in ipairs(snaps) do
      all[i] = s.data
      jsons[i] = snapshot.for_prompt(s.data)
    end
    inputs[1] = { name = "(all " .. #snaps .. ")", data = readonly(all), jsons = jsons }
    return inputs
  end
  for i, s in ipairs(snaps) do
    local jsons = { snapshot.for_prompt(s.data) }
    inputs[i] = { name = s.name, data = readonly(s.data), jsons = jsons }
  end
  return inputs
end

local function run_template(name, registry, snapshot, snaps)
  local ok, tpl = pcall(load_script, "prompts/" .. name .. ".lua")
  if not ok then return fail("prompts/" .. name .. ".lua", tostring(tpl)) end
  local names = check_template_table(name, tpl, registry)
  local ctx = make_ctx(name, names, registry)
  for _, input in ipairs(inputs_for(tpl, snapshot, snaps)) do
    local where = "prompts/" .. name .. ".lua on " .. input.name
    local sys, usr = render(where, tpl, ctx, input.data)
    if sys then
      local text = sys .. usr
      local named = check_render(where, name, text, usr, names, registry, input.jsons)
      row({ name, input.name, #text, base.host.tokens(text), named .. "/" .. #names })
      local lim = LIMITS[name]
      if lim and input.name == HELLO and (#text < lim[1] or #text > lim[2]) then
        fail(where, string.format("%d chars, target %d..%d", #text, lim[1], lim[2]))
      end
    end
  end
end

local function main()
  local ok, registry = pcall(sandbox_require, "tools")
  if not ok then
    print("FAIL lua/tools.lua: " .. tostring(registry))
    os.exit(1)
  end
  local snapshot = sandbox_require("snapshot")
  check_json(sandbox_require("json"))
  local snaps = load_snapshots()
  check_normalize(snapshot, snaps)
  row({ "template", "snapshot", "chars", "tokens", "tools" })
  for _, name in ipairs(TEMPLATES) do run_template(name, registry, snapshot, snaps) end
  if #failures > 0 then
    print("\nFAILED (" .. #failures .. "):")
    for _, f in ipairs(failures) do print("  " .. f) end
    os.exit(1)
  end
  print("\nok: all templates render and meet their contracts")
end

main()
