-- validate: the plan validator (host/validate.c, host/snapview.c), through host:validate
-- (host/lua_validate.c).
--
-- host:validate(steps_json, snapshot_json [, {template = NAME, limits = {...}}]) returns
-- { kept = "<json array>", nkept = N, dropped = { {index =, reason =}, ... } }, or nil and a
-- message for a malformed snapshot or steps array. Steps are written here as the plan parser
-- emits them (canonical: registry spelling, parameters in registry order). The tables below
-- run every one of the registry's tools through good and bad parameters; the registry comes
-- from host:tools(), so a tool added to lua/tools.lua is covered without editing this file.
local planhost = require "planhost"
local cjson = require "cjson"

local ROOT = os.getenv("PLANHOST_SOURCE") or "."
local host = assert(planhost.open(ROOT))
local function validate(steps, snap, opts) return host:validate(steps, snap, opts) end

-- The snapshot most cases use: a player with an id, enemies alive, dead, without hp, with
-- string ids; an ally; a POI with an id and one without; obstacle cells.
local SNAP = [[{"agent":"c2","t":1,
 "player":{"id":"p1","hp":100,"pos":{"x":2,"y":2},"orders":["hold"]},
 "me":{"hp":80,"pos":{"x":2,"y":3},"cooldowns":{"heal":0},"id":"c2"},
 "enemies":[{"id":3,"hp":60,"pos":{"x":12,"y":2}},{"id":4,"hp":0,"pos":{"x":1,"y":1}},
            {"id":"x9","hp":10},{"id":5},{"id":"6","hp":1},{"name":"no id","hp":50},
            {"id":8,"hp":-5},{"id":9,"hp":null}],
 "allies":[{"id":50,"hp":45,"pos":{"x":4,"y":11}}],
 "pois":[{"id":70,"k":"door","pos":{"x":15,"y":8}},{"k":"vent","pos":{"x":9,"y":1}}],
 "obstacles":[{"x":6,"y":3},{"x":6,"y":4},{"x":-1000,"y":1000}],
 "objective":"extract"}]]
local SNAP_NO_PLAYER = [[{"agent":"c2","me":{"pos":{"x":0,"y":0}},
 "enemies":[{"id":3,"hp":60}],"allies":[{"id":50}],"pois":[{"id":70}],"obstacles":[]}]]

