-- The soak test of the hardening issue: many requests with faults, cancels and hot reloads,
-- through the embedding API (the Lua module) and through `planhost serve`, both against
-- `planhost sim --profile instant --parallel 8` (a SIMULATED model server).
--
--   build/planhost lua tests/soak/soak.lua [--requests N] [--mode api|serve|both] [--seed S]
--                                          [--out FILE] [--reload-ms MS] [--clients C]
--
-- Run from the repository root. Progress goes to stderr; the Markdown report to --out
-- (default build/soak/SOAK.md) and to stdout. Exit status 0 only when every check passed.
--
-- Checks, per mode: every request not cancelled ends in exactly one plan event; no event for
-- a request after its cancel; the process does not crash (serve: /health answers at the end,
-- SIGTERM exits 0); script edits give reload events (failed for a broken script, ok
-- otherwise) and the serving generation keeps serving; VmRSS sampled every 500 requests
-- stays flat after warm-up (last <= sample at 20 % + max(10 %, 8 MiB)); open fds back to the
-- starting level. Every random choice comes from the seeded generator in soak/common.lua (not
-- math.random), so a seed gives the same requests, faults, cancels and edits; timing does
-- not repeat exactly (which cancel lands in flight, how many plans come from the cache).
--
-- This file parses the options and runs the modes; the rest lives in modules beside it, each
-- loaded with require from tests/ (so run from the repository root):
--   soak/common.lua  the seeded generator, VmRSS and fd probes, snapshots, the request plan and
--                    fault headers, the script editor, the result record and its functions
--   soak/api.lua     mode (a), the embedding API: run_api
--   soak/serve.lua   mode (b), planhost serve driven by curl: run_serve
--   soak/report.lua  the checks of a mode (judge) and the Markdown report
-- The parsed options (`opt`) are passed to each of them as an argument.
package.path = "tests/?.lua;" .. package.path
local H = require "helpers"
local clock = H.planhost.clock

-- ---- options -------------------------------------------------------------------------

local opt = { requests = 10000, mode = "both", seed = 1, out = "build/soak/SOAK.md", reload_ms = 2000, clients = 16 }
do
  local names = { ["--requests"] = "requests", ["--mode"] = "mode", ["--seed"] = "seed", ["--out"] = "out",
                  ["--reload-ms"] = "reload_ms", ["--clients"] = "clients" }
  local i = 1
  while i <= #arg do
    local key, v = names[arg[i]], arg[i + 1]
    if not key or not v then
      io.stderr:write("usage: planhost lua tests/soak/soak.lua [--requests N] [--mode api|serve|both] [--seed S]\n"
        .. "                                          [--out FILE] [--reload-ms MS] [--clients C]\n")
      os.exit(2)
    end
    opt[key] = (key == "mode" or key == "out") and v or assert(math.tointeger(tonumber(v)), arg[i] .. " wants an integer")
    i = i + 2
  end
  assert(opt.mode == "api" or opt.mode == "serve" or opt.mode == "both", "--mode is api, serve or both")
  assert(opt.requests >= 10 and opt.clients >= 1 and opt.clients <= 60 and opt.reload_ms >= 300, "option out of range")
end

-- loaded after the options, so a usage error leaves no temporary file behind
local C = require "soak.common"
local api = require "soak.api"
local serve = require "soak.serve"
local rep = require "soak.report"
local log, new_result, check = C.log, C.new_result, C.check

-- ---- main ----------------------------------------------------------------------------------------

local t0 = clock()
local results, all_ok = {}, true
for _, mode in ipairs(opt.mode == "both" and { "api", "serve" } or { opt.mode }) do
  local res = new_result(mode)
  log("%s mode: %d requests, seed %d", mode, opt.requests, opt.seed)
  local ok, err = xpcall(mode == "api" and api.run_api or serve.run_serve, debug.traceback, opt, res)
  for k = #res.undo, 1, -1 do pcall(res.undo[k]) end
  H.cleanup()
  if ok then
    rep.judge(opt, res)
  else
    check(res, "the run completed", false, (tostring(err):gsub("\n", " ")))
  end
  for _, c in ipairs(res.checks) do all_ok = all_ok and c.ok end
  results[#results + 1] = res
end
rep.report(opt, results, (clock() - t0) / 1000, all_ok)
os.remove(C.FD_LIST)
os.exit(all_ok and 0 or 1)
