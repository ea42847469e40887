-- planparse: the incremental plan parser, through host:parse (host/lua_planparse.c).
--
-- The fixtures (tests/fixtures/model_output/NAME.txt, expectations in expected.lua there) are
-- model answers as models really write them. Each one is parsed whole and in pieces of 1..31
-- bytes: the events must be the same at every size (their `fed` aside), and `fed` proves each
-- step came out in the very feed that brought its closing brace.
local planhost = require "planhost"
local cjson = require "cjson"
local deepcompare = require("luassert.util").deepcompare

local ROOT = os.getenv("PLANHOST_SOURCE") or "."
local DIR = ROOT .. "/tests/fixtures/model_output/"
local MAX_PIECE = 31

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- The events as the one-line summaries expected.lua holds.
local function summary(events)
  local out = {}
  for _, e in ipairs(events) do
    local at = e.agent and (" @" .. e.agent) or ""
    if e.kind == "step" then
      out[#out + 1] = ("step %d %s%s"):format(e.index, e.json, at)
    elseif e.kind == "plan" then
      out[#out + 1] = ("plan %s n=%d%s%s%s"):format(e.plan_id, e.nsteps,
        e.partial and " partial" or "", e.plan_id_generated and " generated" or "", at)
      for _, d in ipairs(e.dropped) do
        out[#out + 1] = ("  drop %d: %s"):format(d.index, d.reason)
      end
    elseif e.kind == "error" then
      out[#out + 1] = "error: " .. e.message
    else
      out[#out + 1] = e.kind
    end
  end
  return out
end

-- The events without `fed`, which depends on the piece size.
local function without_fed(events)
  local out = {}
  for i, e in ipairs(events) do
    local c = {}
    for k, v in pairs(e) do
      if k ~= "fed" then c[k] = v end
    end
    out[i] = c
  end
  return out
end

-- What must hold for any run: order, consistency of steps and plans, and timing.
local function check_run(text, events, piece, batch)
  local pending = {}   -- step JSON since the last plan
  for i, e in ipairs(events) do
    local where = ("event %d (%s), piece %d"):format(i, e.kind, piece)
    if e.kind == "step" then
      assert.equal("}", text:sub(e["end"], e["end"]), where .. ": end is not a '}'")
      assert.is_true(e.fed >= e["end"] and e.fed <= e["end"] + piece - 1,
        where .. (": emitted at %d, its brace ends at %d"):format(e.fed, e["end"]))
      assert.equal(e.act, cjson.decode(e.json).act, where)
      assert.truthy(e.json:match('^{"act":"'), where .. ": act comes first")
      pending[#pending + 1] = e.json
    elseif e.kind == "plan" then
      assert.equal("[" .. table.concat(pending, ",") .. "]", e.json, where)
      assert.equal(#pending, e.nsteps, where)
      assert.is_true(e.fed >= e["end"] and e.fed <= e["end"] + piece, where)
      pending = {}
    elseif e.kind == "done" then
      local plan = events[i - 1]
      assert.equal(#events, i, where .. ": done is the last event")
      assert.equal("plan", plan and plan.kind, where .. ": done comes right after a plan")
      local close = plan["end"]  -- batch: the array's ']' after the last element's '}'
      if batch and not plan.partial then close = text:find("%S", close + 1) or close end
      assert.is_true(e.fed <= close + piece, where .. ": done is late")
    elseif e.kind == "error" then
      assert.equal(#events, i, where .. ": error is the last event")
    end
  end
  assert.same({}, pending, "steps without a plan after them")
end

-- Parses at every piece size; checks each run and that all agree; returns the whole run.
local function parse_all_sizes(host, text, opts)
  local function run(piece)
    local o = { piece = piece }
    for k, v in pairs(opts or {}) do o[k] = v end
    local events = host:parse(text, o)
    check_run(text, events, piece > 0 and piece or #text, o.template == "batch")
    return events
  end
  local whole = run(0)
  local bare = without_fed(whole)
  for piece = 1, MAX_PIECE do
    local got = without_fed(run(piece))
    if not deepcompare(got, bare, true) then
      assert.same(bare, got, ("piece size %d differs from the whole feed"):format(piece))
    end
  end
  return whole
end

local function steps_json(n, make)
  local steps = {}
  for i = 1, n do steps[i] = make(i) end
  return table.concat(steps, ",")
end

describe("planparse", function()
  local host

  setup(function()
    host = assert(planhost.open(ROOT))
  end)

  teardown(function()
    host:close()
  end)

  describe("model output fixtures", function()
    local cases = dofile(DIR .. "expected.lua")

    it("cover at least 25 cases, each with its text", function()
      assert.is_true(#cases >= 25)
      for _, case in ipairs(cases) do
        assert.truthy(io.open(DIR .. case[1] .. ".txt", "rb"), case[1])
      end
    end)

    for _, case in ipairs(cases) do
      it(case[1] .. " gives its events at every piece size", function()
        local expect = { table.unpack(case, 2) }
        local events = parse_all_sizes(host, read(DIR .. case[1] .. ".txt"),
          { template = case.template })
        assert.same(expect, summary(events))
      end)
    end
  end)

  describe("truncation", function()
    it("gives the same events whole and byte by byte for every prefix of every fixture", function()
      for _, case in ipairs(dofile(DIR .. "expected.lua")) do
        local text = read(DIR .. case[1] .. ".txt")
        for n = 0, #text do
          local cut = text:sub(1, n)
          local whole = host:parse(cut, { template = case.template })
          local bytewise = host:parse(cut, { template = case.template, piece = 1 })
          if not deepcompare(without_fed(bytewise), without_fed(whole), true) then
            assert.same(without_fed(whole), without_fed(bytewise), case[1] .. " cut at " .. n)
          end
          check_run(cut, bytewise, 1, case.template == "batch")
        end
      end
    end)
  end)

  describe("streaming", function()
    it("hands out a step before the rest of the text exists", function()
      local head = '{"plan_id":"p1","steps":[{"act":"Reload"}'
      local events = host:parse(head .. ',{"act":"Scan","radius":2}]}', { piece = #head })
      assert.equal("step", events[1].kind)
      assert.equal(#head, events[1].fed)
      assert.equal(#head, events[1]["end"])
    end)

    it("stops at the plan's closing brace: later text is not read", function()
      local plan = '{"plan_id":"p1","steps":[{"act":"Reload"}]}'
      local events = host:parse(plan .. "\n" .. ("junk { [ "):rep(1000), { piece = #plan })
      assert.same({ "step", "plan", "done" },
        { events[1].kind, events[2].kind, events[3].kind })
      assert.equal(#plan, events[3].fed)
    end)

    it("closes a plan nested in a wrapper at the plan's brace, not the wrapper's", function()
      local inner = '{"plan_id":"p1","steps":[{"act":"Reload"}]}'
      local text = '{"answer":' .. inner .. ',"note":"' .. ("x"):rep(200) .. '"}'
      local events = host:parse(text, { piece = 1 })
      assert.equal("done", events[3].kind)
      assert.equal(#'{"answer":' + #inner, events[3].fed)
    end)

    it("ends a batch after the array, not after its first element", function()
      local text = '[{"agent_id":"a","steps":[{"act":"Reload"}]},{"agent_id":"b","steps":[]}] more'
      local ev = host:parse(text, { template = "batch", piece = 1 })
      assert.same({ "step", "plan", "plan", "done" },
        { ev[1].kind, ev[2].kind, ev[3].kind, ev[4].kind })
      assert.same({ "a", "b", 1, 0 }, { ev[2].agent, ev[3].agent, ev[2].nsteps, ev[3].nsteps })
      assert.equal(#text - #" more", ev[4].fed)
    end)
  end)

  describe("plan ids", function()
    it("generates the same id for the same plan and another for another agent", function()
      local text = '[{"agent_id":"a","steps":[{"act":"Reload"}]},' ..
        '{"agent_id":"b","steps":[{"act":"Reload"}]}]'
      local ev = host:parse(text, { template = "batch" })
      assert.equal("plan", ev[2].kind)
      assert.equal("plan", ev[4].kind)
      assert.not_equal(ev[2].plan_id, ev[4].plan_id)
      local again = host:parse('{"steps":[{"act":"Reload"}]}')
      local once_more = host:parse('```\n{ "steps": [ {"act": "reload"} ] }\n```')
      assert.matches("^p%-%x%x%x%x%x%x%x%x$", again[2].plan_id)
      assert.equal(again[2].plan_id, once_more[2].plan_id)
    end)

    it("treats an empty plan_id as missing and cuts a long one at a character", function()
      local ev = host:parse('{"plan_id":"","steps":[]}')
      assert.is_true(ev[1].plan_id_generated)
      local long = ("é"):rep(100)   -- 200 bytes
      ev = host:parse('{"plan_id":"' .. long .. '","steps":[]}')
      assert.equal(("é"):rep(64), ev[1].plan_id)
      assert.is_false(ev[1].plan_id_generated)
    end)
  end)

  describe("caps", function()
    it("keeps 64 steps and drops the rest with one reason", function()
      local text = '{"plan_id":"big","steps":[' ..
        steps_json(70, function(i) return ('{"act":"Wait","duration":%d}'):format(i) end) .. "]}"
      local events = parse_all_sizes(host, text)
      local plan = events[#events - 1]
      assert.equal(66, #events)
      assert.equal(64, plan.nsteps)
      assert.same({ { index = 64,
        reason = "steps 64 to 69 dropped: a plan has at most 64 steps" } }, plan.dropped)
    end)

    it("refuses model text over 1 MiB", function()
      local text = ("The enemy is near. "):rep(60000)
      assert.is_true(#text > 1024 * 1024)
      for _, piece in ipairs({ 0, 4096 }) do
        local events = host:parse(text, { piece = piece })
        assert.equal(1, #events)
        assert.equal("error", events[1].kind)
        assert.matches("longer than 1 MiB", events[1].message)
      end
    end)

    it("still takes a plan that closes inside the first 1 MiB", function()
      local text = ("x"):rep(1024 * 1024 - 100) ..
        '{"plan_id":"p","steps":[{"act":"Reload"}]}' .. ("y"):rep(5000)
      local events = host:parse(text, { piece = 65536 })
      assert.same({ "step", "plan", "done" }, { events[1].kind, events[2].kind, events[3].kind })
    end)

    it("finds the plan after brackets nested past the depth cap", function()
      local text = ("["):rep(40) .. " oops " .. '{"plan_id":"deep","steps":[{"act":"Block"}]}'
      local events = parse_all_sizes(host, text)
      assert.equal("deep", events[2].plan_id)
    end)

    it("survives a long run of candidate braces in prose", function()
      local text = ("{a [b "):rep(20000) .. '{"plan_id":"p","steps":[{"act":"Parry"}]}'
      local events = host:parse(text, { piece = 7 })
      assert.equal("p", events[2].plan_id)
    end)

    it("keeps at most 32 keys of a step and 64 of its positions", function()
      local keys = {}
      for i = 1, 40 do keys[i] = ('"k%d":%d'):format(i, i) end
      local text = '{"plan_id":"p","steps":[{' .. table.concat(keys, ",") ..
        ',"act":"Reload"},{"act":"Patrol","waypoints":[' ..
        steps_json(70, function(i) return ('{"x":%d,"y":0}'):format(i) end) .. "]}]}"
      local s = summary(host:parse(text, { template = "full" }))
      assert.same({ "plan p n=0",
        "  drop 0: the step has no 'act'",
        "  drop 1: Patrol: parameter 'waypoints' must be a list of positions, " ..
          "got a value nested too deep",
        "done" }, s)
    end)
  end)

  describe("values", function()
    local function one(step, template)
      local s = summary(host:parse('{"plan_id":"v","steps":[' .. step .. "]}",
        { template = template or "full" }))
      return s[1]
    end

    it("writes integers exactly and refuses what is not one", function()
      assert.equal('step 0 {"act":"MoveTo","x":-3,"y":100}',
        one('{"act":"MoveTo","x":-3,"y":"1e2"}'))
      assert.equal('step 0 {"act":"MoveTo","x":0,"y":2147483647}',
        one('{"act":"MoveTo","x":"-0.000","y":2147483647}'))
      assert.equal('step 0 {"act":"SwitchWeapon","slot":4294967295}',
        one('{"act":"SwitchWeapon","slot":4294967295}'))
      assert.equal("  drop 0: MoveTo: parameter 'y' must be a 32-bit integer, got 2147483648",
        summary(host:parse('{"steps":[{"act":"MoveTo","x":1,"y":2147483648}]}'))[2])
      assert.equal([[  drop 0: MoveTo: parameter 'x' must be an integer, got "0x10"]],
        summary(host:parse('{"steps":[{"act":"MoveTo","x":"0x10","y":1}]}'))[2])
    end)

    it("writes floats canonically", function()
      assert.equal('step 0 {"act":"Scan","radius":0.5}', one('{"act":"Scan","radius":".50"}'))
      assert.equal('step 0 {"act":"Scan","radius":3}', one('{"act":"Scan","radius":3.000}'))
      assert.equal('step 0 {"act":"Scan","radius":1.5e-3}',
        one('{"act":"Scan","radius":"001.5E-3"}'))
      assert.equal('step 0 {"act":"Wait","duration":-2}', one('{"act":"Wait","duration":"-2."}'))
    end)

    it("escapes strings it writes back", function()
      assert.equal([[step 0 {"act":"UseItem","item_name":"a\"b\\c\n\u0001"}]],
        one([[{"act":"UseItem","item_name":"a\"b\\c\n\u0001"}]]))
    end)
  end)

  it("drops an entity parameter that is not an id, whatever its JSON type, at every piece size", function()
    -- regression: the entity writer trimmed the text of values that have none (found by
    -- tests/fuzz/fuzz_planparse.c on a fresh machine)
    local host = assert(planhost.open(ROOT))
    for _, v in ipairs({ '{"a":1}', '[1,2]', 'true', '3.5', '"  "', '{"deep":[{"x":"   "}]}', '[[[[]]]]' }) do
      local text = '{"plan_id":"p","steps":[{"act":"Attack","target_id":' .. v .. '},{"act":"Scan","radius":5}]}'
      for piece = 1, 9 do
        local plan
        for _, ev in ipairs(assert(host:parse(text, { piece = piece }))) do
          if ev.kind == "plan" then plan = ev end
        end
        assert.is_table(plan, v)
        assert.equal(1, #plan.dropped, v)
        assert.matches("target_id", plan.dropped[1].reason)
      end
    end
    host:close()
  end)
end)
