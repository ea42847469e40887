-- Batching: several agents in one model request (prompts/batch.lua renders them).
--
-- A request whose tier uses a batch template (the "batch" tier of policies/tiers.lua: give
-- it in chain(), e.g. return { "batch", "heuristic", "emergency" }) joins a queue instead of
-- sending at once. A batch leaves when the queue holds batch_size(queue, stats) requests, or
-- when its oldest has waited max_wait_ms. Agents are ordered by agent id in the prompt, so
-- the same agents and scripts give the same request body. Each agent's plan is delivered as
-- its element of the answer array closes; an agent missing from the answer, answered twice
-- or answered with an invalid plan falls back alone.
return {
  max_wait_ms = 30,   -- the longest a request waits for others to join its batch
  max_size = 10,      -- never more agents in one request than this (1..32)

  -- queue: { length = N, oldest_ms = waited so far }; stats: { median_ms =, p95_ms =, n = }
  -- of the batch tier's recent requests (nil fields when no data). Return how many requests
  -- make a batch now (1..max_size); the batch leaves when the queue holds that many.
  batch_size = function(queue, stats)
    return 10
  end,
}
