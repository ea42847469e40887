-- Mode (a) of the soak: many requests through the embedding API (the Lua module, one host,
-- watch = true, on a scratch copy of the scripts) against `planhost sim`, with X-Sim-Fault
-- faults, host:cancel at random moments and script edits; it fills the result record.
--
-- Depends on tests/helpers.lua (H) and soak.common (generator, probes, request plan, editor,
-- result functions). The options come in as an argument: run_api(opt, res).
local H = require "helpers"
local C = require "soak.common"
local clock = H.planhost.clock
local SIM_ARGS, SAMPLE_EVERY, BASES = C.SIM_ARGS, C.SAMPLE_EVERY, C.BASES
local prng, plan_requests, snapshot_text, editor = C.prng, C.plan_requests, C.snapshot_text, C.editor
local self_pid, fds, fd_diff, count = C.self_pid, C.fds, C.fd_diff, C.count
local on_event, sample, cache_size = C.on_event, C.sample, C.cache_size

local API_FAULTS = { "http500", "notfound", "error_mid", "reset", "garbage", "slow", "hang", "endless" }
local API_IN_FLIGHT = 64          -- requests the API mode keeps open at once
local DRAIN_S = 20                -- after the last submit, how long the last plans may take

-- ---- mode (a): the embedding API ---------------------------------------------------------------

-- Runs mode (a) with the options `opt`, filling `res` (a new_result("api")); what it starts
-- (the simulator, the host) it also puts on res.undo, which the caller runs, also on error.
local function run_api(opt, res)
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
      if i % SAMPLE_EVERY == 0 then sample(opt, res, pid, i, true) end
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
  sample(opt, res, pid, res.submitted, true)
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

return { run_api = run_api }
