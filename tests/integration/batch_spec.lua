-- Batching: several agents in one model request (prompts/batch.lua, policies/batch.lua),
-- each agent's plan delivered as its element of the answer array closes; an agent missing,
-- answered twice or answered with an invalid plan falls back alone; position-numbered answers
-- mapped back; an answer cut mid-array; byte-identical bodies for the same inputs; cancel and
-- close with a batch in flight. Against `planhost sim` (SIMULATED) and replayed answers.
local H = require "helpers"
local cjson = H.cjson

local hello = H.snapshot("hello_companion")

local function agent(id, x)
  local t = cjson.decode(hello)
  t.agent, t.me.pos.x = id, x or 2
  return cjson.encode(t)
end

local AGENTS = { "c9", "c2", "c5" }          -- submitted in this order; rendered c2, c5, c9

local function submit_all(host, opts)
  local ids = {}
  for i, a in ipairs(AGENTS) do
    local o = { snapshot = agent(a, i * 3), template = "batch" }
    for k, v in pairs(opts or {}) do o[k] = v end
    ids[a] = host:submit(o)
  end
  return ids
end

local function list(ids)
  local out = {}
  for _, a in ipairs(AGENTS) do out[#out + 1] = ids[a] end
  return out
end

-- A replayed batch answer (Ollama /api/chat, 12-character pieces, 2 ms apart).
local function answering(text) return H.ollama_record(text, 12, 2) end

local function elem(id, steps) return ('{"agent_id":%s,"plan_id":"b","steps":[%s]}'):format(id, steps) end
local SCAN, WAIT, ATTACK = '{"act":"Scan","radius":5}', '{"act":"Wait","duration":1}', '{"act":"Attack","target_id":3}'

local function first_fallback(events) return H.events_of(events, "fallback")[1] end

describe("batching", function()
  it("answers several agents with one model request, each plan as its element closes", function()
    local sim = H.start_sim("--profile instant")
    local host = H.open(nil, { url = sim.url, cache = false })
    local ids = submit_all(host)
    local order = {}
    local plans = {}
    local deadline = H.planhost.clock() + 10000
    while #order < 3 and H.planhost.clock() < deadline do
      for _, ev in ipairs(host:poll(20)) do
        if ev.event == "plan" then order[#order + 1] = ev.agent; plans[ev.agent] = ev end
      end
    end
    assert.same({ "c2", "c5", "c9" }, order)   -- in the answer's order: agent ids sorted
    for _, a in ipairs(AGENTS) do
      assert.same({ "batch", "llm", 3 }, { plans[a].tier, plans[a].source, plans[a].batch_size })
      assert.is_true(#plans[a].plan.steps >= 1)
    end
    assert.equal(1, sim.requests())
    sim.stop()
    host:close()
  end)

  it("gives the same request body for the same agents in any submission order", function()
    local sim = H.start_sim("--profile instant")
    local bodies = {}
    for round, order in ipairs({ { "c9", "c2", "c5" }, { "c5", "c9", "c2" } }) do
      local host = H.open(nil, { url = sim.url, cache = false })
      local ids = {}
      for i, a in ipairs(order) do ids[i] = host:submit({ snapshot = agent(a), template = "batch" }) end
      H.collect(host, ids)
      bodies[round] = sim.last_body()
      host:close()
    end
    assert.is_true(#bodies[1] > 1000)
    assert.equal(bodies[1], bodies[2])
    local user = cjson.decode(bodies[1]).messages[2].content
    assert.is_truthy(user:find('"c2".*"c5".*"c9"'))
    sim.stop()
  end)

  it("falls back alone for an agent missing from the answer", function()
    local rec = answering("[" .. elem('"c2"', SCAN) .. "," .. elem('"c9"', WAIT) .. "]")
    local sim = H.start_sim("--replay " .. rec)
    local host = H.open(nil, { url = sim.url, cache = false })
    local ids = submit_all(host)
    local plans, events = H.collect(host, list(ids))
    assert.same({ "llm", "llm" }, { plans[ids.c2].source, plans[ids.c9].source })
    assert.equal("heuristic", plans[ids.c5].source)
    local fb = first_fallback(events[ids.c5])
    assert.same({ "batch", "parse" }, { fb.from, fb.reason })
    assert.matches("missing from the batch answer", fb.error)
    sim.stop(); os.remove(rec)
    host:close()
  end)

  it("takes an agent's first answer and ignores a second one", function()
    local rec = answering("[" .. elem('"c2"', SCAN) .. "," .. elem('"c2"', WAIT) .. "," .. elem('"c5"', SCAN) .. ","
                          .. elem('"c9"', SCAN) .. "]")
    local sim = H.start_sim("--replay " .. rec)
    local host = H.open(nil, { url = sim.url, cache = false })
    local ids = submit_all(host)
    local plans = H.collect(host, list(ids))
    assert.equal("Scan", plans[ids.c2].plan.steps[1].act)
    for _, a in ipairs(AGENTS) do assert.equal("llm", plans[ids[a]].source) end
    sim.stop(); os.remove(rec)
    host:close()
  end)

  it("falls back alone for an agent whose plan is invalid", function()
    local rec = answering("[" .. elem('"c2"', SCAN) .. "," .. elem('"c5"', '{"act":"Teleport"}') .. ","
                          .. elem('"c9"', ATTACK) .. "]")
    local sim = H.start_sim("--replay " .. rec)
    local host = H.open(nil, { url = sim.url, cache = false })
    local ids = submit_all(host)
    local plans, events = H.collect(host, list(ids))
    assert.same({ "llm", "heuristic", "llm" }, { plans[ids.c2].source, plans[ids.c5].source, plans[ids.c9].source })
    assert.equal("invalid", first_fallback(events[ids.c5]).reason)
    sim.stop(); os.remove(rec)
    host:close()
  end)

  it("maps answers numbered by position back to their agents", function()
    local rec = answering("[" .. elem("3", WAIT) .. "," .. elem("1", SCAN) .. "," .. elem("2", ATTACK) .. "]")
    local sim = H.start_sim("--replay " .. rec)
    local host = H.open(nil, { url = sim.url, cache = false })
    local ids = submit_all(host)
    local plans = H.collect(host, list(ids))
    assert.equal("Scan", plans[ids.c2].plan.steps[1].act)     -- 1: the first in agent order
    assert.equal("Attack", plans[ids.c5].plan.steps[1].act)
    assert.equal("Wait", plans[ids.c9].plan.steps[1].act)
    sim.stop(); os.remove(rec)
    host:close()
  end)

  it("keeps what arrived of an answer cut mid-array: whole plans, a partial one, the rest fall back", function()
    local text = "[" .. elem('"c2"', SCAN .. "," .. WAIT) .. ',{"agent_id":"c5","plan_id":"b2","steps":[' .. SCAN .. ',{"act":"Wa'
    local rec = H.ollama_record(text, 12, 2, false)
    local sim = H.start_sim("--replay " .. rec)
    local host = H.open(nil, { url = sim.url, cache = false })
    local ids = submit_all(host)
    local plans = H.collect(host, list(ids))
    assert.same({ "llm", false, 2 }, { plans[ids.c2].source, plans[ids.c2].partial, #plans[ids.c2].plan.steps })
    assert.same({ "llm", true, 1 }, { plans[ids.c5].source, plans[ids.c5].partial, #plans[ids.c5].plan.steps })
    assert.equal("heuristic", plans[ids.c9].source)
    sim.stop(); os.remove(rec)
    host:close()
  end)

  it("lets an agent cancelled while queued or while its batch streams go, and answers the rest", function()
    local sim = H.start_sim("--profile instant")
    local host = H.open(nil, { url = sim.url, cache = false })
    local ids = submit_all(host, { headers = { "X-Sim-Fault: slow:10" } })
    assert.is_truthy(host:cancel(ids.c5))                  -- still in the queue
    local plans = {}
    local deadline = H.planhost.clock() + 10000
    local cancelled_c9 = false
    while not plans[ids.c2] and H.planhost.clock() < deadline do
      for _, ev in ipairs(host:poll(10)) do
        if ev.event == "step" and not cancelled_c9 then
          cancelled_c9 = host:cancel(ids.c9)               -- its batch is streaming now
        end
        if ev.event == "plan" then plans[ev.request] = ev end
        assert.not_equal(ids.c5, ev.request)
      end
    end
    assert.is_truthy(cancelled_c9)
    assert.equal("llm", plans[ids.c2].source)
    assert.is_nil(plans[ids.c9])
    assert.equal(0, host:pending())
    sim.stop()
    host:close()
  end)

  it("closes cleanly with a batch queued and another in flight", function()
    local sim = H.start_sim("--profile instant")
    local host = H.open(nil, { url = sim.url, cache = false })
    submit_all(host, { headers = { "X-Sim-Fault: slow:50" } })
    host:poll(60)                                          -- the first batch leaves
    host:submit({ snapshot = agent("c7"), template = "batch" })
    assert.is_true(host:pending() >= 1)
    host:close()                                           -- nothing leaks (sanitizer run)
    sim.stop()
  end)

  it("finishes a batch started before a reload on the scripts it started with", function()
    local sim = H.start_sim("--profile instant")
    local dir = H.scratch_tree()
    local host = H.open(dir, { url = sim.url, cache = false, watch = true, interval_ms = 20 })
    local ids = submit_all(host, { headers = { "X-Sim-Fault: slow:5" } })
    H.edit(dir .. "/prompts/batch.lua", "You plan the next actions", "You plan the next moves")
    local plans = H.collect(host, list(ids))
    for _, a in ipairs(AGENTS) do assert.equal("llm", plans[ids[a]].source) end
    local deadline = H.planhost.clock() + 5000
    while host:generation() < 2 and H.planhost.clock() < deadline do host:poll(20) end
    assert.equal(2, host:generation())        -- the edit was taken; the batch kept its scripts
    sim.stop()
    host:close()
  end)

  it("runs from the command line: planhost batch A.json B.json ...", function()
    local sim = H.start_sim("--profile instant")
    local snaps = ""
    for _, name in ipairs({ "hello_companion", "surrounded", "escort" }) do
      snaps = snaps .. " " .. H.q(H.root .. "/examples/snapshots/" .. name .. ".json")
    end
    local status, out = H.run(("batch --url %s%s"):format(sim.url, snaps))
    assert.equal(0, status)
    local n = 0
    for line in out:gmatch("[^\n]+") do
      local ev = cjson.decode(line)
      if ev.event == "plan" then
        n = n + 1
        assert.same({ "batch", "llm", 3 }, { ev.tier, ev.source, ev.batch_size })
      end
    end
    assert.equal(3, n)
    assert.equal(1, sim.requests())
    local bad = os.tmpname()
    H.write(bad, "{nope")
    status = H.run(("batch --url %s %s %s"):format(sim.url, H.q(bad), snaps:match("%S+")))
    assert.equal(2, status)                 -- the bad one is reported, the good one planned
    os.remove(bad)
    sim.stop()
  end)
end)
