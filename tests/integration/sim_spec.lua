-- planhost sim over real loopback HTTP: each protocol's stream shape, plan answers built from
-- real request bodies (planhost prompt --body), batch answers, every fault mode, parallel
-- slots, the prefix cache, deterministic misbehaviour, replay of a record file, clean stop.
--
-- Starts `planhost sim --port 0` in the background ($PLANHOST_BIN, else build/planhost), reads
-- the port from its banner, talks to it with the curl command line, kills it in teardown.
-- Checks orders and counts, never wall-clock durations (only "at least" bounds).
local cjson = require "cjson"

local ROOT = os.getenv("PLANHOST_SOURCE") or "."
local BIN = os.getenv("PLANHOST_BIN") or (ROOT .. "/build/planhost")
local HELLO = ROOT .. "/examples/snapshots/hello_companion.json"
local NO_ENEMIES = ROOT .. "/examples/snapshots/no_enemies.json"
local TOOLS = dofile(ROOT .. "/lua/tools.lua")

-- Helpers ----------------------------------------------------------------------------------

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function sh(cmd)
  local ok, how, code = os.execute(cmd)
  if ok then return 0 end
  return how == "exit" and code or 128 + code
end

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

local TMP = capture("mktemp -d /tmp/planhost-sim-spec.XXXXXX"):gsub("%s+$", "")
local counter = 0
local function tmpfile(name)
  counter = counter + 1
  return ("%s/%d-%s"):format(TMP, counter, name)
end

local function sleep(s) sh("sleep " .. s) end

-- Sims -------------------------------------------------------------------------------------

local running, logs = {}, {}

