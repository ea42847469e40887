-- examples/sim/profiles.lua — latency profiles of `planhost sim` (--profile NAME).
--
-- Edit freely; the simulator reads this file when it starts (--profiles FILE points it at
-- another). Each entry maps a name to a table of these keys (all optional, all numbers >= 0;
-- an unknown key is an error, so a typo cannot silently do nothing):
--
--   prefill_tps      prompt tokens processed per second (0: no delay)
--   decode_tps       tokens generated per second (0: no delay)
--   load_s           model load time, paid once, by the first request(s)
--   jitter           every delay is scaled by a random factor in [1 - jitter, 1 + jitter]
--   chars_per_token  token estimate (characters / this) and the size of streamed pieces (4)
--   overhead_ms      fixed cost per request before prefill (HTTP, tokenizer, sampling setup)
--   batch_penalty    decode slows by this fraction per other busy slot (--parallel N)
--   desc             a line for people; ignored
--
-- The figures are rough orders of magnitude for a 7B model (Q4) on llama.cpp / Ollama, not
-- measurements: a desktop CPU, and one consumer GPU. Reports made with the simulator say so.

return {
  instant = {
    desc = "no delays at all: protocol tests and CPU-cost benchmarks",
  },
  ["cpu-7b"] = {
    desc = "7B on a desktop CPU: slow prefill, ~15 tokens/s",
    prefill_tps = 50, decode_tps = 15, load_s = 2.0, jitter = 0.1,
    overhead_ms = 5, batch_penalty = 0.6,
  },
  ["gpu-7b"] = {
    desc = "7B on one consumer GPU: prompt almost free, ~130 tokens/s",
    prefill_tps = 5000, decode_tps = 130, load_s = 0.5, jitter = 0.05,
    overhead_ms = 2, batch_penalty = 0.15,
  },
}
