-- Mode (b) of the soak: the same kind of load through `planhost serve` (HTTP/NDJSON), its
-- --root a scratch copy, driven by batches of curl clients (the killed ones under
-- `timeout -s KILL`), against `planhost sim` with a model script that makes the faults.
--
-- Depends on tests/helpers.lua (H), curl and timeout on PATH, and soak.common (generator,
-- probes, request plan, editor, result functions). The options come in as an argument:
-- run_serve(opt, res).
local H = require "helpers"
local C = require "soak.common"
local cjson = H.cjson
local clock = H.planhost.clock
local SIM_ARGS, SAMPLE_EVERY, CANCEL_RATE, BASES = C.SIM_ARGS, C.SAMPLE_EVERY, C.CANCEL_RATE, C.BASES
local prng, plan_requests, snapshot_text, editor = C.prng, C.plan_requests, C.snapshot_text, C.editor
local read_or_empty, fds, fd_diff, count = C.read_or_empty, C.fds, C.fd_diff, C.count
local on_event, sample, metric, cache_size = C.on_event, C.sample, C.metric, C.cache_size

-- ---- mode (b): planhost serve, driven by curl ------------------------------------------------

-- `planhost serve` takes no request headers to pass on to the model server, so in serve mode
-- the faults are made by the simulator's model script (soak_model.lua below), keyed on the
-- agent name: the kinds of failure a model script can produce.
local SERVE_FAULTS = { "http500", "garbage", "truncate", "empty" }

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

-- Runs mode (b) with the options `opt`, filling `res` (a new_result("serve")); what it starts
-- (the simulator, serve, the clients' directory) it also puts on res.undo, which the caller
-- runs, also on error.
local function run_serve(opt, res)
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
  sample(opt, res, srv.pid, 0)
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
      sample(opt, res, srv.pid, res.submitted)
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
  -- serve looks at its files every 100 ms: the last edit may not have reloaded yet
  local metrics
  deadline = clock() + 5000
  repeat
    local _, text = http_get(srv.url .. "/metrics")
    metrics = "\n" .. (text or "")
    res.reload_ok = metric(metrics, 'planhost_reloads_total{result="ok"}') or 0
    res.reload_failed = metric(metrics, 'planhost_reloads_total{result="failed"}') or 0
    if res.reload_ok + res.reload_failed >= ed.good + ed.broken then break end
    H.sh("sleep 0.05")
  until clock() > deadline
  res.metric_submitted = metric(metrics, "planhost_requests_submitted_total")
  cache_size(res, metrics)
  sample(opt, res, srv.pid, res.submitted)
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

return { run_serve = run_serve }
