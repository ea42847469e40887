-- Budgets for every script of this tree (mod scripts included). The host enforces them:
-- a call into Lua that runs past `instructions` VM instructions is stopped (pcall inside
-- the script cannot catch the stop), and the generation's Lua state may not hold more
-- than `memory_mb`. Both apply to templates, policies and the modules they require.
return {
  instructions = 5000000, -- per call: a template renders in well under 100,000
  memory_mb = 64,         -- per generation: this tree loads in about 1 MiB
}
