-- Hot reload: a good edit is picked up; a broken edit is reported at file:line while the old
-- generation keeps rendering; editors that save by rename are noticed; a failing self-check
-- keeps the old generation; requests hold the generation they started on.
local H = require "helpers"

describe("reload", function()
  local dir, host
  local hello = H.snapshot("hello_companion")

  before_each(function()
    dir = H.scratch_tree()
    host = H.open(dir, { watch = true, interval_ms = 50 })
  end)
  after_each(function()
    host:close()
    H.cleanup()
  end)

  local function reload_event(ev) return ev.event == "reload" end

  it("picks up a good edit", function()
    local before = assert(host:render("compact", hello))
    assert.is_nil(before.system:find("MARKER-1", 1, true))
    H.edit(dir .. "/prompts/compact.lua", "Reply JSON only", "MARKER-1 Reply JSON only")
    local ev = H.wait_event(host, reload_event, 5)
    assert.is_table(ev, "no reload event")
    assert.is_true(ev.ok)
    assert.equal(2, ev.generation)
    assert.equal(2, host:generation())
    local after = assert(host:render("compact", hello))
    assert.truthy(after.system:find("MARKER-1", 1, true))
  end)

  it("notices a save within 500 ms at the default interval", function()
    host:close()
    host = H.open(dir, { watch = true })
    host:poll(0)
    local t0 = H.planhost.clock()
    H.edit(dir .. "/prompts/compact.lua", "Reply JSON only", "Quick Reply JSON only")
    local ev = H.wait_event(host, reload_event, 5)
    local elapsed = H.planhost.clock() - t0
    assert.is_true(ev and ev.ok)
    -- two intervals (change seen, then seen to hold still) plus the load; the margin is for
    -- sanitizer builds on a busy machine
    assert.is_true(elapsed < 500 * 3, ("reload took %.0f ms"):format(elapsed))
  end)

  it("reports a broken edit at its line and keeps the old generation serving", function()
    local path = dir .. "/prompts/compact.lua"
    local text = H.read(path)
    local lines = select(2, text:gsub("\n", "\n"))
    H.write(path, text .. "\nthis is not lua\n")
    local ev = H.wait_event(host, reload_event, 5)
    assert.is_table(ev, "no reload event")
    assert.is_false(ev.ok)
    assert.equal("syntax", ev.code)
    assert.matches("prompts/compact.lua:" .. (lines + 2) .. ":", ev.error, 1, true)
    assert.equal(1, ev.serving)
    assert.equal(1, host:generation())
    assert.truthy(assert(host:render("compact", hello)).user:find("Rival", 1, true))
    -- fixing the file brings a new generation
    H.write(path, text)
    ev = H.wait_event(host, reload_event, 5)
    assert.is_true(ev and ev.ok)
  end)

  it("reports a runtime error in a template at its line", function()
    H.edit(dir .. "/prompts/compact.lua", "return {", "local function boom() error('designer typo') end\nboom()\nreturn {")
    local ev = H.wait_event(host, reload_event, 5)
    assert.is_false(ev.ok)
    assert.equal("runtime", ev.code)
    assert.matches("prompts/compact.lua:%d+: designer typo", ev.error)
  end)

  it("rejects a template that loops forever during the self-check", function()
    H.edit(dir .. "/prompts/compact.lua", "local function user(s, ctx)", "local function user(s, ctx)\n  while true do end")
    local ev = H.wait_event(host, reload_event, 5)
    assert.is_false(ev.ok)
    assert.equal("budget", ev.code)
    assert.matches("prompts/compact.lua:%d+: instruction budget exceeded", ev.error)
    assert.equal(1, host:generation())
  end)

  it("rejects a template that stops naming one of its tools", function()
    local path = dir .. "/prompts/compact.lua"
    H.write(path, [[
return {
  name = "compact",
  tools = { "MoveTo", "Attack" },
  system = 'Answer {"plan_id":"p","steps":[{"act":"MoveTo"}]}',
  user = function(s) return "go" end,
}]])
    local ev = H.wait_event(host, reload_event, 5)
    assert.is_false(ev.ok)
    assert.equal("selfcheck", ev.code)
    assert.matches("does not name tool 'Attack'", ev.error, 1, true)
  end)

  it("notices a save by rename", function()
    local path = dir .. "/prompts/compact.lua"
    local text = H.read(path):gsub("return {", "local RENAMED = 1\nreturn {", 1)
    H.write(dir .. "/prompts/.compact.lua.swp", text)   -- editors write a hidden temp file ...
    assert.equal(0, H.sh(("mv %s %s"):format(H.q(dir .. "/prompts/.compact.lua.swp"), H.q(path))))
    local ev = H.wait_event(host, reload_event, 5)      -- ... then rename it over the original
    assert.is_table(ev, "rename not noticed")
    assert.is_true(ev.ok)
  end)

  it("adds a new template file", function()
    H.write(dir .. "/prompts/tiny.lua", [[
local tools = require "tools"
return {
  tools = { "Scan", "Wait" },
  system = 'Tools: Scan Wait. Answer {"plan_id":"p","steps":[{"act":"Scan","radius":5}]}',
  user = function(s) return "agent " .. tostring(s.agent) end,
}]])
    local ev = H.wait_event(host, reload_event, 5)
    assert.is_true(ev and ev.ok, ev and ev.error)
    assert.equal("agent c2", assert(host:render("tiny", hello)).user)
  end)

  it("rejects unknown template keys, naming the key", function()
    H.edit(dir .. "/prompts/compact.lua", "return {", "return {\n  sytem = 1,")
    local ev = H.wait_event(host, reload_event, 5)
    assert.is_false(ev.ok)
    assert.matches("unknown key 'sytem'", ev.error, 1, true)
  end)

  it("applies the sandbox budgets of policies/sandbox.lua", function()
    H.write(dir .. "/policies/sandbox.lua", "return { instructions = 300000, memory_mb = 16 }")
    local ev = H.wait_event(host, reload_event, 5)
    assert.is_true(ev and ev.ok, ev and ev.error)
    local _, cap = host:memory()
    assert.equal(16 * 1048576, cap)
    local out, msg, code = host:exec("for i = 1, 1e7 do end return 1")
    assert.is_nil(out)
    assert.equal("budget", code)
    H.write(dir .. "/policies/sandbox.lua", "return { instructions = 300000, memroy_mb = 16 }")
    ev = H.wait_event(host, reload_event, 5)
    assert.is_false(ev.ok)
    assert.matches("unknown key 'memroy_mb'", ev.error, 1, true)
  end)

  it("reloads on demand and reports the content hash", function()
    local g1, hash1 = host:generation()
    assert.matches("^%x+$", hash1)
    H.edit(dir .. "/prompts/compact.lua", "return {", "-- a comment changes the hash\nreturn {")
    local ok, events = host:reload()
    assert.is_true(ok)
    assert.equal("reload", events[1].event)
    local g2, hash2 = host:generation()
    assert.equal(g1 + 1, g2)
    assert.not_equal(hash1, hash2)
  end)
end)
