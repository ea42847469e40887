-- planhost ab: a small experiment end to end against the simulator (report files produced
-- and well-formed, everything labelled SIMULATED, trials interleaved), and --from on events
-- recorded from a host running a live experiment (policies/ab.lua).
local H = require "helpers"
local cjson = H.cjson

local function tmpdir()
  local p = io.popen("mktemp -d /tmp/planhost-ab-spec.XXXXXX")
  local d = p:read("l")
  p:close()
  return d
end

local function lines(path)
  local out = {}
  for l in H.read(path):gmatch("[^\n]+") do out[#out + 1] = cjson.decode(l) end
  return out
end

describe("planhost ab", function()
  after_each(function() H.cleanup() end)

  it("runs an experiment against the simulator and writes a labelled report, trials and a plot", function()
    local dir = tmpdir()
    local exp = dir .. "/exp.lua"
    H.write(exp, [[return {
      name = "spec", repetitions = 3, backend = { sim = "instant" },
      arms = { A = { template = "simplified" }, B = { template = "compact" } },
      scenarios = { "examples/snapshots/hello_companion.json", "examples/snapshots/surrounded.json" } }]])
    local status, out, err = H.run(("ab %s --out %s --root %s"):format(H.q(exp), H.q(dir .. "/out"), H.q(H.root)))
    assert.equal(0, status, err)
    local report = H.read(dir .. "/out/report.md")
    assert.equal(report, out)
    assert.matches("SIMULATED", report)
    assert.matches("| A | 6 |", report, 1, true)
    assert.matches("| B | 6 |", report, 1, true)
    assert.matches("ratio of medians A/B = %d", report)
    assert.matches("validity A − B", report, 1, true)
    local trials = lines(dir .. "/out/trials.ndjson")
    assert.equal(12, #trials)
    local seen = {}
    for i, t in ipairs(trials) do
      assert.is_true(t.simulated)
      if i % 2 == 0 then                                                   -- interleaved pairs
        local prev = trials[i - 1]
        assert.not_equal(prev.arm, t.arm)
        assert.equal(prev.scenario, t.scenario)
        local a, b = t.arm == "A" and t or prev, t.arm == "A" and prev or t
        assert.is_true(a.prompt_chars > b.prompt_chars + 500)          -- simplified vs compact
      end
      seen[t.arm] = (seen[t.arm] or 0) + 1
    end
    assert.same({ A = 6, B = 6 }, seen)
    local svg = H.read(dir .. "/out/plot.svg")
    assert.matches("^<svg", svg)
    assert.matches("SIMULATED", svg)
    assert.matches("</svg>\n$", svg)
    H.sh("rm -rf " .. H.q(dir))
  end)

  it("refuses a broken experiment file with the reason", function()
    local dir = tmpdir()
    H.write(dir .. "/bad.lua", [[return { arms = { A = { tempalte = "compact" } }, scenarios = { "x.json" } }]])
    local status, _, err = H.run(("ab %s --out %s"):format(H.q(dir .. "/bad.lua"), H.q(dir .. "/out")))
    assert.equal(1, status)
    assert.matches("arm A needs template", err)
    H.sh("rm -rf " .. H.q(dir))
  end)

  it("analyses plan events recorded from a live experiment (--from)", function()
    local sim = H.start_sim("--profile instant")
    local tree = H.scratch_tree()
    H.edit(tree .. "/policies/ab.lua", "enabled = false", "enabled = true")
    local host = H.open(tree, { url = sim.url, cache = false })
    local ids = {}
    local base = cjson.decode(H.snapshot("hello_companion"))
    for i = 1, 24 do
      base.agent = "a" .. i
      ids[i] = host:submit({ snapshot = cjson.encode(base) })
    end
    local _, events = H.collect(host, ids)
    host:close()
    sim.stop()
    local dir = tmpdir()
    local f = io.open(dir .. "/events.ndjson", "w")
    for _, id in ipairs(ids) do
      for _, ev in ipairs(events[id]) do f:write(ev.json, "\n") end
    end
    f:close()
    local status, out, err = H.run(("ab --from %s --out %s"):format(H.q(dir .. "/events.ndjson"), H.q(dir .. "/out")))
    assert.equal(0, status, err)
    local n = 0
    for _, t in ipairs(lines(dir .. "/out/trials.ndjson")) do
      n = n + 1
      assert.equal(t.arm == "A" and "simplified" or "compact", t.tier)
    end
    assert.equal(24, n)
    assert.matches("**A vs B**", out, 1, true)
    H.sh("rm -rf " .. H.q(dir))
  end)
end)
