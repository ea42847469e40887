-- lua/snapshot.lua — world snapshots as templates see them: defaults, and the prompt JSON.
--
-- A snapshot is the engine's WorldSnapshot (shared/DESIGN.md, "Formats"):
--   agent      string   id of the agent being planned for ("c2"); default "agent"
--   t          number   game time in seconds (not shown to the model)
--   me         table    the agent itself:
--     hp         0..100  health points; default 100
--     ammo       >= 0    rounds left in the current weapon; default 0
--     morale     0..1    1 = steady, 0 = broken (a fraction, not a percentage); default 1.0
--     pos        {x,y}   integer grid cell; default {x=0,y=0}
--     cooldowns  {name = seconds left}, keyed by the engine's ability names; default {}
--   player     table    the human player (hp 0..100, pos, stance, orders); may be absent
--   enemies    array    {id, name?, pos, hp 0..100, cover?, last_seen?}; default []
--   allies     array    friendly entities (escort targets, squad mates), same shape; optional
--   pois       array    points of interest {k = kind, pos, id?}; default []
--   obstacles  array    blocked cells {x,y}; default []
--   objective  string   "extract", "escort", "reach:<poi or x,y>", ...; default "none"
-- Unknown keys are kept everywhere and passed through to the prompt.
-- Values outside the scales above are passed through unchanged: this module fills gaps, the
-- host's validation judges ranges.
--
-- Depends on lua/json.lua. Keeps no state. Inputs are only read (they may be read-only views:
-- only pairs, ipairs and indexing are used); every result is a new table or string owned by
-- the caller.

local json = require "json"

local NULL = cjson.null

-- Keys that never help a decision: dropped from the prompt (and so from its size).
local DROP_TOP = { t = true }        -- only at the top level
local DROP_ANY = { last_seen = true } -- at any depth

-- Deep copy of plain data (arrays included: every key is copied, so nothing is lost).
-- `drop(key, depth)` returning true leaves a key out.
local function copy(v, drop, depth)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, item in pairs(v) do
    if not (drop and drop(k, depth)) then out[k] = copy(item, drop, depth + 1) end
  end
  return out
end

local function drop_for_prompt(key, depth)
  return DROP_ANY[key] or (depth == 0 and DROP_TOP[key]) or false
end

local function number_or(v, default)
  if type(v) == "number" then return v end
  return default
end

local function table_or(v, default)
  if type(v) == "table" then return v end
  return default
end

local function normalize_pos(p)
  p = table_or(p, {})
  p.x = number_or(p.x, 0)
  p.y = number_or(p.y, 0)
  return p
end

local function normalize_me(me)
  me = table_or(me, {})
  me.hp = number_or(me.hp, 100)
  me.ammo = number_or(me.ammo, 0)
  me.morale = number_or(me.morale, 1.0)
  me.pos = normalize_pos(me.pos)
  me.cooldowns = table_or(me.cooldowns, {})
  return me
end

-- Fills defaults into `s`, a fresh copy owned by this module's caller.
local function fill(s)
  if type(s.agent) ~= "string" and type(s.agent) ~= "number" then s.agent = "agent" end
  s.me = normalize_me(s.me)
  if type(s.player) ~= "table" then s.player = nil end -- absent stays absent (also null)
  s.enemies = table_or(s.enemies, json.array())
  s.pois = table_or(s.pois, json.array())
  s.obstacles = table_or(s.obstacles, json.array())
  if s.allies ~= nil and type(s.allies) ~= "table" then s.allies = nil end
  if type(s.objective) ~= "string" and type(s.objective) ~= "table" then
    s.objective = "none"
  end
  return s
end

local function check(s)
  if type(s) ~= "table" then
    error("snapshot: expected a table, got " .. (s == NULL and "null" or type(s)), 3)
  end
end

-- normalize(s) -> a new snapshot table with the defaults above filled in. `s` is not touched.
local function normalize(s)
  check(s)
  return fill(copy(s, nil, 0))
end

-- for_prompt(s) -> the compact, deterministic JSON of the normalized snapshot without `t` and
-- without any `last_seen`; the objective and all unknown keys stay.
local function for_prompt(s)
  check(s)
  return json.encode(fill(copy(s, drop_for_prompt, 0)))
end

-- agent_id(s) -> the agent's id as written in the snapshot ("agent" when absent).
local function agent_id(s)
  check(s)
  local a = s.agent
  if type(a) == "string" or type(a) == "number" then return a end
  return "agent"
end

return { normalize = normalize, for_prompt = for_prompt, agent_id = agent_id }
