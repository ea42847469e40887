-- The soak test of the hardening issue: many requests with faults, cancels and hot reloads,
-- through the embedding API (the Lua module) and through `planhost serve`, both against
-- `planhost sim --profile instant --parallel 8` (a SIMULATED model server).
--
--   build/planhost lua tests/soak/soak.lua [--requests N] [--mode api|serve|both] [--seed S]
--                                          [--out FILE] [--reload-ms MS] [--clients C]
--
-- Run from the repository root. Progress goes to stderr; the Markdown report to --out
-- (default build/soak/SOAK.md) and to stdout. Exit status 0 only when every check passed.
--
-- Checks, per mode: every request not cancelled ends in exactly one plan event; no event for
-- a request after its cancel; the process does not crash (serve: /health answers at the end,
-- SIGTERM exits 0); script edits give reload events (failed for a broken script, ok
-- otherwise) and the serving generation keeps serving; VmRSS sampled every 500 requests
-- stays flat after warm-up (last <= sample at 20 % + max(10 %, 8 MiB)); open fds back to the
-- starting level. Every random choice comes from the seeded generator below (not
-- math.random), so a seed gives the same requests, faults, cancels and edits; timing does
-- not repeat exactly (which cancel lands in flight, how many plans come from the cache).
package.path = "tests/?.lua;" .. package.path
local H = require "helpers"
local cjson = H.cjson
local clock = H.planhost.clock

-- ---- options -------------------------------------------------------------------------

local opt = { requests = 10000, mode = "both", seed = 1, out = "build/soak/SOAK.md", reload_ms = 2000, clients = 16 }
do
  local names = { ["--requests"] = "requests", ["--mode"] = "mode", ["--seed"] = "seed", ["--out"] = "out",
                  ["--reload-ms"] = "reload_ms", ["--clients"] = "clients" }
  local i = 1
  while i <= #arg do
    local key, v = names[arg[i]], arg[i + 1]
    if not key or not v then
      io.stderr:write("usage: planhost lua tests/soak/soak.lua [--requests N] [--mode api|serve|both] [--seed S]\n"
        .. "                                          [--out FILE] [--reload-ms MS] [--clients C]\n")
      os.exit(2)
    end
    opt[key] = (key == "mode" or key == "out") and v or assert(math.tointeger(tonumber(v)), arg[i] .. " wants an integer")
    i = i + 2
  end
  assert(opt.mode == "api" or opt.mode == "serve" or opt.mode == "both", "--mode is api, serve or both")
  assert(opt.requests >= 10 and opt.clients >= 1 and opt.clients <= 60 and opt.reload_ms >= 300, "option out of range")
end

local SIM_ARGS = "--profile instant --parallel 8"
local SAMPLE_EVERY = 500
local FAULT_RATE, CANCEL_RATE = 0.10, 0.05
local API_IN_FLIGHT = 64          -- requests the API mode keeps open at once
local DRAIN_S = 20                -- after the last submit, how long the last plans may take

local function log(fmt, ...) io.stderr:write(("soak: " .. fmt .. "\n"):format(...)) end

-- ---- the seeded generator: xorshift64 (Marsaglia 13/7/17) --------------------------------

