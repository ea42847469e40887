-- lua/prompt.lua — helpers shared by the prompt templates (prompts/*.lua).
--
-- Everything a prompt says about tools is generated here from tool records (lua/tools.lua, or
-- the records the host hands over in ctx.tools): signatures, example steps, the list of names,
-- notes on entity parameters. Templates never spell a tool name themselves, so a prompt cannot
-- offer a tool the validator rejects. The worked examples below name tools, but each one is
-- checked against the registry record when it is rendered and is skipped for a subset that
-- lacks one of its tools.
--
-- Depends on lua/tools.lua, lua/json.lua, lua/snapshot.lua. Keeps no state: every function
-- returns new strings or tables owned by the caller; arguments are only read (they may be
-- read-only views, so only pairs, ipairs and indexing are used on them).

local tools = require "tools"
local json = require "json"
local snapshot = require "snapshot"

local M = {}

-- The plan shape, exactly as the model must write it (shared/DESIGN.md, "Plan").
M.SHAPE = '{"plan_id":"...","steps":[{"act":"...",...}]}'
-- The batch answer: one element per agent, in prompt order.
M.BATCH_SHAPE = '[{"agent_id":"...","plan_id":"...","steps":[{"act":"...",...}]},...]'

-- Tool lists -----------------------------------------------------------------------------------

-- names(list) -> a new array of tool names from an array of names or of tool records.
function M.names(list)
  local out = {}
  for i, item in ipairs(list) do
    out[i] = type(item) == "table" and item.name or item
  end
  return out
end

-- all() -> a new array with every registry tool name, in registry order.
function M.all()
  return M.names(tools.tools)
end

-- subset(name) -> a new array with the names of a registry subset ("simplified", "compact").
function M.subset(name)
  local list = tools.subsets[name]
  if list == nil then error("prompt: no tool subset '" .. tostring(name) .. "'", 2) end
  return M.names(list)
end

-- records(ctx, names) -> the tool records to render: ctx.tools when the host gave them,
-- otherwise the registry records of `names`. Raises on a name the registry lacks.
function M.records(ctx, names)
  if ctx and ctx.tools then return ctx.tools end
  local out = {}
  for i, name in ipairs(names) do
    local t = tools.by_name[name]
    if t == nil then error("prompt: unknown tool '" .. tostring(name) .. "'", 2) end
    out[i] = t
  end
  return out
end

-- name_list(records, sep) -> "MoveTo, Attack, ..." (sep defaults to ", ").
function M.name_list(records, sep)
  return table.concat(M.names(records), sep or ", ")
end

-- groups(records) -> array of { name = group, tools = {record, ...} } in first-seen order.
function M.groups(records)
  local out, index = {}, {}
  for _, t in ipairs(records) do
    local g = index[t.group]
    if g == nil then
      g = { name = t.group, tools = {} }
      out[#out + 1] = g
      index[t.group] = g
    end
    g.tools[#g.tools + 1] = t
  end
  return out
end

-- Signatures -----------------------------------------------------------------------------------

-- type_label(param) -> "int", "walk|run|sprint", "positions(2+)", ...
function M.type_label(p)
  if p.type == "enum" then return table.concat(M.names(p.values), "|") end
  if p.type == "positions" and p.min_items then
    return "positions(" .. p.min_items .. "+)"
  end
  return p.type
end

-- signature(tool, sep) -> "MoveTo(x:int, y:int, speed?:walk|run|sprint)"; sep between
-- parameters defaults to ", ".
function M.signature(t, sep)
  local parts = {}
  for i, p in ipairs(t.params) do
    parts[i] = p.name .. (p.optional and "?" or "") .. ":" .. M.type_label(p)
  end
  return t.name .. "(" .. table.concat(parts, sep or ", ") .. ")"
end

-- cooldown(tool) -> "8s", "0.5s", or "" when the tool has none.
function M.cooldown(t)
  if t.cooldown == 0 then return "" end
  return json.encode(t.cooldown) .. "s"
end

local KIND_WORDS = {
  enemy = "an enemy id", player = "the player", self = "yourself",
  ally = "an ally id", any = "any id in the snapshot",
}

local function of_key(p)
  return table.concat(M.names(p.of), "|")
end

local function of_words(p)
  local words = {}
  for i, kind in ipairs(p.of) do words[i] = KIND_WORDS[kind] or kind end
  if #words < 2 then return words[1] or "" end
  return table.concat(words, ", ", 1, #words - 1) .. " or " .. words[#words]
end

-- entity_notes(records) -> array of lines explaining what each entity parameter may name.
-- The most common kind set becomes one general line ("entity = an enemy id ..."); each tool
-- whose entity parameter differs gets its own line, e.g. for the heal tool's optional target.
function M.entity_notes(records)
  local counts, first, order = {}, {}, {}
  for _, t in ipairs(records) do
    for _, p in ipairs(t.params) do
      if p.type == "entity" then
        local key = of_key(p)
        if counts[key] == nil then order[#order + 1] = key; first[key] = p end
        counts[key] = (counts[key] or 0) + 1
      end
    end
  end
  if #order == 0 then return {} end
  local common = order[1]
  for _, key in ipairs(order) do
    if counts[key] > counts[common] then common = key end
  end
  local lines = { "entity = " .. of_words(first[common]) .. " from the snapshot" }
  for _, t in ipairs(records) do
    for _, p in ipairs(t.params) do
      if p.type == "entity" and of_key(p) ~= common then
        local omit = p.optional and ("; omit " .. p.name .. " for " ..
          (KIND_WORDS[p.of[1]] or p.of[1])) or ""
        lines[#lines + 1] = t.name .. " " .. p.name .. ": " .. of_words(p) .. omit
      end
    end
  end
  return lines
end

-- Example steps --------------------------------------------------------------------------------

-- Placeholder values for generated examples, by parameter name, then by type.
local EXAMPLE_BY_NAME = {
  x = 4, y = 6, distance = 6, radius = 5, duration = 3, slot = 2, count = 2,
  weapon_name = "rifle", item_name = "medkit", ability_name = "shield",
}
local EXAMPLE_BY_TYPE = {
  int = 1, uint = 1, float = 2.5, string = "name", entity = 4,
  position = { x = 4, y = 6 }, positions = { { x = 4, y = 6 }, { x = 8, y = 6 } },
}

local function example_value(p)
  if p.type == "enum" then return p.values[1] end
  if p.type == "positions" then
    local list, n = {}, math.max(p.min_items or 2, 1)
    for i = 1, n do list[i] = { x = 4 * i, y = 6 } end
    return list
  end
  local v = EXAMPLE_BY_NAME[p.name]
  if v == nil then v = EXAMPLE_BY_TYPE[p.type] end
  return v
end

local function is_int(v)
  return math.type(v) == "integer" or (type(v) == "number" and math.tointeger(v) ~= nil)
end

local function is_position(v)
  return type(v) == "table" and is_int(v.x) and is_int(v.y)
end

local TYPE_CHECKS = {
  int = is_int,
  uint = function(v) return is_int(v) and v >= 0 end,
  float = function(v) return type(v) == "number" end,
  string = function(v) return type(v) == "string" end,
  entity = function(v) return type(v) == "number" or type(v) == "string" end,
  position = is_position,
  positions = function(v)
    if type(v) ~= "table" then return false end
    for _, item in ipairs(v) do
      if not is_position(item) then return false end
    end
    return true
  end,
}

local function check_arg(t, p, v)
  local ok
  if p.type == "enum" then
    ok = false
    for _, value in ipairs(p.values) do ok = ok or value == v end
  else
    ok = TYPE_CHECKS[p.type](v)
  end
  if ok and p.min_items then ok = #v >= p.min_items end
  if not ok then
    error("prompt: " .. t.name .. "." .. p.name .. ": bad " .. p.type .. " " .. tostring(v), 0)
  end
end

-- step_json(tool, args) -> '{"act":"Name",...}' with the parameters in registry order.
-- Raises if `args` has a parameter the tool lacks, misses a required one, or has a bad value.
function M.step_json(t, args)
  local known = {}
  local parts = { '{"act":' .. json.encode(t.name) }
  for _, p in ipairs(t.params) do
    known[p.name] = true
    local v = args[p.name]
    if v == nil then
      if not p.optional then error("prompt: " .. t.name .. ": missing " .. p.name, 0) end
    else
      check_arg(t, p, v)
      parts[#parts + 1] = json.encode(p.name) .. ":" .. json.encode(v)
    end
  end
  for k in pairs(args) do
    if type(k) ~= "number" and not known[k] then
      error("prompt: " .. t.name .. " has no parameter '" .. tostring(k) .. "'", 0)
    end
  end
  return table.concat(parts, ",") .. "}"
end

-- example_step(tool) -> an example step from the tool's parameters. Optional parameters are
-- shown, except an optional entity (whose absence means "yourself").
function M.example_step(t)
  local args = {}
  for _, p in ipairs(t.params) do
    if not (p.optional and p.type == "entity") then args[p.name] = example_value(p) end
  end
  return M.step_json(t, args)
end

-- plan_json(plan_id, step_strings) -> '{"plan_id":"p1","steps":[...]}'.
function M.plan_json(plan_id, steps)
  return '{"plan_id":' .. json.encode(plan_id) .. ',"steps":[' .. table.concat(steps, ",") .. "]}"
end

-- Worked examples ------------------------------------------------------------------------------

-- Static situations (no live snapshot data), each with the plan a good planner would give.
-- steps[i][1] is a tool name; the other fields are its parameters.
local WORKED = {
  {
    situation = "Enemy 4 is in the open at (9,3); you are at (3,3), 12 ammo, clear line of fire.",
    steps = { { "MarkTarget", target_id = 4 }, { "Attack", target_id = 4 } },
  },
  {
    situation = "You are at (3,5), ammo 0; enemy 7 at (8,5) fires at you; wall cover at (4,6).",
    steps = { { "ThrowSmoke", x = 6, y = 5 }, { "TakeCover", position = { x = 4, y = 6 } },
      { "Reload" } },
  },
  {
    situation = "hp 22, morale 0.2; enemies 2 and 5 close in from the east; player behind you.",
    steps = { { "Retreat", target_id = 2, distance = 8 }, { "Heal" } },
  },
  {
    situation = 'No enemies in sight; objective "reach:gate", poi gate at (20,4).',
    steps = { { "MoveTo", x = 20, y = 4, speed = "run" }, { "Scan", radius = 10 } },
  },
  {
    situation = "Enemies 3, 5 and 6 bunched around (12,9) behind low cover, 10 cells away.",
    steps = { { "ThrowExplosive", x = 12, y = 9 }, { "Attack", target_id = 3 } },
  },
}

local function by_name_in(records)
  local map = {}
  for _, t in ipairs(records) do map[t.name] = t end
  return map
end

local function render_worked(example, available, n)
  local steps = {}
  for i, step in ipairs(example.steps) do
    local t = available[step[1]]
    if t == nil then return nil end
    steps[i] = M.step_json(t, step)
  end
  return { situation = example.situation, plan = M.plan_json("p" .. n, steps) }
end

-- worked_examples(records, max) -> array of { situation = text, plan = json } for the worked
-- examples whose tools are all in `records` (at most `max`, default all).
function M.worked_examples(records, max)
  local available, out = by_name_in(records), {}
  for _, example in ipairs(WORKED) do
    if max and #out >= max then break end
    local w = render_worked(example, available, #out + 1)
    if w then out[#out + 1] = w end
  end
  return out
end

-- Snapshots ------------------------------------------------------------------------------------

-- snapshot_json(s) -> the snapshot's prompt JSON (lua/snapshot.lua, for_prompt).
function M.snapshot_json(s)
  return snapshot.for_prompt(s)
end

-- agent_ids_json(agents) -> '"c2","c7"', each id JSON-encoded exactly as in its snapshot.
function M.agent_ids_json(agents)
  local ids = {}
  for i, s in ipairs(agents) do ids[i] = json.encode(snapshot.agent_id(s)) end
  return table.concat(ids, ",")
end

return M
