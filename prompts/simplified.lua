-- prompts/simplified.lua — the mid-size prompt: the registry's "simplified" subset (15 tools)
-- as signatures, the output shape, short rules and one worked example. Target: at most 2,000
-- characters (system + user) on examples/snapshots/hello_companion.json.
--
-- system(ctx) is static (no snapshot data); user(snapshot, ctx) carries the snapshot.
-- All tool text comes from lua/prompt.lua.

local prompt = require "prompt"

local NAMES = prompt.subset("simplified")

local RULES = [[
Rules: 1 to 5 steps, in order. Use only ids found in the snapshot. Skip tools still on
cooldown (me.cooldowns: seconds left). Reload when ammo is 0. Never enter obstacle cells.
Protect the player, follow its orders, pursue the objective. hp is 0-100, morale 0-1:
when low, get safe first.]]

local function system(ctx)
  local records = prompt.records(ctx, NAMES)
  local lines = {
    'You plan the next actions of a game companion ("me") from a JSON world snapshot.',
    "Answer with JSON only, no prose: " .. prompt.SHAPE,
    'Each step is flat: "act" is a tool name exactly as below, its parameters beside it.',
    "Omit optional (?) parameters you do not need.",
    "Tools:",
  }
  for _, t in ipairs(records) do lines[#lines + 1] = prompt.signature(t) end
  for _, note in ipairs(prompt.entity_notes(records)) do lines[#lines + 1] = note end
  lines[#lines + 1] = RULES
  for _, w in ipairs(prompt.worked_examples(records, 1)) do
    lines[#lines + 1] = "Example: " .. w.plan
  end
  return table.concat(lines, "\n") .. "\n"
end

local function user(s, ctx)
  return "Snapshot: " .. prompt.snapshot_json(s) .. "\nPlan, JSON only:"
end

return {
  name = "simplified",
  tools = NAMES,
  system = system,
  user = user,
  options = { temperature = 0.2, num_predict = 256 },
  schema = true,
}
