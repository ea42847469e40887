-- Live A/B assignment (policies/ab.lua): agents split between arms by a stable hash of
-- agent id and experiment name; the arm's tier replaces the chain's first LLM tier; plan
-- events and metrics carry the arm. Against `planhost sim` (SIMULATED).
local H = require "helpers"
local cjson = H.cjson

local hello = H.snapshot("hello_companion")

local function agent(id)
  local t = cjson.decode(hello)
  t.agent = id
  return cjson.encode(t)
end

local function tree(ab)
  local dir = H.scratch_tree()
  H.write(dir .. "/policies/ab.lua", ab)
  return dir
end

local EXPERIMENT = [[return { enabled = true, name = "%s", arms = { A = "simplified", B = "compact" } }]]

local function arms_of(dir, url, n)
  local host = H.open(dir, { url = url, cache = false })
  local ids, out = {}, {}
  for i = 1, n do ids[i] = host:submit({ snapshot = agent("a" .. i) }) end
  local plans = H.collect(host, ids)
  for i = 1, n do out["a" .. i] = plans[ids[i]] end
  local metrics = host:metrics()
  host:close()
  return out, metrics
end

describe("live A/B arms", function()
  after_each(function() H.cleanup() end)

  it("split agents stably between arms, each arm's tier serving its agents", function()
    local sim = H.start_sim("--profile instant")
    local dir = tree(EXPERIMENT:format("exp1"))
    local first, metrics = arms_of(dir, sim.url, 40)
    local count = { A = 0, B = 0 }
    for _, p in pairs(first) do
      count[p.arm] = count[p.arm] + 1
      assert.equal(p.arm == "A" and "simplified" or "compact", p.tier)
    end
    assert.is_true(count.A >= 10 and count.B >= 10, count.A .. " / " .. count.B)
    local again = arms_of(dir, sim.url, 40)             -- a new host: the same arms
    for id, p in pairs(first) do assert.equal(p.arm, again[id].arm) end
    assert.matches('planhost_plans_total{tier="compact",source="llm",cache="off",arm="B"} ' .. count.B, metrics, 1, true)
    sim.stop()
  end)

  it("reshuffle when the experiment is renamed, and follow the split", function()
    local sim = H.start_sim("--profile instant")
    local one = arms_of(tree(EXPERIMENT:format("exp1")), sim.url, 30)
    local two = arms_of(tree(EXPERIMENT:format("exp2")), sim.url, 30)
    local moved = 0
    for id, p in pairs(one) do moved = moved + (p.arm ~= two[id].arm and 1 or 0) end
    assert.is_true(moved >= 5, moved .. " of 30 moved")
    local skewed = arms_of(tree([[return { enabled = true, name = "x", arms = { A = "simplified", B = "compact" },
                                           split = { A = 1, B = 0.0001 } }]]), sim.url, 20)
    for _, p in pairs(skewed) do assert.equal("A", p.arm) end
    sim.stop()
  end)

  it("take arm(agent_id) from the policy when it gives one, and report a broken one", function()
    local dir = tree([[return { enabled = true, name = "x", arms = { A = "simplified", B = "compact" },
                                arm = function(id) return id == "a1" and "B" or "A" end }]])
    local plans = arms_of(dir, "http://127.0.0.1:9", 3)
    assert.same({ "B", "A", "A" }, { plans.a1.arm, plans.a2.arm, plans.a3.arm })
    local bad = tree([[return { enabled = true, name = "x", arms = { A = "simplified" },
                                arm = function(id) return "Z" end }]])
    local host = H.open(bad, { url = "http://127.0.0.1:9" })
    local plan, events = H.plan(host, { snapshot = hello })
    assert.is_nil(plan.arm)
    assert.same({ "ab", "script" }, { events[1].from, events[1].reason })
    host:close()
  end)

  it("refuse a policy naming a tier that does not exist, with the file's name", function()
    local dir = tree([[return { enabled = true, name = "x", arms = { A = "nope" } }]])
    local host, msg = H.planhost.open({ root = dir })
    assert.is_nil(host)
    assert.matches("policies/ab.lua: arm A: 'nope' is not an LLM tier", msg, 1, true)
  end)

  it("are off by default", function()
    local host = H.open(nil, { url = "http://127.0.0.1:9" })
    assert.is_nil(H.plan(host, { snapshot = hello }).arm)
    host:close()
  end)
end)
