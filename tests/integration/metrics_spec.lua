-- The host's metrics (Prometheus text) after real requests: plans by tier, source and cache
-- result, fallbacks by reason, latency histograms, prompt characters, cache counters, reloads,
-- circuit states; from the Lua module and from `planhost plan --metrics`. Against
-- `planhost sim` (SIMULATED).
local H = require "helpers"

local hello = H.snapshot("hello_companion")

-- The value of the sample `name{labels}` exactly as written, or nil.
local function sample(text, name, labels)
  local line = name .. (labels and ("{" .. labels .. "}") or "") .. " "
  for l in text:gmatch("[^\n]+") do
    if l:sub(1, #line) == line then return tonumber(l:sub(#line + 1)) end
  end
end

describe("host metrics", function()
  after_each(function() H.cleanup() end)

  it("count what the host did, by tier, source, cache result and reason", function()
    local sim = H.start_sim("--profile instant")
    local dir = H.scratch_tree()
    local host = H.open(dir, { url = sim.url, watch = true, interval_ms = 20 })
    H.plan(host, { snapshot = hello })
    H.plan(host, { snapshot = hello })
    local other = hello:gsub('"objective": "extract"', '"objective": "defend"')
    H.plan(host, { snapshot = other, headers = { "X-Sim-Fault: http500" } })
    H.write(dir .. "/prompts/compact.lua", "return {")            -- a broken save
    assert.is_truthy(H.wait_event(host, function(ev) return ev.event == "reload" end, 5))
    local m = host:metrics()
    sim.stop()
    host:close()
    assert.equal(3, sample(m, "planhost_requests_submitted_total"))
    assert.equal(1, sample(m, "planhost_plans_total", 'tier="simplified",source="llm",cache="miss"'))
    assert.equal(1, sample(m, "planhost_plans_total", 'tier="simplified",source="cache",cache="hit"'))
    assert.equal(1, sample(m, "planhost_plans_total", 'tier="heuristic",source="heuristic",cache="miss"'))
    assert.equal(1, sample(m, "planhost_fallbacks_total", 'from="simplified",reason="http_500"'))
    assert.equal(1, sample(m, "planhost_plan_seconds_count", 'tier="simplified",source="llm"'))
    assert.equal(1, sample(m, "planhost_plan_seconds_count", 'tier="simplified",source="cache"'))
    assert.equal(1, sample(m, "planhost_first_step_seconds_bucket", 'tier="simplified",source="cache",le="+Inf"'))
    assert.is_true(sample(m, "planhost_prompt_chars_total", 'tier="simplified"') > 1000)
    assert.same({ 1, 2, 1 }, { sample(m, "planhost_cache_hits_total"), sample(m, "planhost_cache_misses_total"),
                               sample(m, "planhost_cache_puts_total") })
    assert.equal(1, sample(m, "planhost_cache_entries"))
    assert.near(1 / 3, sample(m, "planhost_cache_hit_ratio"), 1e-9)
    assert.equal(1, sample(m, "planhost_reloads_total", 'result="failed"'))
    assert.equal(0, sample(m, "planhost_requests_pending"))
    assert.equal(1, sample(m, "planhost_circuit_state", ('endpoint="%s",state="closed"'):format(sim.url)))
    for name in m:gmatch("# TYPE (%S+)") do
      assert.is_nil(m:match("# TYPE " .. name:gsub("%p", "%%%0") .. " .-# TYPE " .. name:gsub("%p", "%%%0") .. " "),
                    "family written twice: " .. name)
    end
  end)

  it("count coalesced requests and stale hits", function()
    local rec = H.ollama_record('{"plan_id":"p","steps":[{"act":"Attack","target_id":3},{"act":"Scan","radius":5}]}', 16, 0)
    local sim = H.start_sim("--replay " .. rec)
    local host = H.open(nil, { url = sim.url })
    local wounded = hello:gsub('"hp": 60', '"hp": 20')
    local a, b = host:submit({ snapshot = wounded }), host:submit({ snapshot = wounded })
    H.collect(host, { a, b })
    H.plan(host, { snapshot = hello:gsub('"hp": 60', '"hp": 0') })
    local m = host:metrics()
    sim.stop(); os.remove(rec)
    host:close()
    assert.equal(1, sample(m, "planhost_cache_coalesced_total"))
    assert.equal(1, sample(m, "planhost_cache_stale_total"))
    assert.equal(1, sample(m, "planhost_plans_total", 'tier="simplified",source="llm",cache="coalesced"'))
    assert.equal(1, sample(m, "planhost_plans_total", 'tier="simplified",source="llm",cache="stale"'))
  end)

  it("are printed to stderr by planhost plan --metrics", function()
    local snap = H.root .. "/examples/snapshots/hello_companion.json"
    local status, out, err = H.run("plan --url http://127.0.0.1:9 --metrics " .. H.q(snap))
    assert.equal(0, status)
    assert.matches('"event":"plan"', out)
    assert.is_nil(out:find("# TYPE", 1, true))
    assert.equal(1, sample(err, "planhost_plans_total", 'tier="heuristic",source="heuristic",cache="miss"'))
    -- one retry of the tier (connect_retries = 1), then on to the heuristic tier
    assert.equal(2, sample(err, "planhost_fallbacks_total", 'from="simplified",reason="connect"'))
  end)
end)
