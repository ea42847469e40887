-- prompts/batch.lua — several agents in one prompt, the "simplified" subset (15 tools).
-- user(agents, ctx) receives an array of snapshots, each with its `agent` id, and asks for the
-- batch answer of shared/DESIGN.md: a JSON array with one plan per agent, in the given order,
-- each carrying its agent_id exactly as written in its snapshot.
--
-- system(ctx) is static (no snapshot data); user(agents, ctx) carries the snapshots.
-- All tool text comes from lua/prompt.lua.

local prompt = require "prompt"

local NAMES = prompt.subset("simplified")

local RULES = [[
Rules per agent: 1 to 5 steps, in order. Use only ids found in that agent's snapshot. Skip
tools still on cooldown (me.cooldowns: seconds left). Reload when ammo is 0. Never enter
obstacle cells. Protect the player, follow its orders, pursue the objective. hp is 0-100,
morale 0-1: when low, get safe first.]]

local function system(ctx)
  local records = prompt.records(ctx, NAMES)
  local lines = {
    "You plan the next actions of several game companions at once. You get one JSON world",
    'snapshot per companion; in each, "me" is that companion and "agent" is its id.',
    "Answer with JSON only, no prose: an array with one plan per agent, in the order given:",
    prompt.BATCH_SHAPE,
    "Each element is that agent's plan " .. prompt.SHAPE,
    'with "agent_id" added first, copied exactly from the snapshot\'s "agent".',
    'plan_id: "b1", "b2", ... in order. Each step is flat: "act" is a tool name exactly as',
    "below, its parameters beside it. Omit optional (?) parameters you do not need.",
    "Tools:",
  }
  for _, t in ipairs(records) do lines[#lines + 1] = prompt.signature(t) end
  for _, note in ipairs(prompt.entity_notes(records)) do lines[#lines + 1] = note end
  lines[#lines + 1] = RULES
  return table.concat(lines, "\n") .. "\n"
end

local function user(agents, ctx)
  local lines = { "Snapshots, one per agent, in order:" }
  local n = 0
  for i, s in ipairs(agents) do
    lines[#lines + 1] = prompt.snapshot_json(s)
    n = i
  end
  lines[#lines + 1] = "Answer with the JSON array of " .. n ..
    " plans, agent_id in this order: " .. prompt.agent_ids_json(agents)
  return table.concat(lines, "\n")
end

return {
  name = "batch",
  batch = true,
  tools = NAMES,
  system = system,
  user = user,
  options = { temperature = 0.2, num_predict = 1024, num_ctx = 8192 },
  schema = false,
}
