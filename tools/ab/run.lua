-- run.lua — runs an A/B experiment: one host per arm, trials interleaved across arms, one
-- record per agent per trial. Used by `planhost ab EXPERIMENT.lua` (tools/ab/main.lua).
--
-- An experiment file returns:
--   { name = "...",
--     arms = { A = { template = "simplified" }, B = { template = "compact", schema = false,
--              model = "...", max_tokens = 256, batch = 10, options = { temperature = 0 } } },
--     scenarios = { "examples/snapshots/x.json", { file = "examples/scenarios/p.ndjson", every = 50, limit = 6 } },
--     repetitions = 10,
--     backend = { sim = "gpu-7b", parallel = 1 }   -- or { url = "http://...", api = "ollama", model = "..." }
--     budget_ms = 60000, cache = false }
-- Before the trials each arm runs one unrecorded warm-up trial (the model's load, the first
-- connection), so the first arm does not pay for it.
-- Each arm gets a scratch copy of the script tree whose policies/tiers.lua holds one tier
-- for the arm (its template, model, schema, max_tokens), then heuristic and emergency; a
-- batch arm also gets a policies/batch.lua sending `batch` agents per request.
local planhost = require "planhost"
local cjson = require "cjson"

local R = {}

local ARM_KEYS = { template = true, model = true, schema = true, max_tokens = true, batch = true, options = true }
local EXP_KEYS = { name = true, arms = true, scenarios = true, repetitions = true, backend = true,
                   budget_ms = true, cache = true }

