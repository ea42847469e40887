-- Planning over real HTTP against `planhost sim` (a SIMULATED server): every protocol
-- streams steps before the plan, every fault mode ends in exactly one plan event with the
-- right fallback reason, record -> replay gives the same events.
local H = require "helpers"

local hello = H.snapshot("hello_companion")

-- The first fallback away from the tier that was tried.
local function first_fallback(events) return H.events_of(events, "fallback")[1] end

local function count(events, kind)
  local n = 0
  for _, ev in ipairs(events) do n = n + (ev.event == kind and 1 or 0) end
  return n
end

describe("planhost plan against the simulator", function()
  local sim
  setup(function() sim = H.start_sim("--profile instant") end)
  teardown(function() sim.stop() end)

  for _, api in ipairs { "ollama", "ollama-generate", "openai", "llamacpp" } do
    it("streams steps, then one plan, over " .. api, function()
      local host = H.open(nil, { url = sim.url, api = api })
      for _, template in ipairs { "compact", "simplified", "full" } do
        local plan, events = H.plan(host, { snapshot = hello, template = template })
        assert.equal("llm", plan.source, plan.json)
        assert.equal(template, plan.tier)
        assert.is_false(plan.partial)
        assert.is_true(#plan.plan.steps >= 1)
        assert.equal(#plan.plan.steps + #plan.dropped, count(events, "step") + #plan.dropped)
        assert.equal(1, count(events, "plan"))
        assert.equal("step", events[1].event)          -- steps come before the plan
        assert.equal("plan", events[#events].event)
        assert.equal("c2", plan.agent)
        assert.is_true(plan.first_step_ms <= plan.total_ms)
        assert.is_true(plan.prompt_chars > 0)
      end
      host:close()
    end)
  end

  it("prints the events of DESIGN.md from the command, one JSON object per line", function()
    local status, out, err = H.run(("plan --url %s --template compact %s"):format(sim.url,
      H.q(H.root .. "/examples/snapshots/hello_companion.json")))
    assert.equal(0, status, err)
    local kinds = {}
    for line in out:gmatch("[^\n]+") do kinds[#kinds + 1] = H.cjson.decode(line).event end
    assert.equal("step", kinds[1])
    assert.equal("plan", kinds[#kinds])
  end)

  it("prints a readable view with --pretty", function()
    local status, out = H.run(("plan --pretty --url %s %s"):format(sim.url,
      H.q(H.root .. "/examples/snapshots/hello_companion.json")))
    assert.equal(0, status)
    assert.matches("step 0", out)
    assert.matches("plan %S+ from simplified %(llm%)", out)
  end)

  local faults = {
    { "http500", "http_500" },
    { "notfound", "http_404" },
    { "error_mid", "stream_error" },
    { "reset:3", "stream_error" },
    { "garbage", "stream_error" },
  }
  for _, f in ipairs(faults) do
    it("falls back with reason " .. f[2] .. " on fault " .. f[1], function()
      local host = H.open(nil, { url = sim.url })
      local plan, events = H.plan(host, { snapshot = hello, template = "compact", headers = { "X-Sim-Fault: " .. f[1] } })
      assert.equal(1, count(events, "plan"))
      if plan.source == "llm" then
        assert.is_true(plan.partial, "a model plan after a fault must be partial")
      else
        assert.equal("heuristic", plan.source)
        local fb = first_fallback(events)
        assert.equal("compact", fb.from)
        assert.equal("heuristic", fb.to)
        assert.equal(f[2], fb.reason, fb.error)
        assert.is_string(fb.error)
      end
      host:close()
    end)
  end

  it("names the missing model in a 404", function()
    local host = H.open(nil, { url = sim.url })
    local _, events = H.plan(host, { snapshot = hello, headers = { "X-Sim-Fault: notfound" } })
    assert.matches("not found", first_fallback(events).error)
    host:close()
  end)

  it("times out a server that accepts and never answers", function()
    local host = H.open(nil, { url = sim.url, first_byte_timeout_ms = 300 })
    local plan, events = H.plan(host, { snapshot = hello, budget_ms = 1500, headers = { "X-Sim-Fault: hang" } })
    assert.equal("heuristic", plan.source)
    assert.equal("timeout", first_fallback(events).reason)
    host:close()
  end)

  it("ends an endless stream at the budget, with the partial plan or a fallback", function()
    local host = H.open(nil, { url = sim.url })
    local plan, events = H.plan(host, { snapshot = hello, budget_ms = 800, headers = { "X-Sim-Fault: endless" } })
    assert.equal(1, count(events, "plan"))
    if plan.source ~= "llm" then assert.equal("timeout", first_fallback(events).reason) end
    host:close()
  end)

  it("times out a server that sends a token every 2 s, keeping complete steps if any", function()
    local host = H.open(nil, { url = sim.url })
    local plan, events = H.plan(host, { snapshot = hello, budget_ms = 1200, headers = { "X-Sim-Fault: slow" } })
    assert.equal(1, count(events, "plan"))
    if plan.source == "llm" then
      assert.is_true(plan.partial)
    else
      assert.equal("timeout", first_fallback(events).reason)
    end
    host:close()
  end)

  it("cancels a request: no event follows", function()
    local host = H.open(nil, { url = sim.url })
    local id = assert(host:submit { snapshot = hello, headers = { "X-Sim-Fault: hang" } })
    assert.equal(1, host:pending())
    assert.is_true(host:cancel(id))
    assert.is_false(host:cancel(id))
    assert.equal(0, host:pending())
    local t0 = H.planhost.clock()
    while H.planhost.clock() - t0 < 300 do
      for _, ev in ipairs(host:poll(50)) do assert.not_equal(id, ev.request) end
    end
    host:close()
  end)

  it("keeps a request on its generation when the scripts reload mid-stream", function()
    local dir = H.scratch_tree()
    local host = H.open(dir, { url = sim.url, watch = true, interval_ms = 20 })
    local id = assert(host:submit { snapshot = hello, template = "compact", budget_ms = 20000,
                                    headers = { "X-Sim-Fault: slow:100" } })
    H.edit(dir .. "/prompts/compact.lua", "Reply JSON only", "Answer in JSON only")
    local plan, reloaded
    local t0 = H.planhost.clock()
    while not plan and H.planhost.clock() - t0 < 20000 do
      for _, ev in ipairs(host:poll(50)) do
        if ev.event == "reload" then reloaded = ev end
        if ev.event == "plan" and ev.request == id then plan = ev end
      end
    end
    assert.is_table(plan)
    assert.is_true(reloaded and reloaded.ok)
    assert.equal("compact", plan.tier)
    host:close()
    H.cleanup()
  end)

  it("reports connect when nothing listens", function()
    local host = H.open(nil, { url = "http://127.0.0.1:9" })
    local plan, events = H.plan(host, { snapshot = hello })
    assert.equal("heuristic", plan.source)
    assert.equal("connect", events[1].reason)
    assert.equal("simplified", events[1].from)
    assert.equal("simplified", events[1].to)      -- the policy retries a connect once
    assert.equal("heuristic", events[2].to)
    assert.is_true(#plan.plan.steps >= 1)
    host:close()
  end)

  it("refuses a malformed snapshot at submit, with the byte offset", function()
    local host = H.open(nil, { url = sim.url })
    local id, msg, code = host:submit { snapshot = '{"agent":"c2",' }
    assert.is_nil(id)
    assert.equal("json", code)
    assert.matches("byte %d+", msg)
    assert.equal(0, host:pending())
    host:close()
  end)

  it("records a stream and replays it with the same events", function()
    local rec = os.tmpname()
    local status, first, err = H.run(("plan --url %s --template compact --record %s %s"):format(sim.url, rec,
      H.q(H.root .. "/examples/snapshots/hello_companion.json")))
    assert.equal(0, status, err)
    assert.matches('"record":"planhost"', H.read(rec))
    local replay = H.start_sim("--replay " .. rec)
    local _, second = H.run(("plan --url %s --template compact %s"):format(replay.url,
      H.q(H.root .. "/examples/snapshots/hello_companion.json")))
    replay.stop()
    os.remove(rec)
    local function steps(out)
      local s = {}
      for line in out:gmatch("[^\n]+") do
        local ev = H.cjson.decode(line)
        if ev.event == "step" then s[#s + 1] = H.cjson.encode(ev.step) end
        if ev.event == "plan" then s[#s + 1] = ev.source .. " " .. ev.plan.plan_id end
      end
      return s
    end
    assert.same(steps(first), steps(second))
  end)
end)

describe("streaming order against a slow simulated model", function()
  it("delivers the first step before the stream ends", function()
    local sim = H.start_sim("--profile gpu-7b")
    local host = H.open(nil, { url = sim.url })
    local plan, events = H.plan(host, { snapshot = hello, template = "compact" })
    sim.stop()
    assert.equal("llm", plan.source)
    assert.equal("step", events[1].event)
    if #plan.plan.steps > 1 then
      assert.is_true(events[1].t_ms < events[#events - 1].t_ms, "steps arrive one by one")
    end
    assert.is_true(plan.first_step_ms < plan.total_ms)
    host:close()
  end)

  it("keeps every event valid JSON when the server's error words are not UTF-8", function()
    local path = os.tmpname()
    H.write(path, '{"record":"planhost","version":1,"api":"ollama","path":"/api/chat","status":200,"content_type":"application/x-ndjson"}\n'
      .. ('{"t_ms":1,"b64":"%s"}\n'):format(H.b64('{"error":"broken \xff\xfe\xc0\xaf words"}\n')))
    local bad = H.start_sim("--replay " .. path)
    local host = H.open(nil, { url = bad.url, cache = false })
    local plan, events = H.plan(host, { snapshot = hello })
    bad.stop(); os.remove(path)
    assert.equal("heuristic", plan.source)
    for _, ev in ipairs(events) do
      assert.is_not_nil(utf8.len(ev.json), "not UTF-8: " .. ev.json)
      assert.is_table(H.cjson.decode(ev.json))
    end
    host:close()
  end)
end)
