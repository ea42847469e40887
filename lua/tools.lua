-- lua/tools.lua — the tool registry: the one place where every tool name, parameter name,
-- type, enum value and cooldown is spelled. Prompts, the JSON schema and the validator are all
-- generated from this table, so a spelling changed here changes everywhere at once.
--
-- Contract (the C host compiles this table at load time and rejects anything else):
--   return {
--     tools   = { <tool>, ... },        -- ordered as in shared/TOOLS.md (37 tools, 6 groups)
--     subsets = { simplified = { name, ... }, compact = { name, ... } },  -- registry order
--     by_name = { [name] = <tool> },    -- the same records as in `tools`
--   }
--   <tool>  = { name, group, cooldown (seconds, 0 = none), desc (one line), params = { <param> } }
--   <param> = { name, type, optional?, values? (enum), min_items? (positions), of? (entity) }
--   type    ∈ int uint float string entity position positions enum
--   of      ⊆ enemy player self ally any   (which entities an `entity` parameter may name)
--
-- Depends on nothing. Pure data plus load-time self-checks: a mistake in an edit raises here,
-- with this file's line, instead of reaching a prompt or the validator. No mutable state.

local GROUPS = { "movement", "offensive", "defensive", "equipment", "tactical", "utility" }
local TYPES = {
  int = true, uint = true, float = true, string = true, entity = true,
  position = true, positions = true, enum = true,
}
local ENTITY_KINDS = { enemy = true, player = true, self = true, ally = true, any = true }
local TOOL_KEYS = { name = true, group = true, cooldown = true, desc = true, params = true }
local PARAM_KEYS = {
  name = true, type = true, optional = true, values = true, min_items = true, of = true,
}

-- Parameter constructors: keep the table below one line per tool.
local function int(name) return { name = name, type = "int" } end
local function uint(name) return { name = name, type = "uint" } end
local function float(name) return { name = name, type = "float" } end
local function str(name) return { name = name, type = "string" } end
local function pos(name) return { name = name, type = "position" } end
local function enemy(name) return { name = name, type = "entity", of = { "enemy" } } end

local function enum(name, values)
  return { name = name, type = "enum", values = values }
end

local function optional(param)
  param.optional = true
  return param
end

local function tool(group, name, cooldown, desc, params)
  return { name = name, group = group, cooldown = cooldown, desc = desc, params = params or {} }
end

local tools = {
  -- movement
  tool("movement", "MoveTo", 0, "Walk, run or sprint to a grid cell.",
    { int("x"), int("y"), optional(enum("speed", { "walk", "run", "sprint" })) }),
  tool("movement", "Approach", 0, "Close in on a target until within `distance` cells of it.",
    { enemy("target_id"), float("distance") }),
  tool("movement", "Retreat", 0, "Back away from a target until `distance` cells from it.",
    { enemy("target_id"), float("distance") }),
  tool("movement", "TakeCover", 0, "Get into cover at a cell, or at the nearest cover if omitted.",
    { optional(pos("position")) }),
  tool("movement", "Strafe", 0, "Move sideways around a target while keeping it in sight.",
    { enemy("target_id"), enum("direction", { "left", "right" }) }),
  tool("movement", "Patrol", 0, "Walk a loop through the waypoints, watching for enemies.",
    { { name = "waypoints", type = "positions", min_items = 2 } }),
  -- offensive
  tool("offensive", "Attack", 1, "Fire at a target with the current weapon.",
    { enemy("target_id") }),
  tool("offensive", "AimedShot", 2, "Slow precise shot; high damage against an exposed target.",
    { enemy("target_id") }),
  tool("offensive", "QuickAttack", 0.5, "Fast, light hit on a target.",
    { enemy("target_id") }),
  tool("offensive", "HeavyAttack", 3, "Slow, strong hit on a target next to you.",
    { enemy("target_id") }),
  tool("offensive", "AoEAttack", 5, "Area attack on a cell; hits everything within `radius`.",
    { int("x"), int("y"), float("radius") }),
  tool("offensive", "ThrowExplosive", 8, "Throw a grenade at a cell; flushes enemies out of cover.",
    { int("x"), int("y") }),
  tool("offensive", "CoverFire", 4, "Suppress a target for `duration` seconds so others can move.",
    { enemy("target_id"), float("duration") }),
  tool("offensive", "Charge", 6, "Rush a target to close the distance fast.",
    { enemy("target_id") }),
  -- defensive
  tool("defensive", "Block", 1, "Raise your guard against an incoming melee hit.", {}),
  tool("defensive", "Dodge", 2, "Quick sidestep out of the line of fire.",
    { optional(enum("direction", { "left", "right" })) }),
  tool("defensive", "Parry", 3, "Deflect a melee hit at the right moment.", {}),
  tool("defensive", "ThrowSmoke", 8, "Throw smoke at a cell to block lines of sight.",
    { int("x"), int("y") }),
  tool("defensive", "Heal", 10, "Heal yourself (target_id omitted), the player or an ally.",
    { optional({ name = "target_id", type = "entity", of = { "self", "player", "ally" } }) }),
  tool("defensive", "UseDefensiveAbility", 15, "Trigger a named defensive ability.",
    { str("ability_name") }),
  -- equipment
  tool("equipment", "EquipWeapon", 1, "Equip a weapon by name.", { str("weapon_name") }),
  tool("equipment", "SwitchWeapon", 0.5, "Switch to the weapon in an inventory slot.",
    { uint("slot") }),
  tool("equipment", "Reload", 2, "Reload the current weapon.", {}),
  tool("equipment", "UseItem", 1, "Use an inventory item by name.", { str("item_name") }),
  tool("equipment", "DropItem", 0, "Drop an inventory item by name.", { str("item_name") }),
  -- tactical
  tool("tactical", "CallReinforcements", 60, "Call `count` reinforcements to your position.",
    { uint("count") }),
  tool("tactical", "MarkTarget", 5, "Mark a target for the player and allies.",
    { enemy("target_id") }),
  tool("tactical", "RequestCover", 10, "Ask allies for covering fire for `duration` seconds.",
    { float("duration") }),
  tool("tactical", "CoordinateAttack", 15, "Attack a target together with the squad.",
    { enemy("target_id") }),
  tool("tactical", "SetAmbush", 20, "Lie in ambush at a cell until an enemy comes close.",
    { pos("position") }),
  tool("tactical", "Distract", 8, "Draw a target's attention away from the player.",
    { enemy("target_id") }),
  tool("tactical", "Regroup", 10, "Fall back with the squad to a rally point.",
    { pos("rally_point") }),
  -- utility
  tool("utility", "Scan", 5, "Look around for enemies within `radius` cells.",
    { float("radius") }),
  tool("utility", "Wait", 0, "Hold position for `duration` seconds.", { float("duration") }),
  tool("utility", "Interact", 1, "Use a door, switch or other object by its id.",
    { { name = "target_id", type = "entity", of = { "any" } } }),
  tool("utility", "UseAbility", 10, "Trigger a named ability.", { str("ability_name") }),
  tool("utility", "Taunt", 6, "Provoke a target into attacking you instead of the player.",
    { enemy("target_id") }),
}

