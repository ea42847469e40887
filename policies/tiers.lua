-- Tier policy: which tiers a request tries, in what order, with what time limits.
--
-- A tier is an LLM tier (a template sent to the model server), the heuristic tier
-- (lua/heuristic.lua, no server) or the emergency tier (Scan then Wait; cannot fail).
-- Every request walks its chain until one tier delivers a valid plan; each step along the
-- way is a `fallback` event with its reason (timeout, connect, http_<status>, stream_error,
-- parse, invalid, circuit_open, deadline, script).
--
-- The host calls chain(ctx) for every request and on_failure(ctx, reason) when a tier fails.
-- ctx (read-only): snapshot (the decoded snapshot), budget_ms (time left), latency[tier] =
-- {median=, p95=, n=} over recent requests, circuits[endpoint] = "closed" | "open" |
-- "half_open", game = whatever the game passed with the request (e.g. {urgency = "high"}).

-- A tier may also set model = "name" (another model on the same server), max_tokens = N
-- (caps the answer; the template's num_predict otherwise) and schema = true/false (structured
-- output on or off; the template's choice otherwise).
local tiers = {
  full = {
    kind = "llm", template = "full",
    first_byte_ms = 6000, total_ms = 20000, -- the 13k-character prompt is slow to prefill
    accept_partial = true, min_partial_steps = 2,
  },
  simplified = {
    kind = "llm", template = "simplified",
    first_byte_ms = 2500, total_ms = 8000,
    accept_partial = true, min_partial_steps = 1,
  },
  compact = {
    kind = "llm", template = "compact",
    first_byte_ms = 1500, total_ms = 5000,
    accept_partial = true, min_partial_steps = 1,
  },
  -- Several agents in one request (policies/batch.lua says how many and how long they wait).
  batch = {
    kind = "llm", template = "batch",
    first_byte_ms = 4000, total_ms = 15000,
    accept_partial = true, min_partial_steps = 1,
  },
  heuristic = { kind = "heuristic" },
  emergency = { kind = "emergency" },
}

return {
  tiers = tiers,

  -- The default chain. The full and compact tiers are one edit away:
  --   return { "full", "simplified", "heuristic", "emergency" }
  --   return { "compact", "heuristic", "emergency" }
  chain = function(ctx)
    if ctx.game.urgency == "high" then return { "heuristic", "emergency" } end
    return { "simplified", "heuristic", "emergency" }
  end,

  -- nil: go on to the next tier in the chain; "stop": straight to the emergency tier;
  -- a tier name: jump to it.
  on_failure = function(ctx, reason)
    return nil
  end,

  -- true (or a function(ctx) returning true): a request that has to wait for a model first
  -- gets the heuristic planner's plan at once, as a "provisional" event, so the agent acts
  -- while the model thinks; the request's plan event still follows and supersedes it.
  --   provisional = function(ctx) return ctx.game.urgency == "medium" end,
  provisional = false,

  budget_ms = 3000,  -- a request's time budget when the game gives none

  -- Per endpoint, kept across requests: opens when at least `min_requests` of the last
  -- `window` requests ran and `open_ratio` of them failed; after `cooldown_ms` a health check
  -- (a GET to the server's /api/version, /v1/models or /health) decides: answered, one real
  -- request is let through (half open), else another cool-down; `close_after` successes close
  -- it again. health_check = false lets the first request after the cool-down be the probe.
  circuit = { window = 20, min_requests = 5, open_ratio = 0.5, cooldown_ms = 5000, close_after = 2,
              health_check = true },

  -- Recent latency per tier, for ctx.latency and the deadline check: a tier whose p95 over
  -- the last `latency_window` requests is more than the time left is skipped ("deadline").
  latency_window = 50,

  -- A connect failure is retried this many times before the tier gives up.
  connect_retries = 1,
}
