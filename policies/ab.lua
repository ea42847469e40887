-- Live A/B experiments: agents split between arms by a stable hash of agent id and
-- experiment name, so an agent stays in its arm across requests, restarts and reloads.
--
-- Each arm names a tier of policies/tiers.lua; for a request of an agent in that arm the
-- arm's tier takes the place of the chain's first LLM tier (the rest of the chain stays).
-- Plan events and metrics carry "arm"; record the events (planhost plan, serve, or your
-- game's log) and analyse them with `planhost ab --from EVENTS.ndjson`.
return {
  enabled = false,                 -- turn on to run the experiment
  name = "compact-vs-simplified",  -- changing the name reshuffles the agents
  arms = { A = "simplified", B = "compact" },
  split = { A = 50, B = 50 },      -- relative shares (any positive numbers)

  -- Optional: arm = function(agent_id) return "A" end overrides the hash (return nil: no arm).
}
