-- What both soak modes share: the seeded generator, the process probes (VmRSS, open fds),
-- the snapshots, the request plan and its fault headers, the script editor, the result
-- record and the functions that fill and check it, and the constants they need.
--
-- Depends on tests/helpers.lua (H) only. Holds no options: the functions that read them
-- (sample, check_rss) take the parsed `opt` table of soak.lua as an argument. Loading it reads
-- the example snapshots and reserves a temporary file (FD_LIST) that soak.lua removes at the end.
local H = require "helpers"

local SIM_ARGS = "--profile instant --parallel 8"
local SAMPLE_EVERY = 500
local FAULT_RATE, CANCEL_RATE = 0.10, 0.05

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

-- The fault modes are per mode: API_FAULTS in api.lua, SERVE_FAULTS in serve.lua.

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

-- Records a VmRSS sample of `pid` after `n` requests (and the Lua heap when `lua_heap`);
-- `opt` the parsed options, read only for the progress line.
local function sample(opt, res, pid, n, lua_heap)
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

-- The memory check: the last sample against the one at 20 % of the run (of opt.requests).
local function check_rss(opt, res)
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

return {
  SIM_ARGS = SIM_ARGS, SAMPLE_EVERY = SAMPLE_EVERY, CANCEL_RATE = CANCEL_RATE, FD_LIST = FD_LIST,
  log = log, prng = prng, count = count,
  read_or_empty = read_or_empty, self_pid = self_pid, rss_kib = rss_kib, fds = fds, fd_diff = fd_diff, fd_text = fd_text,
  BASES = BASES, snapshot_text = snapshot_text, fault_header = fault_header, plan_requests = plan_requests,
  editor = editor,
  new_result = new_result, on_event = on_event, sample = sample, check = check, check_rss = check_rss,
  metric = metric, cache_size = cache_size,
}
