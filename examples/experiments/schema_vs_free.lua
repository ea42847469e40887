-- Does asking the server for structured output (a JSON schema built from the tool subset)
-- change validity or latency? Same template, schema on in A, off in B.
-- Run: planhost ab examples/experiments/schema_vs_free.lua --out ab-schema
return {
  name = "schema-constrained vs free output",
  arms = {
    A = { template = "simplified", schema = true },
    B = { template = "simplified", schema = false },
  },
  scenarios = {
    "examples/snapshots/hello_companion.json",
    "examples/snapshots/twelve_enemies.json",
    "examples/snapshots/no_ammo.json",
  },
  repetitions = 8,
  backend = { sim = "gpu-7b" },
}