local function prng(seed)
  local s = (seed * 0x9E3779B97F4A7C15) ~ 0x2545F4914F6CDD1D
  if s == 0 then s = 1 end
  local r = {}
  function r.float()                  -- [0, 1)
    s = s ~ (s << 13); s = s ~ (s >> 7); s = s ~ (s << 17)
    return (s >> 11) * (1.0 / 9007199254740992.0)
  end
  function r.int(a, b) return a + math.floor(r.float() * (b - a + 1)) end
  function r.chance(p) return r.float() < p end
  function r.pick(t) return t[r.int(1, #t)] end
  return r
end

-- ---- the process: RSS and open fds ---------------------------------------------------------

local function read_or_empty(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function self_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("a"):match("^(%d+)")
  f:close()
  return pid
end

local function rss_kib(pid)
  local f = io.open("/proc/" .. pid .. "/status")
  if not f then return nil end
  local kib = tonumber(f:read("a"):match("VmRSS:%s*(%d+)"))
  f:close()
  return kib
end

-- Open fds of `pid` (listed by `ls` into a file through os.execute, which opens no pipe in
-- this process, so our own count is exact), and
-- how many of them are TCP connections to port `pool_port`: the keep-alive connections to the
-- model server, which libcurl keeps open between requests by design.
local FD_LIST = os.tmpname()
local function fds(pid, pool_port)
  H.sh("ls -l /proc/" .. pid .. "/fd >" .. FD_LIST .. " 2>/dev/null")
  local total, sockets, list = 0, {}, {}
  for line in read_or_empty(FD_LIST):gmatch("[^\n]+") do
    local fd, target = line:match("(%d+) %-> (.*)$")
    if fd then total = total + 1; list[tonumber(fd)] = target end
    local inode = line:match("socket:%[(%d+)%]")
    if inode then sockets[inode] = true end
  end
  local pool = 0
  local f = pool_port and io.open("/proc/" .. pid .. "/net/tcp")
  if f then
    for line in f:lines() do
      local rport, inode = line:match("^%s*%d+:%s+%x+:%x+%s+%x+:(%x+)%s+%x+%s+%S+%s+%S+%s+%S+%s+%d+%s+%d+%s+(%d+)")
      if rport and sockets[inode] and tonumber(rport, 16) == pool_port then pool = pool + 1 end
    end
    f:close()
  end
  return { total = total, pool = pool, list = list }
end

-- The fds open in `after` and not (or to something else) in `before`, as "fd -> target".
local function fd_diff(before, after)
  local out = {}
  for fd, target in pairs(after.list) do
    if before.list[fd] ~= target then out[#out + 1] = fd .. " -> " .. target end
  end
  table.sort(out)
  return table.concat(out, ", ")
end

local function fd_text(f)
  return f and ("%d (%d of them connections to the model server)"):format(f.total, f.pool) or "?"
end

local function count(t, k) t[k] = (t[k] or 0) + 1 end

-- ---- snapshots: the examples, each with an agent name and a "nonce" the hash counts -------

local BASES = {}
for _, name in ipairs { "hello_companion", "no_ammo", "low_health_morale", "surrounded", "escort", "reach",
                        "no_enemies", "twelve_enemies", "non_ascii_names", "reach_position" } do
  BASES[#BASES + 1] = (H.snapshot(name):gsub("%s*\n%s*", " "))
end
local VARIANTS = 400               -- distinct normal snapshots: cache hits and coalescing happen

-- `nonce` a variant number (normal) or unique (faulty: never a cache hit, always reaches the sim).
local function snapshot_text(base, agent, nonce)
  local text, n = base:gsub('"agent"%s*:%s*"[^"]*"', ('"agent": "%s", "nonce": %d'):format(agent, nonce), 1)
  assert(n == 1, "a base snapshot without an agent field")
  return text
end

-- ---- the request plan, the same for a seed ---------------------------------------------------

local API_FAULTS = { "http500", "notfound", "error_mid", "reset", "garbage", "slow", "hang", "endless" }
-- `planhost serve` takes no request headers to pass on to the model server, so in serve mode
-- the faults are made by the simulator's model script (soak_model.lua below), keyed on the
-- agent name: the kinds of failure a model script can produce.
local SERVE_FAULTS = { "http500", "garbage", "truncate", "empty" }

local function fault_header(r, mode)
  if mode == "error_mid" or mode == "reset" then return mode .. ":" .. r.int(0, 5) end
  if mode == "slow" then return "slow:" .. r.int(20, 200) end
  return mode
end

-- One entry per request: base, nonce, fault (mode name or nil), header, budget_ms, cancel_ms.
local function plan_requests(r, n, faults, with_cancels)
  local list = {}
  for i = 1, n do
    local q = { base = r.int(1, #BASES) }
    if r.chance(FAULT_RATE) then
      q.fault = r.pick(faults)
      q.header = fault_header(r, q.fault)
      q.budget_ms = r.int(300, 800)
      q.nonce = 1000000 + i
    else
      q.nonce = r.int(1, VARIANTS)
    end
    if with_cancels and r.chance(CANCEL_RATE) then
      q.cancel_ms = r.int(0, q.budget_ms or 40)      -- 0: right after submit, before any poll
    end
    list[i] = q
  end
  return list
end

-- ---- script edits: a comment in a prompt, every third a broken compact.lua, then restored ----

local PROMPTS = { "compact", "simplified", "full", "batch" }

local function editor(dir)
  local e = { n = 0, good = 0, broken = 0 }
  local compact = H.read(dir .. "/prompts/compact.lua")
  -- Makes edit number n + 1; returns "ok" or "failed", the reload it should cause.
  function e.next()
    e.n = e.n + 1
    local k = e.n
    if k % 3 == 0 then
      e.broken = e.broken + 1
      H.write(dir .. "/prompts/compact.lua", compact .. "\nthis is not lua -- soak reload " .. k .. "\n")
      return "failed"
    end
    e.good = e.good + 1
    if k % 3 == 1 and k > 1 then      -- the one after a broken edit: restore compact.lua
      compact = compact .. "-- soak reload " .. k .. "\n"
      H.write(dir .. "/prompts/compact.lua", compact)
      return "ok"
    end
    local path = dir .. "/prompts/" .. PROMPTS[(k % #PROMPTS) + 1] .. ".lua"
    local text = path:match("compact%.lua$") and compact or H.read(path)
    text = text .. "-- soak reload " .. k .. "\n"
    if path:match("compact%.lua$") then compact = text end
    H.write(path, text)
    return "ok"
  end
  return e
end

-- ---- results shared by both modes -------------------------------------------------------------

local function new_result(mode)
  return {
    mode = mode, submitted = 0, plans = 0, by_source = {}, by_cache = {}, fallbacks = {}, faults = {},
    lost = 0, duplicates = 0, after_cancel = 0, stray = 0, refused = 0,
    cancels = 0, cancel_in_flight = 0, cancel_late = 0, cancel_queued = 0, queued_cache = {}, edits_ok = 0, edits_broken = 0,
    reload_ok = 0, reload_failed = 0, reload_wrong = 0, reload_missed = 0, plans_while_broken = 0,
    rss = {}, notes = {}, checks = {}, commands = {},
    undo = {},   -- what to stop and remove, run also when the mode failed half-way
  }
end

local function on_event(res, ev)
  if ev.event == "plan" then
    res.plans = res.plans + 1
    count(res.by_source, tostring(ev.source))
    count(res.by_cache, tostring(ev.cache))
  elseif ev.event == "fallback" then
    count(res.fallbacks, tostring(ev.reason))
  end
end

local function sample(res, pid, n, lua_heap)
  if lua_heap then collectgarbage("collect") end
  local s = { n = n, kib = rss_kib(pid), lua_kib = lua_heap and math.floor(collectgarbage("count")) or nil }
  res.rss[#res.rss + 1] = s
  log("%s: %d/%d requests, %d plans, VmRSS %d KiB%s", res.mode, n, opt.requests, res.plans, s.kib or -1,
    s.lua_kib and (", Lua heap " .. s.lua_kib .. " KiB") or "")
end

local function check(res, name, ok, detail)
  res.checks[#res.checks + 1] = { name = name, ok = ok and true or false, detail = detail }
  if not ok then log("%s: CHECK FAILED: %s (%s)", res.mode, name, detail) end
end

-- The memory check: the last sample against the one at 20 % of the run.
local function check_rss(res)
  local base
  for _, s in ipairs(res.rss) do
    if not base and s.n >= 0.2 * opt.requests then base = s end
  end
  local last = res.rss[#res.rss]
  if not base or not last or not base.kib or not last.kib then
    return check(res, "resident memory flat after warm-up", false, "no samples")
  end
  local allowed = math.max(base.kib * 0.10, 8 * 1024)
  res.rss_base, res.rss_allowed = base, allowed
  check(res, "resident memory flat after warm-up", last.kib - base.kib <= allowed,
    ("last %d KiB vs %d KiB at %d requests: %+d KiB, allowed +%d KiB"):format(last.kib, base.kib, base.n,
      last.kib - base.kib, math.floor(allowed)))
end

local function metric(text, name)
  return tonumber(text:match("\n" .. name:gsub("[%p]", "%%%0") .. " (%d+)"))
end

-- The plan cache's size at the end, from the metrics text: the cache fills up during the run.
local function cache_size(res, text)
  text = "\n" .. text
  res.cache_entries = metric(text, "planhost_cache_entries")
  res.cache_bytes = metric(text, "planhost_cache_bytes")
  res.cache_evictions = metric(text, "planhost_cache_evictions_total")
end

-- ---- mode (a): the embedding API ---------------------------------------------------------------

local function run_api(res)
  local r = prng(opt.seed)
  local reqs = plan_requests(r, opt.requests, API_FAULTS, true)
  local pid = self_pid()
  local sim = H.start_sim(SIM_ARGS)
  res.undo[#res.undo + 1] = sim.stop
  res.commands[#res.commands + 1] = "planhost sim --port 0 " .. SIM_ARGS .. "   # SIMULATED model server"
  local dir = H.scratch_tree()
  collectgarbage("collect")
  local sim_port = tonumber(sim.url:match(":(%d+)$"))
  res.fd_before = fds(pid, sim_port)
  local host = H.open(dir, { watch = true, url = sim.url })
  res.undo[#res.undo + 1] = function() host:close() end
  res.commands[#res.commands + 1] = ('planhost.open { root = <scratch copy>, watch = true, url = "%s" }   # in this process'):format(sim.url)
  host:poll(0)
  res.fd_open_start = fds(pid, sim_port)
  local ed = editor(dir)
  local by_id, plan_of, cancelled = {}, {}, {}   -- id -> request index, plan count, cancelled at ms
  local late_queued = {}                         -- cancel refused before the plan was polled
  local due = {}                                 -- pending cancels: { at =, id = }
  local awaiting, broken, next_edit = nil, false, clock() + opt.reload_ms
  local t0, i, open, last_submit = clock(), 0, 0, clock()

  local function take(ev)
    if ev.event == "reload" then
      if not awaiting then
        res.reload_wrong = res.reload_wrong + 1
        res.notes[#res.notes + 1] = "unexpected reload event: " .. ev.json
        return
      end
      local want_ok = awaiting.want == "ok"
      if ev.ok then res.reload_ok = res.reload_ok + 1 else res.reload_failed = res.reload_failed + 1 end
      local gen = host:generation()
      local right = ev.ok == want_ok and (ev.ok and gen == ev.generation
        or (not ev.ok and ev.code == "syntax" and gen == ev.serving and tostring(ev.error):find("prompts/compact.lua", 1, true)))
      if not right then
        res.reload_wrong = res.reload_wrong + 1
        res.notes[#res.notes + 1] = ("reload %d: wanted ok=%s, host generation %d, got %s"):format(awaiting.k, want_ok, gen, ev.json)
      end
      if not ev.ok and not host:render("compact", BASES[1]) then
        res.reload_wrong = res.reload_wrong + 1
        res.notes[#res.notes + 1] = "the serving generation does not render after a failed reload"
      end
      broken = not ev.ok
      awaiting = nil
      return
    end
    local idx = by_id[ev.request]
    if not idx then
      res.stray = res.stray + 1
      return
    end
    if cancelled[ev.request] then
      res.after_cancel = res.after_cancel + 1
      res.notes[#res.notes + 1] = "event after cancel: " .. ev.json:sub(1, 200)
    end
    on_event(res, ev)
    if ev.event == "plan" then
      plan_of[ev.request] = (plan_of[ev.request] or 0) + 1
      if plan_of[ev.request] == 1 then open = open - 1 else res.duplicates = res.duplicates + 1 end
      if late_queued[ev.request] then count(res.queued_cache, tostring(ev.cache)) end
      if broken then res.plans_while_broken = res.plans_while_broken + 1 end
    end
  end

  local function cancel(id)
    res.cancels = res.cancels + 1
    if host:cancel(id) then
      res.cancel_in_flight = res.cancel_in_flight + 1
      cancelled[id] = clock()
      if plan_of[id] then
        res.after_cancel = res.after_cancel + 1
        res.notes[#res.notes + 1] = "cancel accepted for request " .. id .. " after its plan"
      end
      open = open - 1
    else
      -- it had ended: its plan is delivered, or queued for the next poll (a cache hit answers
      -- inside submit; cancelling a leader ends the requests coalesced on it); the final
      -- count checks that it arrives
      res.cancel_late = res.cancel_late + 1
      if not plan_of[id] then
        res.cancel_queued = res.cancel_queued + 1
        late_queued[id] = true
      end
    end
  end

  local function edit_if_due(now)
    if awaiting then
      if now - awaiting.at > 10000 then
        res.reload_missed = res.reload_missed + 1
        res.notes[#res.notes + 1] = ("reload %d (%s): no reload event within 10 s"):format(awaiting.k, awaiting.want)
        awaiting = nil
      end
      return
    end
    if now < next_edit then return end
    local want = ed.next()
    awaiting = { k = ed.n, want = want, at = now }
    next_edit = now + opt.reload_ms
  end

  while true do
    local now = clock()
    while i < #reqs and open < API_IN_FLIGHT do
      local q = reqs[i + 1]
      local id, msg = host:submit { snapshot = snapshot_text(BASES[q.base], "api-" .. (i + 1), q.nonce),
                                    headers = q.header and { "X-Sim-Fault: " .. q.header } or nil, budget_ms = q.budget_ms }
      if not id then
        if tostring(msg):match("pending") then break end   -- back-pressure: drain and retry
        res.refused = res.refused + 1
        res.notes[#res.notes + 1] = "submit refused: " .. tostring(msg)
      else
        by_id[id] = i + 1
        open = open + 1
        if q.fault then count(res.faults, q.fault) end
        if q.cancel_ms == 0 then cancel(id)
        elseif q.cancel_ms then due[#due + 1] = { at = now + q.cancel_ms, id = id } end
      end
      i = i + 1
      res.submitted = i
      last_submit = now
      if i % SAMPLE_EVERY == 0 then sample(res, pid, i, true) end
    end
    for _, ev in ipairs(host:poll(2)) do take(ev) end
    now = clock()
    for k = #due, 1, -1 do
      if now >= due[k].at then
        cancel(table.remove(due, k).id)   -- also when its plan is here: must be refused then
      end
    end
    edit_if_due(now)
    local done = i >= #reqs and (open <= 0 or now - last_submit > DRAIN_S * 1000) and #due == 0
    if done and not awaiting then break end
  end
  res.wall_s = (clock() - t0) / 1000
  -- a little longer: nothing more may arrive for cancelled or finished requests
  local settle = clock() + 300
  while clock() < settle do for _, ev in ipairs(host:poll(20)) do take(ev) end end
  for id, idx in pairs(by_id) do
    if not cancelled[id] and not plan_of[id] then
      res.lost = res.lost + 1
      if res.lost <= 10 then res.notes[#res.notes + 1] = ("request %d (#%d, fault %s) has no plan"):format(id, idx, tostring(reqs[idx].fault)) end
    end
  end
  res.pending_end = host:pending()
  sample(res, pid, res.submitted, true)
  res.fd_open_end = fds(pid, sim_port)
  res.generation = host:generation()
  cache_size(res, host:metrics())
  res.edits_ok, res.edits_broken = ed.good, ed.broken
  host:close()
  collectgarbage("collect")
  res.fd_after = fds(pid, sim_port)
  if res.fd_after.total ~= res.fd_before.total then
    res.notes[#res.notes + 1] = "fds open after closing the host that were not open before it: " .. fd_diff(res.fd_before, res.fd_after)
      .. "; gone: " .. fd_diff(res.fd_after, res.fd_before)
  end
  res.sim_alive = H.sh("kill -0 " .. sim.pid .. " 2>/dev/null") == 0
end

-- ---- mode (b): planhost serve, driven by curl ------------------------------------------------

-- The simulator's model script for serve mode: the default model, failing on purpose for a
-- snapshot whose agent is "sf-<mode>-<n>".
local SOAK_MODEL = [==[
local base = dofile(%q)
return {
  config = base.config,
  answer = function(req)
    local mode = (req.prompt or ""):match("sf%%-([%%w_]+)%%-%%d+")
    if mode == "http500" then error("soak: the model fails on purpose") end
    if mode == "garbage" then return "Sorry, I cannot plan that. {{ not json ]]" end
    if mode == "empty" then return "" end
    local text = base.answer(req)
    if mode == "truncate" then return text:sub(1, #text // 2) end
    return text
  end,
}
]==]

local function start_serve(root, url, tmp)
  local log_file, pid_file, status_file = tmp .. "/serve.log", tmp .. "/serve.pid", tmp .. "/serve.status"
  H.sh(("( %s serve --port 0 --root %s --url %s >%s 2>&1 & echo $! >%s; wait $!; echo $? >%s ) &")
    :format(H.q(H.bin), H.q(root), H.q(url), log_file, pid_file, status_file))
  local srv = { log = log_file }
  local deadline = clock() + 10000
  while clock() < deadline do
    local f = io.open(pid_file)
    if f then srv.pid = f:read("a"):match("%d+"); f:close() end
    srv.url = read_or_empty(log_file):match("planhost serve: listening on (http://127%.0%.0%.1:%d+)")
    if srv.url and srv.pid then break end
    H.sh("sleep 0.02")
  end
  assert(srv.url, "planhost serve did not start: " .. read_or_empty(log_file))
  function srv.status()
    local f = io.open(status_file)
    if not f then return nil end
    local s = tonumber(f:read("a"):match("%d+"))
    f:close()
    return s
  end
  return srv
end

local function http_get(url)
  local p = io.popen("curl -s -m 5 -w '\\n%{http_code}' " .. H.q(url))
  local text = p:read("a")
  p:close()
  local body, code = text:match("^(.*)\n(%d+)$")
  return tonumber(code), body
end

-- Groups the requests into POST bodies: a faulty one alone (its budget is the POST's), the
-- others 1 to 4 together. Each unit: { first =, last =, body =, kill_ms = }.
local function plan_units(r, reqs)
  local units, i = {}, 1
  while i <= #reqs do
    local u = { first = i }
    if reqs[i].fault then
      u.last = i
    else
      u.last = i
      local want = r.int(1, 4)
      while u.last < #reqs and u.last - i + 1 < want and not reqs[u.last + 1].fault do u.last = u.last + 1 end
    end
    if r.chance(CANCEL_RATE) then u.kill_ms = r.int(5, 150) end
    local snaps = {}
    for k = u.first, u.last do
      local q = reqs[k]
      local agent = q.fault and ("sf-" .. q.fault .. "-" .. k) or ("srv-" .. k)
      snaps[#snaps + 1] = snapshot_text(BASES[q.base], agent, q.nonce)
    end
    u.body = '{"snapshots":[' .. table.concat(snaps, ",") .. "]"
      .. (reqs[i].budget_ms and (',"budget_ms":' .. reqs[i].budget_ms) or "") .. "}"
    units[#units + 1] = u
    i = u.last + 1
  end
  return units
end

-- Reads one client's output: HTTP status, request ids, complete lines, a cut-off tail.
local function read_unit(tmp, slot)
  local base = tmp .. "/c" .. slot
  local hdr, out = read_or_empty(base .. ".hdr"), read_or_empty(base .. ".out")
  local rc = tonumber(read_or_empty(base .. ".rc"):match("%d+"))
  local ids = {}
  local list = hdr:match("[Xx]%-[Pp]lanhost%-[Rr]equests:%s*([%d,]+)")
  for id in (list or ""):gmatch("%d+") do ids[#ids + 1] = tonumber(id) end
  local lines, tail = {}, out:match("([^\n]*)$")
  for line in out:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  return { code = tonumber(hdr:match("^HTTP/%S+ (%d+)")), ids = ids, lines = lines, tail = tail, rc = rc }
end

-- Checks one stream against its POST: one plan per snapshot unless our own kill cut it.
local function check_unit(res, u, got, seen)
  local killed = u.kill_ms and got.rc == 137
  if killed then
    res.killed = res.killed + 1
    if got.code then res.killed_mid = res.killed_mid + 1 end   -- after the response headers
    if #got.ids == 0 then res.unsent = res.unsent + (u.last - u.first + 1) end
  end
  if not killed and (got.rc ~= 0 or got.code ~= 200) then
    res.bad_streams = res.bad_streams + 1
    res.notes[#res.notes + 1] = ("POST of requests %d-%d: curl exit %s, HTTP %s"):format(u.first, u.last, got.rc, got.code)
  end
  local mine, plans, nplans = {}, {}, 0
  for _, id in ipairs(got.ids) do
    if id == 0 then res.refused = res.refused + 1 else mine[id] = true end
  end
  for _, line in ipairs(got.lines) do
    local ok, ev = pcall(cjson.decode, line)
    if not ok or type(ev) ~= "table" then
      res.bad_lines = res.bad_lines + 1
    elseif ev.event == "error" then
      res.notes[#res.notes + 1] = "error line: " .. line:sub(1, 200)
    elseif not mine[ev.request] then
      res.stray = res.stray + 1
    else
      on_event(res, ev)
      if ev.event == "plan" then
        plans[ev.request] = (plans[ev.request] or 0) + 1
        if plans[ev.request] == 1 then nplans = nplans + 1 end
        if plans[ev.request] > 1 or seen[ev.request] then res.duplicates = res.duplicates + 1 end
        seen[ev.request] = true
      elseif plans[ev.request] then
        res.after_cancel = res.after_cancel + 1    -- an event after the request's plan
      end
    end
  end
  if got.tail ~= "" and not killed then res.bad_lines = res.bad_lines + 1 end
  local want = u.last - u.first + 1
  if killed then
    res.cut_requests = res.cut_requests + want - nplans
  else
    if #got.ids ~= want then
      res.lost = res.lost + want
      res.notes[#res.notes + 1] = ("POST of requests %d-%d: %d ids in X-Planhost-Requests"):format(u.first, u.last, #got.ids)
    end
    for id in pairs(mine) do
      if not plans[id] then
        res.lost = res.lost + 1
        if res.lost <= 10 then res.notes[#res.notes + 1] = ("request %d (POST %d-%d) has no plan line"):format(id, u.first, u.last) end
      end
    end
  end
end

-- Runs up to opt.clients POSTs at once, each a curl process; the killed ones under
-- `timeout -s KILL`. Waits for all of them.
local function run_batch(tmp, url, units, from, to)
  local cmd = {}
  for k = from, to do
    local u, base = units[k], tmp .. "/c" .. (k - from + 1)
    H.write(base .. ".body", u.body)
    os.remove(base .. ".hdr"); os.remove(base .. ".out"); os.remove(base .. ".rc")
    local kill = u.kill_ms and ("timeout -s KILL %.3f "):format(u.kill_ms / 1000) or ""
    cmd[#cmd + 1] = ("( %scurl -sN -m 30 -D %s.hdr -o %s.out --data-binary @%s.body %s/v1/plan; echo $? >%s.rc ) 2>/dev/null &")
      :format(kill, base, base, base, url, base)
  end
  cmd[#cmd + 1] = "wait"
  H.sh(table.concat(cmd, "\n"))
end

local function run_serve(res)
  local r = prng(opt.seed + 1)
  local reqs = plan_requests(r, opt.requests, SERVE_FAULTS, false)
  local units = plan_units(r, reqs)
  res.killed, res.killed_mid, res.unsent, res.bad_streams, res.bad_lines, res.cut_requests, res.kills_planned = 0, 0, 0, 0, 0, 0, 0
  for _, u in ipairs(units) do if u.kill_ms then res.kills_planned = res.kills_planned + 1 end end
  res.posts = #units
  local dir = H.scratch_tree()
  local p = io.popen("mktemp -d /tmp/planhost-soak.XXXXXX")
  local tmp = p:read("l")               -- the clients' files, serve's log
  p:close()
  res.undo[#res.undo + 1] = function() H.sh("rm -rf " .. H.q(tmp)) end
  local model = dir .. "/soak_model.lua"
  H.write(model, SOAK_MODEL:format(H.root .. "/examples/sim/model.lua"))
  local sim = H.start_sim(SIM_ARGS .. " --model-script " .. H.q(model))
  res.undo[#res.undo + 1] = sim.stop
  res.commands[#res.commands + 1] = "planhost sim --port 0 " .. SIM_ARGS .. " --model-script <scratch>/soak_model.lua   # SIMULATED"
  local srv = start_serve(dir, sim.url, tmp)
  res.undo[#res.undo + 1] = function() if not srv.status() then H.sh("kill " .. srv.pid .. " 2>/dev/null") end end
  res.commands[#res.commands + 1] = "planhost serve --port 0 --root <scratch copy> --url " .. sim.url
  res.commands[#res.commands + 1] = ("curl -sN -m 30 --data-binary @BODY %s/v1/plan   # %d at once; killed ones under timeout -s KILL"):format(srv.url, opt.clients)
  local sim_port = tonumber(sim.url:match(":(%d+)$"))
  res.fd_before = fds(srv.pid, sim_port)
  sample(res, srv.pid, 0)
  local ed = editor(dir)
  local seen, next_edit, next_sample = {}, clock() + opt.reload_ms, SAMPLE_EVERY
  local t0, k = clock(), 1
  while k <= #units do
    local to = math.min(#units, k + opt.clients - 1)
    run_batch(tmp, srv.url, units, k, to)
    for j = k, to do
      local u = units[j]
      check_unit(res, u, read_unit(tmp, j - k + 1), seen)
      for q = u.first, u.last do if reqs[q].fault then count(res.faults, reqs[q].fault) end end
      res.submitted = u.last
    end
    k = to + 1
    if res.submitted >= next_sample then
      sample(res, srv.pid, res.submitted)
      next_sample = next_sample + SAMPLE_EVERY
      local code = http_get(srv.url .. "/health")
      if code ~= 200 then res.notes[#res.notes + 1] = "/health answered " .. tostring(code) .. " mid-run" end
    end
    if clock() >= next_edit then
      ed.next()
      next_edit = clock() + opt.reload_ms
    end
  end
  res.wall_s = (clock() - t0) / 1000
  res.edits_ok, res.edits_broken = ed.good, ed.broken
  -- the killed clients' requests are cancelled: pending goes back to 0
  local code, body
  local deadline = clock() + 10000
  repeat
    code, body = http_get(srv.url .. "/health")
    local h = code == 200 and cjson.decode(body)
    res.pending_end, res.generation = h and math.tointeger(h.pending), h and math.tointeger(h.generation)
    if res.pending_end == 0 then break end
    H.sh("sleep 0.05")
  until clock() > deadline
  res.health_end = code
  local _, metrics = http_get(srv.url .. "/metrics")
  metrics = "\n" .. (metrics or "")
  res.reload_ok = metric(metrics, 'planhost_reloads_total{result="ok"}') or 0
  res.reload_failed = metric(metrics, 'planhost_reloads_total{result="failed"}') or 0
  res.metric_submitted = metric(metrics, "planhost_requests_submitted_total")
  cache_size(res, metrics)
  sample(res, srv.pid, res.submitted)
  res.fd_after = fds(srv.pid, sim_port)
  if res.fd_after.total - res.fd_after.pool ~= res.fd_before.total - res.fd_before.pool then
    res.notes[#res.notes + 1] = "serve's fds at the end that were not open after the banner: " .. fd_diff(res.fd_before, res.fd_after)
  end
  H.sh("kill " .. srv.pid)
  local stop = clock() + 15000
  while not srv.status() and clock() < stop do H.sh("sleep 0.05") end
  res.exit_status = srv.status()
  local text = H.read(srv.log)
  res.serve_log_bad = text:match("[^\n]*Sanitizer[^\n]*") or text:match("[^\n]*runtime error[^\n]*")
  res.sim_alive = H.sh("kill -0 " .. sim.pid .. " 2>/dev/null") == 0
end

-- ---- the checks of a mode -------------------------------------------------------------------

local function judge(res)
  local expected = opt.requests - res.refused
  check(res, "every request submitted", res.submitted == opt.requests and res.refused == 0,
    ("%d of %d submitted, %d refused"):format(res.submitted, opt.requests, res.refused))
  check(res, "requests lost = 0", res.lost == 0, res.lost .. " without a plan")
  check(res, "duplicate plans = 0", res.duplicates == 0, res.duplicates .. " extra plan events")
  check(res, "no event after a cancel (or after the plan)", res.after_cancel == 0, res.after_cancel .. " events")
  check(res, "no event for an unknown request", res.stray == 0, res.stray .. " events")
  if res.mode == "api" then
    check(res, "plans = requests - cancelled in flight", res.plans == expected - res.cancel_in_flight,
      ("%d plans, %d requests, %d cancelled in flight"):format(res.plans, expected, res.cancel_in_flight))
    check(res, "nothing pending at the end", res.pending_end == 0, tostring(res.pending_end))
    check(res, "reload events match the edits",
      res.reload_ok == res.edits_ok and res.reload_failed == res.edits_broken and res.reload_wrong == 0 and res.reload_missed == 0,
      ("edits %d good / %d broken; events %d ok / %d failed; %d wrong, %d missing"):format(res.edits_ok,
        res.edits_broken, res.reload_ok, res.reload_failed, res.reload_wrong, res.reload_missed))
    check(res, "the last good generation serves while a broken script is on disk",
      res.edits_broken == 0 or res.plans_while_broken > 0, res.plans_while_broken .. " plans delivered meanwhile")
    check(res, "open fds back to the starting level", res.fd_after.total == res.fd_before.total,
      ("%d before the host, %d after closing it"):format(res.fd_before.total, res.fd_after.total))
  else
    check(res, "every stream complete unless we killed it", res.bad_streams == 0 and res.bad_lines == 0,
      ("%d bad streams, %d bad or cut lines"):format(res.bad_streams, res.bad_lines))
    -- a client killed before the response headers may or may not have had its body read
    local sub = res.metric_submitted or -1
    check(res, "the host saw every snapshot (but those of clients killed before an answer)",
      sub <= opt.requests and sub >= opt.requests - res.unsent,
      ("planhost_requests_submitted_total %d; %d snapshots sent, %d of them in POSTs killed before an answer")
        :format(sub, opt.requests, res.unsent))
    check(res, "serve answers /health at the end, nothing pending", res.health_end == 200 and res.pending_end == 0,
      ("HTTP %s, pending %s"):format(tostring(res.health_end), tostring(res.pending_end)))
    check(res, "serve exits 0 on SIGTERM, nothing from the sanitizers", res.exit_status == 0 and not res.serve_log_bad,
      ("exit status %s%s"):format(tostring(res.exit_status), res.serve_log_bad and (", log: " .. res.serve_log_bad) or ""))
    check(res, "edits of serve's --root give reloads (ok / failed as edited)",
      res.reload_ok == res.edits_ok and res.reload_failed == res.edits_broken,
      ("edits %d good / %d broken; planhost_reloads_total ok %d / failed %d; /health generation %s%s")
        :format(res.edits_ok, res.edits_broken, res.reload_ok, res.reload_failed, tostring(res.generation),
          res.reload_ok + res.reload_failed == 0 and res.edits_ok + res.edits_broken > 0
            and " — serve never looked: it opens its host with watch off (host/serve.c, ph_cli_open_host(&o, 0))" or ""))
    check(res, "the serving generation keeps serving", res.plans > 0 and res.health_end == 200,
      ("%d plans, generation %s at the end"):format(res.plans, tostring(res.generation)))
    -- libcurl keeps its connections to the model server open between requests: those are
    -- counted apart; everything else must be back where it was before the first request
    local other_before, other_after = res.fd_before.total - res.fd_before.pool, res.fd_after.total - res.fd_after.pool
    check(res, "open fds back to the starting level (keep-alive connections to the model server apart)",
      other_after == other_before and res.fd_after.pool <= 64,
      ("%d other fds after the banner, %d at the end; %d kept-alive connections to the model server")
        :format(other_before, other_after, res.fd_after.pool))
  end
  check(res, "the simulator is still up", res.sim_alive, res.sim_alive and "yes" or "it died")
  check_rss(res)
end

-- ---- the report ---------------------------------------------------------------------------------

local function tally(t)
  local keys, out = {}, {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do out[#out + 1] = k .. " " .. t[k] end
  return #out > 0 and table.concat(out, ", ") or "none"
end

local function mode_report(md, res)
  local title = res.mode == "api" and "(a) the embedding API (Lua module, one host, watch = true)"
    or "(b) planhost serve (HTTP/NDJSON, curl clients)"
  md[#md + 1] = "## " .. title .. " — against planhost sim (SIMULATED)\n"
  md[#md + 1] = "Commands:\n"
  for _, c in ipairs(res.commands) do md[#md + 1] = "    " .. c end
  md[#md + 1] = ""
  local faults = 0
  for _, v in pairs(res.faults) do faults = faults + v end
  local rows = {
    { "requests (snapshots) submitted", res.submitted },
    { "faults (SIMULATED), by mode", faults .. ": " .. tally(res.faults) },
  }
  if res.mode == "api" then
    rows[#rows + 1] = { "cancels", ("%d: %d in flight (no plan follows), %d after the request had ended (%d of them refused"
      .. " while the plan was queued, not yet polled; those plans: %s)"):format(res.cancels, res.cancel_in_flight,
      res.cancel_late, res.cancel_queued, tally(res.queued_cache)) }
  else
    rows[#rows + 1] = { "POSTs / clients killed", ("%s POSTs; %s kills planned, %s came before the stream's end: %s after"
      .. " the response headers (mid-stream), the others before them; %s requests cut without a plan line")
      :format(res.posts, res.kills_planned, res.killed, res.killed_mid, res.cut_requests) }
  end
  rows[#rows + 1] = { "script edits (every " .. opt.reload_ms .. " ms)", ("%d good, %d broken"):format(res.edits_ok, res.edits_broken) }
  rows[#rows + 1] = { "reloads", ("%d ok, %d failed%s"):format(res.reload_ok, res.reload_failed,
    res.mode == "serve" and " (planhost_reloads_total)" or "") }
  rows[#rows + 1] = { "plans, by source", res.plans .. ": " .. tally(res.by_source) }
  rows[#rows + 1] = { "plans, by cache", tally(res.by_cache) }
  rows[#rows + 1] = { "fallbacks, by reason", tally(res.fallbacks) }
  rows[#rows + 1] = { "plan cache at the end", ("%s entries, %s bytes, %s evicted"):format(res.cache_entries, res.cache_bytes, res.cache_evictions) }
  rows[#rows + 1] = { "requests lost", res.lost }
  rows[#rows + 1] = { "duplicate plans", res.duplicates }
  rows[#rows + 1] = { "events after a cancel / stray events", res.after_cancel .. " / " .. res.stray }
  rows[#rows + 1] = { "open fds", res.mode == "api"
    and ("%s before the host; with it open %s at the start, %s at the end; %s after closing it"):format(
      fd_text(res.fd_before), fd_text(res.fd_open_start), fd_text(res.fd_open_end), fd_text(res.fd_after))
    or ("%s after the banner, %s at the end"):format(fd_text(res.fd_before), fd_text(res.fd_after)) }
  rows[#rows + 1] = { "wall time", ("%.1f s"):format(res.wall_s or 0) }
  rows[#rows + 1] = { "requests per second (SIMULATED server)", ("%.0f"):format(res.submitted / math.max(res.wall_s or 1, 1e-3)) }
  md[#md + 1] = "| what | figure |\n|---|---|"
  for _, row in ipairs(rows) do md[#md + 1] = ("| %s | %s |"):format(row[1], tostring(row[2])) end
  md[#md + 1] = ""
  md[#md + 1] = ("Resident memory (VmRSS of %s), every %d requests%s:\n"):format(
    res.mode == "api" and "this Lua process, after a full GC" or "serve's process", SAMPLE_EVERY,
    res.mode == "api" and "; the Lua heap (the soak's own bookkeeping included) beside it" or "")
  local cells = {}
  for _, s in ipairs(res.rss) do
    cells[#cells + 1] = ("%d: %s KiB%s"):format(s.n, tostring(s.kib), s.lua_kib and (" (Lua " .. s.lua_kib .. ")") or "")
  end
  md[#md + 1] = table.concat(cells, " · ") .. "\n"
  md[#md + 1] = "| check | result | detail |\n|---|---|---|"
  for _, c in ipairs(res.checks) do
    md[#md + 1] = ("| %s | %s | %s |"):format(c.name, c.ok and "pass" or "**FAIL**", c.detail or "")
  end
  md[#md + 1] = ""
  if #res.notes > 0 then
    md[#md + 1] = "Notes (first 20):\n"
    for n = 1, math.min(20, #res.notes) do md[#md + 1] = "- " .. res.notes[n]:gsub("|", "\\|") end
    md[#md + 1] = ""
  end
end

local function report(results, wall_s, all_ok)
  local cmd = ("build/planhost lua tests/soak/soak.lua --requests %d --mode %s --seed %d --out %s")
    :format(opt.requests, opt.mode, opt.seed, opt.out)
  local md = {
    "# Soak test — SIMULATED model server\n",
    ("Rerun: `%s` (from the repository root; `--reload-ms %d --clients %d` are the defaults)."):format(cmd, opt.reload_ms, opt.clients),
    "",
    "What it measures: " .. opt.requests .. " requests " .. ({ api = "through the embedding API (one host, watch = true, on a"
      .. " scratch copy of the scripts)", serve = "through `planhost serve` (its --root a scratch copy of the scripts)",
      both = "through the embedding API (one host, watch = true, on a scratch copy of the scripts), then as many through"
      .. " `planhost serve` (its --root another copy)" })[opt.mode] .. ", against `planhost sim " .. SIM_ARGS .. "` —"
      .. " **a simulated model server, not a real model: no figure here says anything about a model's latency**."
      .. " 10 % of requests carry a fault (API: the `X-Sim-Fault` header, uniform over the eight modes, budget"
      .. " 300–800 ms; serve, which passes no headers on, makes them in the simulator's model script), 5 % are"
      .. " cancelled (API: `host:cancel` at a random moment; serve: the curl client killed), and a prompt file is"
      .. " edited every " .. opt.reload_ms .. " ms (every third edit a syntax error in prompts/compact.lua, fixed by"
      .. " the next). Checked: one plan per request not cancelled, nothing after a cancel, no crash, reload events,"
      .. " VmRSS flat after warm-up (last ≤ the sample at 20 % + max(10 %, 8 MiB)), open fds back where they started.",
    "",
    ("Run %s, seed %d, %s; total wall time %.1f s. **Result: %s.**\n"):format(os.date("!%Y-%m-%d %H:%M UTC"), opt.seed,
      (function() local p = io.popen("nproc") local n = p:read("l") p:close() return n .. " cores" end)(),
      wall_s, all_ok and "every check passed" or "some checks FAILED"),
  }
  for _, res in ipairs(results) do mode_report(md, res) end
  local text = table.concat(md, "\n")
  io.write(text)
  local dir = opt.out:match("^(.*)/[^/]*$")
  if dir then H.sh("mkdir -p " .. H.q(dir)) end
  H.write(opt.out, text)
end

-- ---- main ----------------------------------------------------------------------------------------

local t0 = clock()
local results, all_ok = {}, true
for _, mode in ipairs(opt.mode == "both" and { "api", "serve" } or { opt.mode }) do
  local res = new_result(mode)
  log("%s mode: %d requests, seed %d", mode, opt.requests, opt.seed)
  local ok, err = xpcall(mode == "api" and run_api or run_serve, debug.traceback, res)
  for k = #res.undo, 1, -1 do pcall(res.undo[k]) end
  H.cleanup()
  if ok then
    judge(res)
  else
    check(res, "the run completed", false, (tostring(err):gsub("\n", " ")))
  end
  for _, c in ipairs(res.checks) do all_ok = all_ok and c.ok end
  results[#results + 1] = res
end
report(results, (clock() - t0) / 1000, all_ok)
os.remove(FD_LIST)
os.exit(all_ok and 0 or 1)
