-- Extra HTTP headers to the model server: the host's, an endpoint's own, a request's, the
-- command's --header and PLANHOST_API_KEY, checked against a SIMULATED server started with
-- --api-key (it answers 401 without "Authorization: Bearer KEY", as vLLM's --api-key does).
local H = require("helpers")
local planhost = require("planhost")

local KEY = "sk-sim-test-7"
local AUTH = "Authorization: Bearer " .. KEY

local function fallback(events) return H.events_of(events, "fallback")[1] end

describe("headers to the model server", function()
  local sim, hello

  setup(function()
    sim = H.start_sim("--profile instant --api-key " .. KEY)
    hello = H.snapshot("hello_companion")
  end)

  teardown(function()
    sim.stop()
  end)

  it("a server wanting a key answers 401 without it, and the plan still comes", function()
    local host = H.open(nil, { url = sim.url })
    local plan, events = H.plan(host, { snapshot = hello })
    assert.equal("heuristic", plan.source)
    local fb = assert(fallback(events))
    assert.equal("http_401", fb.reason, fb.error)
    assert.matches("API key", fb.error)
    host:close()
  end)

  it("sends the host's headers with every request", function()
    local host = H.open(nil, { url = sim.url, headers = { AUTH } })
    local plan = H.plan(host, { snapshot = hello })
    assert.equal("llm", plan.source)
    host:close()
  end)

  it("sends an endpoint's own headers in place of the host's", function()
    local host = H.open(nil, { headers = { "Authorization: Bearer wrong" },
                               endpoints = { { url = sim.url, headers = { AUTH } } } })
    assert.equal("llm", H.plan(host, { snapshot = hello }).source)
    host:close()
  end)

  it("sends the endpoint's headers with a batch request too", function()
    local host = H.open(nil, { url = sim.url, headers = { AUTH } })
    local plan = H.plan(host, { snapshot = hello, template = "batch" })
    assert.equal("llm", plan.source)
    assert.equal("batch", plan.tier)
    host:close()
  end)

  it("adds a request's headers after the endpoint's", function()
    local host = H.open(nil, { url = sim.url })
    assert.equal("llm", H.plan(host, { snapshot = hello, headers = { AUTH } }).source)
    host:close()
  end)

  it("refuses a header line that would smuggle in another, naming it but not its value", function()
    local host = H.open(nil, { url = sim.url })
    local id, msg, code = host:submit({ snapshot = hello, headers = { "X-Ok: 1", "X-Key: secret\r\nX-Evil: 1" } })
    assert.is_nil(id)
    assert.equal("arg", code)
    assert.matches("header 2 %('X%-Key'%) holds a line break", msg)
    assert.is_nil(msg:find("secret", 1, true), msg)
    host:close()
  end)

  it("refuses malformed lines and too many at open", function()
    local host, msg = planhost.open({ root = H.root, url = sim.url, headers = { "no colon here" } })
    assert.is_nil(host)
    assert.matches("header 1 .* needs a colon", msg)
    host, msg = planhost.open({ root = H.root, endpoints = { { url = sim.url, headers = { ": empty name" } } } })
    assert.is_nil(host)
    assert.matches("endpoint 1 %(.*%): header 1 .* has no header name", msg)
    local many = {}
    for i = 1, planhost.MAX_HEADERS + 1 do many[i] = "X-N: " .. i end
    assert.has_error(function() planhost.open({ root = H.root, headers = many }) end,
      "planhost.open: at most 8 headers, not 9")
    assert.has_error(function() planhost.open({ root = H.root, headers = { 7 } }) end,
      'planhost.open: header 1 is a number, not a "Name: value" string')
  end)

  it("planhost plan sends --header lines, and PLANHOST_API_KEY as a bearer token", function()
    local snap = H.q(H.root .. "/examples/snapshots/hello_companion.json")
    local status, out, err = H.run("plan --url " .. sim.url .. " " .. snap)
    assert.equal(0, status, err)
    assert.matches('"source":"heuristic"', out)
    assert.matches('"reason":"http_401"', out)
    status, out, err = H.run("plan --url " .. sim.url .. " --header " .. H.q(AUTH) .. " --header 'X-Trace: 1' " .. snap)
    assert.equal(0, status, err)
    assert.matches('"event":"plan"[^\n]*"source":"llm"', out)
    local p = io.popen("PLANHOST_API_KEY=" .. KEY .. " " .. H.q(H.bin) .. " plan --url " .. sim.url .. " " .. snap)
    out = p:read("a")
    assert.is_true(p:close())
    assert.matches('"event":"plan"[^\n]*"source":"llm"', out)
    status, _, err = H.run("plan --url " .. sim.url .. " --header 'bad header' " .. snap)
    assert.equal(1, status)
    assert.matches("header 1 %('bad header'%) needs a colon", err)
  end)
end)
