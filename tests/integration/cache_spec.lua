-- The plan cache through a real host: the snapshot hash under policies/cache.lua, validated
-- hits, stale plans caught, what is stored, coalescing of identical requests (counted at the
-- simulator), warm start across a restart, invalidation by a script edit, capacity and time
-- to live. Against `planhost sim` (SIMULATED) and hand-made replay records.
local H = require "helpers"
local cjson = H.cjson

local hello = H.snapshot("hello_companion")

-- hello_companion with fields changed: `edit(t)` gets the decoded snapshot.
local function variant(edit, base)
  local t = cjson.decode(base or hello)
  edit(t)
  return cjson.encode(t)
end

-- `planhost hash` on a snapshot text: hash, canonical form.
local function hash_of(text)
  local path = os.tmpname()
  H.write(path, text)
  local status, out, err = H.run("hash " .. H.q(path))
  os.remove(path)
  assert(status == 0, err)
  return out:match("^(%x+)\n(.-)\n$")
end

local function steps_of(events)
  local n = 0
  for _, ev in ipairs(events) do n = n + (ev.event == "step" and 1 or 0) end
  return n
end

-- A replay record answering every request with this plan (Ollama /api/chat).
local function answering(plan_json)
  return H.ollama_record(plan_json, 16, 0)
end

describe("snapshot hash under policies/cache.lua", function()
  local base = hash_of(hello)

  it("ignores t, agent and last_seen", function()
    assert.equal(base, hash_of(variant(function(t)
      t.t, t.agent, t.enemies[1].last_seen = 99.5, "c9", 3.0
    end)))
  end)

  it("ignores the order of enemies, pois and obstacles", function()
    local two = variant(function(t)
      t.enemies[2] = { id = 4, name = "Grunt", pos = { x = 20, y = 9 }, hp = 30, cover = "none" }
    end)
    local swapped = variant(function(t)
      t.enemies[1], t.enemies[2] = t.enemies[2], t.enemies[1]
      t.obstacles[1], t.obstacles[8] = t.obstacles[8], t.obstacles[1]
    end, two)
    assert.equal(hash_of(two), hash_of(swapped))
    assert.not_equal(base, hash_of(two))
  end)

  it("keeps values within one quantisation cell together, away from its border", function()
    assert.equal(base, hash_of(variant(function(t)
      t.me.hp, t.me.pos.x, t.enemies[1].hp, t.me.ammo = 95, 3.9, 70, 35
    end)))
  end)

  it("separates values either side of a cell border however close", function()
    assert.not_equal(base, hash_of(variant(function(t) t.me.pos.x = 4 end)))
    assert.not_equal(base, hash_of(variant(function(t) t.me.hp = 79.99 end)))
  end)

  it("counts every field no rule mentions exactly", function()
    assert.not_equal(base, hash_of(variant(function(t) t.objective = "defend" end)))
    assert.not_equal(base, hash_of(variant(function(t) t.enemies[1].cover = "high" end)))
    assert.not_equal(base, hash_of(variant(function(t) t.weather = "rain" end)))
    assert.not_equal(base, hash_of(variant(function(t) t.enemies[1].id = 5 end)))
  end)

  it("prints the canonical form it hashed: ignored fields gone, numbers at their cell", function()
    local _, canon = hash_of(variant(function(t) t.me.hp = 63 end))
    local c = cjson.decode(canon)
    assert.equal(60, c.me.hp)
    assert.is_nil(c.t)
    assert.is_nil(c.agent)
    assert.is_nil(c.enemies[1].last_seen)
  end)

  it("reports a malformed snapshot with its byte offset", function()
    local path = os.tmpname()
    H.write(path, '{"me": {"hp": 80,}}')
    local status, _, err = H.run("hash " .. H.q(path))
    os.remove(path)
    assert.equal(2, status)
    assert.matches("invalid JSON at byte 17", err)
  end)
end)