-- One canonical step: S("MoveTo", "x", 1, "y", 2) -> {"act":"MoveTo","x":1,"y":2}
local function S(act, ...)
  local parts, args = { '{"act":' .. cjson.encode(act) }, { ... }
  for i = 1, select("#", ...), 2 do
    parts[#parts + 1] = cjson.encode(args[i]) .. ":" .. cjson.encode(args[i + 1])
  end
  return table.concat(parts, ",") .. "}"
end

local function plan(...) return "[" .. table.concat({ ... }, ",") .. "]" end

-- Validates one step; returns nil when kept, else the reason it was dropped.
local function reason_of(step, snap, opts)
  local res = assert(validate(plan(step), snap or SNAP, opts))
  if res.nkept == 1 then
    assert.equal(plan(step), res.kept)
    assert.equal(0, #res.dropped)
    return nil
  end
  assert.equal(0, res.nkept)
  assert.equal("[]", res.kept)
  assert.equal(1, #res.dropped)
  assert.equal(0, res.dropped[1].index)
  return res.dropped[1].reason
end

local function assert_kept(step, snap, opts)
  local why = reason_of(step, snap, opts)
  assert(why == nil, "dropped " .. step .. ": " .. tostring(why))
end

local function assert_dropped(step, expected, snap, opts)
  local why = reason_of(step, snap, opts)
  assert(why, "kept " .. step .. ", expected: " .. expected)
  assert.equal(expected, why)
end

local TOOLS, SUBSETS = host:tools()
local BY_NAME = {}
for _, t in ipairs(TOOLS) do BY_NAME[t.name] = t end
local CAPS = { duration = 30, radius = 50, distance = 100 }

local function has(list, v)
  for _, x in ipairs(list or {}) do
    if x == v then return true end
  end
  return false
end

-- An id of each kind an entity parameter may name, in SNAP.
local KIND_ID = { enemy = 3, player = "player", self = "self", ally = 50, poi = 70 }

local function good_entity(of)
  if has(of, "enemy") or has(of, "any") then return has(of, "enemy") and 3 or 70 end
  return has(of, "player") and "player" or has(of, "ally") and 50 or "self"
end

-- A value every parameter type accepts in SNAP (cells chosen off the obstacles).
local GOOD = {
  int = function(p) return p.name == "y" and 4 or 3 end,
  uint = function() return 1 end,
  float = function() return 2.5 end,
  string = function() return "rifle" end,
  enum = function(p) return p.values[#p.values] end,
  entity = function(p) return good_entity(p.of) end,
  position = function() return { x = 3, y = 4 } end,
  positions = function(p)
    local list = {}
    for i = 1, math.max(p.min_items or 0, 2) do list[i] = { x = i, y = 4 } end
    return list
  end,
}

-- The good step of a tool: every parameter, optional ones included, in registry order.
local function good_step(t, skip, override, value)
  local args = {}
  for _, p in ipairs(t.params) do
    if p.name ~= skip then
      args[#args + 1] = p.name
      if p.name == override then args[#args + 1] = value else args[#args + 1] = GOOD[p.type](p) end
    end
  end
  return S(t.name, table.unpack(args))
end

-- Bad values per type: { value, expected reason } (%s = tool, %p = parameter).
local function bad_values(p)
  local list = {}
  local function add(v, why) list[#list + 1] = { v, why } end
  if p.type == "int" then
    add(2.5, "%t: %p must be a 32-bit integer, got 2.5")
    add("3", '%t: %p must be a 32-bit integer, got "3"')
    add(3000000000, "%t: %p must be a 32-bit integer, got 3000000000")
    if p.name == "x" or p.name == "y" then
      add(5000, "%t: %p 5000 is outside the bounds [-1000, 1000]")
      add(-1001, "%t: %p -1001 is outside the bounds [-1000, 1000]")
    end
  elseif p.type == "uint" then
    add(-1, "%t: %p -1 must not be negative")
    add(1.5, "%t: %p must be a 32-bit unsigned integer, got 1.5")
  elseif p.type == "float" then
    add("2.5", "%t: %p must be a number")
    if CAPS[p.name] then
      add(0, "%t: %p must be positive")
      add(-2, "%t: %p must be positive")
      add(CAPS[p.name] + 0.5, ("%%t: %%p %g is over the cap %d"):format(CAPS[p.name] + 0.5, CAPS[p.name]))
    end
  elseif p.type == "string" then
    add("", "%t: %p must be a non-empty string")
    add(5, "%t: %p must be a non-empty string")
  elseif p.type == "enum" then
    add("Fly", '%t: %p "Fly" is not one of ' .. table.concat(p.values, "|"))
    add(p.values[1]:upper(), ('%%t: %%p "%s" is not one of '):format(p.values[1]:upper())
      .. table.concat(p.values, "|"))
  elseif p.type == "entity" then
    add(true, "%t: %p must be an entity id")
    add({ 3 }, "%t: %p must be an entity id")
  elseif p.type == "position" then
    add({ x = 5000, y = 1 }, "%t: %p x 5000 is outside the bounds [-1000, 1000]")
    add({ x = 1, y = -5000 }, "%t: %p y -5000 is outside the bounds [-1000, 1000]")
    add({ x = 1 }, '%t: %p must be {"x":int,"y":int}')
    add({ x = 1, y = 1.5 }, '%t: %p must be {"x":int,"y":int}')
    add({ 1, 2 }, '%t: %p must be {"x":int,"y":int}')
    add({ x = 6, y = 3 }, "%t: (6,3) is an obstacle")
  elseif p.type == "positions" then
    add({ { x = 1, y = 1 } }, "%t: needs at least 2 %p")
    add({ { x = 1, y = 5000 }, { x = 1, y = 1 } }, "%t: %p[0] y 5000 is outside the bounds [-1000, 1000]")
    add({ { x = 1, y = 1 }, { x = 6, y = 4 } }, "%t: (6,4) is an obstacle")
    add({ { x = 1, y = 1 }, 5 }, '%t: %p must be a list of {"x":int,"y":int}')
    add({ { x = 1, y = 1 }, { y = 2 } }, '%t: %p[1] must be {"x":int,"y":int}')
  end
  return list
end

local function expand(why, t, p)
  return (why:gsub("%%t", t.name):gsub("%%p", p.name))
end

describe("validate: every registry tool", function()
  it("the registry has the 37 tools", function()
    assert.equal(37, #TOOLS)
  end)

  for _, t in ipairs(TOOLS) do
    it(t.name .. " with good parameters is kept as written", function()
      assert_kept(good_step(t))
    end)

    for _, p in ipairs(t.params) do
      if p.optional then
        it(t.name .. " without its optional " .. p.name .. " is kept", function()
          assert_kept(good_step(t, p.name))
        end)
        it(t.name .. " with " .. p.name .. " null is kept", function()
          assert_kept(good_step(t, nil, p.name, cjson.null))
        end)
      else
        it(t.name .. " without " .. p.name .. " is dropped", function()
          assert_dropped(good_step(t, p.name), ("%s: missing parameter '%s'"):format(t.name, p.name))
          assert_dropped(good_step(t, nil, p.name, cjson.null),
            ("%s: missing parameter '%s'"):format(t.name, p.name))
        end)
      end
      for i, case in ipairs(bad_values(p)) do
        it(("%s with a bad %s (%d: %s)"):format(t.name, p.name, i, cjson.encode(case[1])), function()
          assert_dropped(good_step(t, nil, p.name, case[1]), expand(case[2], t, p))
        end)
      end
    end

    it(t.name .. " ignores keys it does not have", function()
      local step = good_step(t):gsub("}$", ',"why":"because","x_extra":[1,{"a":2}]}')
      assert_kept(step)
    end)
  end
end)

describe("validate: entity targets", function()
  local KINDS = { "enemy", "player", "self", "ally", "poi" }

  -- For every entity parameter of every tool: an id of each kind is kept iff `of` allows it.
  for _, t in ipairs(TOOLS) do
    for _, p in ipairs(t.params) do
      if p.type == "entity" then
        for _, kind in ipairs(KINDS) do
          local ok = has(p.of, "any") or has(p.of, kind)
          it(("%s.%s naming %s %s"):format(t.name, p.name, kind, ok and "is kept" or "is dropped"), function()
            local why = reason_of(good_step(t, nil, p.name, KIND_ID[kind]))
            if ok then
              assert.is_nil(why)
            else
              assert.truthy(why and why:find(" is not .* in the snapshot$"), tostring(why))
            end
          end)
        end
        it(("%s.%s naming an unknown id is dropped"):format(t.name, p.name), function()
          local why = reason_of(good_step(t, nil, p.name, 999))
          assert.truthy(why and why:find("^" .. t.name .. ": target_id 999 is not "), tostring(why))
        end)
      end
    end
  end

  it("says which kinds were wanted", function()
    assert_dropped(S("Attack", "target_id", 7), "Attack: target_id 7 is not an enemy in the snapshot")
    assert_dropped(S("Heal", "target_id", 3),
      "Heal: target_id 3 is not the player, the agent itself or an ally in the snapshot")
    assert_dropped(S("Interact", "target_id", "vent"),
      'Interact: target_id "vent" is not an entity in the snapshot')
  end)

  it("a dead enemy is no target", function()
    assert_dropped(S("Attack", "target_id", 4), "Attack: target_id 4 is a dead enemy")
    assert_dropped(S("Attack", "target_id", 8), "Attack: target_id 8 is a dead enemy")
    assert_dropped(S("Interact", "target_id", 4), "Interact: target_id 4 is a dead enemy")
  end)

  it("an enemy without hp, or hp null, is alive", function()
    assert_kept(S("Attack", "target_id", 5))
    assert_kept(S("Attack", "target_id", 9))
  end)

  it("an enemy without an id cannot be named", function()
    assert_dropped(S("Attack", "target_id", "no id"), 'Attack: target_id "no id" is not an enemy in the snapshot')
  end)

  it("the player, the agent and allies are no enemies", function()
    for _, id in ipairs({ "player", "p1", "self", "c2", 50, 70 }) do
      local why = reason_of(S("Attack", "target_id", id))
      assert.truthy(why and why:find("is not an enemy in the snapshot$"), tostring(why))
    end
  end)

  it("Heal without target_id heals the agent itself", function()
    assert_kept(S("Heal"))
    assert_kept(S("Heal"), SNAP_NO_PLAYER)
  end)

  it("Heal takes the player by name or id, the agent by 'self' or its id, allies", function()
    for _, id in ipairs({ "player", "p1", "self", "c2", 50, "50" }) do
      assert_kept(S("Heal", "target_id", id))
    end
  end)

  it("without a player in the snapshot, 'player' names nothing", function()
    assert_dropped(S("Heal", "target_id", "player"),
      'Heal: target_id "player" is not the player, the agent itself or an ally in the snapshot',
      SNAP_NO_PLAYER)
    assert_dropped(S("Interact", "target_id", "player"),
      'Interact: target_id "player" is not an entity in the snapshot', SNAP_NO_PLAYER)
    assert_kept(S("Heal", "target_id", "self"), SNAP_NO_PLAYER)
  end)

  it("Interact takes a POI id, and any other entity", function()
    for _, id in ipairs({ 70, "70", 3, "x9", "player", "p1", "self", 50 }) do
      assert_kept(S("Interact", "target_id", id))
    end
  end)

  it("an ally is found when the snapshot has allies, and not otherwise", function()
    local snap = [[{"agent":"c2","player":{},"enemies":[{"id":3}]}]]
    assert_dropped(S("Heal", "target_id", 50),
      "Heal: target_id 50 is not the player, the agent itself or an ally in the snapshot", snap)
    assert_kept(S("Heal", "target_id", "player"), snap)
  end)
end)

describe("validate: ids as integers or strings", function()
  it("an integer id matches its string and the other way round", function()
    assert_kept(S("Attack", "target_id", "3"))
    assert_kept(S("Attack", "target_id", 6))
    assert_kept(S("Attack", "target_id", "6"))
    assert_kept(S("Heal", "target_id", "50"))
  end)

  it("spellings of one integer are one id", function()
    for _, id in ipairs({ "3", " 3 ", "+3", "3.0", "03", "3e0" }) do
      assert_kept(S("Attack", "target_id", id))
    end
    assert_kept('{"act":"Attack","target_id":3.0}')
    assert_kept('{"act":"Attack","target_id":30e-1}')
    local snap = [[{"enemies":[{"id":" 007 ","hp":5},{"id":1.2e1}]}]]
    assert_kept(S("Attack", "target_id", 7), snap)
    assert_kept(S("Attack", "target_id", 12), snap)
  end)

  it("string ids are compared exactly, escapes decoded", function()
    assert_kept(S("Attack", "target_id", "x9"))
    assert_dropped(S("Attack", "target_id", "X9"), 'Attack: target_id "X9" is not an enemy in the snapshot')
    local snap = [[{"agent":"\u00e9l\u00e8ve","enemies":[{"id":"Jos\u00e9 M\u00fcller"},{"id":"李小龍"}]}]]
    assert_kept(S("Attack", "target_id", "José Müller"), snap)
    assert_kept('{"act":"Attack","target_id":"\\u674e\\u5c0f\\u9f8d"}', snap)
    assert_kept(S("Heal", "target_id", "élève"), snap)
  end)

  it("a non-integral number is an id as written", function()
    local snap = [[{"enemies":[{"id":2.5}]}]]
    assert_kept('{"act":"Attack","target_id":2.5}', snap)
    assert_dropped('{"act":"Attack","target_id":2}', "Attack: target_id 2 is not an enemy in the snapshot", snap)
  end)
end)

describe("validate: bounds", function()
  it("the default bounds are -1000..1000, edges included", function()
    assert_kept(S("MoveTo", "x", 1000, "y", -1000))
    assert_kept(S("MoveTo", "x", -1000, "y", 999))
    assert_dropped(S("MoveTo", "x", 5000, "y", 1), "MoveTo: x 5000 is outside the bounds [-1000, 1000]")
    assert_dropped(S("MoveTo", "x", 1, "y", 1001), "MoveTo: y 1001 is outside the bounds [-1000, 1000]")
  end)

  it("applies to throws and area attacks too", function()
    assert_dropped(S("ThrowSmoke", "x", -1001, "y", 0), "ThrowSmoke: x -1001 is outside the bounds [-1000, 1000]")
    assert_dropped(S("AoEAttack", "x", 0, "y", 2000, "radius", 3),
      "AoEAttack: y 2000 is outside the bounds [-1000, 1000]")
  end)

  it("policy limits move them, per axis", function()
    local opts = { limits = { min_x = 0, max_x = 20, min_y = -5, max_y = 5 } }
    assert_kept(S("MoveTo", "x", 20, "y", -5), SNAP, opts)
    assert_dropped(S("MoveTo", "x", 21, "y", 0), "MoveTo: x 21 is outside the bounds [0, 20]", SNAP, opts)
    assert_dropped(S("MoveTo", "x", -1, "y", 0), "MoveTo: x -1 is outside the bounds [0, 20]", SNAP, opts)
    assert_dropped(S("MoveTo", "x", 1, "y", 6), "MoveTo: y 6 is outside the bounds [-5, 5]", SNAP, opts)
    assert_dropped(S("SetAmbush", "position", { x = 3, y = 9 }),
      "SetAmbush: position y 9 is outside the bounds [-5, 5]", SNAP, opts)
    assert_dropped(S("Patrol", "waypoints", { { x = 1, y = 1 }, { x = 30, y = 1 } }),
      "Patrol: waypoints[1] x 30 is outside the bounds [0, 20]", SNAP, opts)
  end)
end)

describe("validate: obstacles", function()
  it("MoveTo onto an obstacle is dropped", function()
    assert_dropped(S("MoveTo", "x", 6, "y", 3), "MoveTo: (6,3) is an obstacle")
    assert_dropped(S("MoveTo", "x", 6, "y", 4, "speed", "run"), "MoveTo: (6,4) is an obstacle")
    assert_kept(S("MoveTo", "x", 6, "y", 5))
    assert_kept(S("MoveTo", "x", 3, "y", 6))
  end)

  it("an obstacle on the bounds' edge is still an obstacle", function()
    assert_dropped(S("MoveTo", "x", -1000, "y", 1000), "MoveTo: (-1000,1000) is an obstacle")
  end)

  it("positions and waypoints are destinations", function()
    assert_dropped(S("TakeCover", "position", { x = 6, y = 3 }), "TakeCover: (6,3) is an obstacle")
    assert_dropped(S("SetAmbush", "position", { x = 6, y = 4 }), "SetAmbush: (6,4) is an obstacle")
    assert_dropped(S("Regroup", "rally_point", { x = 6, y = 3 }), "Regroup: (6,3) is an obstacle")
    assert_dropped(S("Patrol", "waypoints", { { x = 6, y = 3 }, { x = 1, y = 1 } }), "Patrol: (6,3) is an obstacle")
  end)

  it("throws and area attacks may land on an obstacle cell", function()
    assert_kept(S("ThrowSmoke", "x", 6, "y", 3))
    assert_kept(S("ThrowExplosive", "x", 6, "y", 3))
    assert_kept(S("AoEAttack", "x", 6, "y", 4, "radius", 2))
  end)

  it("many obstacles, any order", function()
    local cells = {}
    for i = 200, 1, -1 do cells[#cells + 1] = ('{"x":%d,"y":%d}'):format(i, i * 2) end
    local snap = '{"obstacles":[' .. table.concat(cells, ",") .. ']}'
    for _, i in ipairs({ 1, 2, 77, 100, 199, 200 }) do
      assert_dropped(S("MoveTo", "x", i, "y", i * 2), ("MoveTo: (%d,%d) is an obstacle"):format(i, i * 2), snap)
      assert_kept(S("MoveTo", "x", i, "y", i * 2 + 1), snap)
    end
  end)
end)

describe("validate: Patrol", function()
  it("needs at least 2 waypoints", function()
    assert_dropped(S("Patrol", "waypoints", { { x = 1, y = 1 } }), "Patrol: needs at least 2 waypoints")
    assert_dropped('{"act":"Patrol","waypoints":[]}', "Patrol: needs at least 2 waypoints")
    assert_kept(S("Patrol", "waypoints", { { x = 1, y = 1 }, { x = 2, y = 1 } }))
  end)

  it("takes up to 64 waypoints", function()
    local pts = {}
    for i = 1, 64 do pts[i] = { x = i, y = 0 } end
    assert_kept(S("Patrol", "waypoints", pts))
    pts[65] = { x = 65, y = 0 }
    assert_dropped(S("Patrol", "waypoints", pts), 'Patrol: waypoints must be a list of {"x":int,"y":int}')
  end)

  it("waypoints must be a list", function()
    assert_dropped(S("Patrol", "waypoints", { x = 1, y = 1 }), 'Patrol: waypoints must be a list of {"x":int,"y":int}')
    assert_dropped(S("Patrol", "waypoints", "loop"), 'Patrol: waypoints must be a list of {"x":int,"y":int}')
  end)
end)

describe("validate: caps", function()
  it("duration, radius and distance are positive and at most their caps", function()
    assert_kept(S("Scan", "radius", 50))
    assert_dropped(S("Scan", "radius", 500), "Scan: radius 500 is over the cap 50")
    assert_kept(S("Wait", "duration", 30))
    assert_kept(S("Wait", "duration", 0.001))
    assert_dropped(S("Wait", "duration", 0), "Wait: duration must be positive")
    assert_dropped(S("Wait", "duration", -1), "Wait: duration must be positive")
    assert_dropped(S("Wait", "duration", 30.5), "Wait: duration 30.5 is over the cap 30")
    assert_kept(S("Approach", "target_id", 3, "distance", 100))
    assert_dropped(S("Retreat", "target_id", 3, "distance", 101), "Retreat: distance 101 is over the cap 100")
    assert_dropped('{"act":"Wait","duration":1e999}', "Wait: duration must be a number")
  end)

  it("policy limits move the caps", function()
    local opts = { limits = { max_radius = 500, max_duration = 2, max_distance = 5.5 } }
    assert_kept(S("Scan", "radius", 500), SNAP, opts)
    assert_dropped(S("Scan", "radius", 501), "Scan: radius 501 is over the cap 500", SNAP, opts)
    assert_dropped(S("CoverFire", "target_id", 3, "duration", 3), "CoverFire: duration 3 is over the cap 2", SNAP, opts)
    assert_dropped(S("Approach", "target_id", 3, "distance", 6), "Approach: distance 6 is over the cap 5.5", SNAP, opts)
  end)
end)

describe("validate: tiers' tool subsets", function()
  for _, tmpl in ipairs(host:templates()) do
    it(tmpl.name .. " keeps exactly the tools of its subset", function()
      local kept = 0
      for _, t in ipairs(TOOLS) do
        local why = reason_of(good_step(t), SNAP, { template = tmpl.name })
        if has(tmpl.tools, t.name) then
          assert(why == nil, t.name .. ": " .. tostring(why))
          kept = kept + 1
        else
          assert.equal(t.name .. ": not in this tier's tools", why)
        end
      end
      assert.equal(#tmpl.tools, kept)
    end)
  end

  it("the registry's subsets are what the templates offer", function()
    assert.equal(8, #SUBSETS.compact)
    assert.equal(15, #SUBSETS.simplified)
    assert_dropped(S("ThrowSmoke", "x", 1, "y", 1):gsub("ThrowSmoke", "Parry"):gsub(',"x":1,"y":1', ""),
      "Parry: not in this tier's tools", SNAP, { template = "compact" })
    assert_kept(S("ThrowSmoke", "x", 1, "y", 1), SNAP, { template = "compact" })
    assert_dropped(S("Heal"), "Heal: not in this tier's tools", SNAP, { template = "compact" })
    assert_kept(S("Heal"), SNAP, { template = "simplified" })
  end)
end)

describe("validate: plans", function()
  local GOOD_STEP = S("Attack", "target_id", 3)

  it("keeps at most max_steps (8) valid steps and says why the rest went", function()
    local steps = {}
    for i = 1, 10 do steps[i] = GOOD_STEP end
    local res = assert(validate(plan(table.unpack(steps)), SNAP))
    assert.equal(8, res.nkept)
    assert.equal(plan(table.unpack(steps, 1, 8)), res.kept)
    assert.same({ { index = 8, reason = "plan: over the cap of 8 steps" },
      { index = 9, reason = "plan: over the cap of 8 steps" } }, res.dropped)
  end)

  it("invalid steps do not count towards the cap", function()
    local bad = S("Attack", "target_id", 7)
    local res = assert(validate(plan(bad, GOOD_STEP, bad, GOOD_STEP, GOOD_STEP), SNAP,
      { limits = { max_steps = 2 } }))
    assert.equal(2, res.nkept)
    assert.equal(plan(GOOD_STEP, GOOD_STEP), res.kept)
    assert.same({ 0, 2, 4 }, { res.dropped[1].index, res.dropped[2].index, res.dropped[3].index })
    assert.equal("plan: over the cap of 2 steps", res.dropped[3].reason)
  end)

  it("drops elements that are not objects, counting them in the index", function()
    local res = assert(validate('[5,"x",' .. GOOD_STEP .. ',[1,{"act":"Reload"}],null,{"act":"Reload"}]', SNAP))
    assert.equal(2, res.nkept)
    assert.equal(plan(GOOD_STEP, '{"act":"Reload"}'), res.kept)
    local idx = {}
    for i, d in ipairs(res.dropped) do
      idx[i] = d.index
      assert.equal("the step is not an object", d.reason)
    end
    assert.same({ 0, 1, 3, 4 }, idx)
  end)

  it("copies kept steps byte for byte, whitespace and key order included", function()
    local step = '{ "x" : 3 ,\n "act":"MoveTo", "y":4, "note": "caf\\u00e9" }'
    local res = assert(validate("[ " .. step .. " ,\n" .. GOOD_STEP .. " ]", SNAP))
    assert.equal(2, res.nkept)
    assert.equal("[" .. step .. "," .. GOOD_STEP .. "]", res.kept)
    assert.equal(2, #cjson.decode(res.kept))
  end)

  it("an empty plan, and a plan without a valid step, keep nothing", function()
    local res = assert(validate("[]", SNAP))
    assert.same({ kept = "[]", nkept = 0, dropped = {} }, res)
    res = assert(validate(plan(S("Attack", "target_id", 7)), SNAP))
    assert.equal(0, res.nkept)
    assert.equal("[]", res.kept)
    assert.equal(1, #res.dropped)
  end)

  it("names a step's own problems", function()
    assert_dropped('{"act":"Extract","x":1}', "unknown tool 'Extract'")
    assert_dropped('{"act":"moveto","x":1,"y":1}', "unknown tool 'moveto'")
    assert_dropped('{"x":1,"y":1}', "the step has no 'act'")
    assert_dropped('{"act":5}', "the step's 'act' is not a tool name")
    assert_dropped('{"act":"MoveTo","x":1,"y":1,"speed":"Run"}', 'MoveTo: speed "Run" is not one of walk|run|sprint')
  end)

  it("a malformed or non-array steps text is nil, message", function()
    local res, msg = validate('[{"act":"Reload"},', SNAP)
    assert.is_nil(res)
    assert.truthy(msg:find("^steps: invalid JSON at byte 18"), msg)
    res, msg = validate('{"act":"Reload"}', SNAP)
    assert.is_nil(res)
    assert.equal("steps: invalid JSON at byte 0: not a JSON array", msg)
    res, msg = validate('[{"act":"Reload"}] x', SNAP)
    assert.is_nil(res)
    assert.truthy(msg:find("at byte 19"), msg)
  end)
end)

describe("validate: snapshots", function()
  it("a malformed snapshot is nil, message with the byte offset", function()
    local res, msg = validate("[]", '{"agent":"c2","enemies":[{"id":3},,]}')
    assert.is_nil(res)
    assert.truthy(msg:find("^snapshot: invalid JSON at byte 34: "), msg)
    res, msg = validate("[]", '{"agent":"c2"')
    assert.is_nil(res)
    assert.truthy(msg:find("^snapshot: invalid JSON at byte 13: "), msg)
    res, msg = validate("[]", "")
    assert.is_nil(res)
    assert.truthy(msg:find("^snapshot: invalid JSON at byte 0: "), msg)
  end)

  it("a snapshot that is not an object is an error", function()
    for _, text in ipairs({ "[]", "5", '"snap"', "null" }) do
      local res, msg = validate("[]", text)
      assert.is_nil(res)
      assert.equal("snapshot: invalid JSON at byte 0: the snapshot is not a JSON object", msg)
    end
  end)

  it("sections of the wrong shape count as absent", function()
    local snap = [=[{"agent":{"id":"c2"},"player":null,"me":5,"enemies":{"id":3},
      "allies":[5,"a",[{"id":50}]],"pois":"none","obstacles":[[6,3],{"x":"6","y":3},{"x":1}]}]=]
    assert_dropped(S("Attack", "target_id", 3), "Attack: target_id 3 is not an enemy in the snapshot", snap)
    assert_dropped(S("Heal", "target_id", 50),
      "Heal: target_id 50 is not the player, the agent itself or an ally in the snapshot", snap)
    assert_dropped(S("Heal", "target_id", "player"),
      'Heal: target_id "player" is not the player, the agent itself or an ally in the snapshot', snap)
    assert_kept(S("MoveTo", "x", 6, "y", 3), snap)
    assert_kept(S("Heal", "target_id", "self"), snap)
  end)

  it("keys nested deeper do not confuse it", function()
    local snap = [[{"extra":{"enemies":[{"id":3}],"obstacles":[{"x":1,"y":1}]},
      "me":{"cooldowns":{"id":"c9"},"pos":{"x":1,"y":1,"id":77}},
      "enemies":[{"id":4,"hp":5,"pos":{"id":5,"hp":0},"tags":[{"id":6}]}]}]]
    assert_dropped(S("Attack", "target_id", 3), "Attack: target_id 3 is not an enemy in the snapshot", snap)
    assert_dropped(S("Attack", "target_id", 5), "Attack: target_id 5 is not an enemy in the snapshot", snap)
    assert_dropped(S("Attack", "target_id", 6), "Attack: target_id 6 is not an enemy in the snapshot", snap)
    assert_kept(S("Attack", "target_id", 4), snap)
    assert_kept(S("MoveTo", "x", 1, "y", 1), snap)
    assert_dropped(S("Heal", "target_id", "c9"),
      'Heal: target_id "c9" is not the player, the agent itself or an ally in the snapshot', snap)
  end)

  local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
  end

  it("every example snapshot compiles", function()
    local p = io.popen("ls " .. ROOT .. "/examples/snapshots/*.json")
    local n = 0
    for path in p:lines() do
      local res, msg = validate("[]", read(path))
      assert(res, path .. ": " .. tostring(msg))
      n = n + 1
    end
    p:close()
    assert.is_true(n >= 10)
  end)

  it("targets in the example snapshots", function()
    local dir = ROOT .. "/examples/snapshots/"
    local hello, escort, reach = read(dir .. "hello_companion.json"), read(dir .. "escort.json"),
      read(dir .. "reach.json")
    assert_kept(S("Attack", "target_id", 3), hello)
    assert_dropped(S("MoveTo", "x", 6, "y", 3), "MoveTo: (6,3) is an obstacle", hello)
    assert_kept(S("Heal", "target_id", 50), escort)
    assert_kept(S("Heal", "target_id", "c8"), escort)
    assert_kept(S("Interact", "target_id", 70), reach)
    assert_dropped(S("Interact", "target_id", "vent"), 'Interact: target_id "vent" is not an entity in the snapshot', reach)
    assert_dropped(S("Attack", "target_id", 3), "Attack: target_id 3 is not an enemy in the snapshot",
      read(dir .. "no_enemies.json"))
  end)
end)

describe("validate: the parser's output validates", function()
  it("a parsed plan goes through as the parser wrote it", function()
    local text = 'Sure! {"plan_id":"p1","steps":[{"act":"move_to","x":"4","y":3,"speed":"RUN"},'
      .. '{"action":"attack","target":"3"},{"act":"Heal","why":"low hp"},{"act":"Attack","target_id":4}]}'
    local events = host:parse(text)
    local p = events[#events].kind == "plan" and events[#events] or events[#events - 1]
    assert.equal("plan", p.kind)
    local res = assert(validate(p.json, SNAP))
    assert.equal(3, res.nkept)
    assert.same({ { index = 3, reason = "Attack: target_id 4 is a dead enemy" } }, res.dropped)
  end)
end)

describe("validate: limits", function()
  it("rejects unknown keys and bad values", function()
    local function call(limits) return validate("[]", SNAP, { limits = limits }) end
    assert.has_error(function() call({ max_step = 3 }) end, "validate: unknown limit 'max_step'")
    assert.has_error(function() call({ [1] = 3 }) end, "validate: unknown limit 'number'")
    assert.has_error(function() call({ min_x = 1.5 }) end, "validate: limit 'min_x' must be a 32-bit integer")
    assert.has_error(function() call({ max_y = "big" }) end, "validate: limit 'max_y' must be a 32-bit integer")
    assert.has_error(function() call({ max_steps = 0 }) end, "validate: limit 'max_steps' must be a positive integer")
    assert.has_error(function() call({ max_radius = 0 }) end, "validate: limit 'max_radius' must be a positive number")
    assert.has_error(function() call({ max_duration = 1 / 0 }) end,
      "validate: limit 'max_duration' must be a positive number")
    assert.has_error(function() call({ min_x = 5, max_x = 4 }) end,
      "validate: limits: min_x/min_y must not exceed max_x/max_y")
  end)

  it("rejects unknown options", function()
    assert.has_error(function() validate("[]", SNAP, { tier = "compact" }) end,
      "host:validate: unknown option 'tier'")
    assert.has_error(function() validate("[]", SNAP, { template = "nope" }) end,
      "host:validate: unknown template 'nope'")
  end)

  it("leaves the other limits at their defaults", function()
    local opts = { limits = { max_steps = 1 } }
    assert_dropped(S("MoveTo", "x", 1001, "y", 0), "MoveTo: x 1001 is outside the bounds [-1000, 1000]", SNAP, opts)
    assert_dropped(S("Scan", "radius", 51), "Scan: radius 51 is over the cap 50", SNAP, opts)
  end)
end)
