-- One request per agent, or ten agents in one request? Each trial of arm B sends ten agents
-- together (prompts/batch.lua); arm A sends each alone. Per-agent latency and validity.
-- Run: planhost ab examples/experiments/batch_1_vs_10.lua --out ab-batch
return {
  name = "batch 1 vs 10",
  arms = {
    A = { template = "simplified" },
    B = { template = "simplified", batch = 10 },
  },
  scenarios = {
    "examples/snapshots/hello_companion.json",
    "examples/snapshots/surrounded.json",
  },
  repetitions = 3,
  backend = { sim = "gpu-7b" },
}
