-- examples/scenarios/gen.lua — writes the scenario streams: snapshots as a game would send
-- them, tick by tick, one JSON object per line (the snapshot format of shared/DESIGN.md).
--
--   lua5.4 examples/scenarios/gen.lua examples/scenarios           write the three files
--   lua5.4 examples/scenarios/gen.lua --check examples/scenarios   read them back (lua-cjson)
--
-- Output is byte-stable: every random choice comes from the xorshift64* generator below
-- (never math.random), each scenario from its own seed, and every number is written by
-- string.format with a fixed format: integers (ids, hp, ammo, obstacle cells) as %d, entity
-- positions as floats with two decimals, times with one. README.md beside this file says
-- what each scenario simulates. Plain Lua 5.4; --check also needs lua-cjson.

local SEED = 20250101          -- scenario k uses SEED + k
local TICK = 0.1               -- seconds per tick

-- Random numbers: xorshift64* (Vigna), 64-bit integer arithmetic, wrap-around ------------

local Rng = {}
Rng.__index = Rng

local function rng(seed)
  local x = seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019   -- spread small seeds
  if x == 0 then x = 1 end
  return setmetatable({ x = x }, Rng)
end

function Rng:next()
  local x = self.x
  x = x ~ (x >> 12); x = x ~ (x << 25); x = x ~ (x >> 27)
  self.x = x
  return x * 0x2545F4914F6CDD1D
end

function Rng:float() return (self:next() >> 11) * (1.0 / 9007199254740992.0) end   -- [0, 1)
function Rng:range(a, b) return a + (b - a) * self:float() end
function Rng:int(a, b) return a + (self:next() >> 1) % (b - a + 1) end                -- [a, b]
function Rng:chance(p) return self:float() < p end
function Rng:noise(r) return self:range(-r, r) end

function Rng:shuffle(list)
  for i = #list, 2, -1 do
    local j = self:int(1, i)
    list[i], list[j] = list[j], list[i]
  end
end

-- JSON writing: fixed key order, fixed number formats -------------------------------------

local fmt, concat = string.format, table.concat

local function num(f, v)
  local s = fmt(f, v)
  if s:match("^%-0%.?0*$") then s = s:sub(2) end   -- no "-0.00"
  return s
end

local function str(s)
  assert(not s:find('[%c"\\]'), "plain ASCII names only")
  return '"' .. s .. '"'
end

local function pos(x, y) return '{"x":' .. num("%.2f", x) .. ',"y":' .. num("%.2f", y) .. '}' end

local function list(items, each)
  local out = {}
  for i, v in ipairs(items) do out[i] = each(v) end
  return "[" .. concat(out, ",") .. "]"
end

local function enemy_json(e)
  return fmt('{"id":%d,"name":%s,"pos":%s,"hp":%d,"cover":%s,"last_seen":%s}', e.id,
    str(e.name), pos(e.x, e.y), e.hp, str(e.cover), num("%.1f", e.last_seen))
end

local function poi_json(p) return fmt('{"k":%s,"pos":%s}', str(p.k), pos(p.x, p.y)) end
local function cell_json(c) return fmt('{"x":%d,"y":%d}', c[1], c[2]) end

-- s: agent, t, player{hp,x,y,stance,orders}, me{hp,ammo,morale,smoke,x,y}, enemies, pois,
-- obstacles, objective.
local function snapshot(s)
  local p, me = s.player, s.me
  return concat {
    '{"agent":', str(s.agent), ',"t":', num("%.1f", s.t),
    ',"player":{"hp":', fmt("%d", p.hp), ',"pos":', pos(p.x, p.y), ',"stance":', str(p.stance),
    ',"orders":', list(p.orders, str), '}',
    ',"me":{"hp":', fmt("%d", me.hp), ',"ammo":', fmt("%d", me.ammo),
    ',"morale":', num("%.2f", me.morale), ',"cooldowns":{"throw:smoke":', num("%.1f", me.smoke),
    '},"pos":', pos(me.x, me.y), '}',
    ',"enemies":', list(s.enemies, enemy_json), ',"pois":', list(s.pois, poi_json),
    ',"obstacles":', list(s.obstacles, cell_json), ',"objective":', str(s.objective), '}',
  }
