-- The heuristic tier (lua/heuristic.lua), run inside the real sandbox of the real module:
-- every plan goes through the real plan parser with the matching tool subset and must come
-- out whole (nothing dropped, the same steps), and every step must name things that exist in
-- the snapshot. Then the rules one by one: the nearest living threat, the scales of hp and
-- morale, smoke and its cooldown, reload before attack, cover away from the threat, the
-- objective with no enemies, fallbacks inside small tool sets, determinism, sparse input.
local planhost = require "planhost"
local cjson = require "cjson"

local ROOT = os.getenv("PLANHOST_SOURCE") or "."

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function example_names()
  local names = {}
  local p = assert(io.popen("ls '" .. ROOT .. "/examples/snapshots'"))
  for line in p:lines() do
    local name = line:match("^(.+)%.json$")
    if name then names[#names + 1] = name end
  end
  p:close()
  table.sort(names)
  return names
end

-- Lua source for plain data (strings, numbers, booleans, tables with sorted keys).
local function lua_src(v)
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  if t == "number" or t == "boolean" then return tostring(v) end
  if t == "nil" then return "nil" end
  assert(t == "table", "lua_src: " .. t)
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do
    local ks = type(k) == "number" and ("[" .. k .. "]") or ("[" .. string.format("%q", k) .. "]")
    parts[#parts + 1] = ks .. "=" .. lua_src(v[k])
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function dist2(ax, ay, bx, by)
  return (ax - bx) * (ax - bx) + (ay - by) * (ay - by)
end

describe("heuristic", function()
  local host, registry, subsets, by_name
  local SETS -- name -> { tools = {names}, template = name for host:parse }

  setup(function()
    host = assert(planhost.open(ROOT))
    registry, subsets = host:tools()
    by_name = {}
    local all = {}
    for _, t in ipairs(registry) do
      by_name[t.name] = t
      all[#all + 1] = t.name
    end
    SETS = {
      full = { tools = all, template = "full" },
      simplified = { tools = subsets.simplified, template = "simplified" },
      compact = { tools = subsets.compact, template = "compact" },
    }
  end)
  teardown(function() host:close() end)

  -- Plans in the sandbox; returns the plan's JSON text and the decoded plan.
  local function plan_text(snapshot_text, opts)
    local src = string.format(
      "return cjson.encode(require('heuristic').plan(cjson.decode(%q), %s))",
      snapshot_text, lua_src(opts))
    local out, msg = host:exec(src, "heuristic_spec")
    assert(out, msg)
    return out, cjson.decode(out)
  end

  local function encode_snapshot(snap)
    return type(snap) == "string" and snap or cjson.encode(snap)
  end

  -- Living enemy ids, obstacle cells and the agent's cell of a (decoded) snapshot.
  local function facts(snap)
    local f = { ids = {}, obstacles = {}, mx = 0, my = 0 }
    if type(snap.me) == "table" and type(snap.me.pos) == "table" then
      f.mx, f.my = snap.me.pos.x or 0, snap.me.pos.y or 0
    end
    for _, e in ipairs(type(snap.enemies) == "table" and snap.enemies or {}) do
      if type(e) == "table" and e.id ~= nil and not (type(e.hp) == "number" and e.hp <= 0) then
        f.ids[tostring(math.tointeger(e.id) or e.id)] = e
      end
    end
    for _, o in ipairs(type(snap.obstacles) == "table" and snap.obstacles or {}) do
      if type(o) == "table" and o.x and o.y then f.obstacles[o.x .. "," .. o.y] = true end
    end
    return f
  end

  local function is_int(v) return type(v) == "number" and v == math.floor(v) end

  -- Checks one plan against the parser (template) and the snapshot; returns the steps.
  local function check_plan(text, plan, snap, set, opts)
    opts = opts or {}
    local where = text
    assert.matches("^h%-%x+$", plan.plan_id, nil, false, where)
    local steps = plan.steps
    assert.is_table(steps, where)
    assert.is_true(#steps >= 1 and #steps <= (opts.max_steps or 4), where)
    -- The real parser with the tier's subset takes every step as it is.
    local events = host:parse(text, { template = set.template })
    local last
    for _, ev in ipairs(events) do
      if ev.kind == "plan" then last = ev end
    end
    assert.is_not_nil(last, where)
    assert.same({}, last.dropped, where)
    assert.is_false(last.partial, where)
    assert.same(steps, cjson.decode(last.json), where)
    -- Every parameter names something real.
    local offered = {}
    for _, n in ipairs(set.tools) do offered[n] = true end
    local f = facts(snap)
    local b = opts.bounds
    local function in_bounds(x, y)
      if b then
        return (not b.min_x or x >= b.min_x) and (not b.max_x or x <= b.max_x)
          and (not b.min_y or y >= b.min_y) and (not b.max_y or y <= b.max_y)
      end
      return x >= 0 and y >= 0
    end
    for i, step in ipairs(steps) do
      local tool = by_name[step.act]
      assert.is_not_nil(tool, where)
      assert.is_true(offered[step.act] == true, step.act .. " is not offered: " .. where)
      for _, p in ipairs(tool.params) do
        local v = step[p.name]
        if v ~= nil then
          if p.type == "entity" then
            assert.is_not_nil(f.ids[tostring(math.tointeger(v) or v)], "unknown entity in " .. where)
          elseif p.type == "position" then
            assert.is_true(is_int(v.x) and is_int(v.y), where)
            assert.is_true(in_bounds(v.x, v.y), "out of bounds: " .. where)
          elseif p.type == "int" then
            assert.is_true(is_int(v), where)
          elseif p.type == "float" then
            assert.is_true(type(v) == "number" and v > 0, where)
          elseif p.type == "enum" then
            assert.equal(v:lower(), v, where)
          end
        else
          assert.is_true(p.optional, "missing " .. p.name .. " in " .. where)
        end
      end
      if step.act == "TakeCover" and step.position then
        local x, y = step.position.x, step.position.y
        assert.is_nil(f.obstacles[x .. "," .. y], "cover on an obstacle: " .. where)
      end
      if step.act == "MoveTo" then
        assert.is_true(in_bounds(step.x, step.y), "out of bounds: " .. where)
      end
      assert.is_number(i)
    end
    return steps
  end

  -- Plans `snap` (a table or JSON text) with `opts` and checks it with the given tool set
  -- (default: the full registry). Returns steps, plan, text.
  local function plan_for(snap, opts, set_name)
    local text_in = encode_snapshot(snap)
    local set = SETS[set_name or "full"]
    opts = opts or {}
    if set_name then opts.tools = set.tools end
    local text, plan = plan_text(text_in, opts)
    local steps = check_plan(text, plan, cjson.decode(text_in), set, opts)
    return steps, plan, text
  end

  local function acts(steps)
    local list = {}
    for i, s in ipairs(steps) do list[i] = s.act end
    return list
  end

  local function index_of(steps, act)
    for i, s in ipairs(steps) do
      if s.act == act then return i end
    end
    return nil
  end

  -- A soldier at (5,5), steady and armed, with the given enemies and extras.
  local function soldier(fields)
    local snap = {
      agent = "t1",
      me = { hp = 100, ammo = 30, morale = 1.0, cooldowns = { ["throw:smoke"] = 0 }, pos = { x = 5, y = 5 } },
      enemies = {}, pois = {}, obstacles = {}, objective = "none",
    }
    for k, v in pairs(fields or {}) do
      if k == "me" then
        for mk, mv in pairs(v) do snap.me[mk] = mv end
      else
        snap[k] = v
      end
    end
    return snap
  end

  describe("on every example snapshot", function()
    for _, name in ipairs(example_names()) do
      for _, set_name in ipairs { "full", "simplified", "compact" } do
        it(name .. " gives a valid plan with the " .. set_name .. " tools", function()
          local steps = plan_for(read(ROOT .. "/examples/snapshots/" .. name .. ".json"), {}, set_name)
          assert.is_true(#steps >= 1)
        end)
      end
    end

    it("gives a valid plan with the default tool set (every registry tool)", function()
      for _, name in ipairs(example_names()) do
        local text_in = read(ROOT .. "/examples/snapshots/" .. name .. ".json")
        local text, plan = plan_text(text_in, nil)
        check_plan(text, plan, cjson.decode(text_in), SETS.full)
      end
    end)
  end)

  describe("threat", function()
    it("is the nearest enemy, not the first in the list", function()
      local snap = soldier { enemies = {
        { id = 1, pos = { x = 17, y = 5 }, hp = 100 },
        { id = 2, pos = { x = 5, y = 16 }, hp = 100 },
        { id = 3, pos = { x = 9, y = 7 }, hp = 100 },
        { id = 4, pos = { x = 14, y = 14 }, hp = 100 },
      } }
      for _, set_name in ipairs { "full", "simplified", "compact" } do
        local steps = plan_for(snap, {}, set_name)
        local i = assert(index_of(steps, "Attack"), set_name)
        assert.equal(3, steps[i].target_id)
      end
    end)

    it("is the nearest for smoke and cover too", function()
      local snap = soldier {
        me = { hp = 20 },
        enemies = { { id = 1, pos = { x = 25, y = 5 }, hp = 100 }, { id = 2, pos = { x = 5, y = 9 }, hp = 100 } },
      }
      local steps = plan_for(snap, {}, "compact")
      assert.same({ "ThrowSmoke", 5, 7 }, { steps[1].act, steps[1].x, steps[1].y })
      local p = steps[index_of(steps, "TakeCover")].position
      assert.is_true(dist2(p.x, p.y, 5, 9) > 16 and p.y < 5, cjson.encode(p))
    end)

    it("ignores dead enemies", function()
      local snap = soldier { enemies = {
        { id = 7, pos = { x = 6, y = 5 }, hp = 0 },
        { id = 8, pos = { x = 5, y = 6 }, hp = -5 },
        { id = 9, pos = { x = 12, y = 5 }, hp = 40 },
      } }
      local steps = plan_for(snap)
      for _, s in ipairs(steps) do
        assert.is_true(s.target_id == nil or s.target_id == 9, cjson.encode(steps))
      end
      assert.equal(9, steps[index_of(steps, "Attack")].target_id)
    end)

    it("with every enemy dead is no threat at all", function()
      local snap = soldier {
        enemies = { { id = 7, pos = { x = 6, y = 5 }, hp = 0 } },
        pois = { { k = "exit", pos = { x = 20, y = 5 } } }, objective = "reach:exit",
      }
      local steps = plan_for(snap)
      assert.same({ "MoveTo", "Scan" }, acts(steps))
      assert.same({ 20, 5 }, { steps[1].x, steps[1].y })
    end)
  end)

  describe("scales", function()
    it("hp 80 and morale 0.8 attack, never heal (morale is 0..1, not a percentage)", function()
      local snap = soldier {
        me = { hp = 80, morale = 0.8, cooldowns = { heal = 0, ["throw:smoke"] = 0 } },
        enemies = { { id = 3, pos = { x = 13, y = 5 }, hp = 60 } },
      }
      for _, set_name in ipairs { "full", "simplified", "compact" } do
        local steps = plan_for(snap, {}, set_name)
        assert.equal("Attack", steps[1].act, set_name)
        assert.equal(3, steps[1].target_id)
        assert.is_nil(index_of(steps, "Heal"), set_name)
        assert.is_nil(index_of(steps, "Retreat"), set_name)
      end
    end)

    it("heals at low hp when no enemy is close", function()
      local snap = soldier {
        me = { hp = 20, cooldowns = { heal = 0 } },
        enemies = { { id = 3, pos = { x = 15, y = 5 }, hp = 60 } },
      }
      local steps = plan_for(snap, {}, "simplified")
      assert.is_not_nil(index_of(steps, "Heal"))
      assert.is_nil(index_of(steps, "ThrowSmoke"))
    end)

    it("retreats at low morale with the threat close", function()
      local snap = soldier {
        me = { morale = 0.1 },
        enemies = { { id = 3, pos = { x = 8, y = 5 }, hp = 60 } },
      }
      local steps = plan_for(snap, {}, "compact")
      assert.equal("Retreat", steps[1].act)
      assert.equal(3, steps[1].target_id)
      assert.is_nil(index_of(steps, "Attack"))
    end)
  end)

  describe("smoke", function()
    local function hurt(cooldown)
      return soldier {
        me = { hp = 20, cooldowns = { ["throw:smoke"] = cooldown, heal = 0 } },
        enemies = { { id = 3, pos = { x = 9, y = 5 }, hp = 60 }, { id = 4, pos = { x = 30, y = 30 } } },
        obstacles = { { x = 3, y = 5 } },
      }
    end

    it("is thrown between self and the threat when hp is low and the threat close", function()
      for _, set_name in ipairs { "full", "simplified", "compact" } do
        local steps = plan_for(hurt(0), {}, set_name)
        assert.equal("ThrowSmoke", steps[1].act, set_name)
        local s = steps[1]
        assert.is_true(s.x >= 5 and s.x <= 9 and s.y == 5, cjson.encode(s))
        assert.is_true(dist2(s.x, s.y, 9, 5) < dist2(5, 5, 9, 5))
        assert.is_not_nil(index_of(steps, "TakeCover"))
      end
    end)

    it("is skipped on cooldown (throw:smoke > 0): cover instead", function()
      for _, set_name in ipairs { "full", "simplified", "compact" } do
        local steps = plan_for(hurt(4.5), {}, set_name)
        assert.is_nil(index_of(steps, "ThrowSmoke"), set_name)
        assert.equal("TakeCover", steps[1].act, set_name)
      end
    end)

    it("falls back to TakeCover when ThrowSmoke is not offered", function()
      local text, plan = plan_text(cjson.encode(hurt(0)), { tools = { "TakeCover", "Attack", "Scan", "Wait" } })
      check_plan(text, plan, hurt(0), { tools = { "TakeCover", "Attack", "Scan", "Wait" } })
      assert.equal("TakeCover", plan.steps[1].act)
      assert.is_nil(index_of(plan.steps, "ThrowSmoke"))
    end)
  end)

  describe("explosives", function()
    local function pack(player_pos)
      return soldier {
        player = { hp = 100, pos = player_pos },
        enemies = {
          { id = 1, pos = { x = 12, y = 5 } }, { id = 2, pos = { x = 13, y = 6 } },
          { id = 3, pos = { x = 13, y = 4 } }, { id = 4, pos = { x = 20, y = 20 } },
        },
      }
    end

    it("go into a pack of enemies, never onto a friend", function()
      local steps = plan_for(pack({ x = 4, y = 5 }), {}, "simplified")
      local i = assert(index_of(steps, "ThrowExplosive"), cjson.encode(steps))
      assert.same({ 12, 5 }, { steps[i].x, steps[i].y })
      assert.is_true(i < index_of(steps, "Attack"))
      steps = plan_for(pack({ x = 11, y = 5 }), {}, "simplified")
      assert.is_nil(index_of(steps, "ThrowExplosive"))
      -- on cooldown (the engine's key is throw:grenade), or not offered: AoEAttack, or none
      local snap = pack({ x = 4, y = 5 })
      snap.me.cooldowns["throw:grenade"] = 3
      steps = plan_for(snap, {}, "simplified")
      i = assert(index_of(steps, "AoEAttack"), cjson.encode(steps))
      assert.same({ 12, 5 }, { steps[i].x, steps[i].y })
      assert.is_nil(index_of(steps, "ThrowExplosive"))
      steps = plan_for(pack({ x = 4, y = 5 }), {}, "compact")
      assert.is_nil(index_of(steps, "ThrowExplosive"))
      assert.is_nil(index_of(steps, "AoEAttack"))
    end)
  end)

  describe("ammo", function()
    it("at 0 reloads first, then attacks", function()
      local snap = soldier {
        me = { ammo = 0 },
        enemies = { { id = 3, pos = { x = 14, y = 5 }, hp = 60 } },
      }
      for _, set_name in ipairs { "full", "simplified", "compact" } do
        local steps = plan_for(snap, {}, set_name)
        assert.equal("Reload", steps[1].act, set_name)
        local a = assert(index_of(steps, "Attack"), set_name)
        assert.is_true(a > 1)
      end
    end)

    it("at 0 with the threat close: cover, reload, attack", function()
      local snap = soldier {
        me = { ammo = 0 },
        enemies = { { id = 3, pos = { x = 9, y = 5 }, hp = 60 } },
      }
      local steps = plan_for(snap, {}, "compact")
      assert.same({ "TakeCover", "Reload", "Attack" }, acts(steps))
    end)

    it("at 0 with Reload on cooldown does not attack", function()
      local snap = soldier {
        me = { ammo = 0, cooldowns = { reload = 1.5 } },
        enemies = { { id = 3, pos = { x = 14, y = 5 }, hp = 60 } },
      }
      local steps = plan_for(snap, {}, "compact")
      assert.is_nil(index_of(steps, "Reload"))
      assert.is_nil(index_of(steps, "Attack"))
    end)
  end)

  describe("cover", function()
    local function check_cover(snap, steps)
      local i = assert(index_of(steps, "TakeCover"), cjson.encode(steps))
      local p = assert(steps[i].position, "TakeCover without a position")
      local t = snap.enemies[1].pos
      for _, o in ipairs(snap.obstacles) do
        assert.is_false(o.x == p.x and o.y == p.y, "cover on an obstacle")
      end
      assert.is_true(dist2(p.x, p.y, t.x, t.y) > dist2(snap.me.pos.x, snap.me.pos.y, t.x, t.y),
        "cover is not farther from the threat: " .. cjson.encode(p))
      return p
    end

    it("is on the far side of a nearby obstacle, away from the threat", function()
      local snap = soldier {
        me = { hp = 50 },
        enemies = { { id = 3, pos = { x = 11, y = 5 }, hp = 60 } },
        obstacles = { { x = 6, y = 5 }, { x = 3, y = 5 }, { x = 3, y = 4 }, { x = 2, y = 7 } },
      }
      local steps = plan_for(snap, {}, "compact")
      local p = check_cover(snap, steps)
      assert.same({ x = 2, y = 5 }, p) -- behind (3,5), seen from (11,5)
    end)

    it("steps away from the threat when no obstacle is near", function()
      local snap = soldier {
        me = { hp = 50 },
        enemies = { { id = 3, pos = { x = 5, y = 9 }, hp = 60 } },
        obstacles = { { x = 20, y = 20 } },
      }
      local p = check_cover(snap, plan_for(snap, {}, "compact"))
      assert.same({ x = 5, y = 2 }, p)
    end)

    it("never lands on an obstacle, and stays inside the bounds", function()
      local snap = soldier {
        me = { hp = 50, pos = { x = 1, y = 1 } },
        enemies = { { id = 3, pos = { x = 4, y = 4 }, hp = 60 } },
        obstacles = { { x = 0, y = 0 }, { x = 1, y = 0 }, { x = 0, y = 1 } },
      }
      local steps = plan_for(snap, { bounds = { min_x = 0, min_y = 0, max_x = 10, max_y = 10 } }, "full")
      local i = assert(index_of(steps, "TakeCover"))
      local p = steps[i].position
      if p then
        assert.is_false((p.x == 0 and p.y == 0) or (p.x == 1 and p.y == 0) or (p.x == 0 and p.y == 1))
        assert.is_true(dist2(p.x, p.y, 4, 4) > dist2(1, 1, 4, 4))
      end
    end)

    it("is farther from the threat on every example snapshot", function()
      for _, name in ipairs(example_names()) do
        local snap = cjson.decode(read(ROOT .. "/examples/snapshots/" .. name .. ".json"))
        local steps = plan_for(snap)
        local i = index_of(steps, "TakeCover")
        if i and steps[i].position then
          -- the threat is the nearest living enemy
          local best, bd
          for _, e in ipairs(snap.enemies) do
            if not (e.hp and e.hp <= 0) then
              local d = dist2(e.pos.x, e.pos.y, snap.me.pos.x, snap.me.pos.y)
              if not bd or d < bd then best, bd = e, d end
            end
          end
          local p = steps[i].position
          assert.is_true(dist2(p.x, p.y, best.pos.x, best.pos.y) > bd, name)
        end
      end
    end)
  end)

  describe("with no enemies", function()
    it("moves to the objective's POI (extract -> a POI containing the word), then scans", function()
      local snap = soldier {
        pois = { { k = "ammo_crate", pos = { x = 6, y = 9 } }, { k = "extraction_zone", pos = { x = 22, y = 3 } } },
        objective = "extract",
      }
      for _, set_name in ipairs { "full", "simplified", "compact" } do
        local steps = plan_for(snap, {}, set_name)
        assert.same({ "MoveTo", "Scan" }, acts(steps))
        assert.same({ 22, 3, "run" }, { steps[1].x, steps[1].y, steps[1].speed })
      end
    end)

    it("reaches a named POI, a position, and escorts the VIP", function()
      local steps = plan_for(soldier {
        pois = { { k = "vent", pos = { x = 9, y = 1 } }, { k = "breach_door", pos = { x = 15, y = 8 } } },
        objective = "reach:breach_door",
      })
      assert.same({ 15, 8 }, { steps[1].x, steps[1].y })
      steps = plan_for(soldier { objective = "reach:24,5" })
      assert.same({ "MoveTo", 24, 5 }, { steps[1].act, steps[1].x, steps[1].y })
      steps = plan_for(soldier {
        objective = "escort",
        allies = { { id = 50, role = "vip", pos = { x = 12, y = 5 }, hp = 45 } },
      })
      assert.equal("MoveTo", steps[1].act)
      assert.is_true(dist2(steps[1].x, steps[1].y, 12, 5) <= 2, cjson.encode(steps[1]))
    end)

    it("moves around an obstacle on the goal cell, and scans with no objective", function()
      local steps = plan_for(soldier { objective = "reach:10,5", obstacles = { { x = 10, y = 5 } } })
      assert.equal("MoveTo", steps[1].act)
      assert.is_false(steps[1].x == 10 and steps[1].y == 5)
      steps = plan_for(soldier {})
      assert.same({ "Scan" }, acts(steps))
    end)

    it("reloads and heals first when needed", function()
      local steps = plan_for(soldier { me = { ammo = 0, hp = 20 }, objective = "reach:20,5" })
      assert.same({ "Reload", "Heal", "MoveTo", "Scan" }, acts(steps))
    end)
  end)

  describe("tool sets", function()
    local hurt = soldier {
      me = { hp = 20, ammo = 0 },
      enemies = { { id = 3, pos = { x = 8, y = 5 }, hp = 60 } },
    }

    it("only use offered tools, ending in Scan or Wait when nothing else fits", function()
      local set = { tools = { "Wait" } }
      local text, plan = plan_text(cjson.encode(hurt), { tools = set.tools })
      check_plan(text, plan, hurt, set)
      assert.same({ "Wait" }, acts(plan.steps))
      set = { tools = { "Scan", "Block" } }
      text, plan = plan_text(cjson.encode(soldier {}), { tools = set.tools })
      check_plan(text, plan, soldier {}, set)
      assert.same({ "Scan" }, acts(plan.steps))
    end)

    it("substitute within a chain (Attack -> AimedShot, TakeCover -> MoveTo)", function()
      local snap = soldier { me = { hp = 50 }, enemies = { { id = 3, pos = { x = 11, y = 5 }, hp = 60 } } }
      local set = { tools = { "AimedShot", "MoveTo", "Wait" } }
      local text, plan = plan_text(cjson.encode(snap), { tools = set.tools })
      check_plan(text, plan, snap, set)
      assert.same({ "MoveTo", "AimedShot" }, acts(plan.steps))
    end)

    it("accept a set, and lowercase or snake_case names", function()
      local snap = soldier { enemies = { { id = 3, pos = { x = 13, y = 5 }, hp = 60 } } }
      local _, a = plan_text(cjson.encode(snap), { tools = { Attack = true, TakeCover = true } })
      local _, b = plan_text(cjson.encode(snap), { tools = { "attack", "take_cover" } })
      assert.same(a, b)
      assert.same({ "Attack", "TakeCover" }, acts(a.steps))
    end)

    it("may be a read-only view (a registry subset inside the sandbox)", function()
      local snap = cjson.encode(soldier { me = { hp = 50 }, enemies = { { id = 3, pos = { x = 11, y = 5 } } } })
      local out = assert(host:exec(string.format(
        "return cjson.encode(require('heuristic').plan(cjson.decode(%q), {tools = require('tools').subsets.compact}))",
        snap)))
      local _, plan = plan_text(snap, { tools = SETS.compact.tools })
      assert.same(plan, cjson.decode(out))
    end)

    it("give an empty plan when nothing is offered", function()
      local _, plan = plan_text(cjson.encode(hurt), { tools = {} })
      assert.same({}, plan.steps)
    end)

    it("honour max_steps", function()
      local snap = soldier {
        me = { hp = 20, ammo = 0, cooldowns = { heal = 0 } },
        enemies = { { id = 3, pos = { x = 9, y = 5 }, hp = 60 } },
      }
      local steps = plan_for(snap, {}, "full")
      assert.same({ "ThrowSmoke", "TakeCover", "Heal", "Reload" }, acts(steps))
      steps = plan_for(snap, { max_steps = 2 }, "full")
      assert.same({ "ThrowSmoke", "TakeCover" }, acts(steps))
      steps = plan_for(snap, { max_steps = 1 }, "compact")
      assert.same({ "ThrowSmoke" }, acts(steps))
    end)
  end)

  describe("plans", function()
    it("are deterministic, with plan_id derived from the content", function()
      local text_in = read(ROOT .. "/examples/snapshots/twelve_enemies.json")
      local a = plan_text(text_in, {})
      local b = plan_text(text_in, {})
      assert.same(cjson.decode(a), cjson.decode(b))
      local other = assert(planhost.open(ROOT))
      local c = assert(other:exec(string.format(
        "return cjson.encode(require('heuristic').plan(cjson.decode(%q)))", text_in)))
      other:close()
      assert.same(cjson.decode(a), cjson.decode(c))
      -- a different plan has a different id; the same steps the same id
      local _, p1 = plan_text(cjson.encode(soldier { objective = "reach:20,5" }), {})
      local _, p2 = plan_text(cjson.encode(soldier { objective = "reach:21,5" }), {})
      local _, p3 = plan_text(cjson.encode(soldier { agent = "other", objective = "reach:20,5" }), {})
      assert.not_equal(p1.plan_id, p2.plan_id)
      assert.equal(p1.plan_id, p3.plan_id)
    end)

    it("survive a snapshot missing most fields", function()
      for _, text_in in ipairs {
        "{}",
        '{"me":null,"enemies":null}',
        '{"me":{"hp":50},"obstacles":[{"x":1}],"pois":[{"k":"x"}],"objective":"extract"}',
        '{"enemies":[{"id":3}]}',
        '{"enemies":[{"pos":{"x":4,"y":0}}, 7, "x"]}',
        '{"objective":"reach:nowhere","allies":"none"}',
        '{"objective":"escort"}',
      } do
        local text, plan = plan_text(text_in, {})
        check_plan(text, plan, cjson.decode(text_in), SETS.full)
      end
      -- defaults: hp 100, morale 1, ammo 0 -> reload, then attack the one enemy
      local text_in = '{"enemies":[{"id":3,"pos":{"x":10,"y":0}}]}'
      local text, plan = plan_text(text_in, { tools = SETS.compact.tools })
      check_plan(text, plan, cjson.decode(text_in), SETS.compact)
      assert.same({ "Reload", "Attack" }, { plan.steps[1].act, plan.steps[2].act })
    end)

    it("report their speed (printed, not asserted)", function()
      for _, name in ipairs { "hello_companion", "twelve_enemies" } do
        local text_in = read(ROOT .. "/examples/snapshots/" .. name .. ".json")
        local out = assert(host:exec(string.format([[
          local heuristic = require "heuristic"
          local snap = cjson.decode(%q)
          local t0 = os.clock()
          for _ = 1, 1000 do heuristic.plan(snap) end
          return (os.clock() - t0) * 1000]], text_in)))
        io.stderr:write(string.format("\nheuristic.plan on %s: %.1f us per plan (1000 plans)\n",
          name, tonumber(out)))
      end
    end)
  end)
end)
