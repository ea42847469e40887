-- The facade every spec uses: where the build is, scratch copies of the script tree,
-- file edits, running the planhost command, waiting on a host's events.
local planhost = require "planhost"
local cjson = require "cjson"

local H = {}

H.planhost = planhost
H.cjson = cjson
H.root = os.getenv("PLANHOST_SOURCE") or "."
H.bin = os.getenv("PLANHOST_BIN") or (H.root .. "/build/planhost")

function H.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

function H.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

function H.sh(cmd)
  local ok, how, code = os.execute(cmd)
  return ok and 0 or (how == "exit" and code or 128 + code)
end

function H.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- A scratch copy of lua/, prompts/, policies/ and examples/snapshots/; removed by H.cleanup.
local scratch = {}
function H.scratch_tree()
  local p = io.popen("mktemp -d /tmp/planhost-spec.XXXXXX")
  local dir = p:read("l")
  p:close()
  assert(H.sh(("mkdir -p %s/examples && cp -r %s/lua %s/prompts %s/policies %s/ && cp -r %s/examples/snapshots %s/examples/")
    :format(H.q(dir), H.q(H.root), H.q(H.root), H.q(H.root), H.q(dir), H.q(H.root), H.q(dir))) == 0)
  scratch[#scratch + 1] = dir
  return dir
end

function H.cleanup()
  for _, dir in ipairs(scratch) do
    os.execute("rm -rf " .. H.q(dir))
  end
  scratch = {}
end

-- Replaces the first match of `pattern` (plain text) in a file; fails when absent.
function H.edit(path, old, new)
  local text = H.read(path)
  local i, j = text:find(old, 1, true)
  assert(i, "edit: '" .. old .. "' not found in " .. path)
  H.write(path, text:sub(1, i - 1) .. new .. text:sub(j + 1))
end

-- Polls `host` until an event satisfying `pred` arrives or `seconds` pass; returns it
-- (and every event seen) or nil.
function H.wait_event(host, pred, seconds)
  local seen = {}
  local deadline = os.time() + (seconds or 5)
  repeat
    for _, ev in ipairs(host:poll(50)) do
      seen[#seen + 1] = ev
      if pred(ev) then return ev, seen end
    end
  until os.time() > deadline
  return nil, seen
end

function H.open(root, opts)
  opts = opts or {}
  opts.root = root or H.root
  return assert(planhost.open(opts))
end

function H.snapshot(name)
  return H.read(H.root .. "/examples/snapshots/" .. name .. ".json")
end

-- Runs the planhost command; returns exit status, stdout, stderr.
function H.run(args)
  local out, err = os.tmpname(), os.tmpname()
  local status = H.sh(("%s %s >%s 2>%s"):format(H.q(H.bin), args, out, err))
  local o, e = H.read(out), H.read(err)
  os.remove(out)
  os.remove(err)
  return status, o, e
end

-- Starts `planhost sim ARGS --port 0` (SIMULATED server) and waits for its banner.
-- Returns { url =, pid =, log =, stop = function }.
function H.start_sim(args)
  local log, pidfile = os.tmpname(), os.tmpname()
  H.sh(("%s sim --port 0 %s >%s 2>&1 & echo $! >%s"):format(H.q(H.bin), args or "", log, pidfile))
  local sim = { pid = H.read(pidfile):match("%d+"), log = log }
  os.remove(pidfile)
  local deadline = planhost.clock() + 10000
  while planhost.clock() < deadline do
    sim.url = H.read(log):match("listening on (http://[%d%.:]+)")
    if sim.url then break end
    H.sh("sleep 0.02")
  end
  assert(sim.url, "the simulator did not start: " .. H.read(log))
  -- Generation requests the simulator has seen (GET /sim/stats).
  function sim.requests()
    local p = io.popen("curl -s " .. sim.url .. "/sim/stats")
    local body = p:read("a")
    p:close()
    return assert(cjson.decode(body).requests, body)
  end
  -- The body of the newest generation request it received (GET /sim/last_body).
  function sim.last_body()
    local p = io.popen("curl -s " .. sim.url .. "/sim/last_body")
    local body = p:read("a")
    p:close()
    return body
  end
  function sim.stop()
    H.sh("kill " .. sim.pid .. " 2>/dev/null")
    os.remove(log)
  end
  return sim
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
function H.b64(s)
  return (s:gsub("..?.?", function(c)
    local a, b, d = c:byte(1, 3)
    local n = a * 65536 + (b or 0) * 256 + (d or 0)
    local out = {}
    for i = 3, 0, -1 do
      local k = (n >> (6 * i)) & 63
      out[#out + 1] = B64:sub(k + 1, k + 1)
    end
    if not b then out[3], out[4] = "=", "=" elseif not d then out[4] = "=" end
    return table.concat(out)
  end))
end

-- Writes a record file (host/record.h) that streams `answer` (model text) as Ollama
-- /api/chat NDJSON, one piece per `piece` characters, `gap_ms` apart; `done` = false leaves
-- the final frame out. Returns the path.
function H.ollama_record(answer, piece, gap_ms, done)
  local path = os.tmpname()
  local lines = { '{"record":"planhost","version":1,"api":"ollama","path":"/api/chat","status":200,"content_type":"application/x-ndjson"}' }
  local t = 0
  for i = 1, #answer, piece do
    local frame = cjson.encode { model = "sim", message = { role = "assistant", content = answer:sub(i, i + piece - 1) }, done = false }
    t = t + gap_ms
    lines[#lines + 1] = ('{"t_ms":%d,"b64":"%s"}'):format(t, H.b64(frame .. "\n"))
  end
  if done ~= false then
    local frame = '{"model":"sim","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":10,"eval_count":20}'
    lines[#lines + 1] = ('{"t_ms":%d,"b64":"%s"}'):format(t + gap_ms, H.b64(frame .. "\n"))
  end
  H.write(path, table.concat(lines, "\n") .. "\n")
  return path
end

-- A record that streams `answer` quickly, then stalls (its last piece comes after 10 s).
function H.stalled_record(answer)
  local path = H.ollama_record(answer, 5, 10, false)
  local frame = cjson.encode { model = "sim", message = { role = "assistant", content = "," }, done = false }
  local f = assert(io.open(path, "ab"))
  f:write(('{"t_ms":10000,"b64":"%s"}\n'):format(H.b64(frame .. "\n")))
  f:close()
  return path
end

-- Submits one request and polls until its plan event; returns that plan event and the list
-- of all its events in order.
function H.plan(host, opts, seconds)
  local id = assert(host:submit(opts))
  local events = {}
  local deadline = planhost.clock() + (seconds or 20) * 1000
  while planhost.clock() < deadline do
    for _, ev in ipairs(host:poll(100)) do
      if ev.request == id then
        events[#events + 1] = ev
        if ev.event == "plan" then return ev, events end
      end
    end
  end
  error("no plan event within " .. (seconds or 20) .. " s")
end

-- The events of one kind ("plan", "fallback", ...), in order.
function H.events_of(events, kind)
  local out = {}
  for _, ev in ipairs(events) do
    if ev.event == kind then out[#out + 1] = ev end
  end
  return out
end

-- Polls until every request in `ids` has its plan event; returns plans[id] and
-- events[id] (every event of that request, in order).
function H.collect(host, ids, seconds)
  local plans, events, left = {}, {}, #ids
  for _, id in ipairs(ids) do events[id] = {} end
  local deadline = planhost.clock() + (seconds or 20) * 1000
  while left > 0 and planhost.clock() < deadline do
    for _, ev in ipairs(host:poll(50)) do
      local list = events[ev.request]
      if list then
        list[#list + 1] = ev
        if ev.event == "plan" then
          assert(not plans[ev.request], "two plan events for request " .. ev.request)
          plans[ev.request] = ev
          left = left - 1
        end
      end
    end
  end
  assert(left == 0, left .. " requests had no plan event within " .. (seconds or 20) .. " s")
  return plans, events
end

return H