end

-- Small world helpers ----------------------------------------------------------------------

local function clamp(v, lo, hi) return v < lo and lo or (v > hi and hi or v) end

local function dist(ax, ay, bx, by) return math.sqrt((ax - bx) ^ 2 + (ay - by) ^ 2) end

-- Moves the table's true x, y toward (tx, ty) by at most `speed`; true when it arrived.
local function step_toward(o, tx, ty, speed)
  local d = dist(o.x, o.y, tx, ty)
  if d <= speed then o.x, o.y = tx, ty return true end
  o.x, o.y = o.x + (tx - o.x) / d * speed, o.y + (ty - o.y) / d * speed
  return false
end

-- What a sensor reports of an enemy: its position with noise, everything else as known.
local function sensed(r, e, noise)
  return { id = e.id, name = e.name, x = e.x + r:noise(noise), y = e.y + r:noise(noise),
           hp = e.hp, cover = e.cover, last_seen = e.last_seen }
end

-- 1. patrol: one companion walking a loop of four waypoints -------------------------------

local function patrol(r)
  local wps = { { 10, 10 }, { 34, 10 }, { 34, 26 }, { 10, 26 } }
  local pois = { { k = "guard_post", x = 6, y = 6 } }
  for i, w in ipairs(wps) do pois[#pois + 1] = { k = "wp" .. i, x = w[1], y = w[2] } end
  local obstacles = { { 20, 13 }, { 21, 13 }, { 22, 13 }, { 30, 18 }, { 30, 19 }, { 14, 22 },
                      { 15, 22 }, { 26, 29 } }
  local me = { x = 10, y = 10, hp = 100, ammo = 30, morale = 0.9, smoke = 0 }
  local scout = { id = 21, name = "Scout", x = 52, y = 44, hp = 100, cover = "high", last_seen = 0 }
  local windows = { { 120, 170 }, { 330, 360 }, { 480, 540 } }   -- ticks the scout is seen
  local LINGER = 10                                              -- ticks listed after
  local next_wp, lines = 2, {}
  for tick = 0, 599 do
    local t = tick * TICK
    if step_toward(me, wps[next_wp][1], wps[next_wp][2], 0.15) then
      next_wp = next_wp % #wps + 1
    end
    local enemies = {}
    for _, w in ipairs(windows) do
      if tick >= w[1] and tick < w[2] + LINGER then
        if tick < w[2] then
          step_toward(scout, 46, 40, 0.03)
          scout.last_seen = t
        end
        enemies[1] = sensed(r, scout, 0.3)
      end
    end
    lines[#lines + 1] = snapshot {
      agent = "c1", t = t,
      player = { hp = 100, x = 6.6 + r:noise(0.1), y = 5.4 + r:noise(0.1), stance = "stand",
                 orders = { "patrol" } },
      me = { hp = me.hp, ammo = me.ammo, morale = me.morale, smoke = 0,
             x = me.x + r:noise(0.3), y = me.y + r:noise(0.3) },
      enemies = enemies, pois = pois, obstacles = obstacles, objective = "reach:wp" .. next_wp,
    }
  end
  return lines
end

-- 2. skirmish: one companion holding a position against 3 to 5 enemies -------------------

local SKIRMISH_ENEMIES = {
  -- id, name, tick it appears, where it comes from, the cover it heads for, hp
  { 31, "Raider", 0, 45, 12, 36, 15, 70 },
  { 32, "Raider", 0, 46, 22, 37, 24, 60 },
  { 33, "Gunner", 0, 48, 30, 39, 26, 80 },
  { 34, "Flanker", 180, 40, 40, 28, 31, 60 },
  { 35, "Heavy", 320, 50, 18, 36, 17, 100 },
}

local function spawn(def)
  return { id = def[1], name = def[2], at = def[3], x = def[4], y = def[5], gx = def[6],
           gy = def[7], hp = def[8], cover = "none", last_seen = 0, dwell = 0, dead_for = -1 }
end

-- An enemy's move this tick: to its cover, wait there, then shift to a new spot nearby.
local function enemy_move(r, e)
  if e.dwell > 0 then e.dwell = e.dwell - 1 return end
  if step_toward(e, e.gx, e.gy, 0.12) then
    e.cover, e.dwell = r:chance(0.5) and "high" or "low", r:int(60, 140)
    e.gx, e.gy = clamp(e.gx + r:int(-4, 4), 26, 50), clamp(e.gy + r:int(-4, 4), 8, 36)
  else
    e.cover = "none"
  end
end

local function companion_fire(r, me, alive)
  if me.reload > 0 then
    me.reload = me.reload - 1
    if me.reload == 0 then me.ammo = 30 end
    return
  end
  if me.ammo == 0 then me.reload = 20 return end
  local target, best = nil, 24
  for _, e in ipairs(alive) do
    local d = dist(me.x, me.y, e.x, e.y)
    if d < best then target, best = e, d end
  end
  if target and r:chance(0.15) then
    me.ammo = me.ammo - 1
    if r:chance(target.cover == "high" and 0.35 or 0.55) then
      target.hp = math.max(0, target.hp - r:int(6, 14))
    end
  end
end

local function enemies_fire(r, me, player, alive, smoke_left)
  for _, e in ipairs(alive) do
    if dist(me.x, me.y, e.x, e.y) < 22 and r:chance(0.03) then
      if r:chance(smoke_left > 0 and 0.1 or 0.35) then me.hp = math.max(12, me.hp - r:int(3, 8)) end
    end
    if r:chance(0.008) then player.hp = math.max(40, player.hp - r:int(2, 6)) end
  end
end

-- Smoke when hurt and it is ready (then move to the second cover spot); a medkit when low.
local function companion_react(me, alive)
  if me.smoke > 0 then me.smoke = math.max(0, me.smoke - TICK) end
  if me.hp < 55 and me.smoke == 0 and #alive > 0 then
    me.smoke, me.smoke_left, me.gx, me.gy = 20.0, 80, 18, 24
  end
  if me.hp < 30 then me.hp = math.min(100, me.hp + 45) end
  if me.smoke_left > 0 then me.smoke_left = me.smoke_left - 1 end
  step_toward(me, me.gx, me.gy, 0.1)
end

local function skirmish(r)
  local pois = { { k = "ammo_crate", x = 16, y = 20 }, { k = "exit", x = 4, y = 30 } }
  local obstacles = { { 22, 18 }, { 22, 19 }, { 22, 20 }, { 22, 21 }, { 22, 22 }, { 20, 26 },
                      { 35, 15 }, { 35, 16 }, { 38, 24 }, { 38, 25 }, { 27, 30 } }
  local me = { x = 20, y = 20, gx = 20, gy = 20, hp = 100, ammo = 30, reload = 0, smoke = 0,
               smoke_left = 0 }
  local player = { hp = 100 }
  local enemies, order, lines = {}, {}, {}
  for tick = 0, 599 do
    local t = tick * TICK
    for _, def in ipairs(SKIRMISH_ENEMIES) do
      if def[3] == tick then
        local e = spawn(def)
        enemies[e.id], order[#order + 1] = e, e
      end
    end
    local alive = {}
    for _, e in ipairs(order) do if e.hp > 0 then alive[#alive + 1] = e end end
    for _, e in ipairs(alive) do
      enemy_move(r, e)
      if r:chance(0.9) then e.last_seen = t end      -- sometimes not seen this tick
    end
    companion_fire(r, me, alive)
    enemies_fire(r, me, player, alive, me.smoke_left)
    companion_react(me, alive)
    -- the dead stay listed (hp 0) for a few ticks, then drop out of the list
    local kept = {}
    for _, e in ipairs(order) do
      if e.hp == 0 and e.dead_for < 0 then e.dead_for, e.cover = r:int(4, 12), "none" end
      if e.dead_for ~= 0 then kept[#kept + 1] = e end
      if e.dead_for > 0 then e.dead_for = e.dead_for - 1 end
    end
    order = kept
    if r:chance(0.3) then r:shuffle(order) end       -- perception lists in varying order
    local seen = {}
    for i, e in ipairs(order) do seen[i] = sensed(r, e, 0.3) end
    local morale = clamp(0.35 + 0.5 * me.hp / 100 - 0.05 * #alive + (me.smoke_left > 0 and 0.1 or 0), 0.1, 1)
    lines[#lines + 1] = snapshot {
      agent = "c2", t = t,
      player = { hp = player.hp, x = 16.6 + r:noise(0.1), y = 21.4 + r:noise(0.1), stance = "crouch",
                 orders = { "hold_east" } },
      me = { hp = me.hp, ammo = me.ammo, morale = morale, smoke = me.smoke,
             x = me.x + r:noise(0.3), y = me.y + r:noise(0.3) },
      enemies = seen, pois = pois, obstacles = obstacles, objective = "hold",
    }
  end
  return lines
end

-- 3. crowd: 50 companions (a1..a50) in five squads of ten, 20 ticks ------------------------

local SQUADS = {
  -- centre, drift per tick, objective, order, enemies as {dx, dy, hp} from the centre, and
  -- the hp the squad's fire takes off each of its enemies per tick
  { 30, 30, 0.08, 0, "hold", "advance_east", { { 10, 2, 80 }, { 11, -3, 60 } }, 0 },
  { 90, 30, 0, 0, "hold", "hold", { { 18, 0, 90 }, { 19, 4, 70 }, { 17, -5, 100 } }, 0 },
  { 150, 30, 0, 0.06, "extract", "fall_back", {}, 0 },
  { 30, 90, 0, 0, "hold", "hold_north", { { 6, 3, 70 }, { 7, -2, 50 }, { 5, 6, 90 }, { 8, 1, 30 } }, 0 },
  { 90, 90, -0.05, 0, "hold", "push", { { 8, 0, 22 } }, 2 },
}
local NAMES = { "Raider", "Gunner", "Sniper", "Brute" }

local function squad_world(r, k, def)
  local sq = { cx = def[1], cy = def[2], vx = def[3], vy = def[4], objective = def[5],
               order = def[6], bleed = def[8], enemies = {}, pois = {}, obstacles = {} }
  for j, e in ipairs(def[7]) do
    sq.enemies[j] = { id = 100 + 10 * k + j, name = NAMES[j], x = def[1] + e[1], y = def[2] + e[2],
                      hp = e[3], cover = j % 2 == 0 and "low" or "high", last_seen = 0 }
  end
  sq.pois[1] = { k = def[5] == "extract" and "extraction" or "supply_cache", x = def[1] - 8,
                 y = def[2] + 5 }
  for j = 1, 5 do sq.obstacles[j] = { def[1] + r:int(-6, 6), def[2] + r:int(3, 6) } end
  return sq
end

local function crowd_agent(r, i)
  return { id = "a" .. i, squad = (i - 1) // 10 + 1, slot = (i - 1) % 10,
           hp = r:chance(0.7) and 100 or r:int(45, 95), ammo = 30 - r:int(0, 14),
           morale = r:range(0.55, 0.95), smoke = r:chance(0.1) and r:range(2, 15) or 0 }
end

-- One agent's view of its squad's enemies: own noise, own order (nearest first as it
-- senses them), and now and then an enemy it has not seen for a moment.
local function crowd_view(r, a, sq, x, y, t)
  local seen = {}
  for _, e in ipairs(sq.enemies) do
    local s = sensed(r, e, 0.3)
    s.last_seen = r:chance(0.8) and t or math.max(0, t - TICK * r:int(1, 5))
    seen[#seen + 1] = s
  end
  table.sort(seen, function(p, q) return dist(x, y, p.x, p.y) < dist(x, y, q.x, q.y) end)
  return seen
end

local function crowd(r)
  local squads, agents, lines = {}, {}, {}
  for k, def in ipairs(SQUADS) do squads[k] = squad_world(r, k, def) end
  for i = 1, 50 do agents[i] = crowd_agent(r, i) end
  local player = { x = 60, y = 60 }
  for tick = 0, 19 do
    local t = tick * TICK
    player.x = player.x + 0.05
    for _, sq in ipairs(squads) do
      sq.cx, sq.cy = sq.cx + sq.vx, sq.cy + sq.vy
      for _, e in ipairs(sq.enemies) do
        e.x, e.y = e.x + r:noise(0.05), e.y + r:noise(0.05)
        e.hp = math.max(0, e.hp - sq.bleed)
      end
    end
    for _, a in ipairs(agents) do
      local sq = squads[a.squad]
      local x = sq.cx + (a.slot % 5) * 1.5 - 3 + r:noise(0.3)
      local y = sq.cy + (a.slot // 5) * 1.5 - 0.75 + r:noise(0.3)
      if #sq.enemies > 0 and r:chance(0.1) and a.ammo > 0 then a.ammo = a.ammo - 1 end
      a.smoke = math.max(0, a.smoke - TICK)
      lines[#lines + 1] = snapshot {
        agent = a.id, t = t,
        player = { hp = 100, x = player.x, y = player.y, stance = "stand", orders = { sq.order } },
        me = { hp = a.hp, ammo = a.ammo, morale = a.morale, smoke = a.smoke, x = x, y = y },
        enemies = crowd_view(r, a, sq, x, y, t), pois = sq.pois, obstacles = sq.obstacles,
        objective = sq.objective,
      }
    end
  end
  return lines
end

-- Writing and checking ---------------------------------------------------------------------

local SCENARIOS = { { "patrol", patrol }, { "skirmish", skirmish }, { "crowd", crowd } }

local function write(dir)
  for k, sc in ipairs(SCENARIOS) do
    local lines = sc[2](rng(SEED + k))
    local path = dir .. "/" .. sc[1] .. ".ndjson"
    local f = assert(io.open(path, "wb"))
    f:write(concat(lines, "\n"), "\n")
    f:close()
    print(fmt("%s: %d lines", path, #lines))
  end
end

local INT_FIELDS = { "hp", "ammo", "id" }

-- Every line is JSON with the fields of the format; ids, hp and ammo written as integers.
local function check_line(cjson, line, where)
  local ok, s = pcall(cjson.decode, line)
  assert(ok and type(s) == "table", where .. ": not JSON")
  assert(type(s.agent) == "string" and type(s.t) == "number", where .. ": agent, t")
  assert(type(s.player.hp) == "number" and type(s.player.pos.x) == "number", where .. ": player")
  assert(type(s.player.stance) == "string" and type(s.player.orders) == "table", where .. ": player")
  local me = s.me
  assert(type(me.hp) == "number" and type(me.ammo) == "number" and type(me.morale) == "number"
    and type(me.cooldowns["throw:smoke"]) == "number" and type(me.pos.y) == "number", where .. ": me")
  for _, e in ipairs(s.enemies) do
    assert(type(e.id) == "number" and type(e.name) == "string" and type(e.pos.x) == "number"
      and type(e.hp) == "number" and type(e.cover) == "string"
      and type(e.last_seen) == "number", where .. ": enemy")
  end
  for _, p in ipairs(s.pois) do assert(type(p.k) == "string" and type(p.pos.x) == "number", where) end
  for _, o in ipairs(s.obstacles) do assert(math.tointeger(o.x) and math.tointeger(o.y), where) end
  assert(type(s.objective) == "string", where .. ": objective")
  for _, k in ipairs(INT_FIELDS) do
    for v in line:gmatch('"' .. k .. '":(%-?[%d.eE+]+)') do
      assert(v:match("^%-?%d+$"), where .. ": " .. k .. " is not written as an integer")
    end
  end
  assert(line:match('"pos":{"x":%-?%d+%.%d+'), where .. ": positions are floats")
end

local function check(dir)
  local cjson = require "cjson"
  for _, sc in ipairs(SCENARIOS) do
    local path, n = dir .. "/" .. sc[1] .. ".ndjson", 0
    for line in io.lines(path) do
      n = n + 1
      check_line(cjson, line, path .. ":" .. n)
    end
    print(fmt("%s: %d lines ok", path, n))
  end
end

if arg[1] == "--check" then check(arg[2] or ".") else write(arg[1] or ".") end
