-- prompts/compact.lua — the smallest prompt: the registry's "compact" subset (8 tools) as
-- terse signatures and the output shape. Target: at most 1,000 characters (system + user) on
-- examples/snapshots/hello_companion.json.
--
-- system(ctx) is static (no snapshot data); user(snapshot, ctx) carries the snapshot.
-- All tool text comes from lua/prompt.lua.

local prompt = require "prompt"

local NAMES = prompt.subset("compact")

local function system(ctx)
  local records = prompt.records(ctx, NAMES)
  local sigs = {}
  for i, t in ipairs(records) do sigs[i] = prompt.signature(t, ",") end
  return table.concat({
    'Plan actions for "me". Reply JSON only: ' .. prompt.SHAPE,
    "Steps flat: act + params. Tools: " .. table.concat(sigs, " "),
    table.concat(prompt.entity_notes(records), ". ") ..
      ". 1-4 steps; skip tools on cooldown; reload at 0 ammo; avoid obstacles.",
  }, "\n") .. "\n"
end

local function user(s, ctx)
  return prompt.snapshot_json(s) .. "\nJSON:"
end

return {
  name = "compact",
  tools = NAMES,
  system = system,
  user = user,
  options = { temperature = 0.2, num_predict = 160 },
  schema = true,
}