-- Subsets as sets; listed below in registry order whatever order they are written in here.
local SUBSET_NAMES = {
  simplified = {
    "MoveTo", "ThrowSmoke", "ThrowExplosive", "AoEAttack", "TakeCover", "Attack", "Approach",
    "Retreat", "MarkTarget", "Distract", "Reload", "Scan", "Wait", "Block", "Heal",
  },
  compact = { "MoveTo", "Attack", "TakeCover", "Reload", "Scan", "Wait", "ThrowSmoke", "Retreat" },
}

-- Self-checks --------------------------------------------------------------------------------

local function check_param(tool_name, p)
  local where = tool_name .. "." .. tostring(p.name)
  for k in pairs(p) do
    assert(PARAM_KEYS[k], "tools: " .. where .. ": unknown key '" .. tostring(k) .. "'")
  end
  assert(type(p.name) == "string" and p.name:match("^[%l_][%l%d_]*$"),
    "tools: " .. where .. ": parameter names are snake_case")
  assert(TYPES[p.type], "tools: " .. where .. ": unknown type '" .. tostring(p.type) .. "'")
  assert((p.values ~= nil) == (p.type == "enum"), "tools: " .. where .. ": values iff enum")
  assert((p.of ~= nil) == (p.type == "entity"), "tools: " .. where .. ": of iff entity")
  assert(p.min_items == nil or p.type == "positions", "tools: " .. where .. ": min_items")
  for _, v in ipairs(p.values or {}) do
    assert(v == v:lower(), "tools: " .. where .. ": enum values are lowercase")
  end
  for _, kind in ipairs(p.of or {}) do
    assert(ENTITY_KINDS[kind], "tools: " .. where .. ": unknown entity kind '" .. kind .. "'")
  end
end

local function check_tool(t, groups)
  for k in pairs(t) do
    assert(TOOL_KEYS[k], "tools: " .. tostring(t.name) .. ": unknown key '" .. tostring(k) .. "'")
  end
  assert(type(t.name) == "string" and t.name:match("^%u%w*$"), "tools: names are PascalCase")
  assert(groups[t.group], "tools: " .. t.name .. ": unknown group '" .. tostring(t.group) .. "'")
  assert(type(t.cooldown) == "number" and t.cooldown >= 0, "tools: " .. t.name .. ": cooldown")
  assert(type(t.desc) == "string" and not t.desc:find("\n"), "tools: " .. t.name .. ": desc")
  for _, p in ipairs(t.params) do check_param(t.name, p) end
end

local by_name = {}
do
  local groups = {}
  for _, g in ipairs(GROUPS) do groups[g] = true end
  for _, t in ipairs(tools) do
    check_tool(t, groups)
    assert(by_name[t.name] == nil, "tools: duplicate tool " .. t.name)
    by_name[t.name] = t
  end
  assert(#tools == 37, "tools: expected the 37 tools of TOOLS.md")
end

local function ordered_subset(name, names)
  local wanted = {}
  for _, n in ipairs(names) do
    assert(by_name[n], "tools: subset " .. name .. " names unknown tool " .. n)
    wanted[n] = true
  end
  local list = {}
  for _, t in ipairs(tools) do
    if wanted[t.name] then list[#list + 1] = t.name end
  end
  assert(#list == #names, "tools: subset " .. name .. " lists a tool twice")
  return list
end

local subsets = {}
for name, names in pairs(SUBSET_NAMES) do subsets[name] = ordered_subset(name, names) end
assert(#subsets.simplified == 15 and #subsets.compact == 8, "tools: subset sizes (15, 8)")

return { tools = tools, subsets = subsets, by_name = by_name }
