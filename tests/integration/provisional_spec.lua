-- Provisional plans: policies/tiers.lua `provisional` (true, false, or a function of ctx)
-- hands a request that waits for a model the heuristic planner's plan at once; the request's
-- one plan event still follows. Against a SIMULATED server (planhost sim).
local H = require("helpers")
local cjson = H.cjson

local of_kind = H.events_of

local function tree_with(provisional)
  local dir = H.scratch_tree()
  H.edit(dir .. "/policies/tiers.lua", "provisional = false,", "provisional = " .. provisional .. ",")
  return dir
end

describe("provisional plans", function()
  local sim, hello

  setup(function()
    sim = H.start_sim("--profile instant")
    hello = H.snapshot("hello_companion")
  end)

  teardown(function()
    sim.stop()
  end)

  after_each(function() H.cleanup() end)

  it("are off by default", function()
    local host = H.open(nil, { url = sim.url, cache = false })
    local plan, events = H.plan(host, { snapshot = hello })
    assert.equal("llm", plan.source)
    assert.same({}, of_kind(events, "provisional"))
    host:close()
  end)

  it("come first, from the heuristic planner, and the model's plan still follows once", function()
    local host = H.open(tree_with("true"), { url = sim.url, cache = false })
    local plan, events = H.plan(host, { snapshot = hello, headers = { "X-Sim-Fault: slow:20" } })
    local prov = of_kind(events, "provisional")
    assert.equal(1, #prov)
    assert.equal(events[1], prov[1], "the provisional event comes before any step")
    assert.equal("heuristic", prov[1].source)
    assert.equal(plan.request, prov[1].request)
    assert.equal("c2", prov[1].agent)
    assert.is_true(#prov[1].plan.steps > 0)
    assert.matches("^h%-", prov[1].plan.plan_id)
    assert.is_number(prov[1].t_ms)
    assert.equal(1, #of_kind(events, "plan"))
    assert.equal("llm", plan.source)
    assert.matches('planhost_provisional_plans_total{result="ok"} 1\n', host:metrics())
    host:close()
  end)

  it("come for a request queued for a batch too", function()
    local host = H.open(tree_with("true"), { url = sim.url, cache = false })
    local plan, events = H.plan(host, { snapshot = hello, template = "batch" })
    assert.equal(1, #of_kind(events, "provisional"))
    assert.equal("batch", plan.tier)
    host:close()
  end)

  it("follow a function of ctx, which sees the game's context", function()
    local dir = tree_with('function(ctx) return ctx.game.urgency == "medium" end')
    local host = H.open(dir, { url = sim.url, cache = false })
    local _, events = H.plan(host, { snapshot = hello, game = '{"urgency":"medium"}' })
    assert.equal(1, #of_kind(events, "provisional"))
    _, events = H.plan(host, { snapshot = hello, game = '{"urgency":"low"}' })
    assert.equal(0, #of_kind(events, "provisional"))
    host:close()
  end)

  it("say why when the policy function fails, and the request goes on", function()
    local host = H.open(tree_with('function(ctx) error("no idea") end'), { url = sim.url, cache = false })
    local plan, events = H.plan(host, { snapshot = hello })
    local prov = of_kind(events, "provisional")
    assert.equal(1, #prov)
    assert.equal(cjson.null, prov[1].plan)
    assert.matches("policies/tiers.lua.*no idea", prov[1].error)
    assert.equal("llm", plan.source)
    host:close()
    host = H.open(tree_with("function(ctx) return 1 end"), { url = sim.url, cache = false })
    _, events = H.plan(host, { snapshot = hello })
    assert.matches("provisional%(%) must return true or false, not number", of_kind(events, "provisional")[1].error)
    assert.matches('planhost_provisional_plans_total{result="failed"} 1\n', host:metrics())
    host:close()
  end)

  it("are not made for a request that needs no model: a cache hit, a heuristic-first chain", function()
    local host = H.open(tree_with("true"), { url = sim.url })
    local _, events = H.plan(host, { snapshot = hello })
    assert.equal(1, #of_kind(events, "provisional"))              -- the miss waited for the model
    local plan
    plan, events = H.plan(host, { snapshot = hello })
    assert.equal("hit", plan.cache)
    assert.equal(0, #of_kind(events, "provisional"))
    plan, events = H.plan(host, { snapshot = hello:gsub('"hp": 80', '"hp": 5'), game = '{"urgency":"high"}' })
    assert.equal("heuristic", plan.source)
    assert.equal(0, #of_kind(events, "provisional"))
    host:close()
  end)

  it("refuse a policy whose provisional is not a boolean or a function", function()
    local host, msg = H.planhost.open({ root = tree_with("3") })
    assert.is_nil(host)
    assert.matches("'provisional' must be true, false or a function%(ctx%), not number", msg)
  end)

  it("print with planhost plan --pretty", function()
    local dir = tree_with("true")
    local status, out, err = H.run("plan --pretty --root " .. H.q(dir) .. " --url " .. sim.url .. " "
      .. H.q(dir .. "/examples/snapshots/hello_companion.json"))
    assert.equal(0, status, err)
    assert.matches("provisional plan %(heuristic, until the real one%): %[", out)
    assert.matches("from %S+ %(llm%)", out)
  end)
end)