describe("plan cache", function()
  after_each(function() H.cleanup() end)

  it("serves an identical request from the cache, validated, without asking the server", function()
    local sim = H.start_sim("--profile instant")
    local host = H.open(nil, { url = sim.url })
    local first = H.plan(host, { snapshot = hello })
    assert.same({ "llm", "miss" }, { first.source, first.cache })
    local again, events = H.plan(host, { snapshot = variant(function(t) t.t = 13.1; t.me.hp = 85 end) })
    assert.same({ "cache", "hit", "simplified" }, { again.source, again.cache, again.tier })
    assert.same(first.plan, again.plan)
    assert.equal(#again.plan.steps, steps_of(events))
    assert.same({ 0, "none" }, { again.prompt_chars, again.counts })
    assert.equal(1, sim.requests())
    assert.equal(0, host:pending())        -- a hit ends inside submit, and is not left pending
    sim.stop()
    host:close()
  end)

  it("catches a stale plan: a dead target makes the hit a miss, and the entry goes", function()
    local rec = answering('{"plan_id":"p","steps":[{"act":"Attack","target_id":3},{"act":"Scan","radius":5}]}')
    local sim = H.start_sim("--replay " .. rec)
    local host = H.open(nil, { url = sim.url })
    local wounded = variant(function(t) t.enemies[1].hp = 20 end)
    local dead = variant(function(t) t.enemies[1].hp = 0 end)       -- same cell [0, 25)
    assert.equal(hash_of(wounded), hash_of(dead))
    assert.equal("miss", H.plan(host, { snapshot = wounded }).cache)
    local plan, events = H.plan(host, { snapshot = dead })
    assert.equal("stale", plan.cache)
    assert.equal("llm", plan.source)       -- asked the model again; its Attack is dropped now
    for _, ev in ipairs(events) do
      if ev.event == "step" then assert.not_equal("Attack", ev.step.act) end
    end
    assert.equal(2, sim.requests())
    sim.stop(); os.remove(rec)
    host:close()
  end)

  it("catches a stale plan refused by the game's validate hook (a cooldown started)", function()
    local rec = answering('{"plan_id":"s","steps":[{"act":"ThrowSmoke","x":4,"y":3},{"act":"TakeCover"}]}')
    local sim = H.start_sim("--replay " .. rec)
    local host = H.open(nil, { url = sim.url })
    assert.equal("miss", H.plan(host, { snapshot = hello }).cache)
    local cooling = variant(function(t) t.me.cooldowns["throw:smoke"] = 3 end)
    assert.equal(hash_of(hello), hash_of(cooling))
    assert.equal("stale", H.plan(host, { snapshot = cooling }).cache)
    sim.stop(); os.remove(rec)
    host:close()
  end)

  it("keeps only LLM plans unless the policy asks for heuristic ones too", function()
    local host = H.open(nil, { url = "http://127.0.0.1:9" })
    assert.same({ "heuristic", "miss" }, { H.plan(host, { snapshot = hello }).source, "miss" })
    local again = H.plan(host, { snapshot = hello })
    assert.same({ "heuristic", "miss" }, { again.source, again.cache })
    host:close()
    local dir = H.scratch_tree()
    H.edit(dir .. "/policies/cache.lua", "heuristic = false", "heuristic = true")
    H.write(dir .. "/policies/tiers.lua", [[return {
      tiers = { heuristic = { kind = "heuristic" } },
      chain = function() return { "heuristic", "emergency" } end }]])
    host = H.open(dir, { url = "http://127.0.0.1:9" })
    assert.equal("heuristic", H.plan(host, { snapshot = hello }).source)
    again = H.plan(host, { snapshot = hello })
    assert.same({ "cache", "hit", "heuristic" }, { again.source, again.cache, again.tier })
    host:close()
  end)

  it("is off without policies/cache.lua, with enabled = false, and with cache = false", function()
    local sim = H.start_sim("--profile instant")
    local dir = H.scratch_tree()
    os.remove(dir .. "/policies/cache.lua")
    local off = H.scratch_tree()
    H.edit(off .. "/policies/cache.lua", "enabled = true", "enabled = false")
    for _, case in ipairs({ { dir, {} }, { off, {} }, { nil, { cache = false } } }) do
      local opts = case[2]
      opts.url = sim.url
      local host = H.open(case[1], opts)
      H.plan(host, { snapshot = hello })
      local again = H.plan(host, { snapshot = hello })
      assert.same({ "llm", "off" }, { again.source, again.cache })
      host:close()
    end
    sim.stop()
  end)

  it("coalesces two identical requests into one backend request; each agent gets its plan", function()
    local sim = H.start_sim("--profile instant")
    local host = H.open(nil, { url = sim.url })
    local a = host:submit({ snapshot = hello })   -- b joins a's flight at once, before any I/O
    local b = host:submit({ snapshot = variant(function(t) t.agent = "c7"; t.t = 12.6 end) })
    local plans, events = H.collect(host, { a, b })
    assert.equal(1, sim.requests())
    assert.same({ "llm", "miss", "c2" }, { plans[a].source, plans[a].cache, plans[a].agent })
    assert.same({ "llm", "coalesced", "c7" }, { plans[b].source, plans[b].cache, plans[b].agent })
    assert.same(plans[a].plan, plans[b].plan)
    assert.equal(#plans[b].plan.steps, steps_of(events[b]))
    sim.stop()
    host:close()
  end)

  it("hands waiters the leader's fallback plan when the server fails it", function()
    local sim = H.start_sim("--profile instant")
    local host = H.open(nil, { url = sim.url })
    local a = host:submit({ snapshot = hello, headers = { "X-Sim-Fault: http500" } })
    local b = host:submit({ snapshot = hello })
    local plans = H.collect(host, { a, b })
    assert.equal("heuristic", plans[a].source)
    assert.same({ "heuristic", "coalesced" }, { plans[b].source, plans[b].cache })
    assert.equal(1, sim.requests())
    sim.stop()
    host:close()
  end)

  it("stops waiting when the waiter's budget runs out, and plans without the server in time", function()
    local sim = H.start_sim("--profile instant")
    local host = H.open(nil, { url = sim.url })
    local a = host:submit({ snapshot = hello, headers = { "X-Sim-Fault: hang" }, budget_ms = 1500 })
    local b = host:submit({ snapshot = hello, budget_ms = 300 })
    local plans, events = H.collect(host, { a, b })
    assert.equal("heuristic", plans[b].source)
    assert.is_true(plans[b].total_ms < 350, plans[b].total_ms)
    local fb = events[b][1]
    assert.same({ "fallback", "deadline", "simplified", "heuristic" }, { fb.event, fb.reason, fb.from, fb.to })
    assert.equal("heuristic", plans[a].source)      -- the leader's own budget ran out later
    sim.stop()
    host:close()
  end)

  it("lets waiters ask for themselves when their leader is cancelled", function()
    local sim = H.start_sim("--profile instant")
    local host = H.open(nil, { url = sim.url })
    local a = host:submit({ snapshot = hello, headers = { "X-Sim-Fault: slow:400" } })
    local b = host:submit({ snapshot = hello })
    local c = host:submit({ snapshot = hello })
    host:poll(0)
    assert.is_truthy(host:cancel(a))
    local plans = H.collect(host, { b, c })
    assert.same({ "llm", "miss" }, { plans[b].source, plans[b].cache })
    assert.same({ "llm", "coalesced" }, { plans[c].source, plans[c].cache })   -- c waits on b now
    assert.equal(2, sim.requests())
    sim.stop()
    host:close()
  end)

  it("starts warm from its cache file after a restart", function()
    local sim = H.start_sim("--profile instant")
    local file = os.tmpname()
    os.remove(file)
    local host = H.open(nil, { url = sim.url, cache_file = file })
    assert.equal("miss", H.plan(host, { snapshot = hello }).cache)
    host:close()
    local line = cjson.decode(H.read(file):match("[^\n]+"))
    assert.same({ "simplified", "llm" }, { line.tier, line.source })
    host = H.open(nil, { url = sim.url, cache_file = file })
    local plan = H.plan(host, { snapshot = hello })
    assert.same({ "cache", "hit" }, { plan.source, plan.cache })
    assert.equal(1, sim.requests())
    host:close()
    os.remove(file)
    sim.stop()
  end)

  it("skips warm-start entries made by other scripts", function()
    local sim = H.start_sim("--profile instant")
    local dir = H.scratch_tree()
    local file = os.tmpname()
    os.remove(file)
    local host = H.open(dir, { url = sim.url, cache_file = file })
    H.plan(host, { snapshot = hello })
    host:close()
    H.edit(dir .. "/prompts/simplified.lua", "return", "-- edited\nreturn")
    host = H.open(dir, { url = sim.url, cache_file = file })
    assert.equal("miss", H.plan(host, { snapshot = hello }).cache)
    assert.equal(2, sim.requests())
    host:close()
    os.remove(file)
    sim.stop()
  end)

  it("refuses to start on a corrupt cache file, saying where, and leaves it alone", function()
    local file = os.tmpname()
    H.write(file, '{"key":"00000000000000ff", "plan": nope}\n')
    local host, msg = H.planhost.open({ root = H.root, cache_file = file })
    assert.is_nil(host)
    assert.matches("cache file", msg)
    assert.matches(":1", msg)
    assert.equal('{"key":"00000000000000ff", "plan": nope}\n', H.read(file))
    os.remove(file)
  end)

  it("never serves a plan made by a prompt's old text after a hot reload", function()
    local sim = H.start_sim("--profile instant")
    local dir = H.scratch_tree()
    local host = H.open(dir, { url = sim.url, watch = true, interval_ms = 20 })
    H.plan(host, { snapshot = hello })
    assert.equal("hit", H.plan(host, { snapshot = hello }).cache)
    H.edit(dir .. "/prompts/simplified.lua", "return", "-- a designer's edit\nreturn")
    assert.is_truthy(H.wait_event(host, function(ev) return ev.event == "reload" end, 5))
    assert.equal("miss", H.plan(host, { snapshot = hello }).cache)
    assert.equal(2, sim.requests())
    sim.stop()
    host:close()
  end)

  it("evicts the least recently used plan at its entry cap", function()
    local sim = H.start_sim("--profile instant")
    local host = H.open(nil, { url = sim.url, cache_entries = 2 })
    local function snap(x) return variant(function(t) t.me.pos.x = x end) end
    for _, x in ipairs({ 0, 10, 20 }) do H.plan(host, { snapshot = snap(x) }) end
    assert.equal("hit", H.plan(host, { snapshot = snap(20) }).cache)
    assert.equal("hit", H.plan(host, { snapshot = snap(10) }).cache)
    assert.equal("miss", H.plan(host, { snapshot = snap(0) }).cache)   -- evicted first
    assert.equal(4, sim.requests())
    sim.stop()
    host:close()
  end)

  it("lets plans expire after their time to live", function()
    local sim = H.start_sim("--profile instant")
    local host = H.open(nil, { url = sim.url, cache_ttl_ms = 100 })
    H.plan(host, { snapshot = hello })
    assert.equal("hit", H.plan(host, { snapshot = hello }).cache)
    H.sh("sleep 0.2")
    assert.equal("miss", H.plan(host, { snapshot = hello }).cache)
    sim.stop()
    host:close()
  end)

  it("keeps plans across runs of planhost plan --cache-file", function()
    local sim = H.start_sim("--profile instant")
    local file = os.tmpname()
    os.remove(file)
    local snap = H.root .. "/examples/snapshots/hello_companion.json"
    local args = ("plan --url %s --cache-file %s %s"):format(sim.url, H.q(file), H.q(snap))
    local s1, out1 = H.run(args)
    local s2, out2 = H.run(args)
    assert.same({ 0, 0 }, { s1, s2 })
    assert.matches('"cache":"miss"', out1)
    assert.matches('"source":"cache","cache":"hit"', out2)
    os.remove(file)
    sim.stop()
  end)
end)
