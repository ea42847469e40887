-- planhost ab — A/B experiments for prompt designers (run by `planhost ab`, which starts
-- this file in its Lua interpreter with the planhost module built in).
--
--   planhost ab EXPERIMENT.lua [--out DIR] [--root DIR]
--   planhost ab --from EVENTS.ndjson [--out DIR] [--name NAME]
--
-- The first runs the experiment (tools/ab/run.lua says what the file holds) against the
-- simulator or a real server; the second analyses plan events recorded from a running host
-- or `planhost serve` with a live experiment (policies/ab.lua puts "arm" in them). Either
-- writes report.md, trials.ndjson and plot.svg into DIR (default ab-out) and prints the
-- report. Anything run against `planhost sim` says SIMULATED in every file.
local here = (arg and arg[0] or "tools/ab/main.lua"):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path

local run = require "run"
local report = require "report"

local function usage(code)
  io.stderr:write("usage: planhost ab EXPERIMENT.lua [--out DIR] [--root DIR]\n",
                  "       planhost ab --from EVENTS.ndjson [--out DIR] [--name NAME]\n")
  os.exit(code)
end

local opts = { out = "ab-out" }
local i = 1
while arg[i] do
  local a = arg[i]
  if a == "--out" or a == "--from" or a == "--root" or a == "--name" then
    opts[a:sub(3)] = arg[i + 1] or usage(2)
    i = i + 2
  elseif a == "-h" or a == "--help" then
    usage(0)
  elseif a:sub(1, 1) == "-" then
    io.stderr:write("planhost ab: unknown option '", a, "'\n")
    usage(2)
  elseif not opts.file then
    opts.file = a
    i = i + 1
  else
    usage(2)
  end
end
if not opts.file and not opts.from then usage(2) end

local ok, err = pcall(function()
  local root = opts.root or os.getenv("PLANHOST_ROOT") or os.getenv("PLANHOST_AB_ROOT") or "."
  local exe = os.getenv("PLANHOST_EXE") or "planhost"
  local records, e, meta
  if opts.from then
    records = run.from_events(opts.from)
    e = { name = opts.name or opts.from }
    local sim = false
    for _, r in ipairs(records) do sim = sim or r.simulated end
    meta = { simulated = false, when = "events recorded in " .. opts.from,
             label = "Recorded events: whether the server was simulated is not recorded in plan events; check where they came from." }
  else
    e = run.load(opts.file)
    local backend
    records, backend = run.run(e, root, exe)
    meta = { simulated = backend.simulated, when = os.date("!%Y-%m-%d %H:%M UTC"),
             label = backend.simulated
               and ("SIMULATED: measured against planhost sim --profile %s, not a real model. Latency and plan quality here are the simulator's."):format(backend.profile)
               or ("Measured against %s."):format(backend.url) }
  end
  local text = report.write(opts.out, e, records, meta)
  io.write(text)
  io.stderr:write(("planhost ab: %d trials; report in %s/report.md\n"):format(#records, opts.out))
end)
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
