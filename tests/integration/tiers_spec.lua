-- The tier chain: every failure reason moves to the next tier with that reason, partial
-- plans are accepted as the tier's policy says, the circuit breaker opens, probes and
-- closes across requests, and a broken policy is a "script" fallback, never a lost request.
-- Against `planhost sim` (SIMULATED) and hand-made replay records. The plan cache is off
-- here (cache = false): these specs send the same snapshot again and again on purpose.
local H = require "helpers"

local hello = H.snapshot("hello_companion")

local function fallbacks(events) return H.events_of(events, "fallback") end

local function plans(events)
  local n = 0
  for _, ev in ipairs(events) do n = n + (ev.event == "plan" and 1 or 0) end
  return n
end

-- A scratch tree whose policies/tiers.lua is `policy` (Lua text).
local function tree_with_policy(policy)
  local dir = H.scratch_tree()
  H.write(dir .. "/policies/tiers.lua", policy)
  return dir
end

describe("tier chain", function()
  after_each(function() H.cleanup() end)

  it("moves on with reason parse when the answer holds no plan", function()
    local rec = H.ollama_record("I am sorry, I cannot help with planning today.", 8, 1)
    local sim = H.start_sim("--replay " .. rec)
    local host = H.open(nil, { cache = false, url = sim.url })
    local plan, events = H.plan(host, { snapshot = hello })
    sim.stop(); os.remove(rec)
    assert.equal(1, plans(events))
    assert.equal("parse", fallbacks(events)[1].reason)
    assert.equal("heuristic", plan.source)
    host:close()
  end)

  it("moves on with reason invalid when every step is dropped", function()
    local rec = H.ollama_record('{"plan_id":"x","steps":[{"act":"Teleport"},{"act":"Fly","x":1}]}', 6, 1)
    local sim = H.start_sim("--replay " .. rec)
    local host = H.open(nil, { cache = false, url = sim.url })
    local plan, events = H.plan(host, { snapshot = hello })
    sim.stop(); os.remove(rec)
    local fb = fallbacks(events)[1]
    assert.equal("invalid", fb.reason)
    assert.equal("simplified", fb.from)
    assert.equal("heuristic", plan.source)
    host:close()
  end)

  it("accepts a partial plan when the budget runs out mid-stream", function()
    local answer = '{"plan_id":"p","steps":[{"act":"Scan","radius":5},{"act":"Attack","target_id":3},{"act":"Wait","duration":1}]}'
    local rec = H.stalled_record(answer:sub(1, 81))   -- two steps, then silence
    local sim = H.start_sim("--replay " .. rec)
    local host = H.open(nil, { cache = false, url = sim.url })
    local plan, events = H.plan(host, { snapshot = hello, budget_ms = 1200 })
    sim.stop(); os.remove(rec)
    assert.equal("llm", plan.source)
    assert.is_true(plan.partial)
    assert.equal(2, #plan.plan.steps)
    assert.equal(0, #fallbacks(events))
    host:close()
  end)

  it("refuses a partial plan with fewer steps than the tier asks for", function()
    local dir = tree_with_policy([[
return {
  tiers = { simplified = { kind = "llm", template = "simplified", accept_partial = true, min_partial_steps = 3 } },
  chain = function() return { "simplified", "heuristic", "emergency" } end,
}]])
    local answer = '{"plan_id":"p","steps":[{"act":"Scan","radius":5},{"act":"Attack","target_id":3},{"act":"Wait","duration":1}]}'
    local rec = H.stalled_record(answer:sub(1, 81))
    local sim = H.start_sim("--replay " .. rec)
    local host = H.open(dir, { cache = false, url = sim.url })
    local plan, events = H.plan(host, { snapshot = hello, budget_ms = 1200 })
    sim.stop(); os.remove(rec)
    assert.equal("heuristic", plan.source)
    assert.equal("timeout", fallbacks(events)[1].reason)
    host:close()
  end)

  -- One LLM tier, then heuristic and emergency; a small circuit with `extra` settings.
  local function circuit_tree(extra)
    return tree_with_policy(([[
return {
  tiers = { simplified = { kind = "llm", template = "simplified" } },
  chain = function() return { "simplified", "heuristic", "emergency" } end,
  circuit = { window = 4, min_requests = 2, open_ratio = 0.5, close_after = 1, %s },
  connect_retries = 0,
}]]):format(extra))
  end

  it("opens the circuit after failures, probes after the cool-down, closes on success", function()
    local dir = circuit_tree("cooldown_ms = 400")
    local sim = H.start_sim("--profile instant")
    local host = H.open(dir, { cache = false, url = sim.url })
    local fault = { "X-Sim-Fault: http500" }
    for _ = 1, 2 do
      local _, events = H.plan(host, { snapshot = hello, headers = fault })
      assert.equal("http_500", fallbacks(events)[1].reason)
    end
    -- open: the tier is skipped without a request, whatever the server would say
    local _, events = H.plan(host, { snapshot = hello })
    assert.equal("circuit_open", fallbacks(events)[1].reason)
    host:poll(600)             -- the cool-down passes; the health check (GET) finds the server up
    -- half open: one probe goes through and succeeds, which closes the circuit
    local plan = H.plan(host, { snapshot = hello })
    assert.equal("llm", plan.source)
    plan = H.plan(host, { snapshot = hello })
    assert.equal("llm", plan.source)
    sim.stop()
    host:close()
  end)

  it("spends no request on a server still down: health checks decide when it is half open", function()
    local dir = circuit_tree("cooldown_ms = 300")
    local sim = H.start_sim("--profile instant")
    local port = sim.url:match(":(%d+)$")
    local host = H.open(dir, { cache = false, url = sim.url })
    assert.equal("llm", H.plan(host, { snapshot = hello }).source)
    sim.stop()
    H.sh("sleep 0.2")
    local _, events = H.plan(host, { snapshot = hello })
    assert.equal("connect", fallbacks(events)[1].reason)   -- 1 of 2 failed: the circuit opens
    host:poll(800)             -- cool-downs pass; each health check finds nothing listening
    _, events = H.plan(host, { snapshot = hello })
    assert.equal("circuit_open", fallbacks(events)[1].reason)   -- not "connect": no request sent
    sim = H.start_sim("--profile instant --port " .. port)
    local deadline = H.planhost.clock() + 3000
    local plan
    repeat
      host:poll(100)
      plan = H.plan(host, { snapshot = hello })
    until plan.source == "llm" or H.planhost.clock() > deadline
    assert.equal("llm", plan.source)
    assert.matches('planhost_circuit_state{endpoint="[^"]+",state="closed"} 1', host:metrics())
    sim.stop()
    host:close()
  end)

  it("lets the first request after the cool-down probe when health_check = false", function()
    local dir = circuit_tree("cooldown_ms = 300, health_check = false")
    local sim = H.start_sim("--profile instant")
    local host = H.open(dir, { cache = false, url = sim.url })
    for _ = 1, 2 do H.plan(host, { snapshot = hello, headers = { "X-Sim-Fault: http500" } }) end
    local before = sim.requests()
    H.sh("sleep 0.4")
    local plan = H.plan(host, { snapshot = hello })   -- no poll in between: this request probes
    assert.equal("llm", plan.source)
    assert.equal(before + 1, sim.requests())
    sim.stop()
    host:close()
  end)

  it("skips a tier whose recent latency does not fit the time left (deadline)", function()
    local sim = H.start_sim("--profile gpu-7b")
    local host = H.open(nil, { cache = false, url = sim.url })
    local first = H.plan(host, { snapshot = hello, budget_ms = 20000 })
    assert.equal("llm", first.source)
    local plan, events = H.plan(host, { snapshot = hello, budget_ms = 40 })
    sim.stop()
    assert.equal("deadline", fallbacks(events)[1].reason)
    assert.equal("heuristic", plan.source)
    host:close()
  end)

  it("turns a failing chain() into a script fallback and still plans", function()
    local dir = tree_with_policy([[
return {
  chain = function(ctx) return ctx.no_such_field.boom end,
}]])
    local host = H.open(dir, { cache = false, url = "http://127.0.0.1:9" })
    local plan, events = H.plan(host, { snapshot = hello })
    local fb = fallbacks(events)[1]
    assert.equal("script", fb.reason)
    assert.matches("policies/tiers.lua:2:", fb.error, 1, true)
    assert.equal("heuristic", plan.source)
    host:close()
  end)

  it("turns a chain() naming no tier into a script fallback", function()
    local dir = tree_with_policy([[
return { chain = function() return { "turbo" } end }]])
    local host = H.open(dir, { cache = false, url = "http://127.0.0.1:9" })
    local plan, events = H.plan(host, { snapshot = hello })
    assert.matches("turbo", fallbacks(events)[1].error, 1, true)
    assert.equal(1, plans(events))
    host:close()
  end)

  it("lets on_failure stop the chain or jump to a tier", function()
    local dir = tree_with_policy([[
return {
  tiers = { simplified = { kind = "llm", template = "simplified" }, compact = { kind = "llm", template = "compact" } },
  chain = function() return { "simplified", "compact", "heuristic", "emergency" } end,
  on_failure = function(ctx, reason) if reason == "connect" then return "stop" end end,
  connect_retries = 0,
}]])
    local host = H.open(dir, { cache = false, url = "http://127.0.0.1:9" })
    local plan, events = H.plan(host, { snapshot = hello })
    assert.equal("emergency", plan.source)
    assert.equal("emergency", fallbacks(events)[1].to)
    host:close()
  end)

  it("passes the game's context to chain()", function()
    local host = H.open(nil, { cache = false, url = "http://127.0.0.1:9" })
    local plan, events = H.plan(host, { snapshot = hello, game = '{"urgency":"high"}' })
    assert.equal("heuristic", plan.source)
    assert.equal(0, #fallbacks(events))     -- urgency high: the default policy starts at heuristic
    host:close()
  end)

  it("rejects a policy with an unknown key or template at reload", function()
    local dir = tree_with_policy([[return { chian = function() end }]])
    local h, msg = H.planhost.open(dir)
    assert.is_nil(h)
    assert.matches("unknown key 'chian'", msg, 1, true)
    H.write(dir .. "/policies/tiers.lua", [[return { tiers = { x = { kind = "llm", template = "nope" } }, chain = function() return { "x" } end }]])
    h, msg = H.planhost.open(dir)
    assert.is_nil(h)
    assert.matches("no template 'nope'", msg, 1, true)
  end)

  it("finishes requests in flight on their own generation while new ones use the edited policy", function()
    local dir = tree_with_policy([[
return {
  tiers = { simplified = { kind = "llm", template = "simplified" }, compact = { kind = "llm", template = "compact" } },
  chain = function() return { "simplified", "heuristic", "emergency" } end,
}]])
    local sim = H.start_sim("--profile instant --parallel 2")
    local host = H.open(dir, { cache = false, url = sim.url, watch = true, interval_ms = 20 })
    local old = assert(host:submit { snapshot = hello, budget_ms = 20000, headers = { "X-Sim-Fault: slow:150" } })
    H.write(dir .. "/policies/tiers.lua", [[
return {
  tiers = { simplified = { kind = "llm", template = "simplified" }, compact = { kind = "llm", template = "compact" } },
  chain = function() return { "compact", "heuristic", "emergency" } end,
}]])
    local reloaded, new, plans_by_id = false, nil, {}
    local t0 = H.planhost.clock()
    while H.planhost.clock() - t0 < 20000 and not (plans_by_id[old] and new and plans_by_id[new]) do
      for _, ev in ipairs(host:poll(20)) do
        if ev.event == "reload" and ev.ok then
          reloaded = true
          new = assert(host:submit { snapshot = hello })
        end
        if ev.event == "plan" then plans_by_id[ev.request] = ev end
      end
    end
    sim.stop()
    assert.is_true(reloaded)
    assert.equal("simplified", plans_by_id[old].tier)   -- started on generation 1
    assert.equal("compact", plans_by_id[new].tier)      -- generation 2's chain
    host:close()
  end)

  it("drops steps that fail the snapshot checks or the game's validate() rule", function()
    local answer = '{"plan_id":"v","steps":[{"act":"Attack","target_id":99},{"act":"ThrowSmoke","x":8,"y":2},'
      .. '{"act":"MoveTo","x":6,"y":3},{"act":"Scan","radius":5}]}'
    local rec = H.ollama_record(answer, 9, 1)
    local sim = H.start_sim("--replay " .. rec)
    local host = H.open(nil, { cache = false, url = sim.url })
    local snap = H.snapshot("hello_companion"):gsub('"throw:smoke": *0', '"throw:smoke":4')
    local plan, events = H.plan(host, { snapshot = snap })
    sim.stop(); os.remove(rec)
    assert.equal("llm", plan.source)
    assert.equal(1, #plan.plan.steps)
    assert.equal("Scan", plan.plan.steps[1].act)
    local reasons = {}
    for _, d in ipairs(plan.dropped) do reasons[d.index] = d.reason end
    assert.matches("not an enemy", reasons[0])
    assert.matches("ThrowSmoke is on cooldown", reasons[1], 1, true)
    assert.matches("obstacle", reasons[2])
    local steps = 0
    for _, ev in ipairs(events) do steps = steps + (ev.event == "step" and 1 or 0) end
    assert.equal(1, steps)          -- dropped steps never reach the game as step events
    host:close()
  end)

  it("moves on with reason script when the validate() rule itself fails", function()
    local dir = H.scratch_tree()
    H.write(dir .. "/policies/validate.lua", "return { validate = function(step) return step.nope.x end }")
    local host = H.open(dir, { cache = false, url = "http://127.0.0.1:9" })
    local plan, events = H.plan(host, { snapshot = hello })
    local reasons = {}
    for _, fb in ipairs(fallbacks(events)) do reasons[#reasons + 1] = fb.reason end
    assert.equal("script", reasons[#reasons])
    assert.equal("emergency", plan.source)
    host:close()
  end)

  it("sends the tier's max_tokens (the simulator cuts the answer there)", function()
    local function run(extra)
      local dir = tree_with_policy(([[
return {
  tiers = { simplified = { kind = "llm", template = "simplified" %s } },
  chain = function() return { "simplified", "heuristic", "emergency" } end,
}]]):format(extra))
      local sim = H.start_sim("--profile instant")
      local host = H.open(dir, { cache = false, url = sim.url })
      local plan, events = H.plan(host, { snapshot = hello })
      sim.stop()
      host:close()
      return plan, events
    end
    assert.equal("llm", (run("")).source)
    local plan, events = run(", max_tokens = 3, model = 'other-model', schema = false")
    assert.equal("heuristic", plan.source)
    assert.equal("simplified", fallbacks(events)[1].from)
  end)

  it("retries a connect failure on another endpoint of the group", function()
    local sim = H.start_sim("--profile instant")
    local host = H.open(nil, { cache = false, endpoints = { { url = "http://127.0.0.1:9" }, { url = sim.url } } })
    local plan, events = H.plan(host, { snapshot = hello })
    sim.stop()
    local fb = fallbacks(events)
    assert.equal(1, #fb)
    assert.same({ "simplified", "simplified", "connect" }, { fb[1].from, fb[1].to, fb[1].reason })
    assert.equal("llm", plan.source)
    host:close()
  end)

  it("sends a tier to its endpoint group", function()
    local dir = tree_with_policy([[
return {
  tiers = { compact = { kind = "llm", template = "compact", endpoint = "fast" } },
  chain = function() return { "compact", "heuristic", "emergency" } end,
}]])
    local sim = H.start_sim("--profile instant")
    local host = H.open(dir, { cache = false, endpoints = { { url = "http://127.0.0.1:9" }, { url = sim.url, group = "fast" } } })
    local plan, events = H.plan(host, { snapshot = hello })
    sim.stop()
    assert.equal("llm", plan.source)
    assert.equal(0, #fallbacks(events))
    host:close()
  end)

  it("keeps a circuit per endpoint: a failing one opens, the other keeps serving", function()
    local dir = tree_with_policy([[
return {
  tiers = { simplified = { kind = "llm", template = "simplified" } },
  chain = function() return { "simplified", "heuristic", "emergency" } end,
  circuit = { window = 4, min_requests = 2, open_ratio = 0.5, cooldown_ms = 60000, close_after = 1 },
  connect_retries = 0,
}]])
    local bad = H.start_sim("--profile instant --fault http500")
    local good = H.start_sim("--profile instant")
    local host = H.open(dir, { cache = false, endpoints = { { url = bad.url }, { url = good.url } } })
    local sources = {}
    for i = 1, 6 do sources[i] = H.plan(host, { snapshot = hello }).source end
    bad.stop(); good.stop()
    -- ties go to the first endpoint, so the bad one is tried until its circuit opens
    assert.equal("heuristic", sources[1])
    for i = 3, 6 do assert.equal("llm", sources[i], "request " .. i) end
    host:close()
  end)

  it("caps the bytes of one response", function()
    local sim = H.start_sim("--profile instant")
    local host = H.open(nil, { cache = false, url = sim.url, max_response = 3000 })
    local plan, events = H.plan(host, { snapshot = hello, budget_ms = 10000, headers = { "X-Sim-Fault: endless" } })
    sim.stop()
    assert.equal(1, plans(events))
    if plan.source == "llm" then      -- the cap cut the endless stream: the steps so far stand
      assert.is_true(plan.partial)
      assert.is_true(plan.total_ms < 5000, "the stream ran to the budget, not to the cap")
    else
      assert.matches("size cap", fallbacks(events)[1].error, 1, true)
    end
    host:close()
  end)

  it("answers from the heuristic tier quickly when no server is reachable", function()
    local host = H.open(nil, { cache = false, url = "http://127.0.0.1:9" })
    local plan = H.plan(host, { snapshot = hello })
    assert.equal("heuristic", plan.source)
    assert.is_true(plan.total_ms < 50 * 4, "took " .. plan.total_ms .. " ms")   -- 50 ms target; margin for sanitizers
    host:close()
  end)
end)
