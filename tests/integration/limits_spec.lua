-- Limits that keep the host bounded: pending requests (back-pressure at submit), snapshot
-- size, and the response cap, each a clear error and nothing lost. Against `planhost sim`
-- (SIMULATED) where a server is needed.
local H = require "helpers"

local hello = H.snapshot("hello_companion")

describe("limits", function()
  it("refuse a submit past max_pending, then take it again once requests end", function()
    local sim = H.start_sim("--profile instant")
    local host = H.open(nil, { url = sim.url, cache = false, max_pending = 3 })
    local ids = {}
    for i = 1, 3 do ids[i] = assert(host:submit({ snapshot = hello, headers = { "X-Sim-Fault: slow:20" } })) end
    local id, msg, code = host:submit({ snapshot = hello })
    assert.is_nil(id)
    assert.equal("limit", code)
    assert.matches("3 requests pending, the cap %(max_pending%)", msg)
    assert.equal(3, host:pending())
    H.collect(host, ids, 30)                      -- every accepted request still ends in a plan
    assert.equal(0, host:pending())
    assert.is_truthy(host:submit({ snapshot = hello }))
    host:close()
    sim.stop()
  end)

  it("refuse a snapshot over max_snapshot with its size", function()
    local host = H.open(nil, { url = "http://127.0.0.1:9", max_snapshot = 100 })
    local id, msg, code = host:submit({ snapshot = hello })
    assert.is_nil(id)
    assert.equal("limit", code)
    assert.matches("snapshot: %d+ bytes, over the cap of 100 %(max_snapshot%)", msg)
    assert.equal(0, host:pending())
    host:close()
  end)

  it("count pending requests exactly through hits, cancels and fallbacks", function()
    local sim = H.start_sim("--profile instant")
    local host = H.open(nil, { url = sim.url })
    H.plan(host, { snapshot = hello })
    assert.equal(0, host:pending())
    host:submit({ snapshot = hello })                       -- a cache hit: ends inside submit
    assert.equal(0, host:pending())
    local slow = host:submit({ snapshot = hello:gsub('"hp": 80', '"hp": 10'), headers = { "X-Sim-Fault: hang" } })
    assert.equal(1, host:pending())
    host:cancel(slow)
    assert.equal(0, host:pending())
    host:poll(0)
    host:close()
    sim.stop()
  end)
end)