-- Running, and not a zombie waiting for init to reap it.
local function alive(pid)
  local stat = read("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("^%d+ %b() (%a)") ~= "Z"
end

-- Starts a sim with extra arguments; returns { url, pid, banner, err }.
local function start_sim(args)
  local out = tmpfile("sim.out")
  sh(("%s sim --port 0 %s >%s 2>%s.err </dev/null & echo $! >%s.pid"):format(q(BIN), args or "", q(out), q(out), q(out)))
  local pid = read(out .. ".pid"):match("%d+")
  for _ = 1, 200 do
    local banner = read(out) or ""
    local port = banner:match("http://127%.0%.0%.1:(%d+)")
    if port then
      local s = { url = "http://127.0.0.1:" .. port, pid = pid, banner = banner, err = out .. ".err" }
      running[#running + 1] = s
      logs[#logs + 1] = s.err
      return s
    end
    if not alive(pid) then break end
    sleep(0.05)
  end
  error("planhost sim did not start: " .. tostring(read(out .. ".err")))
end

-- Sends SIGTERM and waits for the process to end; returns true if it did within `secs`.
local function stop_sim(s, secs)
  sh("kill -TERM " .. s.pid .. " 2>/dev/null")
  for _ = 1, (secs or 5) * 20 do
    if not alive(s.pid) then return true end
    sleep(0.05)
  end
  return false
end

local function stop_all()
  for _, s in ipairs(running) do
    if alive(s.pid) and not stop_sim(s, 3) then sh("kill -KILL " .. s.pid .. " 2>/dev/null") end
  end
  running = {}
end

-- HTTP through the curl command --------------------------------------------------------------

local function parse_headers(text)
  local h = {}
  for line in (text or ""):gmatch("[^\r\n]+") do
    local k, v = line:match("^([%w%-]+):%s*(.-)%s*$")
    if k then h[k:lower()] = v end
  end
  return h
end

-- curl(url, { body=, headers={...}, max_time=, method= }) -> { status, headers, body, rc }
local function curl_cmd(url, o)
  local hdr, out = tmpfile("h"), tmpfile("b")
  local args = { "curl -sN", "--max-time " .. (o.max_time or 10), "-D " .. q(hdr), "-o " .. q(out),
    "-w '%{http_code}'" }
  for _, h in ipairs(o.headers or {}) do args[#args + 1] = "-H " .. q(h) end
  if o.body then
    local bf = tmpfile("req")
    write(bf, o.body)
    args[#args + 1] = "-H 'Content-Type: application/json' --data-binary @" .. q(bf)
  end
  args[#args + 1] = q(url)
  return table.concat(args, " "), hdr, out
end

local function curl(url, o)
  o = o or {}
  local cmd, hdr, out = curl_cmd(url, o)
  local code = tmpfile("code")
  local rc = sh(cmd .. " >" .. q(code))
  return { status = tonumber(read(code)) or 0, headers = parse_headers(read(hdr)), body = read(out) or "", rc = rc }
end

-- Runs several curl() requests at once: { {url, opts}, ... } -> their results, in order.
local function curl_all(list)
  local cmds, files = {}, {}
  for i, item in ipairs(list) do
    local cmd, hdr, out = curl_cmd(item[1], item[2])
    local code, rc = tmpfile("code"), tmpfile("rc")
    cmds[i] = "(" .. cmd .. " >" .. q(code) .. "; echo $? >" .. q(rc) .. ") &"
    files[i] = { hdr = hdr, out = out, code = code, rc = rc }
  end
  sh(table.concat(cmds, " ") .. " wait")
  local results = {}
  for i, f in ipairs(files) do
    results[i] = { status = tonumber(read(f.code)) or 0, headers = parse_headers(read(f.hdr)),
      body = read(f.out) or "", rc = tonumber(read(f.rc)) }
  end
  return results
end

local function lines(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

local function ndjson(text)
  local out = {}
  for i, line in ipairs(lines(text)) do out[i] = cjson.decode(line) end
  return out
end

-- SSE: the payload of every "data: " line, in order (and "error: " payloads, marked).
local function sse(text)
  local out = {}
  for _, line in ipairs(lines(text)) do
    local data = line:match("^data: (.*)$")
    local err = line:match("^error: (.*)$")
    if data then out[#out + 1] = data == "[DONE]" and "[DONE]" or cjson.decode(data) end
    if err then out[#out + 1] = { sse_error = cjson.decode(err) } end
  end
  return out
end

-- Request bodies as planhost sends them -------------------------------------------------------

local body_cache = {}
local function body(api, template, snapshot)
  local key = api .. template .. (snapshot or HELLO)
  if not body_cache[key] then
    body_cache[key] = capture(("%s prompt --body --api %s --template %s %s 2>/dev/null")
      :format(q(BIN), api, template, q(snapshot or HELLO)))
    assert(body_cache[key]:find("^{"), "planhost prompt --body failed for " .. key)
  end
  return body_cache[key]
end

local function with(body_text, changes)
  local b = cjson.decode(body_text)
  for k, v in pairs(changes) do b[k] = v end
  return cjson.encode(b)
end

local function prompt_text(body_text)
  local b = cjson.decode(body_text)
  if b.messages then
    local parts = {}
    for i, m in ipairs(b.messages) do parts[i] = m.content end
    return table.concat(parts, "\n")
  end
  return (b.system or "") .. "\n" .. (b.prompt or "")
end

local function named_tools(text)
  local set = {}
  for _, t in ipairs(TOOLS.tools) do
    if text:find("%f[%w]" .. t.name .. "%f[%W]") then set[t.name] = true end
  end
  return set
end

local function ollama_text(events)
  local parts = {}
  for _, ev in ipairs(events) do
    if not ev.done then parts[#parts + 1] = ev.message and ev.message.content or ev.response end
  end
  return table.concat(parts)
end

local function assert_plan_uses(plan, allowed)
  assert.is_table(plan.steps)
  assert.is_true(#plan.steps >= 1 and #plan.steps <= 5)
  for _, step in ipairs(plan.steps) do
    assert.is_true(allowed[step.act] == true, "tool not named in the prompt: " .. tostring(step.act))
  end
end

-- Specs ------------------------------------------------------------------------------------

describe("planhost sim", function()
  local sim

  setup(function() sim = start_sim("--profile instant --parallel 4") end)
  teardown(function()
    stop_all()
    sh("rm -rf " .. q(TMP))
  end)

  describe("says it is a simulator", function()
    it("in its banner, /api/version, the model lists and a header on every response", function()
      assert.matches("^planhost sim: SIMULATED LLM server listening on http://127%.0%.0%.1:%d+ %(profile instant%)\n",
        sim.banner)
      local v = curl(sim.url .. "/api/version")
      assert.equal(200, v.status)
      assert.matches("simulated", cjson.decode(v.body).version)
      assert.equal("1", v.headers["x-planhost-sim"])
      assert.equal("sim", cjson.decode(curl(sim.url .. "/api/tags").body).models[1].name)
      assert.equal("sim", cjson.decode(curl(sim.url .. "/v1/models").body).data[1].id)
      local missing = curl(sim.url .. "/nowhere")
      assert.equal(404, missing.status)
      assert.equal("1", missing.headers["x-planhost-sim"])
    end)
  end)

  describe("protocols", function()
    it("Ollama /api/chat: NDJSON pieces, then done with counts and durations in ns", function()
      local b = body("ollama", "compact")
      local r = curl(sim.url .. "/api/chat", { body = b })
      assert.equal(200, r.status)
      assert.equal("application/x-ndjson", r.headers["content-type"])
      assert.equal("1", r.headers["x-planhost-sim"])
      local evs = ndjson(r.body)
      assert.is_true(#evs > 3)
      for i = 1, #evs - 1 do
        assert.is_false(evs[i].done)
        assert.equal("assistant", evs[i].message.role)
        assert.is_true(#evs[i].message.content <= 8)
      end
      local last = evs[#evs]
      assert.is_true(last.done)
      assert.equal("stop", last.done_reason)
      assert.equal(#evs - 1, last.eval_count)
      assert.is_true(last.prompt_eval_count > 100)
      for _, k in ipairs { "total_duration", "load_duration", "prompt_eval_duration", "eval_duration" } do
        assert.is_true(math.type(last[k]) == "integer" or last[k] == math.floor(last[k]), k)
        assert.is_true(last[k] >= 0, k)
      end
      assert.equal(cjson.decode(b).model, last.model)
    end)

    it("answers hello_companion with a plan that only uses tools the prompt names", function()
      local b = body("ollama", "compact")
      local plan = cjson.decode(ollama_text(ndjson(curl(sim.url .. "/api/chat", { body = b }).body)))
      assert.is_string(plan.plan_id)
      assert_plan_uses(plan, named_tools(prompt_text(b)))
      local targets = 0
      for _, step in ipairs(plan.steps) do
        if step.target_id then
          assert.equal(3, step.target_id)
          targets = targets + 1
        end
      end
      assert.is_true(targets >= 1, "the plan engages enemy 3")
    end)

    it("Ollama /api/generate: response pieces, then done", function()
      local evs = ndjson(curl(sim.url .. "/api/generate", { body = body("ollama-generate", "simplified") }).body)
      assert.is_string(evs[1].response)
      assert.is_true(evs[#evs].done)
      assert.equal("stop", evs[#evs].done_reason)
      local plan = cjson.decode(ollama_text(evs))
      assert_plan_uses(plan, named_tools(prompt_text(body("ollama-generate", "simplified"))))
    end)

    it("OpenAI /v1/chat/completions: SSE chunks, a finish chunk with usage, then [DONE]", function()
      local r = curl(sim.url .. "/v1/chat/completions", { body = body("openai", "compact") })
      assert.equal("text/event-stream", r.headers["content-type"])
      local evs = sse(r.body)
      assert.equal("[DONE]", evs[#evs])
      local final = evs[#evs - 1]
      assert.equal("stop", final.choices[1].finish_reason)
      assert.is_true(final.usage.prompt_tokens > 100)
      assert.equal(#evs - 2, final.usage.completion_tokens)
      local text = {}
      for i = 1, #evs - 2 do
        assert.equal("chat.completion.chunk", evs[i].object)
        assert.equal(cjson.null, evs[i].choices[1].finish_reason)
        text[i] = evs[i].choices[1].delta.content
      end
      assert.equal("assistant", evs[1].choices[1].delta.role)
      assert.is_table(cjson.decode(table.concat(text)).steps)
    end)

    it("llama.cpp /completion: content pieces, a stop:true event with timings, no [DONE]", function()
      local r = curl(sim.url .. "/completion", { body = body("llamacpp", "compact") })
      local evs = sse(r.body)
      local last = evs[#evs]
      assert.is_true(last.stop)
      for _, k in ipairs { "prompt_n", "prompt_ms", "predicted_n", "predicted_ms" } do
        assert.is_number(last.timings[k], k)
      end
      assert.equal(#evs - 1, last.tokens_predicted)
      assert.is_true(last.tokens_evaluated > 100)
      local text = {}
      for i = 1, #evs - 1 do
        assert.is_false(evs[i].stop)
        assert.is_not.equal("[DONE]", evs[i])
        text[i] = evs[i].content
      end
      assert.is_table(cjson.decode(table.concat(text)).steps)
    end)

    it("answers stream:false with one JSON object", function()
      local o = cjson.decode(curl(sim.url .. "/api/chat", { body = with(body("ollama", "compact"), { stream = false }) }).body)
      assert.is_true(o.done)
      assert.is_table(cjson.decode(o.message.content).steps)
      local r = curl(sim.url .. "/v1/chat/completions", { body = with(body("openai", "compact"), { stream = false }) })
      assert.equal("application/json; charset=utf-8", r.headers["content-type"])
      local c = cjson.decode(r.body)
      assert.equal("chat.completion", c.object)
      assert.is_table(cjson.decode(c.choices[1].message.content).steps)
      local l = cjson.decode(curl(sim.url .. "/completion", { body = with(body("llamacpp", "compact"), { stream = false }) }).body)
      assert.is_true(l.stop)
      assert.is_table(cjson.decode(l.content).steps)
    end)

    it("cuts the answer at num_predict and says length", function()
      local b = cjson.decode(body("ollama", "compact"))
      b.options.num_predict = 5
      local evs = ndjson(curl(sim.url .. "/api/chat", { body = cjson.encode(b) }).body)
      assert.equal(6, #evs)
      assert.equal("length", evs[6].done_reason)
    end)

    it("answers malformed bodies with 400 and a message", function()
      local r = curl(sim.url .. "/api/chat", { body = '{"model":"x","messages":[' })
      assert.equal(400, r.status)
      assert.matches("invalid JSON", cjson.decode(r.body).error)
      r = curl(sim.url .. "/api/chat", { body = '{"messages":[]}' })
      assert.equal(400, r.status)
      assert.equal("model is required", cjson.decode(r.body).error)
      r = curl(sim.url .. "/v1/chat/completions", { body = "[1,2]" })
      assert.equal(400, r.status)
      assert.is_string(cjson.decode(r.body).error.message)
    end)
  end)

  describe("batch prompts", function()
    it("answer one plan per agent, in the order given, with agent_id as written", function()
      local a, c = cjson.decode(body("ollama", "batch")), cjson.decode(body("ollama", "batch", NO_ENEMIES))
      local snap_a = a.messages[2].content:match("\n(%b{})\n")
      local snap_c = c.messages[2].content:match("\n(%b{})\n")
      a.messages[2].content = "Snapshots, one per agent, in order:\n" .. snap_c .. "\n" .. snap_a ..
        '\nAnswer with the JSON array of 2 plans, agent_id in this order: "c3","c2"'
      local answer = cjson.decode(ollama_text(ndjson(curl(sim.url .. "/api/chat", { body = cjson.encode(a) }).body)))
      assert.equal(2, #answer)
      assert.equal("c3", answer[1].agent_id)
      assert.equal("c2", answer[2].agent_id)
      assert.equal("b1", answer[1].plan_id)
      local allowed = named_tools(a.messages[1].content)
      assert_plan_uses(answer[1], allowed)
      assert_plan_uses(answer[2], allowed)
      assert.equal("MoveTo", answer[1].steps[1].act)   -- no enemies: head for the objective
    end)
  end)

  describe("fault modes", function()
    local function fault(mode, path, api, extra)
      local o = extra or {}
      o.body = o.body or body(api or "ollama", "compact")
      o.headers = { "X-Sim-Fault: " .. mode }
      return curl(sim.url .. (path or "/api/chat"), o)
    end

    it("http500 and notfound answer with the API's error shape", function()
      local r = fault("http500")
      assert.equal(500, r.status)
      assert.is_string(cjson.decode(r.body).error)
      r = fault("notfound")
      assert.equal(404, r.status)
      assert.equal("model 'qwen2.5:7b-instruct' not found, try pulling it first", cjson.decode(r.body).error)
      r = fault("notfound", "/v1/chat/completions", "openai")
      assert.equal(404, r.status)
      assert.equal("model_not_found", cjson.decode(r.body).error.code)
      r = fault("http500", "/completion", "llamacpp")
      assert.equal(500, cjson.decode(r.body).error.code)
    end)

    it("error_mid sends an error event after a few tokens", function()
      local evs = ndjson(fault("error_mid").body)
      assert.equal(4, #evs)
      assert.is_string(evs[4].error)
      assert.is_nil(evs[3].error)
      local o = sse(fault("error_mid", "/v1/chat/completions", "openai").body)
      assert.is_string(o[#o].error.message)
      local l = sse(fault("error_mid:1", "/completion", "llamacpp").body)
      assert.equal(2, #l)
      assert.is_string(l[2].sse_error.message)
    end)

    it("reset:K closes the connection after K tokens", function()
      local r = fault("reset:2")
      assert.is_true(r.rc == 18 or r.rc == 56, "curl exit " .. r.rc)
      assert.equal(2, #ndjson(r.body))
    end)

    it("garbage puts lines that are not JSON into a stream that still ends well", function()
      local bad, last = 0, nil
      for _, line in ipairs(lines(fault("garbage").body)) do
        local ok, v = pcall(cjson.decode, line)
        if ok then last = v else bad = bad + 1 end
      end
      assert.is_true(bad >= 2)
      assert.is_true(last.done)
    end)

    it("slow, hang and endless are bounded by the client's timeout, and do not spin", function()
      local function cpu()   -- the sim's utime + stime, in clock ticks
        local fields = {}
        for f in read("/proc/" .. sim.pid .. "/stat"):gsub("^.-%) ", ""):gmatch("%S+") do fields[#fields + 1] = f end
        return tonumber(fields[12]) + tonumber(fields[13])
      end
      local before = cpu()
      local slow, hang, endless = table.unpack(curl_all {
        { sim.url .. "/api/chat", { body = body("ollama", "compact"), headers = { "X-Sim-Fault: slow" }, max_time = 1 } },
        { sim.url .. "/api/chat", { body = body("ollama", "compact"), headers = { "X-Sim-Fault: hang" }, max_time = 1 } },
        { sim.url .. "/api/chat", { body = body("ollama", "compact"), headers = { "X-Sim-Fault: endless" }, max_time = 1 } },
      })
      assert.is_true(cpu() - before < 30, "CPU ticks in that second: " .. (cpu() - before))
      assert.equal(28, slow.rc)
      assert.equal(200, slow.status)
      assert.is_true(#lines(slow.body) <= 1)
      assert.equal(28, hang.rc)
      assert.equal(0, hang.status)   -- not even headers
      assert.equal(28, endless.rc)
      local evs = lines(endless.body)
      assert.is_true(#evs > 40)
      assert.is_false(cjson.decode(evs[#evs - 1]).done)
      assert.equal(200, curl(sim.url .. "/api/version").status)   -- still serving
    end)

    it("--fault sets the mode for every request; an unknown mode is a 400", function()
      local s = start_sim("--profile instant --fault http500")
      assert.equal(500, curl(s.url .. "/api/chat", { body = body("ollama", "compact") }).status)
      local r = curl(sim.url .. "/api/chat", { body = body("ollama", "compact"), headers = { "X-Sim-Fault: nope" } })
      assert.equal(400, r.status)
      assert.matches("unknown fault mode", cjson.decode(r.body).error)
      assert.is_true(stop_sim(s))
    end)
  end)

  describe("latency model", function()
    local profiles = TMP .. "/profiles.lua"
    setup(function()
      write(profiles, "return { order = { decode_tps = 30, load_s = 0.1 } }\n")
    end)

    local function wait_for(pred)
      for _ = 1, 200 do
        if pred() then return true end
        sleep(0.05)
      end
      return false
    end

    -- A starts; once it holds a slot (its headers came) B starts; both are waited for.
    local function two_requests(s)
      local b = body("ollama", "compact")
      local cmd_a, ha = curl_cmd(s.url .. "/api/chat", { body = b })
      local cmd_b, hb = curl_cmd(s.url .. "/api/chat", { body = b })
      local done_a = tmpfile("done")
      sh("(" .. cmd_a .. " >/dev/null; touch " .. q(done_a) .. ") &")
      assert.is_true(wait_for(function() return (read(ha) or ""):find("\r\n\r\n") ~= nil end))
      sh(cmd_b .. " >/dev/null")
      assert.is_true(wait_for(function() return read(done_a) ~= nil end))
      return parse_headers(read(ha)), parse_headers(read(hb))
    end

    it("queues requests beyond --parallel in arrival order", function()
      local s = start_sim("--profiles " .. q(profiles) .. " --profile order --parallel 1")
      assert.matches("%(profile order%)", s.banner)
      local a, b = two_requests(s)
      assert.equal("1", a["x-sim-request"])
      assert.equal("2", b["x-sim-request"])
      assert.equal("0", a["x-sim-done-before"])
      assert.equal("1", b["x-sim-done-before"])   -- B got the slot only after A finished
      assert.is_true(tonumber(b["x-sim-queue-ms"]) > 0)
      assert.is_true(stop_sim(s))
    end)

    it("serves them side by side with --parallel 2", function()
      local s = start_sim("--profiles " .. q(profiles) .. " --profile order --parallel 2")
      local a, b = two_requests(s)
      assert.equal("0", a["x-sim-done-before"])
      assert.equal("0", b["x-sim-done-before"])
      assert.is_not.equal(a["x-sim-slot"], b["x-sim-slot"])
      assert.is_true(stop_sim(s))
    end)

    it("reuses the prompt prefix a slot already holds", function()
      local s = start_sim("--profile instant")
      local b = body("ollama", "compact")
      local first = ndjson(curl(s.url .. "/api/chat", { body = b }).body)
      local r = curl(s.url .. "/api/chat", { body = b })
      local second = ndjson(r.body)
      assert.is_true(second[#second].prompt_eval_count < first[#first].prompt_eval_count)
      assert.is_true(tonumber(r.headers["x-sim-cached-tokens"]) > 100)
      local other = ndjson(curl(s.url .. "/api/chat", { body = body("ollama", "compact", NO_ENEMIES) }).body)
      local n = other[#other].prompt_eval_count
      assert.is_true(n < first[#first].prompt_eval_count and n > second[#second].prompt_eval_count,
        "only the snapshot part is prefilled again")
      local l = sse(curl(s.url .. "/completion", { body = body("llamacpp", "compact") }).body)
      assert.is_true(l[#l].tokens_cached > 0 and l[#l].timings.prompt_n < l[#l].tokens_evaluated)
      assert.is_true(stop_sim(s))
    end)
  end)

  describe("misbehaviour", function()
    -- compact asks for structured output, which rules out everything but truncation
    local function free_body()
      local b = cjson.decode(body("ollama", "compact"))
      b.format = nil
      return b
    end

    local function answers(s, n, headers, b)
      local out = {}
      for i = 1, n do
        local r = curl(s.url .. "/api/chat", { body = cjson.encode(b or free_body()), headers = headers })
        out[i] = ollama_text(ndjson(r.body))
      end
      return out
    end

    it("happens at the given rates, the same way for the same --seed", function()
      local args = "--profile instant --misbehave fence=0.5,prose=0.3,trailing_comma=0.3 --seed "
      local s7 = start_sim(args .. "7")
      local a = answers(s7, 16)
      assert.is_true(stop_sim(s7))
      local again = start_sim(args .. "7")
      assert.same(a, answers(again, 16))
      assert.is_true(stop_sim(again))
      local s8 = start_sim(args .. "8")
      assert.is_not.same(a, answers(s8, 16))
      assert.is_true(stop_sim(s8))
      local fenced = 0
      for _, text in ipairs(a) do
        if text:find("```json", 1, true) then fenced = fenced + 1 end
      end
      assert.is_true(fenced >= 2 and fenced <= 14, "fenced " .. fenced .. " of 16")
    end)

    it("per request through X-Sim-Misbehave, and the request's seed fixes the answer", function()
      local all = answers(sim, 2, { "X-Sim-Misbehave: fence=1" })
      for _, text in ipairs(all) do assert.matches("^```json\n", text) end
      local cut = answers(sim, 1, { "X-Sim-Misbehave: truncate=1" })[1]
      assert.is_false(pcall(cjson.decode, cut))
      local b = free_body()
      b.options.seed = 42
      local req = { body = cjson.encode(b), headers = { "X-Sim-Misbehave: prose=0.5,unknown_tool=0.5" } }
      local one = ollama_text(ndjson(curl(sim.url .. "/api/chat", req).body))
      assert.equal(one, ollama_text(ndjson(curl(sim.url .. "/api/chat", req).body)))
      local r = curl(sim.url .. "/api/chat", { body = body("ollama", "compact"), headers = { "X-Sim-Misbehave: typo=1" } })
      assert.equal(400, r.status)
    end)

    it("keeps to the JSON when the request asks for structured output", function()
      local b = cjson.decode(body("ollama", "compact"))
      assert.is_table(b.format)
      local text = answers(sim, 1, { "X-Sim-Misbehave: fence=1,prose=1,trailing_comma=1" }, b)[1]
      assert.is_table(cjson.decode(text).steps)
    end)
  end)

  describe("replay", function()
    local function b64(s)
      return (capture("printf %s " .. q(s) .. " | base64 -w0"))
    end

    it("serves a record file's chunks with its status, content type and timing", function()
      local l1 = '{"model":"m","message":{"role":"assistant","content":"{\\"plan_id\\""},"done":false}\n'
      local l2 = '{"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop"}\n'
      local rec = TMP .. "/ok.ndjson"
      write(rec, table.concat({
        '{"record":"planhost","version":1,"api":"ollama","path":"/api/chat","status":200,"content_type":"application/x-ndjson"}',
        '{"t_ms":5,"b64":"' .. b64(l1:sub(1, 20)) .. '"}',
        '{"t_ms":120.5,"b64":"' .. b64(l1:sub(21)) .. '"}',
        '{"t_ms":250,"b64":"' .. b64(l2) .. '","extra":"ignored"}',
      }, "\n") .. "\n")
      local s = start_sim("--replay " .. q(rec))
      assert.matches("%(replay .*ok%.ndjson%)", s.banner)
      local t0 = os.time()
      local cmd, hdr, out = curl_cmd(s.url .. "/api/chat", { body = "{}" })
      local timing = capture(cmd:gsub("%-w '%%{http_code}'", "-w '%%{http_code} %%{time_total}'"))
      local status, total = timing:match("(%d+) ([%d%.]+)")
      assert.equal("200", status)
      assert.is_true(tonumber(total) >= 0.24, "the last chunk comes at 250 ms, took " .. total)
      assert.equal(l1 .. l2, read(out))
      assert.equal("application/x-ndjson", parse_headers(read(hdr))["content-type"])
      assert.equal(404, curl(s.url .. "/v1/chat/completions", { body = "{}" }).status)
      assert.is_true(os.time() - t0 < 10)
      assert.is_true(stop_sim(s))
    end)

    it("replays error statuses too", function()
      local rec = TMP .. "/err.ndjson"
      write(rec, '{"record":"planhost","version":1,"api":"openai","path":"/v1/chat/completions","status":503,' ..
        '"content_type":"application/json"}\n{"t_ms":1,"b64":"' .. b64('{"error":"busy"}') .. '"}\n')
      local s = start_sim("--replay " .. q(rec))
      local r = curl(s.url .. "/v1/chat/completions", { body = "{}" })
      assert.equal(503, r.status)
      assert.equal('{"error":"busy"}', r.body)
      assert.is_true(stop_sim(s))
    end)

    it("refuses a file that is not a record", function()
      local rec = TMP .. "/bad.ndjson"
      write(rec, '{"record":"other","version":1}\n')
      local err = tmpfile("err")
      assert.equal(1, sh(("%s sim --port 0 --replay %s >/dev/null 2>%s"):format(q(BIN), q(rec), q(err))))
      assert.matches("not a planhost record", read(err))
    end)
  end)

  describe("stopping", function()
    it("stops on SIGTERM even while a client hangs", function()
      local s = start_sim("--profile instant --fault hang")
      local cmd = curl_cmd(s.url .. "/api/chat", { body = body("ollama", "compact"), max_time = 8 })
      sh("(" .. cmd .. " >/dev/null &)")
      sleep(0.3)
      assert.is_true(stop_sim(s, 3), "still running 3 s after SIGTERM")
    end)

    it("leaves no sanitizer or leak report in any sim's log (sanitizer builds)", function()
      stop_all()
      for _, log in ipairs(logs) do
        local text = read(log) or ""
        assert.is_nil(text:find("Sanitizer", 1, true), log .. ":\n" .. text)
        assert.is_nil(text:find("runtime error", 1, true), log .. ":\n" .. text)
      end
    end)

    it("rejects unknown options and profiles", function()
      local err = tmpfile("err")
      assert.equal(2, sh(("%s sim --bogus 1 2>%s"):format(q(BIN), q(err))))
      assert.equal(1, sh(("%s sim --port 0 --profile nope >/dev/null 2>%s"):format(q(BIN), q(err))))
      assert.matches("unknown profile 'nope' %(known: cpu%-7b, gpu%-7b, instant%)", read(err))
    end)
  end)
end)
