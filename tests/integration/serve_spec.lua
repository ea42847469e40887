-- `planhost serve`, the HTTP/NDJSON service, driven with curl the way an engine in another
-- language would: streams of events per POST, limits, error bodies, client disconnects and
-- shutdown. The model server is `planhost sim` (SIMULATED).
local H = require "helpers"
local cjson = H.cjson

local hello = H.snapshot("hello_companion")

local function tmp(text)
  local path = os.tmpname()
  if text then H.write(path, text) end
  return path
end

-- Starts `planhost serve ARGS --port 0` in the background and waits for its banner.
-- Returns { url =, pid =, log =, status = function (exit status once it ended, else nil),
-- stop = function }.
local function start_serve(args)
  local log, pidfile, statusfile = tmp(), tmp(), tmp()
  os.remove(statusfile)
  H.sh(("( %s serve --port 0 --root %s %s >%s 2>&1 & echo $! >%s; wait $!; echo $? >%s ) &")
    :format(H.q(H.bin), H.q(H.root), args or "", log, pidfile, statusfile))
  local srv = { log = log }
  local deadline = H.planhost.clock() + 10000
  while H.planhost.clock() < deadline do
    srv.pid = srv.pid or H.read(pidfile):match("%d+")
    srv.url = H.read(log):match("planhost serve: listening on (http://127%.0%.0%.1:%d+)")
    if srv.url and srv.pid then break end
    H.sh("sleep 0.02")
  end
  os.remove(pidfile)
  assert(srv.url, "planhost serve did not start: " .. H.read(log))
  function srv.status()
    local f = io.open(statusfile, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return tonumber(s:match("%d+"))
  end
  -- Waits up to `seconds` for the process to end; returns its exit status or nil.
  function srv.wait(seconds)
    local until_ms = H.planhost.clock() + (seconds or 10) * 1000
    while H.planhost.clock() < until_ms do
      local s = srv.status()
      if s then return s end
      H.sh("sleep 0.02")
    end
  end
  -- SIGTERM, then checks that it stopped cleanly: exit status 0 and nothing from the
  -- sanitizers (under the sanitizer build, leaks are reported at exit).
  function srv.stop()
    H.sh("kill " .. srv.pid .. " 2>/dev/null")
    local status = srv.wait(10)
    local text = H.read(log)
    os.remove(log)
    os.remove(statusfile)
    assert.equal(0, status, text)
    assert.is_nil(text:match("Sanitizer") or text:match("runtime error"), text)
  end
  return srv
end

-- One HTTP request with curl. `body` (a string) is POSTed from a file. Returns the status,
-- the headers (lower-case names) and the body.
local function http(method, url, body, curl_args)
  local hdr, out = tmp(), tmp()
  local data = body and tmp(body)
  local cmd = ("curl -s -X %s -D %s -o %s -w '%%{http_code}' %s %s %s"):format(method, hdr, out,
    data and ("--data-binary @" .. data) or "", curl_args or "", H.q(url))
  local p = io.popen(cmd)
  local code = tonumber(p:read("a"))
  p:close()
  local headers = {}
  for name, value in H.read(hdr):gmatch("([%w%-]+):%s*([^\r\n]*)") do headers[name:lower()] = value end
  local text = H.read(out)
  os.remove(hdr)
  os.remove(out)
  if data then os.remove(data) end
  return code, headers, text
end

local function lines(text)
  local events = {}
  for line in text:gmatch("[^\n]+") do events[#events + 1] = cjson.decode(line) end
  return events
end

local function plans_of(events) return H.events_of(events, "plan") end

local function health(srv)
  local code, _, body = http("GET", srv.url .. "/health")
  assert.equal(200, code, body)
  return cjson.decode(body)
end

-- Polls /health until `pred(health)` holds or `seconds` pass; returns the last answer.
local function wait_health(srv, pred, seconds)
  local h
  local until_ms = H.planhost.clock() + (seconds or 5) * 1000
  repeat
    h = health(srv)
    if pred(h) then return h end
    H.sh("sleep 0.02")
  until H.planhost.clock() > until_ms
  return h
end

local function agent(name)
  return (hello:gsub('"agent": "c2"', '"agent": "' .. name .. '"'))
end

describe("planhost serve", function()
  local sim, srv

  setup(function()
    sim = H.start_sim("--profile instant --parallel 8")
    srv = start_serve("--url " .. sim.url)
  end)

  teardown(function()
    srv.stop()
    sim.stop()
  end)

  it("streams one snapshot's events as NDJSON, ending in its plan event", function()
    local code, headers, body = http("POST", srv.url .. "/v1/plan", agent("solo"))
    assert.equal(200, code, body)
    assert.equal("application/x-ndjson", headers["content-type"])
    assert.equal("chunked", headers["transfer-encoding"])
    local id = tonumber(headers["x-planhost-requests"])
    local events = lines(body)
    assert.is_true(#events >= 2)                      -- steps first, then the plan
    assert.equal("step", events[1].event)
    local last = events[#events]
    assert.equal("plan", last.event)
    assert.equal(id, last.request)
    assert.equal("solo", last.agent)
    assert.is_table(last.plan.steps)
    assert.equal(1, #plans_of(events))
    for _, ev in ipairs(events) do assert.equal(id, ev.request) end
  end)

  it("answers an array of three with three plan events, each request once", function()
    local body = "[" .. agent("a1") .. "," .. agent("a2") .. "," .. agent("a3") .. "]"
    local code, headers, text = http("POST", srv.url .. "/v1/plan", body)
    assert.equal(200, code, text)
    local ids = {}
    for id in headers["x-planhost-requests"]:gmatch("%d+") do ids[#ids + 1] = tonumber(id) end
    assert.equal(3, #ids)
    local events = lines(text)
    local plans = plans_of(events)
    assert.equal(3, #plans)
    assert.equal("plan", events[#events].event)
    local seen = {}
    for i, p in ipairs(plans) do
      assert.is_nil(seen[p.request], "two plan events for request " .. p.request)
      seen[p.request] = p.agent
    end
    assert.same({ [ids[1]] = "a1", [ids[2]] = "a2", [ids[3]] = "a3" }, seen)
  end)

  it("takes the wrapper object with a template and a budget", function()
    local body = '{"snapshots":[' .. agent("w1") .. "," .. agent("w2") .. '],"template":"compact","budget_ms":5000,'
      .. '"game":{"urgency":"high"}}'
    local code, _, text = http("POST", srv.url .. "/v1/plan", body)
    assert.equal(200, code, text)
    local plans = plans_of(lines(text))
    assert.equal(2, #plans)
    for _, p in ipairs(plans) do assert.equal("compact", p.tier) end
  end)

  it("gives each of several parallel clients its own complete stream", function()
    local n, files = 6, {}
    local cmd = {}
    for i = 1, n do
      local body = "[" .. agent("p" .. i .. "a") .. "," .. agent("p" .. i .. "b") .. "]"
      files[i] = { data = tmp(body), out = tmp(), hdr = tmp() }
      cmd[#cmd + 1] = ("curl -s -D %s -o %s --data-binary @%s %s/v1/plan &")
        :format(files[i].hdr, files[i].out, files[i].data, srv.url)
    end
    assert.equal(0, H.sh(table.concat(cmd, " ") .. " wait"))
    local all = {}
    for i = 1, n do
      local headers = H.read(files[i].hdr)
      local ids = {}
      for id in headers:match("X%-Planhost%-Requests: ([%d,]+)"):gmatch("%d+") do ids[tonumber(id)] = true end
      local events = lines(H.read(files[i].out))
      local plans = plans_of(events)
      assert.equal(2, #plans, "client " .. i)
      assert.equal("plan", events[#events].event)
      for _, ev in ipairs(events) do
        assert.is_true(ids[ev.request], "client " .. i .. " got request " .. ev.request)
        assert.truthy(ev.agent:match("^p" .. i .. "[ab]$"), ev.agent)
        assert.is_nil(all[ev.request] and ev.event == "plan" and all[ev.request], "plan seen twice")
        if ev.event == "plan" then all[ev.request] = true end
      end
      for _, f in pairs(files[i]) do os.remove(f) end
    end
  end)

  it("refuses a malformed body with 400 and the byte offset, before submitting anything", function()
    local function submitted()
      local m = select(3, http("GET", srv.url .. "/metrics"))
      return tonumber(m:match("\nplanhost_requests_submitted_total (%d+)"))
    end
    local before = submitted()
    local code, headers, body = http("POST", srv.url .. "/v1/plan", '[{"agent":"c2"},{"agent":"c3","me":{"hp":80,,}}]')
    assert.equal(400, code)
    assert.equal("application/json", headers["content-type"])
    local err = cjson.decode(body)
    assert.equal(44, err.offset)
    assert.matches("invalid JSON at byte 44", err.error, 1, true)
    assert.equal(before, submitted())
  end)

  it("refuses unknown keys beside snapshots, and an empty list", function()
    local code, _, body = http("POST", srv.url .. "/v1/plan", '{"snapshots":[{}],"budget":5}')
    assert.equal(400, code)
    assert.matches("unknown key 'budget'", cjson.decode(body).error, 1, true)
    code, _, body = http("POST", srv.url .. "/v1/plan", "[]")
    assert.equal(400, code)
    assert.matches("no snapshots", cjson.decode(body).error, 1, true)
  end)

  it("puts an error line in the stream for a snapshot the host refuses", function()
    local code, headers, text = http("POST", srv.url .. "/v1/plan", "[" .. agent("ok1") .. ",42," .. agent("ok2") .. "]")
    assert.equal(200, code, text)
    assert.matches("^%d+,0,%d+$", headers["x-planhost-requests"])
    local events = lines(text)
    local errors = {}
    for _, ev in ipairs(events) do
      if ev.event == "error" then errors[#errors + 1] = ev end
    end
    assert.equal(1, #errors)
    assert.same(1, errors[1].index)
    assert.equal("json", errors[1].code)
    assert.matches("not a JSON object", errors[1].error)
    assert.equal(2, #plans_of(events))
  end)

  it("refuses a body over --max-body with 413 before reading it", function()
    local big = '{"agent":"big","pad":"' .. ("x"):rep(1100 * 1024) .. '"}'
    local code, headers, body = http("POST", srv.url .. "/v1/plan", big)
    assert.equal(413, code)
    assert.equal("application/json", headers["content-type"])
    assert.matches("limit is 1048576", cjson.decode(body).error, 1, true)
  end)

  it("refuses more than --max-snapshots snapshots", function()
    local many = {}
    for i = 1, 257 do many[i] = "{}" end
    local code, _, body = http("POST", srv.url .. "/v1/plan", "[" .. table.concat(many, ",") .. "]")
    assert.equal(413, code)
    assert.matches("too many snapshots: at most 256", cjson.decode(body).error, 1, true)
  end)

  it("serves the host's metrics", function()
    local code, headers, body = http("GET", srv.url .. "/metrics")
    assert.equal(200, code)
    assert.matches("^text/plain; version=0%.0%.4", headers["content-type"])
    assert.truthy(body:find("planhost_plans_total{", 1, true))
    assert.truthy(body:find("# TYPE planhost_plans_total counter", 1, true))
  end)

  it("reports health", function()
    local code, headers, body = http("GET", srv.url .. "/health")
    assert.equal(200, code)
    assert.equal("application/json", headers["content-type"])
    assert.same({ status = "ok", generation = 1, pending = 0 }, cjson.decode(body))
  end)

  it("answers unknown paths with 404 and wrong methods with 405, as JSON", function()
    local code, _, body = http("GET", srv.url .. "/v2/nothing")
    assert.equal(404, code)
    assert.matches("no such endpoint", cjson.decode(body).error, 1, true)
    local headers
    code, headers, body = http("GET", srv.url .. "/v1/plan")
    assert.equal(405, code)
    assert.equal("POST", headers["allow"])
    assert.is_string(cjson.decode(body).error)
    code, _, body = http("DELETE", srv.url .. "/health")
    assert.equal(405, code)
    assert.is_string(cjson.decode(body).error)
  end)
end)

describe("planhost serve against a slow model server", function()
  local sim

  setup(function()
    sim = H.start_sim("--profile instant --parallel 8 --fault slow:200")
  end)

  teardown(function()
    sim.stop()
  end)

  it("cancels a client's requests when it leaves mid-stream and keeps serving", function()
    local srv = start_serve("--url " .. sim.url)
    local out = tmp()
    H.sh(("curl -s --max-time 0.6 --data-binary %s %s/v1/plan >%s 2>&1 &"):format(H.q("[" .. agent("gone1") .. ","
      .. agent("gone2") .. "]"), srv.url, out))
    local busy = wait_health(srv, function(h) return h.pending == 2 end, 2)
    assert.equal(2, busy.pending)
    -- curl gives up at 0.6 s; the budget (3 s) is far off: only a cancel ends them this soon
    local t0 = H.planhost.clock()
    local idle = wait_health(srv, function(h) return h.pending == 0 end, 2)
    assert.equal(0, idle.pending)
    assert.is_true(H.planhost.clock() - t0 < 1500)
    -- still serving: a short budget falls back to the heuristic tier
    local code, _, text = http("POST", srv.url .. "/v1/plan", '{"snapshots":[' .. agent("after") .. '],"budget_ms":300}')
    assert.equal(200, code, text)
    local plans = plans_of(lines(text))
    assert.equal(1, #plans)
    assert.equal("after", plans[1].agent)
    assert.matches("planhost_requests_submitted_total 3", select(3, http("GET", srv.url .. "/metrics")), 1, true)
    os.remove(out)
    srv.stop()
  end)

  it("answers 503 with Retry-After past --max-clients streams", function()
    local srv = start_serve("--url " .. sim.url .. " --max-clients 1")
    local out = tmp()
    H.sh(("curl -s --max-time 3 --data-binary %s %s/v1/plan >%s 2>&1 &"):format(H.q(agent("first")), srv.url, out))
    assert.equal(1, wait_health(srv, function(h) return h.pending == 1 end, 2).pending)
    local code, headers, body = http("POST", srv.url .. "/v1/plan", agent("second"))
    assert.equal(503, code)
    assert.equal("1", headers["retry-after"])
    assert.matches("at most 1", cjson.decode(body).error, 1, true)
    assert.equal(200, (http("GET", srv.url .. "/health")))    -- reports still work
    os.remove(out)
    srv.stop()
  end)

  it("on SIGTERM lets open streams finish, saves the cache file and exits 0", function()
    local cache = tmp()
    os.remove(cache)
    local srv = start_serve("--url " .. sim.url .. " --cache-file " .. cache)
    local out = tmp()
    local done = tmp()
    os.remove(done)
    H.sh(("(curl -s --data-binary %s %s/v1/plan >%s 2>&1; touch %s) &"):format(
      H.q('{"snapshots":[' .. agent("late") .. '],"budget_ms":800}'), srv.url, out, done))
    assert.equal(1, wait_health(srv, function(h) return h.pending == 1 end, 2).pending)
    H.sh("kill -TERM " .. srv.pid)
    assert.equal(0, srv.wait(10), H.read(srv.log))
    local deadline = H.planhost.clock() + 5000
    while not io.open(done) and H.planhost.clock() < deadline do H.sh("sleep 0.02") end
    local events = lines(H.read(out))
    assert.equal("plan", events[#events].event)
    assert.equal("late", events[#events].agent)
    assert.truthy(io.open(cache), "the cache file was not written")
    assert.equal(7, H.sh("curl -s " .. srv.url .. "/health >/dev/null"))   -- 7: cannot connect
    for _, f in ipairs { out, done, cache } do os.remove(f) end
    srv.stop()
  end)
end)

describe("planhost serve and saved scripts", function()
  after_each(function() H.cleanup() end)

  it("reloads a saved script while it serves, and keeps the last good one after a broken save", function()
    local dir = H.scratch_tree()
    local srv = start_serve("--root " .. H.q(dir) .. " --url http://127.0.0.1:9")
    assert.equal(1, health(srv).generation)
    H.edit(dir .. "/prompts/compact.lua", "return", "-- saved by a designer\nreturn")
    assert.equal(2, wait_health(srv, function(h) return h.generation == 2 end, 5).generation)
    H.write(dir .. "/prompts/compact.lua", "return {")
    H.sh("sleep 1")
    assert.equal(2, health(srv).generation)
    assert.matches('"event":"reload","ok":false', H.read(srv.log))
    local code = http("POST", srv.url .. "/v1/plan", hello)
    assert.equal(200, code)                  -- still serving, on generation 2
    srv.stop()
  end)
end)

describe("planhost serve and a server that wants a key", function()
  it("sends each --header line to the model server; a client's headers go nowhere", function()
    local sim = H.start_sim("--profile instant --api-key sk-serve-1")
    local srv = start_serve("--url " .. sim.url .. " --header 'Authorization: Bearer sk-serve-1'")
    local code, _, text = http("POST", srv.url .. "/v1/plan", agent("keyed"))
    assert.equal(200, code, text)
    assert.equal("llm", plans_of(lines(text))[1].source)
    srv.stop()
    srv = start_serve("--url " .. sim.url)
    code, _, text = http("POST", srv.url .. "/v1/plan", agent("keyless"), "-H 'Authorization: Bearer sk-serve-1'")
    assert.equal(200, code, text)
    local plan = plans_of(lines(text))[1]
    assert.equal("heuristic", plan.source)
    assert.matches('"reason":"http_401"', text)
    srv.stop()
    sim.stop()
  end)
end)
