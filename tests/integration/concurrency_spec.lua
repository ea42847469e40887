-- Concurrency: max_in_flight per endpoint (requests past it wait for a slot without blocking
-- the caller, in submission order, and fall back when their budget runs out), several
-- endpoints sharing the load, two hosts in one process. Against `planhost sim` (SIMULATED).
local H = require "helpers"
local cjson = H.cjson

local hello = H.snapshot("hello_companion")

local function at(x)   -- hello_companion with the companion elsewhere: another cache key
  local t = cjson.decode(hello)
  t.me.pos.x = x
  return cjson.encode(t)
end

describe("concurrency", function()
  it("sends at most max_in_flight requests to an endpoint; the rest wait their turn", function()
    local sim = H.start_sim("--profile instant --parallel 4")   -- the server could take all three
    local host = H.open(nil, { endpoints = { { url = sim.url, max_in_flight = 1 } }, cache = false })
    local slow = { "X-Sim-Fault: slow:15" }          -- a token every 15 ms
    local ids = {}
    for i = 1, 3 do ids[i] = host:submit({ snapshot = at(10 * i), headers = slow, budget_ms = 20000 }) end
    assert.equal(3, host:pending())                  -- submit returned at once for all three
    local plans = H.collect(host, ids, 30)
    for i = 1, 3 do assert.equal("llm", plans[ids[i]].source) end
    local capped = plans[ids[3]].total_ms
    host:close()

    host = H.open(nil, { url = sim.url, cache = false })   -- no cap: they overlap
    for i = 1, 3 do ids[i] = host:submit({ snapshot = at(10 * i), headers = slow, budget_ms = 20000 }) end
    plans = H.collect(host, ids, 30)
    local free = plans[ids[3]].total_ms
    -- the same three answers: one at a time the last ends after all three, side by side
    -- after the longest
    assert.is_true(capped > 1.6 * free, ("capped %.0f ms, uncapped %.0f ms"):format(capped, free))
    host:close()
    sim.stop()
  end)

  it("lets a request waiting for a slot fall back when its budget runs out", function()
    local sim = H.start_sim("--profile instant")
    local host = H.open(nil, { url = sim.url, max_in_flight = 1, cache = false })
    local a = host:submit({ snapshot = at(10), headers = { "X-Sim-Fault: hang" }, budget_ms = 1500 })
    local b = host:submit({ snapshot = at(20), budget_ms = 300 })
    local plans, events = H.collect(host, { a, b })
    assert.equal("heuristic", plans[b].source)
    assert.is_true(plans[b].total_ms < 350, plans[b].total_ms)
    assert.equal("deadline", events[b][1].reason)
    assert.matches("max_in_flight", events[b][1].error)
    host:close()
    sim.stop()
  end)

  it("shares the load between endpoints of a group by outstanding requests", function()
    local one, two = H.start_sim("--profile instant"), H.start_sim("--profile instant")
    local host = H.open(nil, { cache = false, endpoints = {
      { url = one.url, max_in_flight = 2 }, { url = two.url, max_in_flight = 2 } } })
    local ids = {}
    for i = 1, 8 do ids[i] = host:submit({ snapshot = at(i * 10), headers = { "X-Sim-Fault: slow:5" } }) end
    local plans = H.collect(host, ids, 30)
    for _, id in ipairs(ids) do assert.equal("llm", plans[id].source) end
    local a, b = one.requests(), two.requests()
    assert.equal(8, a + b)
    assert.is_true(a >= 2 and b >= 2, a .. " and " .. b)
    host:close()
    one.stop(); two.stop()
  end)

  it("runs two hosts side by side in one process", function()
    local sim = H.start_sim("--profile instant")
    local h1 = H.open(nil, { url = sim.url })
    local h2 = H.open(nil, { url = "http://127.0.0.1:9" })
    local a = h1:submit({ snapshot = hello })
    local b = h2:submit({ snapshot = hello })
    local pa = H.collect(h1, { a })[a]
    local pb = H.collect(h2, { b })[b]
    assert.same({ "llm", "heuristic" }, { pa.source, pb.source })
    assert.equal(0, h1:pending() + h2:pending())
    h1:close(); h2:close()
    sim.stop()
  end)

  it("cancels a request while it streams: no event after the cancel, the host goes on", function()
    local sim = H.start_sim("--profile instant")
    local host = H.open(nil, { url = sim.url, cache = false })
    local id = host:submit({ snapshot = hello, headers = { "X-Sim-Fault: slow:30" }, budget_ms = 20000 })
    local first = H.wait_event(host, function(ev) return ev.request == id and ev.event == "step" end, 10)
    assert.is_truthy(first)
    assert.is_truthy(host:cancel(id))
    assert.equal(0, host:pending())
    local t0 = H.planhost.clock()
    while H.planhost.clock() - t0 < 300 do
      for _, ev in ipairs(host:poll(50)) do assert.not_equal(id, ev.request) end
    end
    assert.equal("llm", H.plan(host, { snapshot = at(40) }).source)
    host:close()
    sim.stop()
  end)

  it("orders each request's events: steps by index, then exactly one plan, nothing after", function()
    local sim = H.start_sim("--profile instant --parallel 4")
    local host = H.open(nil, { url = sim.url, cache = false })
    local ids = {}
    for i = 1, 6 do ids[i] = host:submit({ snapshot = at(i * 7), headers = { "X-Sim-Fault: slow:3" } }) end
    local _, events = H.collect(host, ids, 30)
    H.sh("sleep 0.1")
    for _, ev in ipairs(host:poll(0)) do assert.is_nil(events[ev.request], "an event after the plan") end
    for _, id in ipairs(ids) do
      local last, plans = -1, 0
      for _, ev in ipairs(events[id]) do
        if ev.event == "step" then
          assert.equal(0, plans)
          assert.is_true(ev.index > last)
          last = ev.index
        elseif ev.event == "plan" then
          plans = plans + 1
        end
      end
      assert.equal(1, plans)
      assert.equal("plan", events[id][#events[id]].event)
    end
    host:close()
    sim.stop()
  end)
end)
