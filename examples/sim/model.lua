-- examples/sim/model.lua — the default "model" of `planhost sim`: a heuristic planner that
-- answers like an LLM would, in the shape the prompt asks for.
--
-- Contract (see examples/sim/README.md): return { answer = function(req) -> text, config }.
-- The simulator streams the returned text in token-sized pieces. This script:
--   * finds the snapshots in the prompt (JSON objects with "me" or "agent"), in order;
--   * finds the tools the prompt names (the PascalCase names of lua/tools.lua) and uses
--     only those;
--   * answers one plan {"plan_id","steps"} per snapshot, or the batch array
--     [{"agent_id","plan_id","steps"}, ...] when the prompt asks for agent_id;
--   * misbehaves at the rates in req.misbehave (config.misbehave below, replaced by
--     `--misbehave fence=0.2,...` and per request by the X-Sim-Misbehave header); with
--     structured output on (req.schema) only `truncate` can happen, as a grammar-constrained
--     server cannot produce the others.
-- Deterministic: every random choice comes from math.randomseed(req.rng), which the
-- simulator derives from --seed, the request's seed (else its arrival number) and the prompt.
--
-- Runs in its own Lua state with the standard libraries; requires lua/tools.lua (the
-- simulator puts the source tree's lua/ on package.path), cjson, and `sim` (the simulator's
-- helpers: sim.json_end(text, init) -> the index where the JSON value at init ends).

local tools = require "tools"
local cjson = require "cjson"
local sim = require "sim"

local config = {
  misbehave = {
    fence = 0,          -- ```json ... ``` around the answer
    prose = 0,          -- a sentence before and after the JSON
    unknown_tool = 0,   -- the last step of the first plan uses a tool that does not exist
    truncate = 0,       -- the answer stops part-way
    trailing_comma = 0, -- a comma before the closing ] of the steps
    wrong_case = 0,     -- an enum value in capitals ("RUN"), or the act in lower case
  },
  max_steps = 4,
  low_hp = 35,
  low_morale = 0.3,
  retreat_distance = 8,
  engage_distance = 6,
  scan_radius = 10,
}

local KINDS = { "unknown_tool", "wrong_case", "trailing_comma", "fence", "prose", "truncate" }
local FAKE_TOOLS = { "Teleport", "CallAirstrike", "Fly" }
-- cooldown keys a snapshot may use for a tool, besides the tool's name in lower case
local COOLDOWN_KEYS = {
  ThrowSmoke = { "throw:smoke", "smoke" },
  ThrowExplosive = { "throw:grenade", "throw:explosive", "grenade" },
}

-- Reading the prompt -------------------------------------------------------------------------

local function named_tools(text)
  local allowed = {}
  for _, t in ipairs(tools.tools) do
    if text:find("%f[%w]" .. t.name .. "%f[%W]") then allowed[t.name] = true end
  end
  return allowed
end

