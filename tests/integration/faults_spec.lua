-- The fault matrix: every fault mode of `planhost sim` (a SIMULATED LLM server, not a model)
-- × every protocol the host speaks (ollama, ollama-generate, openai, llamacpp) × batching off
-- (one plain request) and on (3 agents, template = "batch"). Each request ends in exactly one
-- plan event, from the tier the tier policy says, within its budget + 50 ms (measured from
-- submit and in the event's total_ms); afterwards the process has its file descriptors back
-- and a second pass over the quick cases does not grow its memory.
--
-- One host per protocol serves all its cases at once (the cases are independent requests, and
-- their events are kept apart by request id). The simulator answers this snapshot with a plan
-- of 103 characters, sent in tokens of 4 characters: the first step closes at character 70
-- (token 18), the plan at 103 (token 26). The batch answer ([c2, c5, c9]) closes c2's first step
-- at character 87 (token 22) and c2's element at 120 (token 30). K in error_mid:K / reset:K
-- counts the tokens sent before the fault (host/sim_faults.c), so K = 0 faults before any step,
-- and K = 20 (single) / 26 (batch) after the first step of the first plan but before it closes.
-- slow:MS sends a token every MS ms, the first MS ms after the headers.
--
-- The plan cache is off (the single cases send the same snapshot and would coalesce), the
-- circuit breaker cannot open (one host takes the whole failing matrix; tiers_spec covers the
-- breaker) and a batch leaves as soon as 3 agents are queued (so each case is its own batch).
-- Provisional plans are on: every request, waiting for the model, first gets exactly one
-- (the heuristic planner's), whatever the fault does afterwards.
local H = require "helpers"
local cjson = H.cjson
local clock = H.planhost.clock

local hello = H.snapshot("hello_companion")
local APIS = { "ollama", "ollama-generate", "openai", "llamacpp" }
local AGENTS = { "c9", "c2", "c5" }           -- submitted in this order; answered c2, c5, c9
local SLACK_MS = 50
local MISBEHAVE = "fence=0,prose=0,unknown_tool=0,truncate=0,trailing_comma=0,wrong_case=0"

local function agent(id, x)
  local t = cjson.decode(hello)
  t.agent, t.me.pos.x = id, x
  return cjson.encode(t)
end
local SNAP = {}
for i, a in ipairs(AGENTS) do SNAP[a] = agent(a, i * 3) end

-- What one request must end in: an LLM plan (complete, or partial with `steps` steps) with no
-- fallback, or one fallback with `reason` and then the heuristic tier's plan.
local function llm(partial, steps) return { source = "llm", partial = partial, steps = steps } end
local function heur(reason) return { source = "heuristic", reason = reason } end
local function all(e) return { c2 = e, c5 = e, c9 = e } end

-- fault_s / budget_s: the plain request; fault_b / budget_b: the batch of three.
local CASES = {
  { name = "no fault", budget_s = 1500, budget_b = 1500, single = llm(false), batch = all(llm(false)) },
  { name = "http500", fault_s = "http500", budget_s = 1500, budget_b = 1500,
    single = heur("http_500"), batch = all(heur("http_500")) },
  { name = "notfound", fault_s = "notfound", budget_s = 1500, budget_b = 1500,
    single = heur("http_404"), batch = all(heur("http_404")) },
  { name = "error_mid before any step", fault_s = "error_mid:0", budget_s = 1500, budget_b = 1500,
    single = heur("stream_error"), batch = all(heur("stream_error")) },
  { name = "error_mid after the first step", fault_s = "error_mid:20", fault_b = "error_mid:26",
    budget_s = 1500, budget_b = 1500,
    single = llm(true, 1), batch = { c2 = llm(true, 1), c5 = heur("stream_error"), c9 = heur("stream_error") } },
  { name = "reset before any step", fault_s = "reset:0", budget_s = 1500, budget_b = 1500,
    single = heur("stream_error"), batch = all(heur("stream_error")) },
  { name = "reset after the first step", fault_s = "reset:20", fault_b = "reset:26", budget_s = 1500, budget_b = 1500,
    single = llm(true, 1), batch = { c2 = llm(true, 1), c5 = heur("stream_error"), c9 = heur("stream_error") } },
  { name = "garbage", fault_s = "garbage", budget_s = 1500, budget_b = 1500,   -- a bad line after token 1
    single = heur("stream_error"), batch = all(heur("stream_error")) },
  { name = "slow, no step within the budget", fault_s = "slow:2000", budget_s = 800, budget_b = 900, timed = true,
    single = heur("timeout"), batch = all(heur("timeout")) },
  -- single: first step at 18 × 50 = 900 ms, the plan at 26 × 50 = 1300 ms > 1200;
  -- batch: c2's first step at 22 × 40 = 880 ms, its element at 30 × 40 = 1200 ms > 1100
  { name = "slow, steps within the budget", fault_s = "slow:50", fault_b = "slow:40", budget_s = 1200,
    budget_b = 1100, timed = true,
    single = llm(true, 1), batch = { c2 = llm(true, 1), c5 = heur("timeout"), c9 = heur("timeout") } },
  { name = "hang", fault_s = "hang", budget_s = 600, budget_b = 700, timed = true,
    single = heur("timeout"), batch = all(heur("timeout")) },
  -- endless: the plan (the array) closes, the host stops reading (a single request drains
  -- the stream for 50 ms first) and the plan stands whole; the response cap is never reached
  { name = "endless", fault_s = "endless", budget_s = 1500, budget_b = 1500, by_ms = 1000,
    single = llm(false), batch = all(llm(false)) },
}
for _, c in ipairs(CASES) do c.fault_b = c.fault_b or c.fault_s end

-- ---- resources ------------------------------------------------------------------------

local PID = H.read("/proc/self/stat"):match("^(%d+)")

local function open_fds()
  local p = io.popen("ls /proc/" .. PID .. "/fd | wc -l")
  local n = tonumber(p:read("a"):match("%d+"))
  p:close()
  return n
end

-- AddressSanitizer reserves its shadow memory up front (terabytes of address space) and keeps
-- freed blocks in quarantine, so VmRSS only grows there; under it LeakSanitizer checks leaks
-- at exit (detect_leaks=1) instead.
local function under_asan()
  return tonumber(H.read("/proc/self/status"):match("VmSize:%s*(%d+)")) > 2 ^ 32   -- KiB: 4 TiB
end

local function rss_kib()
  collectgarbage("collect")
  collectgarbage("collect")
  return tonumber(H.read("/proc/self/status"):match("VmRSS:%s*(%d+)"))
end

-- ---- running a round ------------------------------------------------------------------

local sim, tree
local matrix = {}                 -- matrix[case name][api .. " single|batch"] = what it ended in

local function headers(fault) return fault and { "X-Sim-Fault: " .. fault } or nil end

-- Submits every case of `cases` on one host speaking `api`, all at once; returns the requests
-- (id -> {case, mode, agent, budget, t0, events, plans, plan_ms}) once each has its plan event
-- and nothing more came for 150 ms, and the number of model requests the simulator saw.
local function round(api, cases)
  local host = H.open(tree, { cache = false, url = sim.url, api = api })
  local reqs, left = {}, 0
  local function add(id, c, mode, a, budget, t0)
    assert(id, "submit refused")
    reqs[id] = { case = c, mode = mode, agent = a, budget = budget, t0 = t0, events = {}, plans = 0 }
    left = left + 1
  end
  local function route(events)
    local now = clock()
    for _, ev in ipairs(events) do
      local r = assert(reqs[ev.request], "an event for a request never submitted: " .. tostring(ev.json))
      r.events[#r.events + 1] = ev
      if ev.event == "plan" then
        r.plans = r.plans + 1
        if r.plans == 1 then r.plan_ms, left = now - r.t0, left - 1 end
      end
    end
  end
  local before = sim.requests()
  local ok, err = pcall(function()
    for _, c in ipairs(cases) do
      local t0 = clock()
      add(host:submit({ snapshot = hello, budget_ms = c.budget_s, headers = headers(c.fault_s) }), c, "single",
          "c2", c.budget_s, t0)
      for _, a in ipairs(AGENTS) do
        t0 = clock()
        add(host:submit({ snapshot = SNAP[a], template = "batch", budget_ms = c.budget_b, headers = headers(c.fault_b) }),
            c, "batch", a, c.budget_b, t0)
      end
      route(host:poll(0))         -- the batch of three leaves now, alone
    end
    local deadline = clock() + 10000
    while left > 0 and clock() < deadline do route(host:poll(20)) end
    local quiet = clock() + 150   -- a second plan event (or any late event) would land here
    while clock() < quiet do route(host:poll(20)) end
    assert(host:pending() == 0, host:pending() .. " requests still pending")
  end)
  host:close()
  assert(ok, err)
  return reqs, sim.requests() - before
end

local function fallbacks(events) return H.events_of(events, "fallback") end

local function describe_end(plan, fb)
  if plan.source == "llm" then return "llm" .. (plan.partial and " partial(" .. #plan.plan.steps .. ")" or "") end
  local reasons = {}
  for _, f in ipairs(fb) do reasons[#reasons + 1] = f.reason end
  return plan.source .. "(" .. table.concat(reasons, ",") .. ")"
end

-- Checks one request against its case.
local function check(api, r)
  local c = r.case
  local want = r.mode == "single" and c.single or c.batch[r.agent]
  local where = ("%s, %s, %s, agent %s (fault %s): "):format(c.name, api, r.mode, r.agent,
                                                            tostring(r.mode == "single" and c.fault_s or c.fault_b))
  local trace = {}
  for _, ev in ipairs(r.events) do trace[#trace + 1] = ev.json end
  where = where .. "\n  " .. table.concat(trace, "\n  ") .. "\n  "
  assert.equal(1, r.plans, where .. "plan events")
  local first = r.events[1]
  assert.equal("provisional", first.event, where .. "the provisional plan comes first")
  assert.is_true(first.plan ~= cjson.null and #first.plan.steps >= 1, where .. "provisional steps")
  for i = 2, #r.events do assert.is_true(r.events[i].event ~= "provisional", where .. "one provisional event") end
  local plan = r.events[#r.events]
  assert.equal("plan", plan.event, where .. "the plan event is the request's last")
  assert.is_true(r.plan_ms <= r.budget + SLACK_MS, where .. ("plan event %.1f ms after submit"):format(r.plan_ms))
  assert.is_true(plan.total_ms <= r.budget + SLACK_MS, where .. ("total_ms %.1f"):format(plan.total_ms))
  if c.by_ms then assert.is_true(r.plan_ms <= c.by_ms, where .. ("plan event %.1f ms after submit"):format(r.plan_ms)) end
  local fb = fallbacks(r.events)
  local first_tier = r.mode == "single" and "simplified" or "batch"
  assert.equal(want.source, plan.source, where .. "source")
  if want.source == "llm" then
    assert.equal(first_tier, plan.tier, where .. "tier")
    assert.equal(0, #fb, where .. "fallbacks")
    assert.equal(want.partial, plan.partial, where .. "partial")
    if want.steps then assert.equal(want.steps, #plan.plan.steps, where .. "steps") end
    assert.is_true(#plan.plan.steps >= 1, where .. "steps")
    if r.mode == "batch" then assert.equal(3, plan.batch_size, where .. "batch_size") end
  else
    assert.equal("heuristic", plan.tier, where .. "tier")
    assert.equal(1, #fb, where .. "fallbacks")
    assert.same({ first_tier, "heuristic", want.reason }, { fb[1].from, fb[1].to, fb[1].reason }, where .. "fallback")
    assert.is_true(#plan.plan.steps >= 1, where .. "steps")
  end
end

-- Checks every request of a round (all of them, so one report names every case that failed);
-- `record`: note how each ended in the matrix.
local function check_round(api, reqs, served, ncases, record)
  local ids, failed = {}, {}
  for id in pairs(reqs) do ids[#ids + 1] = id end
  table.sort(ids)
  assert.equal(ncases * 4, #ids)
  for _, id in ipairs(ids) do
    local r = reqs[id]
    local ok, err = pcall(check, api, r)
    if not ok then failed[#failed + 1] = tostring(err) end
    if record then
      local plan = r.events[#r.events]
      local got = plan and plan.event == "plan" and describe_end(plan, fallbacks(r.events)) or "no plan"
      if r.plans > 1 then got = got .. " ×" .. r.plans end
      local row = matrix[r.case.name] or {}
      matrix[r.case.name] = row
      local col = api .. " " .. r.mode
      row[col] = r.mode == "single" and got or ((row[col] and row[col] .. " " or "") .. r.agent .. ":" .. got)
    end
  end
  assert(#failed == 0, #failed .. " of " .. #ids .. " requests ended wrong:\n" .. table.concat(failed, "\n"))
  assert.equal(ncases * 2, served, "model requests: one per plain request, one per batch")
end

local function print_matrix()
  if not os.getenv("PLANHOST_FAULTS_MATRIX") then return end
  local out = {}
  for _, c in ipairs(CASES) do
    local cells = {}
    for _, api in ipairs(APIS) do
      for _, mode in ipairs({ "single", "batch" }) do cells[#cells + 1] = (matrix[c.name] or {})[api .. " " .. mode] or "-" end
    end
    out[#out + 1] = c.name .. " | " .. table.concat(cells, " | ")
  end
  io.stderr:write("\n" .. table.concat(out, "\n") .. "\n")
end

describe("fault matrix (SIMULATED server)", function()
  local fds_before

  setup(function()
    sim = H.start_sim("--profile instant --parallel 64 --misbehave " .. MISBEHAVE)
    tree = H.scratch_tree()
    H.edit(tree .. "/policies/tiers.lua", "circuit = { window = 20, min_requests = 5,",
           "circuit = { window = 1000, min_requests = 1000,")
    H.edit(tree .. "/policies/batch.lua", "return 10", "return 3")
    H.edit(tree .. "/policies/tiers.lua", "provisional = false,", "provisional = true,")
    fds_before = open_fds()
  end)

  teardown(function()
    print_matrix()
    if sim then sim.stop() end
    H.cleanup()
  end)

  for _, api in ipairs(APIS) do
    it("ends every case in one plan event from the right tier, in time: " .. api, function()
      local reqs, served = round(api, CASES)
      check_round(api, reqs, served, #CASES, true)
    end)
  end

  it("gives every file descriptor back once the hosts are closed", function()
    local after = open_fds()
    assert.is_true(after <= fds_before + 2, ("%d descriptors before the matrix, %d after"):format(fds_before, after))
  end)

  it("does not grow its memory over a second pass of the quick cases", function()
    local quick = {}
    for _, c in ipairs(CASES) do
      if not c.timed then quick[#quick + 1] = c end
    end
    local function pass()
      for _, api in ipairs(APIS) do
        local reqs, served = round(api, quick)
        check_round(api, reqs, served, #quick)
      end
    end
    pass()                        -- warm-up: allocator pools, curl handles, Lua tables
    local before = rss_kib()
    pass()
    local grown = rss_kib() - before
    if under_asan() then return end
    assert.is_true(grown < 4096, ("VmRSS grew by %d KiB over the second pass"):format(grown))
  end)
end)
