-- The sandbox: every escape hatch a mod script might try is refused or stopped with a clear
-- error, and the host still renders afterwards.
local H = require "helpers"

describe("sandbox", function()
  local host
  local snap = H.snapshot("hello_companion")

  setup(function() host = H.open() end)
  teardown(function() host:close() end)

  -- Runs `src` in the sandbox and expects failure; returns message and code.
  local function refused(src)
    local out, msg, code = host:exec(src, "mod.lua")
    assert.is_nil(out, "expected a refusal, got: " .. tostring(out))
    assert.is_string(msg)
    return msg, code
  end

  after_each(function()
    -- whatever the script did, the host renders as before
    local p = assert(host:render("compact", snap))
    assert.truthy(p.user:find("Rival", 1, true))
  end)

  it("runs ordinary code", function()
    assert.equal("6", host:exec("local t = {1, 2, 3} local s = 0 for _, v in ipairs(t) do s = s + v end return s"))
    assert.equal("HI", host:exec("return ('hi'):upper()"))
    assert.equal("{\"a\":1}", host:exec("return cjson.encode({a = 1})"))
  end)

  it("has no os.execute", function()
    local msg = refused("return os.execute('touch /tmp/planhost-pwned')")
    assert.matches("mod.lua:1:", msg, 1, true)
    assert.matches("execute", msg)
  end)

  it("keeps os.clock and os.time", function()
    assert.equal("number number", host:exec("return type(os.clock()) .. ' ' .. type(os.time())"))
  end)

  it("has no io", function()
    local msg = refused("return io.open('/etc/passwd')")
    assert.matches("global 'io'", msg, 1, true)
  end)

  it("refuses require of a C module", function()
    local msg = refused("return require('cjson')")
    assert.matches("C modules are not allowed", msg, 1, true)
    msg = refused("return require('../../etc/passwd')")
    assert.matches("not a module name", msg, 1, true)
  end)

  it("allows require of the tree's Lua modules, read-only", function()
    assert.equal("37", host:exec("return #require('tools').tools"))
    local msg = refused("require('tools').tools[1].name = 'Hack'")
    assert.matches("read-only", msg, 1, true)
  end)

  it("refuses to load bytecode", function()
    assert.equal("nil", host:exec("return tostring(string.dump)"))
    local out = host:exec([[
      local f, e = load("\27LuaT\0\25\147\r\n\26\n", "x", "b")
      return tostring(f) .. ' ' .. tostring(e) ]])
    assert.matches("^nil .*binary chunk", out)
    out = host:exec([[local f, e = load("\27LuaT\0\25\147\r\n\26\n") return tostring(f) .. ' ' .. e]])
    assert.matches("^nil .*binary chunk", out)
    refused("return load(function() return nil end)")
  end)

  it("loads text chunks into a sandboxed environment", function()
    assert.equal("nil", host:exec("return tostring(load('return io')())"))
  end)

  it("stops string.rep that would exhaust memory", function()
    local msg, code = refused("return string.rep('x', 1 << 30)")
    assert.equal("memory", code)
    assert.matches("memory cap", msg)
  end)

  it("stops a table that grows without end", function()
    local _, code = refused("local t = {} for i = 1, 1e12 do t[i] = ('x'):rep(64) .. i end")
    assert.is_true(code == "memory" or code == "budget")
  end)

  it("stops an endless loop", function()
    local msg, code = refused("while true do end")
    assert.equal("budget", code)
    assert.matches("mod.lua:1: instruction budget exceeded", msg, 1, true)
  end)

  it("stops an endless loop wrapped in pcall", function()
    local _, code = refused([[
      local ok = pcall(function() while true do end end)
      return "escaped"]])
    assert.equal("budget", code)
  end)

  it("stops a loop of pcalls that each catch the stop", function()
    local _, code = refused("while true do pcall(function() while true do end end) end")
    assert.equal("budget", code)
    _, code = refused("while true do xpcall(function() while true do end end, function() return 1 end) end")
    assert.equal("budget", code)
  end)

  it("stops an endless loop inside an error handler", function()
    local _, code = refused("xpcall(error, function() while true do end end)")
    assert.equal("budget", code)
  end)

  it("keeps the budget message when a handler returns something else", function()
    local msg = refused("while true do xpcall(function() while true do end end, function() return 1 end) end")
    assert.matches("instruction budget exceeded", msg, 1, true)
  end)

  it("still runs xpcall handlers for ordinary errors", function()
    assert.equal("handled", host:exec("local _, m = xpcall(function() error('x') end, function() return 'handled' end) return m"))
  end)

  it("refuses __gc finalizers, which Lua runs with the budget hook off", function()
    assert.matches("__gc", refused("setmetatable({}, {__gc = function() while true do end end})"))
    assert.equal("table", host:exec("return type(setmetatable({}, {__index = {}}))"))
  end)

  it("has no debug library", function()
    local msg = refused("debug.sethook()")
    assert.matches("global 'debug'", msg, 1, true)
  end)

  it("has no package, coroutine, dofile, loadfile or collectgarbage", function()
    assert.equal("nil nil nil nil nil",
      host:exec("return tostring(package) .. ' ' .. tostring(coroutine) .. ' ' .. tostring(dofile) .. ' ' .. tostring(loadfile) .. ' ' .. tostring(collectgarbage)"))
    local msg = refused("return package.loadlib('libc.so.6', 'system')")
    assert.matches("global 'package'", msg, 1, true)
  end)

  it("refuses writes to shared library tables", function()
    assert.matches("read%-only", refused("string.upper = nil"))
    assert.matches("read%-only", refused("table.insert = print"))
    assert.matches("read%-only", refused("math.pi = 3"))
    assert.matches("read%-only", refused("rawset(string, 'x', 1)"))
    assert.matches("protected metatable", refused("setmetatable(string, {})"))
    refused("getmetatable('').__index = {}")
    refused("getmetatable(_ENV).__index = {}")
    assert.equal("HELLO", host:exec("return ('hello'):upper()"))
  end)

  it("keeps each chunk's globals to itself", function()
    assert.equal("nil", host:exec("leak = 42 return nil"))
    assert.equal("nil", host:exec("return tostring(leak)"))
  end)

  it("reports runtime errors at file:line with a traceback-free message", function()
    local msg, code = refused("local x = nil\nreturn x.y")
    assert.equal("runtime", code)
    assert.matches("^mod.lua:2:", msg)
  end)

  it("reports syntax errors at file:line", function()
    local msg, code = refused("return (")
    assert.equal("syntax", code)
    assert.matches("^mod.lua:1:", msg)
  end)

  it("refuses a pattern that would backtrack for hours, in both call forms, at once", function()
    local t0 = H.planhost.clock()
    local msg = refused([[return ("a"):rep(30):find(("a*"):rep(30) .. "b")]])
    assert.matches("mod.lua:1: pattern 'a%*a%*", msg)
    assert.matches("30 repetitions over a 30%-byte string", msg)
    msg = refused([[return string.match(("x"):rep(5000), "(.-)(.-)(.-)y")]])
    assert.matches("3 repetitions over a 5000%-byte string", msg)
    refused([[for _ in string.gmatch(("ab"):rep(2000), "a*b*a*b*c") do end]])
    refused([[return (("z"):rep(20000)):gsub("z*z*q", "")]])
    assert.is_true(H.planhost.clock() - t0 < 1000)
  end)

  it("still runs the patterns scripts really use", function()
    assert.equal("throw:smoke", host:exec([[return (("ThrowSmoke"):gsub("(%l)(%u)", "%1:%2"):lower())]]))
    assert.equal("trim", host:exec([[return (("   trim   "):match("^%s*(.-)%s*$"))]]))
    assert.equal("3", host:exec([[local n = 0 for _ in ("a1 b2 c3"):gmatch("%a%d") do n = n + 1 end return n]]))
    assert.equal("1", host:exec([[return (("x"):rep(100000) .. "a*a*"):find("a*a*", 1, true) and 1 or 0]]))
    assert.equal("100000", host:exec([[return #(("y"):rep(100000):match("y+"))]]))
    assert.equal("6", host:exec([[return (("[a]%b]x"):find("%]x"))]]))
  end)
end)
