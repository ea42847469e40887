-- prompts/full.lua — the complete prompt: every registry tool with its description,
-- parameters, cooldown and an example step; the snapshot fields and their scales; the output
-- format; rules; worked examples. For capable models with time to read ~2,500 tokens.
--
-- system(ctx) is static (no snapshot data) so a server can reuse it as a cached prefix;
-- user(snapshot, ctx) carries the snapshot. All tool text comes from lua/prompt.lua.

local prompt = require "prompt"

local NAMES = prompt.all()

local INTRO = [[
You are the tactical planner of an AI companion in a top-down squad shooter. Each request
gives you a JSON snapshot of the world seen by the companion ("me"). You answer with a short
plan: the actions the companion carries out next, in order.]]

local FIELDS = [[
Snapshot fields:
- agent: the companion's id. me: the companion itself (pos, hp, ammo, morale, cooldowns).
- pos / x,y: integer grid cells. Distances are counted in cells.
- hp: health, 0 to 100 (0 = down). morale: 0 to 1 (1 = steady, below 0.35 = shaken).
- ammo: rounds left in the current weapon.
- cooldowns: seconds until an ability can be used again (0 = ready), keyed by the engine's
  ability names ("throw:smoke" is the smoke throw).
- player: the human player you support: hp, pos, stance, and orders, the player's standing
  commands ("hold_east" = hold the east side).
- enemies: id (use it as target_id), name, pos, hp, cover ("none", "low" or "high").
- allies: friendly units with an id, e.g. a VIP to escort. They may be absent.
- pois: points of interest: k = what it is (door, exit, switch...), pos, sometimes an id.
- obstacles: blocked cells (walls). Nobody walks or shoots through them.
- objective: the mission: "extract", "escort", "reach:<poi>" or "reach:<x>,<y>", "none".]]

local RULES = [[
Rules:
1. Use only the tools listed above, spelled exactly as shown. Any other "act" is rejected.
2. Every target_id must be an id present in the snapshot. Never invent ids.
3. Never move to, throw at or take cover in an obstacle cell; walls block movement and fire.
4. Do not plan a tool whose cooldown has not run out (me.cooldowns above 0).
5. With ammo 0, reload before any shooting.
6. Keep the player alive and follow the player's orders unless that gets one of you killed.
7. When hp is below 35 or morale below 0.35, first break line of sight (smoke, cover,
   retreat) or heal; attack afterwards.
8. Prefer exposed, weakened targets and those threatening the player; mark a target before a
   focused attack when others can join in.
9. With no enemy in sight, work towards the objective: "extract" = reach the exit or the
   extraction poi, "escort" = stay next to the escorted ally and shield it, "reach:..." = go
   to that poi or cell.
10. Plans have 1 to 6 steps; the first step is what matters most right now.]]

local function output_section(records)
  local lines = {
    "Output:",
    "Answer with JSON only: one object, no prose, no markdown, no code fences:",
    prompt.SHAPE,
    '- plan_id: a short id you choose, such as "p1".',
    "- steps: 1 to 6 step objects, run in order. A step is flat: \"act\" holds the tool name and",
    "  the tool's parameters sit beside it, never nested: " .. prompt.example_step(records[1]),
    "- Parameters marked ? are optional: leave them out when not needed. Enum values are",
    "  lowercase, exactly as listed.",
    '- Types: int = whole number; uint = whole number >= 0; float = number; string = text;',
    '  position = {"x":int,"y":int}; positions = array of positions.',
  }
  for _, note in ipairs(prompt.entity_notes(records)) do lines[#lines + 1] = "- " .. note .. "." end
  return table.concat(lines, "\n")
end

local function tool_line(t)
  local cd = prompt.cooldown(t)
  return "- " .. prompt.signature(t) .. ": " .. t.desc ..
    (cd ~= "" and (" Cooldown " .. cd .. ".") or "") ..
    "\n  e.g. " .. prompt.example_step(t)
end

local function tools_section(records)
  local lines = { "Tools (" .. #prompt.names(records) .. "), by group:" }
  for _, g in ipairs(prompt.groups(records)) do
    lines[#lines + 1] = g.name .. ":"
    for _, t in ipairs(g.tools) do lines[#lines + 1] = tool_line(t) end
  end
  return table.concat(lines, "\n")
end

local function examples_section(records)
  local lines = { "Worked examples (situation, then the answer):" }
  for i, w in ipairs(prompt.worked_examples(records)) do
    lines[#lines + 1] = i .. ". " .. w.situation
    lines[#lines + 1] = w.plan
  end
  return table.concat(lines, "\n")
end

local function system(ctx)
  local records = prompt.records(ctx, NAMES)
  return table.concat({
    INTRO, FIELDS, output_section(records), tools_section(records), RULES,
    examples_section(records),
  }, "\n\n") .. "\n"
end

local function user(s, ctx)
  return "Snapshot:\n" .. prompt.snapshot_json(s) .. "\nAnswer with the plan JSON only."
end

return {
  name = "full",
  tools = NAMES,
  system = system,
  user = user,
  options = { temperature = 0.2, num_predict = 384, num_ctx = 4096 },
  schema = false,
}
