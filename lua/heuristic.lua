-- lua/heuristic.lua — the heuristic tier: a multi-step tactical plan from a snapshot, without
-- a model. It is what answers when every LLM tier failed or ran out of time, and what a
-- policy may hand out at once as a provisional plan, so it must be cheap, deterministic and
-- always valid against the registry.
--
--   local heuristic = require "heuristic"
--   heuristic.plan(snapshot, opts) -> { plan_id = "h-1a2b3c4d", steps = { {act = ...}, ... } }
--
-- `snapshot` is a decoded snapshot (plain tables as cjson decodes them, or read-only views);
-- missing fields get lua/snapshot.lua's defaults (snapshot.normalize fills `me` and
-- `objective`; the lists enemies, allies, pois, obstacles default to empty in place, as
-- normalizing them would deep-copy every entry). `opts` (optional):
--   tools      list of tool names the plan may use (default: every registry tool); names not
--              in the registry are ignored, case and underscores are forgiven ("move_to")
--   bounds     {min_x, min_y, max_x, max_y}: every position the plan names is kept inside
--              (a missing side is open). Default DEFAULT_BOUNDS: cells are >= 0.
--   max_steps  at most this many steps (default MAX_STEPS)
--
-- Scales, as lua/snapshot.lua documents them (and the engine this replaces got wrong):
--   me.hp      0..100 health points (default 100)
--   me.morale  0..1, a fraction: 1 = steady, 0 = broken -- NOT a percentage (default 1.0)
--   me.ammo    rounds left in the current weapon (default 0)
--   positions  integer grid cells {x, y}; distances are Euclidean, in cells
--   cooldowns  me.cooldowns[key] = seconds left; a tool whose key is > 0 is not used
--
-- Cooldown keys, derived from the example snapshots ("throw:smoke", "heal", "reload",
-- "throw:grenade"): the tool's PascalCase words, lowercased, joined with ":" (ThrowSmoke ->
-- "throw:smoke", Heal -> "heal", AimedShot -> "aimed:shot"). Also honoured: the lowercased
-- name ("throwsmoke"), snake_case ("throw_smoke"), and COOLDOWN_ALIASES (the engine calls
-- ThrowExplosive's charge a grenade: "throw:grenade").
--
-- Rules (thresholds are the constants below; "the threat" is the nearest living enemy by
-- distance, not the first in the list; enemies with hp <= 0 are dead and ignored; ties keep
-- list order):
--   no living enemy   Reload if ammo is 0; Heal if hp < HP_LOW; MoveTo the objective's goal
--                     ("extract" -> a POI whose k equals or contains the word or one of its
--                     OBJECTIVE_SYNONYMS, "reach:NAME" -> that POI, "reach:X,Y" -> that cell,
--                     "escort" -> next to the ally with role "vip", else the first ally);
--                     then Scan.
--   threat beyond ENGAGE_RANGE, hp >= HP_LOW: keep to the objective (as above) or, with no
--                     goal, Reload if ammo is 0, Approach the threat and Attack it.
--   otherwise, in this order:
--     Retreat        morale < MORALE_LOW and the threat within CLOSE_RANGE
--     ThrowSmoke     hp < HP_LOW and the threat within CLOSE_RANGE; at a cell between self
--                    and the threat (SMOKE_FRACTION of the way)
--     TakeCover      first when the threat is close, hp < HP_HEALTHY, morale is low or
--                    OUTNUMBERED enemies are within ENGAGE_RANGE; otherwise after attacking.
--                    The cell: on the far side of an obstacle within COVER_SEARCH_RADIUS,
--                    relative to the threat, else STEP_AWAY cells away from the threat;
--                    never an obstacle, always farther from the threat than the agent is now;
--                    cells shielded by an obstacle win, then the shortest walk; with no
--                    such cell, TakeCover without a position (the engine's nearest cover).
--     Heal           hp < HP_LOW (self)
--     Reload         ammo is 0, before any attack
--     ThrowExplosive BLAST_MIN_ENEMIES or more enemies within BLAST_RADIUS of the threat, no
--                    player or ally inside it, the threat THROW_MIN..THROW_MAX cells away
--     Attack         armed (ammo > 0 or reloaded), not retreating, and hp >= HP_LOW unless
--                    the plan heals first
-- Fallbacks: a tool not in opts.tools or on cooldown is replaced by the next one of its chain
-- (ThrowSmoke -> TakeCover, TakeCover -> MoveTo, Retreat -> MoveTo, Attack -> AimedShot ->
-- QuickAttack -> CoverFire -> MarkTarget, ThrowExplosive -> AoEAttack, Scan -> Wait); a step
-- already in the plan is not repeated; the first max_steps steps of this order are kept;
-- a plan left empty gets Scan, else Wait, else any
-- allowed tool without required parameters (TakeCover, Block, Dodge, Parry).
--
-- Every step is valid for lua/tools.lua: integer cells, lowercase enums, positive floats,
-- target ids of living enemies in the snapshot. plan_id is "h-" and a 32-bit FNV-1a hash of
-- the steps, so equal plans have equal ids.
--
-- Depends on lua/snapshot.lua and lua/tools.lua. Keeps no state between calls; inputs are
-- only read; the returned plan is a new table owned by the caller.

local snapshot = require "snapshot"
local registry = require "tools"
local normalize = snapshot.normalize
-- Globals as locals: in the sandbox a global is a lookup through the frozen base.
local type, tostring, tonumber, pairs, ipairs = type, tostring, tonumber, pairs, ipairs

-- Thresholds (a designer's knobs) ------------------------------------------------------------

local HP_LOW = 35              -- hp below this (of 0..100) is low: smoke, cover, heal
local HP_HEALTHY = 60          -- hp below this fights from cover
local MORALE_LOW = 0.3         -- morale below this (of 0..1) retreats from a close threat
local CLOSE_RANGE = 6          -- cells: a threat this near is close
local ENGAGE_RANGE = 12        -- cells: threats beyond this are distant
local OUTNUMBERED = 3          -- this many enemies within ENGAGE_RANGE: take cover first
local COVER_SEARCH_RADIUS = 6  -- cells: obstacles this near can give cover
local STEP_AWAY = 3            -- cells: how far to step away when no obstacle gives cover
local RETREAT_DISTANCE = 8     -- cells: Retreat's distance from the threat
local SMOKE_FRACTION = 0.5     -- where the smoke lands, from self (0) to the threat (1)
local BLAST_RADIUS = 2.5       -- cells: enemies this near the threat share an explosive
local BLAST_MIN_ENEMIES = 3    -- enemies (the threat included) worth an explosive
local THROW_MIN, THROW_MAX = 4, 10 -- cells: explosive throwing distance (never at one's feet)
local SCAN_RADIUS = 10         -- Scan's radius
local WAIT_SECONDS = 2         -- Wait's duration
local COVER_FIRE_SECONDS = 3   -- CoverFire's duration (Attack fallback)
local RUN_DISTANCE = 6         -- MoveTo farther than this runs, else walks
local ESCORT_RADIUS = 2        -- cells: closer than this to the escorted ally is near enough
local MAX_STEPS = 4            -- default opts.max_steps
local DEFAULT_BOUNDS = { min_x = 0, min_y = 0 } -- without opts.bounds: cells are >= 0
local OBJECTIVE_SYNONYMS = { extract = { "extraction", "exit", "evac" } }
local COOLDOWN_ALIASES = { ThrowExplosive = { "throw:grenade", "grenade" } }

-- Registry, compiled once at load ------------------------------------------------------------

local sfind, slower, sbyte, sformat, smatch, sgsub =
  string.find, string.lower, string.byte, string.format, string.match, string.gsub
local floor, sqrt, huge, tointeger, mtype, mmax, mmin = math.floor, math.sqrt, math.huge,
  math.tointeger, math.type, math.max, math.min

local FNV_OFFSET, FNV_PRIME, MASK32 = 0x811c9dc5, 0x01000193, 0xffffffff

local function hash_string(h, s)
  for i = 1, #s do h = ((h ~ sbyte(s, i)) * FNV_PRIME) & MASK32 end
  return h
end

local PARAMS = {}     -- tool name -> { param name, ... } in registry order
local ACT_HASH = {}   -- tool name -> hash of the name (mixed in as one number)
local CD_KEYS = {}    -- tool name -> { cooldown key, ... }
local ALL = {}        -- tool name -> true, the default tool set
local BY_LOWER = {}   -- lowercased name without "_" -> name
for _, t in ipairs(registry.tools) do
  local name = t.name
  local params = {}
  for _, p in ipairs(t.params) do params[#params + 1] = p.name end
  PARAMS[name], ACT_HASH[name], ALL[name] = params, hash_string(FNV_OFFSET, name), true
  BY_LOWER[slower(name)] = name
  local words = {}
  for w in string.gmatch(name, "%u[%l%d]*") do words[#words + 1] = slower(w) end
  local keys, seen = {}, {}
  for _, k in ipairs { table.concat(words, ":"), slower(name), table.concat(words, "_"),
    table.unpack(COOLDOWN_ALIASES[name] or {}) } do
    if not seen[k] then keys[#keys + 1], seen[k] = k, true end
  end
  CD_KEYS[name] = keys
end

local SPEED_CODE = { walk = 1, run = 2, sprint = 3 }
local COORD_LIMIT = 2 ^ 30            -- larger coordinates are not cells
local KEY_SCALE = 1 << 31             -- cell key = x * KEY_SCALE + y
-- Directions tried when stepping away: straight away, then 45 and 90 degrees either side.
local ROT_C = { 1, 0.70710678, 0.70710678, 0, 0 }
local ROT_S = { 0, 0.70710678, -0.70710678, 1, -1 }

-- Small helpers ------------------------------------------------------------------------------

local function finite(v)
  return type(v) == "number" and v > -COORD_LIMIT and v < COORD_LIMIT
end

local function round(v) return floor(v + 0.5) end

-- Cell of a {x, y} table (or nil when it is not one).
local function cell(p)
  if type(p) ~= "table" then return nil end
  local x, y, L = p.x, p.y, COORD_LIMIT
  if type(x) == "number" and type(y) == "number" and x > -L and x < L and y > -L and y < L then
    return floor(x + 0.5), floor(y + 0.5)
  end
  return nil
end

-- An entity id the parser accepts and keeps as written: an integer or a trimmed string.
local function entity_id(id)
  if mtype(id) == "integer" then return id end
  if mtype(id) == "float" then return tointeger(id) end
  if type(id) == "string" and sfind(id, "^%S") and sfind(id, "%S$") then return id end
  return nil
end

-- An id as text, integral floats without ".0" (cjson decodes 70 as 70.0).
local function id_text(id)
  return tostring(mtype(id) == "float" and tointeger(id) or id)
end

local function clamp(P, x, y)
  local b = P.bounds
  if b.min_x and x < b.min_x then x = b.min_x end
  if b.max_x and x > b.max_x then x = b.max_x end
  if b.min_y and y < b.min_y then y = b.min_y end
  if b.max_y and y > b.max_y then y = b.max_y end
  return x, y
end

local function in_bounds(P, x, y)
  local cx, cy = clamp(P, x, y)
  return cx == x and cy == y
end

local function blocked(P, x, y) return P.obstacles[x * KEY_SCALE + y] == true end

local function bound_int(v)
  if not finite(v) then return nil end
  return tointeger(floor(v))
end

local function read_bounds(b)
  if type(b) ~= "table" then return DEFAULT_BOUNDS end
  local min_x, min_y = bound_int(b.min_x), bound_int(b.min_y)
  local max_x, max_y = bound_int(b.max_x), bound_int(b.max_y)
  if min_x and max_x and min_x > max_x then min_x, max_x = nil, nil end
  if min_y and max_y and min_y > max_y then min_y, max_y = nil, nil end
  return { min_x = min_x, min_y = min_y, max_x = max_x, max_y = max_y }
end

local function read_tools(list)
  if type(list) ~= "table" then return ALL end
  local set = {}
  for k, v in pairs(list) do
    local name = type(k) == "string" and v == true and k or v -- a list, or a set {Name = true}
    if type(name) == "string" then
      if not ALL[name] then name = BY_LOWER[slower((sgsub(name, "_", "")))] end
      if name then set[name] = true end
    end
  end
  return set
end

-- Steps --------------------------------------------------------------------------------------

local function on_cooldown(P, name)
  local cd, keys = P.cooldowns, CD_KEYS[name]
  for i = 1, #keys do
    local v = cd[keys[i]]
    if type(v) == "number" and v > 0 then return true end
  end
  return false
end

-- The tool may be used now: offered, in the registry, off cooldown, and there is room.
local function can(P, name)
  return P.n < P.max and P.tools[name] == true and PARAMS[name] ~= nil and not on_cooldown(P, name)
end

local function has(P, name)
  local steps = P.steps
  for i = 1, P.n do
    if steps[i].act == name then return true end
  end
  return false
end

local function same_value(a, b)
  if type(a) == "table" and type(b) == "table" then return a.x == b.x and a.y == b.y end
  return a == b
end

local function duplicate(P, step)
  local params = PARAMS[step.act]
  for i = 1, P.n do
    local s = P.steps[i]
    if s.act == step.act then
      local same = true
      for j = 1, #params do
        if not same_value(s[params[j]], step[params[j]]) then same = false break end
      end
      if same then return true end
    end
  end
  return false
end

-- Appends a step (unless an equal one is already planned); true when the plan has it.
local function add(P, step)
  if duplicate(P, step) then return true end
  P.n = P.n + 1
  P.steps[P.n] = step
  return true
end

local function mix(h, v) return ((h ~ (v & MASK32)) * FNV_PRIME) & MASK32 end

local function hash_value(h, v)
  local tv = type(v)
  if tv == "table" then return mix(mix(h, v.x), v.y) end
  if tv == "string" then return mix(hash_string(h, v), SPEED_CODE[v] or 0) end
  if mtype(v) == "integer" then return mix(h, v) end
  if tv == "number" then return mix(h, floor(v * 1000 + 0.5)) end
  return mix(h, 0)
end

local function plan_id(P)
  local h = FNV_OFFSET
  for i = 1, P.n do
    local step = P.steps[i]
    local params = PARAMS[step.act]
    h = mix(h, ACT_HASH[step.act])
    for j = 1, #params do h = hash_value(h, step[params[j]]) end
  end
  return sformat("h-%08x", h)
end

local function speed_for(P, x, y)
  local dx, dy = x - P.mx, y - P.my
  return dx * dx + dy * dy > RUN_DISTANCE * RUN_DISTANCE and "run" or "walk"
end

-- Geometry -----------------------------------------------------------------------------------

-- True when an obstacle lies within two cells of (x, y) on the way to the threat.
local function shielded(P, x, y)
  local dx, dy = P.tx - x, P.ty - y
  local len = sqrt(dx * dx + dy * dy)
  if len < 1 then return false end
  local ux, uy = dx / len, dy / len
  if blocked(P, round(x + ux), round(y + uy)) then return true end
  return len >= 2 and blocked(P, round(x + 2 * ux), round(y + 2 * uy))
end

-- Considers cell (x, y) for cover; keeps the best so far in P.cx, P.cy.
local function consider(P, x, y, ax, ay, shield)
  if blocked(P, x, y) then return end
  local tdx, tdy = x - P.tx, y - P.ty
  local tdist = tdx * tdx + tdy * tdy
  if tdist <= P.d2 then return end -- must end farther from the threat than the agent is
  if shield == nil then shield = shielded(P, x, y) end
  local wdx, wdy = x - ax, y - ay
  local walk = wdx * wdx + wdy * wdy
  local best = P.cx
  if best then
    if P.cshield ~= shield then
      if P.cshield then return end
    elseif walk > P.cwalk or (walk == P.cwalk and tdist <= P.ctdist) then
      return
    end
  end
  P.cx, P.cy, P.cshield, P.cwalk, P.ctdist = x, y, shield, walk, tdist
end

-- Finds a cover cell near the anchor (ax, ay) against the threat; P.cx, P.cy or nil.
local function find_cover(P, ax, ay)
  P.cx, P.cy = nil, nil
  local tx, ty = P.tx, P.ty
  local obs, r2 = P.obstacle_list, COVER_SEARCH_RADIUS * COVER_SEARCH_RADIUS
  for i = 1, #obs, 2 do
    local ox, oy = obs[i], obs[i + 1]
    local dx, dy = ox - ax, oy - ay
    if dx * dx + dy * dy <= r2 then
      local vx, vy = ox - tx, oy - ty
      local len = sqrt(vx * vx + vy * vy)
      if len > 0 then
        local x, y = ox + round(vx / len), oy + round(vy / len)
        if in_bounds(P, x, y) then consider(P, x, y, ax, ay, true) end
      end
    end
  end
  if P.cx then return P.cx, P.cy end -- cover behind an obstacle beats open ground
  -- Step away from the threat (from the anchor): straight, else turning 45 then 90 degrees.
  local vx, vy = ax - tx, ay - ty
  local len = sqrt(vx * vx + vy * vy)
  if len == 0 then vx, vy, len = P.mx - tx, P.my - ty, nil end
  len = len or sqrt(vx * vx + vy * vy)
  if len == 0 then vx, vy, len = -1, 0, 1 end
  local ux, uy = vx / len, vy / len
  for i = 1, #ROT_C do
    local c, s = ROT_C[i], ROT_S[i]
    local rx, ry = ux * c - uy * s, ux * s + uy * c
    local x, y = clamp(P, round(ax + rx * STEP_AWAY), round(ay + ry * STEP_AWAY))
    consider(P, x, y, ax, ay, nil)
    if P.cx and P.cshield then break end
    if i == 1 and P.cx then break end
  end
  return P.cx, P.cy
end

-- A free cell at or next to (x, y), the one nearest the agent.
local function free_cell(P, x, y)
  x, y = clamp(P, x, y)
  if not blocked(P, x, y) then return x, y end
  local bx, by, bd
  for dx = -1, 1 do
    for dy = -1, 1 do
      local nx, ny = x + dx, y + dy
      if in_bounds(P, nx, ny) and not blocked(P, nx, ny) then
        local ex, ey = nx - P.mx, ny - P.my
        local d = ex * ex + ey * ey
        if not bd or d < bd then bx, by, bd = nx, ny, d end
      end
    end
  end
  if bx then return bx, by end
  return x, y
end

-- Objectives ---------------------------------------------------------------------------------

local function word_matches(k, word)
  return k == word or sfind(k, word, 1, true) ~= nil
end

-- The POI matching `word` (exact name first, then the nearest whose name contains it).
local function find_poi(P, word, synonyms)
  local exact_x, exact_y, near_x, near_y, near_d
  local pois = P.s.pois
  word = slower(word)
  for i = 1, #pois do
    local poi = pois[i]
    if type(poi) == "table" then
      local x, y = cell(poi.pos)
      local k = poi.k
      if x and (type(k) == "string" or type(k) == "number") then
        k = slower(tostring(k))
        if k == word or (poi.id ~= nil and id_text(poi.id) == word) then
          if not exact_x then exact_x, exact_y = x, y end
        else
          local hit = word_matches(k, word)
          if not hit and synonyms then
            for j = 1, #synonyms do
              if word_matches(k, synonyms[j]) then hit = true break end
            end
          end
          if hit then
            local dx, dy = x - P.mx, y - P.my
            local d = dx * dx + dy * dy
            if not near_d or d < near_d then near_x, near_y, near_d = x, y, d end
          end
        end
      end
    end
  end
  if exact_x then return exact_x, exact_y end
  return near_x, near_y
end

-- The ally to escort: `id` when given, else role "vip", else the first living one.
local function find_escort(P, id)
  local allies = P.s.allies
  if type(allies) ~= "table" then return nil end
  local first_x, first_y
  for i = 1, #allies do
    local a = allies[i]
    if type(a) == "table" and not (type(a.hp) == "number" and a.hp <= 0) then
      local x, y = cell(a.pos)
      if x then
        if id then
          if id_text(a.id) == id then return x, y end
        else
          if type(a.role) == "string" and slower(a.role) == "vip" then return x, y end
          if not first_x then first_x, first_y = x, y end
        end
      end
    end
  end
  return first_x, first_y
end

-- The objective's goal cell, or nil. Sets P.escort when the goal is to stay near an ally.
local function objective_goal(P)
  local o = P.s.objective
  if type(o) == "table" then
    local x, y = cell(o.pos)
    if not x then x, y = cell(o) end
    if x then return x, y end
    o = o.k or o.name or o.kind
  end
  if type(o) ~= "string" then return nil end
  local kind, arg = smatch(o, "^%s*([^:]-)%s*:%s*(.-)%s*$")
  if not kind then kind = smatch(o, "^%s*(.-)%s*$") end
  kind = slower(kind)
  if kind == "none" or kind == "" then return nil end
  if kind == "escort" then
    P.escort = true
    return find_escort(P, arg ~= "" and arg or nil)
  end
  if kind == "reach" and arg and arg ~= "" then
    local xs, ys = smatch(arg, "^(-?%d+)%s*,%s*(-?%d+)$")
    if xs then return cell({ x = tonumber(xs), y = tonumber(ys) }) end
    return find_poi(P, arg, nil)
  end
  return find_poi(P, kind, OBJECTIVE_SYNONYMS[kind])
end

-- Intents: each adds its ideal step or the first usable fallback -------------------------------

local function scan(P)
  if can(P, "Scan") then return add(P, { act = "Scan", radius = SCAN_RADIUS }) end
  if can(P, "Wait") then return add(P, { act = "Wait", duration = WAIT_SECONDS }) end
  return false
end

local function move_to(P, x, y, speed)
  if x == P.mx and y == P.my then return false end
  if can(P, "MoveTo") then
    return add(P, { act = "MoveTo", x = x, y = y, speed = speed or speed_for(P, x, y) })
  end
  return false
end

local function take_cover(P)
  if has(P, "TakeCover") then return true end
  local x, y = P.cover_x, P.cover_y
  if can(P, "TakeCover") then
    if x then return add(P, { act = "TakeCover", position = { x = x, y = y } }) end
    return add(P, { act = "TakeCover" }) -- the nearest cover, wherever the engine finds it
  end
  if x then return move_to(P, x, y, "run") end
  return false
end

local function retreat(P)
  if can(P, "Retreat") then
    return add(P, { act = "Retreat", target_id = P.target, distance = RETREAT_DISTANCE })
  end
  return move_to(P, P.ax, P.ay, "sprint")
end

local function smoke(P)
  if can(P, "ThrowSmoke") then
    local x = round(P.mx + (P.tx - P.mx) * SMOKE_FRACTION)
    local y = round(P.my + (P.ty - P.my) * SMOKE_FRACTION)
    x, y = clamp(P, x, y)
    return add(P, { act = "ThrowSmoke", x = x, y = y })
  end
  return take_cover(P)
end

local function heal(P)
  if can(P, "Heal") then return add(P, { act = "Heal" }) end
  return false
end

local function reload(P)
  if can(P, "Reload") then return add(P, { act = "Reload" }) end
  return false
end

local ATTACKS = { "Attack", "AimedShot", "QuickAttack" }

local function attack(P)
  local id = P.target
  if id == nil then return false end
  for i = 1, #ATTACKS do
    if can(P, ATTACKS[i]) then return add(P, { act = ATTACKS[i], target_id = id }) end
  end
  if can(P, "CoverFire") then
    return add(P, { act = "CoverFire", target_id = id, duration = COVER_FIRE_SECONDS })
  end
  if can(P, "MarkTarget") then return add(P, { act = "MarkTarget", target_id = id }) end
  return false
end

local function explosive(P)
  local x, y = clamp(P, P.tx, P.ty)
  if can(P, "ThrowExplosive") then return add(P, { act = "ThrowExplosive", x = x, y = y }) end
  if can(P, "AoEAttack") then
    return add(P, { act = "AoEAttack", x = x, y = y, radius = BLAST_RADIUS })
  end
  return false
end

local function approach(P)
  if P.target == nil then return false end
  if can(P, "Approach") then
    return add(P, { act = "Approach", target_id = P.target, distance = ENGAGE_RANGE - 2 })
  end
  local dx, dy = P.mx - P.tx, P.my - P.ty
  local len = sqrt(dx * dx + dy * dy)
  local k = (ENGAGE_RANGE - 2) / len
  local x, y = free_cell(P, round(P.tx + dx * k), round(P.ty + dy * k))
  return move_to(P, x, y, "run")
end

-- Plans --------------------------------------------------------------------------------------

-- Toward the objective (Reload and Heal first when needed), then Scan. True if it moved.
local function objective_plan(P, gx, gy)
  local me = P.me
  if me.ammo <= 0 then reload(P) end
  if me.hp < HP_LOW then heal(P) end
  local moved = false
  if gx then
    if P.escort then
      local dx, dy = gx - P.mx, gy - P.my
      if dx * dx + dy * dy > ESCORT_RADIUS * ESCORT_RADIUS then
        -- The free cell next to the ally, on the agent's side.
        local len = sqrt(dx * dx + dy * dy)
        local x, y = free_cell(P, round(gx - dx / len), round(gy - dy / len))
        moved = move_to(P, x, y)
      end
    else
      local x, y = free_cell(P, gx, gy)
      moved = move_to(P, x, y)
    end
  end
  scan(P)
  return moved
end

-- Counts the living entities of `list` within BLAST_RADIUS of the threat.
local function near_threat(P, list)
  local n, r2 = 0, BLAST_RADIUS * BLAST_RADIUS
  for i = 1, #list do
    local e = list[i]
    if type(e) == "table" and not (type(e.hp) == "number" and e.hp <= 0) then
      local x, y = cell(e.pos)
      if x and (x - P.tx) * (x - P.tx) + (y - P.ty) * (y - P.ty) <= r2 then n = n + 1 end
    end
  end
  return n
end

-- Enough enemies share the threat's blast, and no friend (player, ally) is inside it.
local function worth_explosive(P)
  if near_threat(P, P.enemies) < BLAST_MIN_ENEMIES then return false end
  if near_threat(P, P.s.allies) > 0 then return false end
  local player = P.s.player
  return not (type(player) == "table" and near_threat(P, { player }) > 0)
end

local function combat_plan(P, n_engaged)
  local me = P.me
  local d2, close2 = P.d2, CLOSE_RANGE * CLOSE_RANGE
  local close = d2 <= close2
  local low_hp = me.hp < HP_LOW
  local low_morale = me.morale < MORALE_LOW
  local fleeing = low_morale and close and P.target ~= nil

  -- Where cover is sought: where a retreat ends, else where the agent stands.
  local ax, ay = P.mx, P.my
  if fleeing then
    local dx, dy = P.mx - P.tx, P.my - P.ty
    local len = sqrt(dx * dx + dy * dy)
    if len == 0 then dx, dy, len = -1, 0, 1 end
    local k = RETREAT_DISTANCE / len
    ax, ay = clamp(P, round(P.tx + dx * k), round(P.ty + dy * k))
    ax, ay = free_cell(P, ax, ay)
  end
  P.ax, P.ay = ax, ay
  P.cover_x, P.cover_y = find_cover(P, ax, ay)

  local cover_first = close or low_hp or low_morale or me.hp < HP_HEALTHY
    or n_engaged >= OUTNUMBERED
  if fleeing then retreat(P) end
  if low_hp and close then smoke(P) end
  if cover_first then take_cover(P) end
  local healed = low_hp and heal(P)
  local armed = me.ammo > 0
  if not armed then armed = reload(P) end
  if armed and not fleeing and (healed or not low_hp) then
    if d2 >= THROW_MIN * THROW_MIN and d2 <= THROW_MAX * THROW_MAX
      and (can(P, "ThrowExplosive") or can(P, "AoEAttack"))
      and worth_explosive(P) then
      explosive(P)
    end
    attack(P)
  end
  take_cover(P)
end

local NO_PARAMS = { "TakeCover", "Block", "Dodge", "Parry" }

local function fill_empty(P)
  if P.n > 0 then return end
  if scan(P) then return end
  for i = 1, #NO_PARAMS do
    if can(P, NO_PARAMS[i]) then
      add(P, { act = NO_PARAMS[i] })
      return
    end
  end
end

local EMPTY = {}

local function list_or_empty(v)
  if type(v) == "table" then return v end
  return EMPTY
end

-- plan(snapshot, opts) -> { plan_id = "h-xxxxxxxx", steps = { step, ... } }
local function plan(snap, opts)
  if type(snap) ~= "table" then normalize(snap) end -- raises its error
  local s = normalize({ agent = snap.agent, me = snap.me, objective = snap.objective })
  s.player = type(snap.player) == "table" and snap.player or nil
  s.enemies, s.pois = list_or_empty(snap.enemies), list_or_empty(snap.pois)
  s.obstacles, s.allies = list_or_empty(snap.obstacles), list_or_empty(snap.allies)
  if type(opts) ~= "table" then opts = EMPTY end
  local me = s.me
  if not finite(me.hp) then me.hp = 100 end
  if not finite(me.ammo) then me.ammo = 0 end
  if not finite(me.morale) then me.morale = 1.0 end
  local mx, my = cell(me.pos)
  if not mx then mx, my = 0, 0 end
  local max = MAX_STEPS
  local ms = opts.max_steps
  if type(ms) == "number" and ms == ms then max = tointeger(floor(mmax(1, mmin(ms, 64)))) end

  local P = {
    s = s, me = me, mx = mx, my = my, steps = {}, n = 0, max = max,
    tools = read_tools(opts.tools), bounds = read_bounds(opts.bounds),
    cooldowns = type(me.cooldowns) == "table" and me.cooldowns or EMPTY,
    obstacles = {}, obstacle_list = {}, enemies = s.enemies,
  }

  local obstacles, set, list = s.obstacles, P.obstacles, P.obstacle_list
  for i = 1, #obstacles do
    local o = obstacles[i]
    local x, y = cell(o)
    if not x and type(o) == "table" then x, y = cell(o.pos) end
    if x then
      set[x * KEY_SCALE + y] = true
      list[#list + 1] = x
      list[#list + 1] = y
    end
  end

  -- The threat: the nearest living enemy; the target: the nearest one with a usable id.
  local enemies, L = s.enemies, COORD_LIMIT
  local threat, d2, target, target_d2 = nil, huge, nil, huge
  local tx, ty, n_engaged = 0, 0, 0
  local engage2 = ENGAGE_RANGE * ENGAGE_RANGE
  for i = 1, #enemies do
    local e = enemies[i]
    if type(e) == "table" then
      local hp, p = e.hp, e.pos
      if type(p) == "table" and not (type(hp) == "number" and hp <= 0) then
        local x, y = p.x, p.y
        if type(x) == "number" and type(y) == "number" and x > -L and x < L and y > -L
          and y < L then
          local dx, dy = x - mx, y - my
          local d = dx * dx + dy * dy
          if d < d2 then threat, d2, tx, ty = e, d, x, y end
          if d <= engage2 then n_engaged = n_engaged + 1 end
          if d < target_d2 then
            local id = entity_id(e.id)
            if id ~= nil then target, target_d2 = id, d end
          end
        end
      end
    end
  end

  if threat then
    tx, ty = round(tx), round(ty)
    local dx, dy = tx - mx, ty - my
    d2 = dx * dx + dy * dy -- from the threat's cell, as every other distance
    P.tx, P.ty, P.d2, P.target = tx, ty, d2, target
    local distant = d2 > engage2 and me.hp >= HP_LOW
    local gx, gy
    if distant then gx, gy = objective_goal(P) end
    if distant and gx then
      objective_plan(P, gx, gy)
    elseif distant then
      if me.ammo <= 0 then reload(P) end
      approach(P)
      if me.ammo > 0 or has(P, "Reload") then attack(P) end
    else
      combat_plan(P, n_engaged)
    end
  else
    objective_plan(P, objective_goal(P))
  end
  fill_empty(P)

  return { plan_id = plan_id(P), steps = P.steps }
end

return {
  plan = plan,
  -- The knobs, for tools and specs to read (changing them means editing this file).
  thresholds = {
    HP_LOW = HP_LOW, HP_HEALTHY = HP_HEALTHY, MORALE_LOW = MORALE_LOW,
    CLOSE_RANGE = CLOSE_RANGE, ENGAGE_RANGE = ENGAGE_RANGE, OUTNUMBERED = OUTNUMBERED,
    COVER_SEARCH_RADIUS = COVER_SEARCH_RADIUS, STEP_AWAY = STEP_AWAY,
    RETREAT_DISTANCE = RETREAT_DISTANCE, SMOKE_FRACTION = SMOKE_FRACTION,
    BLAST_RADIUS = BLAST_RADIUS, BLAST_MIN_ENEMIES = BLAST_MIN_ENEMIES, THROW_MIN = THROW_MIN,
    THROW_MAX = THROW_MAX, SCAN_RADIUS = SCAN_RADIUS, WAIT_SECONDS = WAIT_SECONDS,
    RUN_DISTANCE = RUN_DISTANCE, ESCORT_RADIUS = ESCORT_RADIUS, MAX_STEPS = MAX_STEPS,
  },
}