local function snapshots_in(text)
  local found, at = {}, 1
  while true do
    local s = text:find("{", at, true)
    if not s then return found end
    local e = sim.json_end(text, s)
    local ok, v = false, nil
    if e then ok, v = pcall(cjson.decode, text:sub(s, e)) end
    if ok and type(v) == "table" and (v.me ~= nil or v.agent ~= nil) then
      found[#found + 1] = v
      at = e + 1
    else
      at = s + 1
    end
  end
end

-- Snapshot helpers ---------------------------------------------------------------------------

local function int(v)
  return math.tointeger(v) or v
end

local function num(v, default)
  return type(v) == "number" and v or default
end

local function list(v)
  return type(v) == "table" and v or {}
end

local function xy(p)
  p = type(p) == "table" and p or {}
  return { x = int(num(p.x, 0) // 1), y = int(num(p.y, 0) // 1) }
end

local function dist(a, b)
  return math.sqrt((a.x - b.x) ^ 2 + (a.y - b.y) ^ 2)
end

local function nearest(me_pos, enemies)
  local best, best_d
  for _, e in ipairs(enemies) do
    if type(e) == "table" and e.id ~= nil and num(e.hp, 1) > 0 then
      local d = dist(me_pos, xy(e.pos))
      if not best_d or d < best_d then best, best_d = e, d end
    end
  end
  return best, best_d
end

local function ready(me, act)
  local cd = type(me.cooldowns) == "table" and me.cooldowns or {}
  local keys = { act:lower(), table.unpack(COOLDOWN_KEYS[act] or {}) }
  for _, k in ipairs(keys) do
    if num(cd[k], 0) > 0 then return false end
  end
  return true
end

-- Where the objective points: "reach:NAME" (a poi's k), "reach:X,Y", or the first poi.
local function goal(s)
  local obj = type(s.objective) == "string" and s.objective or ""
  local gx, gy = obj:match("^reach:(%-?%d+),(%-?%d+)$")
  if gx then return { x = int(tonumber(gx)), y = int(tonumber(gy)) } end
  local want = obj:match("^reach:(.+)$") or obj
  local first
  for _, p in ipairs(list(s.pois)) do
    if type(p) == "table" and p.pos then
      first = first or p
      if p.k == want or (type(p.k) == "string" and want ~= "" and p.k:find(want, 1, true)) then
        return xy(p.pos)
      end
    end
  end
  return first and xy(first.pos) or nil
end

-- Planning -----------------------------------------------------------------------------------

local function planner(allowed)
  local steps = {}
  local function add(act, args)
    if allowed[act] and #steps < config.max_steps then
      steps[#steps + 1] = { act = act, args = args or {} }
    end
  end
  return steps, add
end

local function fight(me, pos, target, enemies, add)
  local low = num(me.hp, 100) < config.low_hp or num(me.morale, 1) < config.low_morale
  local tpos = xy(target.pos)
  if num(me.ammo, 1) <= 0 then
    add("TakeCover")
    add("Reload")
  elseif low then
    if ready(me, "ThrowSmoke") then
      add("ThrowSmoke", { x = int((pos.x + tpos.x) // 2), y = int((pos.y + tpos.y) // 2) })
    end
    add("TakeCover")
    add("Retreat", { target_id = int(target.id), distance = config.retreat_distance })
    if ready(me, "Heal") then add("Heal") end
    return
  elseif #enemies >= 3 and ready(me, "ThrowExplosive") then
    add("ThrowExplosive", tpos)
  else
    if target.cover == "none" and ready(me, "MarkTarget") then add("MarkTarget", { target_id = int(target.id) }) end
    if dist(pos, tpos) > config.engage_distance then
      add("Approach", { target_id = int(target.id), distance = config.engage_distance })
    end
  end
  add("Attack", { target_id = int(target.id) })
end

local function plan_for(s, allowed)
  local steps, add = planner(allowed)
  local me = type(s.me) == "table" and s.me or {}
  local pos = xy(me.pos)
  local enemies = list(s.enemies)
  local target = nearest(pos, enemies)
  if target then
    fight(me, pos, target, enemies, add)
  else
    if num(me.ammo, 1) <= 0 then add("Reload") end
    local g = goal(s)
    if g then add("MoveTo", { x = g.x, y = g.y, speed = "run" }) end
    add("Scan", { radius = config.scan_radius })
  end
  if #steps == 0 then add("Scan", { radius = config.scan_radius }) end
  if #steps == 0 then add("Wait", { duration = 2 }) end
  return steps
end

-- Writing JSON (key order as a model writes it: act first, then the registry's order) ------

local function str(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(c)
    local esc = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r" }
    return esc[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function value(v)
  if type(v) == "table" then
    return "{" .. '"x":' .. value(v.x) .. ',"y":' .. value(v.y) .. "}"
  elseif math.type(v) == "integer" then
    return tostring(v)
  elseif type(v) == "number" then
    return string.format("%.14g", v)
  end
  return str(v)
end

local function step_json(step)
  local parts = { '"act":' .. str(step.act) }
  local t = tools.by_name[step.act]
  local params = t and t.params or {}
  if not t then   -- an invented tool: its arguments in a fixed order
    params = { { name = "x" }, { name = "y" }, { name = "target_id" } }
  end
  for _, p in ipairs(params) do
    if step.args[p.name] ~= nil then
      parts[#parts + 1] = str(p.name) .. ":" .. value(step.args[p.name])
    end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function plan_json(plan, bad)
  local steps = {}
  for i, step in ipairs(plan.steps) do steps[i] = step_json(step) end
  local head = plan.agent_id ~= nil and ('"agent_id":' .. value(plan.agent_id) .. ",") or ""
  local comma = bad.trailing_comma and "," or ""
  return "{" .. head .. '"plan_id":' .. str(plan.plan_id) .. ',"steps":[' ..
    table.concat(steps, ",") .. comma .. "]}"
end

-- Misbehaving --------------------------------------------------------------------------------

local function draw(req)
  local bad = {}
  for _, kind in ipairs(KINDS) do   -- one draw per kind, always, so rates stay independent
    local hit = math.random() < (req.misbehave[kind] or 0)
    bad[kind] = hit and (not req.schema or kind == "truncate")
  end
  return bad
end

local function spoil_steps(plans, bad)
  local steps = plans[1] and plans[1].steps
  if not steps or #steps == 0 then return end
  if bad.unknown_tool then
    steps[#steps] = { act = FAKE_TOOLS[math.random(#FAKE_TOOLS)], args = { x = 5, y = 5 } }
  end
  if bad.wrong_case then
    for _, step in ipairs(steps) do
      for k, v in pairs(step.args) do
        local t = tools.by_name[step.act]
        for _, p in ipairs(t and t.params or {}) do
          if p.name == k and p.type == "enum" then step.args[k] = v:upper(); return end
        end
      end
    end
    steps[1].act = steps[1].act:lower()
  end
end

local function spoil_text(text, bad)
  if bad.fence then text = "```json\n" .. text .. "\n```" end
  if bad.prose then
    text = "Here is the plan for the situation:\n" .. text .. "\nThis keeps the player covered."
  end
  if bad.truncate and #text > 4 then
    text = text:sub(1, math.floor(#text * (0.3 + 0.5 * math.random())))
  end
  return text
end

-- The answer ---------------------------------------------------------------------------------

local function answer(req)
  math.randomseed(req.rng)
  local text = req.system .. "\n\n" .. req.prompt
  local snaps = snapshots_in(req.prompt)
  if #snaps == 0 then snaps = snapshots_in(text) end
  local allowed = named_tools(text)
  if #snaps == 0 and next(allowed) == nil then
    return "This is planhost sim, a simulated model: no game snapshot and no tool in the prompt."
  end
  if #snaps == 0 then snaps = { {} } end
  local batch = text:find('"agent_id"', 1, true) ~= nil or #snaps > 1
  local plans = {}
  for i, s in ipairs(snaps) do
    plans[i] = { plan_id = (batch and "b" or "p") .. i, steps = plan_for(s, allowed) }
    if batch then plans[i].agent_id = s.agent ~= nil and int(s.agent) or ("agent" .. i) end
  end
  local bad = draw(req)
  spoil_steps(plans, bad)
  local out = {}
  for i, p in ipairs(plans) do out[i] = plan_json(p, bad) end
  text = batch and ("[" .. table.concat(out, ",") .. "]") or out[1]
  return spoil_text(text, bad)
end

return { answer = answer, config = config }