local function fail(fmt, ...) error(("planhost ab: " .. fmt):format(...), 0) end

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function read(path)
  local f, err = io.open(path, "rb")
  if not f then fail("%s", err) end
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- Loads and checks the experiment file (plain data: it runs with an empty environment).
function R.load(path)
  local chunk, err = load(read(path), "@" .. path, "t", {})
  if not chunk then fail("%s", err) end
  local ok, e = pcall(chunk)
  if not ok or type(e) ~= "table" then fail("%s must return a table (%s)", path, tostring(e)) end
  for k in pairs(e) do if not EXP_KEYS[k] then fail("%s: unknown key '%s'", path, k) end end
  if type(e.arms) ~= "table" or next(e.arms) == nil then fail("%s: 'arms' names no arm", path) end
  e.order = {}
  for name, arm in pairs(e.arms) do
    if type(arm) ~= "table" or type(arm.template) ~= "string" then
      fail("%s: arm %s needs template = \"name\"", path, tostring(name))
    end
    for k in pairs(arm) do if not ARM_KEYS[k] then fail("%s: arm %s: unknown key '%s'", path, name, k) end end
    e.order[#e.order + 1] = name
  end
  table.sort(e.order)
  if type(e.scenarios) ~= "table" or #e.scenarios == 0 then fail("%s: 'scenarios' lists no snapshot", path) end
  e.repetitions = e.repetitions or 5
  e.backend = e.backend or { sim = "gpu-7b" }
  e.budget_ms = e.budget_ms or 60000
  e.name = e.name or path
  return e
end

-- The snapshots of the scenarios: a .json file is one, an .ndjson stream gives every
-- `every`-th line up to `limit`.
function R.snapshots(e, root)
  local out = {}
  for _, s in ipairs(e.scenarios) do
    local spec = type(s) == "string" and { file = s } or s
    local path = spec.file:sub(1, 1) == "/" and spec.file or (root .. "/" .. spec.file)
    if spec.file:match("%.ndjson$") then
      local n, kept = 0, 0
      for line in read(path):gmatch("[^\n]+") do
        n = n + 1
        if (n - 1) % (spec.every or 1) == 0 and kept < (spec.limit or math.huge) then
          kept = kept + 1
          out[#out + 1] = { name = ("%s:%d"):format(spec.file, n), text = line }
        end
      end
    else
      out[#out + 1] = { name = spec.file, text = read(path) }
    end
  end
  return out
end

-- ---- the backend --------------------------------------------------------------------------

function R.start_backend(e, exe)
  local b = e.backend
  if not b.sim then return { url = b.url, api = b.api, model = b.model, simulated = false, stop = function() end } end
  local log = os.tmpname()
  local pidfile = os.tmpname()
  sh(("%s sim --port 0 --profile %s --parallel %d >%s 2>&1 & echo $! >%s"):format(q(exe), q(b.sim),
     b.parallel or 1, q(log), q(pidfile)))
  local pid = read(pidfile):match("%d+")
  os.remove(pidfile)
  local url
  local deadline = planhost.clock() + 10000
  while planhost.clock() < deadline do
    url = read(log):match("listening on (http://[%d%.:]+)")
    if url then break end
    sh("sleep 0.05")
  end
  if not url then fail("the simulator did not start: %s", read(log)) end
  return { url = url, simulated = true, profile = b.sim,
           stop = function() sh("kill " .. pid .. " 2>/dev/null"); os.remove(log) end }
end

-- ---- one scratch tree and host per arm ----------------------------------------------------

local function arm_tree(root, arm, budget_ms)
  local p = io.popen("mktemp -d /tmp/planhost-ab.XXXXXX")
  local dir = p:read("l")
  p:close()
  sh(("mkdir -p %s/examples && cp -r %s/lua %s/prompts %s/policies %s/ && cp -r %s/examples/snapshots %s/examples/")
     :format(q(dir), q(root), q(root), q(root), q(dir), q(root), q(dir)))
  local template = arm.batch and arm.batch > 1 and "batch" or arm.template
  local tier = { ("kind = %q"):format("llm"), ("template = %q"):format(template),
                 "first_byte_ms = 0", "total_ms = 0", "accept_partial = true" }
  if arm.model then tier[#tier + 1] = ("model = %q"):format(arm.model) end
  if arm.schema ~= nil then tier[#tier + 1] = "schema = " .. tostring(arm.schema) end
  if arm.max_tokens then tier[#tier + 1] = ("max_tokens = %d"):format(arm.max_tokens) end
  if arm.options then                 -- temperature, top_p, top_k, seed, num_predict, num_ctx, stop
    local parts = {}
    for k, v in pairs(arm.options) do
      if type(v) == "table" then
        local list = {}
        for _, x in ipairs(v) do list[#list + 1] = ("%q"):format(x) end
        parts[#parts + 1] = ("%s = { %s }"):format(k, table.concat(list, ", "))
      else
        parts[#parts + 1] = ("%s = %s"):format(k, type(v) == "string" and ("%q"):format(v) or tostring(v))
      end
    end
    table.sort(parts)
    tier[#tier + 1] = "options = { " .. table.concat(parts, ", ") .. " }"
  end
  write(dir .. "/policies/tiers.lua", ([[return {
  tiers = { arm = { %s }, heuristic = { kind = "heuristic" }, emergency = { kind = "emergency" } },
  chain = function() return { "arm", "heuristic", "emergency" } end,
  budget_ms = %d, connect_retries = 0,
  circuit = { window = 1000, min_requests = 1000, open_ratio = 1, cooldown_ms = 1, close_after = 1 },
}
]]):format(table.concat(tier, ", "), budget_ms))
  os.remove(dir .. "/policies/ab.lua")
  if arm.batch and arm.batch > 1 then
    write(dir .. "/policies/batch.lua", ([[return { max_wait_ms = 1000, max_size = %d,
  batch_size = function(queue) return %d end }
]]):format(arm.batch, arm.batch))
  end
  return dir
end

local function open_arms(e, root, backend)
  local hosts = {}
  for _, name in ipairs(e.order) do
    local arm = e.arms[name]
    local dir = arm_tree(root, arm, e.budget_ms)
    local host, err = planhost.open({ root = dir, url = backend.url, api = backend.api, model = backend.model,
                                      cache = e.cache == true })
    if not host then fail("arm %s: %s", name, err) end
    hosts[name] = { host = host, dir = dir, arm = arm }
  end
  return hosts
end

-- ---- trials -------------------------------------------------------------------------------

local function with_agent(text, id)
  local t = cjson.decode(text)
  t.agent = id
  return cjson.encode(t)
end

-- One trial of one arm: `n` agents (a batch arm sends them together). Returns a record per
-- agent, built from its events.
local function trial(h, name, snap, rep, n, budget_ms)
  local ids, records = {}, {}
  for i = 1, n do
    local agent = n > 1 and ("ab%d"):format(i) or nil
    local text = agent and with_agent(snap.text, agent) or snap.text
    local id, err = h.host:submit({ snapshot = text, budget_ms = budget_ms })
    if not id then fail("%s: %s", snap.name, err) end
    ids[id] = { arm = name, scenario = snap.name, rep = rep, fallbacks = {} }
  end
  local left = n
  local deadline = planhost.clock() + budget_ms + 10000
  while left > 0 and planhost.clock() < deadline do
    for _, ev in ipairs(h.host:poll(50)) do
      local rec = ids[ev.request]
      if rec and ev.event == "fallback" then rec.fallbacks[#rec.fallbacks + 1] = ev.reason end
      if rec and ev.event == "plan" then
        R.take_plan(rec, ev)
        records[#records + 1] = rec
        left = left - 1
      end
    end
  end
  if left > 0 then fail("arm %s: %d plan events missing after the budget", name, left) end
  return records
end

-- Fills a trial record from its plan event (also used for recorded events, --from).
function R.take_plan(rec, ev)
  rec.agent, rec.tier, rec.source, rec.cache = ev.agent, ev.tier, ev.source, ev.cache
  rec.partial = ev.partial == true
  rec.first_step_ms = type(ev.first_step_ms) == "number" and ev.first_step_ms or nil
  rec.total_ms = ev.total_ms
  rec.prompt_chars, rec.prompt_tokens, rec.completion_tokens = ev.prompt_chars, ev.prompt_tokens, ev.completion_tokens
  rec.counts = ev.counts
  rec.steps, rec.tools, rec.dropped = 0, {}, {}
  for _, s in ipairs(ev.plan and ev.plan.steps or {}) do
    rec.steps = rec.steps + 1
    rec.tools[#rec.tools + 1] = s.act
  end
  for _, d in ipairs(ev.dropped or {}) do rec.dropped[#rec.dropped + 1] = d.reason end
  rec.from_model = ev.source == "llm" or (ev.source == "cache")
  rec.valid = rec.from_model and not rec.partial and #rec.dropped == 0
  rec.fallbacks = rec.fallbacks or {}
end

local function progress(done, total)
  io.stderr:write(("\r  %3d%% [%-40s] %d/%d trials"):format(done * 100 // total,
    ("#"):rep(done * 40 // total), done, total))
  if done == total then io.stderr:write("\n") end
end

-- Runs the experiment; returns the trial records in the order they ran.
function R.run(e, root, exe)
  local backend = R.start_backend(e, exe)
  local ok, res = pcall(function()
    local snaps = R.snapshots(e, root)
    local hosts = open_arms(e, root, backend)
    local records, total, done = {}, e.repetitions * #snaps * #e.order, 0
    local tty = os.execute("[ -t 2 ]")
    for _, name in ipairs(e.order) do     -- warm-up, not recorded: the model load, first connections
      trial(hosts[name], name, snaps[1], 0, hosts[name].arm.batch or 1, e.budget_ms)
    end
    for rep = 1, e.repetitions do
      for si, snap in ipairs(snaps) do
        local flip = (rep + si) % 2 == 0          -- A B, then B A: drift hits both arms alike
        for k = 1, #e.order do
          local name = e.order[flip and (#e.order - k + 1) or k]
          local h = hosts[name]
          for _, rec in ipairs(trial(h, name, snap, rep, h.arm.batch or 1, e.budget_ms)) do
            records[#records + 1] = rec
          end
          done = done + 1
          if tty then progress(done, total) end
        end
      end
    end
    for _, h in pairs(hosts) do h.host:close(); sh("rm -rf " .. q(h.dir)) end
    return records
  end)
  backend.stop()
  if not ok then error(res, 0) end
  return res, backend
end

-- Trial records from recorded events (one JSON object per line; plan events with "arm").
function R.from_events(path)
  local records, fallbacks = {}, {}
  for line in read(path):gmatch("[^\n]+") do
    local ok, ev = pcall(cjson.decode, line)
    if ok and type(ev) == "table" then
      local key = tostring(ev.request) .. "/" .. tostring(ev.agent)
      if ev.event == "fallback" then
        fallbacks[key] = fallbacks[key] or {}
        table.insert(fallbacks[key], ev.reason)
      elseif ev.event == "plan" and ev.arm then
        local rec = { arm = ev.arm, scenario = "recorded", fallbacks = fallbacks[key] or {} }
        R.take_plan(rec, ev)
        records[#records + 1] = rec
      end
    end
  end
  return records
end

return R
