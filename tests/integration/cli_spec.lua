-- The planhost command as a designer uses it: prompt, check, check --watch; bad input gets
-- a clear message and exit status 2, script errors exit 1.
local H = require "helpers"

describe("planhost prompt", function()
  local hello = H.root .. "/examples/snapshots/hello_companion.json"

  it("prints the system and user parts, sizes on stderr", function()
    local status, out, err = H.run("prompt --template compact " .. H.q(hello))
    assert.equal(0, status, err)
    assert.truthy(out:find("=== system ===", 1, true))
    assert.truthy(out:find("=== user ===", 1, true))
    assert.truthy(out:find('"Rival"', 1, true))
    assert.matches("template compact: %d+ chars, ~%d+ tokens", err)
  end)

  it("prints the request body with --body, system part first", function()
    for _, api in ipairs { "ollama", "ollama-generate", "openai", "llamacpp" } do
      local status, out, err = H.run("prompt --body --api " .. api .. " --template simplified " .. H.q(hello))
      assert.equal(0, status, err)
      local body = H.cjson.decode(out)
      assert.is_true(body.stream, api)
      if api == "ollama" or api == "openai" then
        assert.equal("system", body.messages[1].role)
        assert.equal("user", body.messages[2].role)
      elseif api == "ollama-generate" then
        assert.is_string(body.system)
        assert.is_table(body.options)
      else
        assert.is_true(body.prompt:find("Rival", 1, true) > 100)
      end
    end
  end)

  it("gives the same body twice", function()
    local _, a = H.run("prompt --body --template full " .. H.q(hello))
    local _, b = H.run("prompt --body --template full " .. H.q(hello))
    assert.equal(a, b)
  end)

  it("exits 2 on malformed JSON, with the position", function()
    local f = os.tmpname()
    H.write(f, '{"agent":"c2","me":{"hp":80,,}}')
    local status, _, err = H.run("prompt " .. f)
    os.remove(f)
    assert.equal(2, status)
    assert.matches("invalid JSON", err)
    assert.matches(f, err, 1, true)
  end)

  it("exits 2 on an unknown template, listing the known ones", function()
    local status, _, err = H.run("prompt --template fancy " .. H.q(hello))
    assert.equal(2, status)
    assert.matches("known: batch, compact, full, simplified", err, 1, true)
  end)

  it("exits 2 on an unreadable file", function()
    local status, _, err = H.run("prompt /nonexistent/snapshot.json")
    assert.equal(2, status)
    assert.matches("/nonexistent/snapshot.json: cannot open", err, 1, true)
  end)

  it("exits 2 on an unknown option or a missing snapshot", function()
    assert.equal(2, (H.run("prompt --frobnicate " .. H.q(hello))))
    assert.equal(2, (H.run("prompt")))
  end)

  it("uses defaults for a snapshot missing fields", function()
    local f = os.tmpname()
    H.write(f, '{"agent":"c9"}')
    local status, out, err = H.run("prompt --template compact " .. f)
    os.remove(f)
    assert.equal(0, status, err)
    assert.truthy(out:find('"agent":"c9"', 1, true))
  end)
end)

describe("planhost check", function()
  it("prints a row per template and snapshot and exits 0", function()
    local status, out, err = H.run("check")
    assert.equal(0, status, err)
    assert.matches("compact%s+hello_companion%s+%d+%s+%d+%s+8/8%s+ok", out)
    assert.matches("full%s+hello_companion%s+%d+%s+%d+%s+37/37%s+ok", out)
    assert.matches("(%d+) renders, 0 failed", out)
  end)

  it("exits 1 and names file:line when a script is broken", function()
    local dir = H.scratch_tree()
    H.write(dir .. "/prompts/compact.lua", "return {\n  name = 'compact',\n  oops(\n}")
    local status, _, err = H.run("check --root " .. H.q(dir))
    H.cleanup()
    assert.equal(1, status)
    assert.matches("prompts/compact.lua:%d+:", err)
  end)

  it("--watch re-prints after a save and reports a broken save", function()
    local dir = H.scratch_tree()
    local out = os.tmpname()
    local pidfile = os.tmpname()
    H.sh(("%s check --watch --root %s >%s 2>&1 & echo $! >%s"):format(H.q(H.bin), H.q(dir), out, pidfile))
    local pid = H.read(pidfile):match("%d+")
    local function wait_for(text)
      local deadline = H.planhost.clock() + 10000
      while H.planhost.clock() < deadline do
        if H.read(out):find(text, 1, true) then return true end
        H.sh("sleep 0.05")
      end
      return false
    end
    assert.is_true(wait_for("watching"), H.read(out))
    H.edit(dir .. "/prompts/compact.lua", "Reply JSON only", "Reply with JSON only")
    assert.is_true(wait_for("-- reloaded --"), H.read(out))
    H.write(dir .. "/prompts/compact.lua", "return {\n  broken(\n}")
    assert.is_true(wait_for("reload failed; generation 2 keeps serving"), H.read(out))
    assert.truthy(H.read(out):find("prompts/compact.lua:3:", 1, true))
    H.sh("kill " .. pid)
    os.remove(out)
    os.remove(pidfile)
    H.cleanup()
  end)
end)

describe("planhost parse", function()
  local function parse(text, args)
    local f = os.tmpname()
    H.write(f, text)
    local status, out, err = H.run("parse " .. (args or "") .. " " .. f)
    os.remove(f)
    local events = {}
    for line in out:gmatch("[^\n]+") do events[#events + 1] = H.cjson.decode(line) end
    return status, events, err
  end

  it("shows kept and dropped steps of saved model output, at any chunk size", function()
    local text = 'Sure!\n```json\n{"plan_id":"p7","steps":[{"act":"moveto","x":"10","y":5,"speed":"Run"},'
      .. '{"act":"Extract"},{"act":"Attack","target_id":3},]}\n```\n'
    local _, whole = parse(text, "--template simplified")
    for _, chunk in ipairs { 1, 3, 7, 64 } do
      local status, events = parse(text, "--chunk " .. chunk .. " --template simplified")
      assert.equal(0, status)
      assert.equal(#whole, #events)
      local plan = events[#events]
      assert.equal("plan", plan.event)
      assert.equal("p7", plan.plan.plan_id)
      assert.same({ act = "MoveTo", x = 10, y = 5, speed = "run" }, plan.plan.steps[1])
      assert.equal("unknown tool 'Extract'", plan.dropped[1].reason)
    end
  end)

  it("applies a request's checks with --snapshot", function()
    local snap = os.tmpname()
    H.write(snap, H.snapshot("hello_companion"))
    local _, events = parse('{"plan_id":"q","steps":[{"act":"Attack","target_id":7},{"act":"Scan","radius":5}]}',
      "--snapshot " .. snap)
    os.remove(snap)
    assert.equal("drop", events[1].event)
    assert.matches("not an enemy", events[1].reason)
    assert.equal("step", events[2].event)
    assert.equal(1, #events[#events].plan.steps)
  end)

  it("exits 1 and says why when there is no plan", function()
    local status, events = parse("I cannot help with that.")
    assert.equal(1, status)
    assert.equal("error", events[#events].event)
    assert.is_string(events[#events].error)
  end)
end)
