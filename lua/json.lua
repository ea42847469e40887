-- lua/json.lua — deterministic compact JSON encoder for prompts and request bodies.
--
-- The same value always encodes to the same bytes, so prompts (and the server-side prompt
-- cache keyed on them) are reproducible. cjson.encode is not used because its key order
-- follows the hash table.
--
-- Rules:
--   * compact: no whitespace at all.
--   * object keys: those in KEY_ORDER first, in that order (the snapshot's top level reads
--     agent, me, player, enemies, allies, pois, obstacles, objective), then every other key
--     sorted bytewise (not by locale).
--   * arrays: a table with [1] (encoded 1..n; holes or extra keys are an error), a table
--     marked with json.array(), or an empty table under a key in ARRAY_KEYS ("enemies":[]).
--     Any other empty table is {}.
--   * numbers: integers and integral floats without ".0"; other floats with up to 6
--     significant digits and never an exponent; NaN and infinities become null.
--   * strings: RFC 8259 escapes (\" \\ and \u00XX for control characters); UTF-8 kept as is;
--     a byte that is not valid UTF-8 becomes U+FFFD so the output is always valid JSON.
--   * cjson.null encodes as null; functions, threads and userdata are errors.
--
-- encode runs the host's C encoder, host.json_encode (host/script_jsonenc.c), when the
-- sandbox has it: the same bytes, about 15 times faster. The Lua encoder below is the
-- reference it is tested against (encode_lua) and the fallback: without the host, and for
-- tables with a metatable other than a read-only view's or json.array()'s, which the C side
-- declines because only Lua honours metamethods. The C side gets RANK, ARRAY_KEYS and the
-- marker metatable ARRAY_MT from here, so these rules live in this file only.
--
-- Depends on the sandbox's `cjson.null` and, when present, `host.json_encode`. Keeps no
-- state; input is never modified and may be a read-only view (only pairs, ipairs and
-- indexing are used on it).

local NULL = cjson.null
local NATIVE = type(host) == "table" and host.json_encode or nil
local ARRAY_MT = { __name = "json.array" }
local MAX_DEPTH = 64

local KEY_ORDER = {
  "agent", "me", "player", "enemies", "allies", "pois", "obstacles", "objective",
  "agent_id", "plan_id", "steps", "act", "id", "k", "name", "pos", "x", "y", "hp",
}
local RANK = {}
for i, k in ipairs(KEY_ORDER) do RANK[k] = i end

local ARRAY_KEYS = {
  enemies = true, allies = true, pois = true, obstacles = true, orders = true,
  waypoints = true, steps = true,
}

local encode_value -- forward declaration

-- Numbers ------------------------------------------------------------------------------------

local function encode_float(v)
  local s = string.format("%.6g", v)
  if s:find("e", 1, true) then
    if math.abs(v) >= 1 then
      s = string.format("%.0f", v)
    else -- tiny: fixed notation with 6 significant digits, trailing zeros trimmed
      local decimals = math.min(5 - math.floor(math.log(math.abs(v), 10)), 30)
      s = string.format("%." .. decimals .. "f", v):gsub(",", ".") -- before trimming "0,"
      s = s:gsub("0+$", ""):gsub("%.$", "")
    end
  end
  s = s:gsub(",", ".") -- a host that set LC_NUMERIC must not change the bytes
  if s == "-0" then s = "0" end
  return s
end

local function encode_number(v)
  if math.type(v) == "integer" then return string.format("%d", v) end
  if v ~= v or v == math.huge or v == -math.huge then return "null" end
  local i = math.tointeger(v)
  if i and math.abs(v) < 2^53 then return string.format("%d", i) end
  return encode_float(v)
end

-- Strings ------------------------------------------------------------------------------------

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\" }
for b = 0, 31 do ESCAPES[string.char(b)] = string.format("\\u%04x", b) end

local function valid_utf8(s)
  if utf8.len(s) then return s end
  local parts, i = {}, 1
  while i <= #s do
    local ok, bad = utf8.len(s, i)
    if ok then
      parts[#parts + 1] = s:sub(i)
      break
    end
    parts[#parts + 1] = s:sub(i, bad - 1)
    parts[#parts + 1] = "\u{FFFD}"
    i = bad + 1
  end
  return table.concat(parts)
end

local function encode_string(s)
  return '"' .. valid_utf8(s):gsub('[\0-\31"\\]', ESCAPES) .. '"'
end

-- Tables -------------------------------------------------------------------------------------

local function byte_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function key_less(a, b)
  local ra, rb = RANK[a], RANK[b]
  if ra and rb then return ra < rb end
  if ra or rb then return ra ~= nil end
  return byte_less(a, b)
end

local function key_string(k)
  if type(k) == "string" then return k end
  if type(k) == "number" then return encode_number(k) end
  error("json: cannot encode a " .. type(k) .. " key", 0)
end

local function encode_array(t, out, depth)
  local n = 0
  out[#out + 1] = "["
  for i, v in ipairs(t) do
    if i > 1 then out[#out + 1] = "," end
    encode_value(v, out, depth, nil)
    n = i
  end
  out[#out + 1] = "]"
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  if count ~= n then error("json: table mixes array items with other keys, or has holes", 0) end
end

local function encode_object(t, out, depth)
  local keys, values = {}, {}
  for k, v in pairs(t) do
    local ks = key_string(k)
    if values[ks] ~= nil then error("json: duplicate key '" .. ks .. "'", 0) end
    keys[#keys + 1] = ks
    values[ks] = v
  end
  table.sort(keys, key_less)
  out[#out + 1] = "{"
  for i, ks in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = encode_string(ks)
    out[#out + 1] = ":"
    encode_value(values[ks], out, depth, ks)
  end
  out[#out + 1] = "}"
end

local function encode_table(t, out, depth, key)
  if depth > MAX_DEPTH then error("json: nesting deeper than " .. MAX_DEPTH .. " (a cycle?)", 0) end
  if t[1] ~= nil then return encode_array(t, out, depth + 1) end
  local iter, state, ctl = pairs(t) -- not next(): it would not see through a read-only view
  if iter(state, ctl) == nil then
    local marked = getmetatable(t) == ARRAY_MT
    out[#out + 1] = (marked or ARRAY_KEYS[key]) and "[]" or "{}"
    return
  end
  return encode_object(t, out, depth + 1)
end

function encode_value(v, out, depth, key)
  local tv = type(v)
  if tv == "string" then
    out[#out + 1] = encode_string(v)
  elseif tv == "number" then
    out[#out + 1] = encode_number(v)
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif tv == "table" then
    encode_table(v, out, depth, key)
  elseif v == NULL then
    out[#out + 1] = "null"
  else
    error("json: cannot encode a " .. tv, 0)
  end
end

-- API ----------------------------------------------------------------------------------------

-- encode_lua(value) -> string: the reference encoder, in Lua. Raises on values JSON cannot
-- hold (functions, cycles, mixed tables). The returned string is new; `value` is only read.
local function encode_lua(value)
  local out = {}
  encode_value(value, out, 0, nil)
  return table.concat(out)
end

-- encode_native(value) -> the same string from host.json_encode, or nil when the host has
-- none or it declines `value` (a table with a foreign metatable). Raises as encode_lua.
local function encode_native(value)
  if NATIVE then return NATIVE(value, RANK, ARRAY_KEYS, ARRAY_MT) end
  return nil
end

-- encode(value) -> string: encode_native's bytes when it takes `value`, else encode_lua's.
local function encode(value)
  return encode_native(value) or encode_lua(value)
end

-- array(t) -> t marked so that it encodes as an array even when empty. `t` (default: a new
-- table) must be a plain table without a metatable; the caller keeps owning it.
local function array(t)
  t = t or {}
  assert(getmetatable(t) == nil, "json.array: table already has a metatable")
  return setmetatable(t, ARRAY_MT)
end

return {
  encode = encode, encode_lua = encode_lua, encode_native = encode_native, array = array,
  null = NULL,
}
