-- Is the compact prompt (8 tools, ~900 characters) as good as the simplified one (15 tools,
-- ~1,700 characters), and how much faster? Run: planhost ab examples/experiments/compact_vs_simplified.lua --out ab-compact
return {
  name = "compact vs simplified",
  arms = {
    A = { template = "simplified" },
    B = { template = "compact" },
  },
  scenarios = {
    "examples/snapshots/hello_companion.json",
    "examples/snapshots/surrounded.json",
    "examples/snapshots/low_health_morale.json",
    { file = "examples/scenarios/skirmish.ndjson", every = 100, limit = 3 },
  },
  repetitions = 5,
  backend = { sim = "gpu-7b" },       -- or { url = "http://127.0.0.1:11434", api = "ollama", model = "qwen2.5:7b-instruct" }
}
