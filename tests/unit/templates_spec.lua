-- Templates: size targets on hello_companion, every tool of the subset named, the output
-- shape shown, a static system part, defaults for missing fields, non-ASCII text.
local H = require "helpers"

describe("templates", function()
  local host, tools, subsets
  local hello = H.snapshot("hello_companion")

  setup(function()
    host = H.open()
    tools, subsets = host:tools()
  end)
  teardown(function() host:close() end)

  local function names_word(text, word)
    for s, e in text:gmatch("()" .. word .. "()") do
      local before, after = text:sub(s - 1, s - 1), text:sub(e, e)
      if not before:match("[%w_]") and not after:match("[%w_]") then return true end
    end
    return false
  end

  it("are the four of DESIGN.md", function()
    local names = {}
    for _, t in ipairs(host:templates()) do names[#names + 1] = t.name end
    assert.same({ "batch", "compact", "full", "simplified" }, names)
  end)

  it("meet the size targets on hello_companion", function()
    local compact = assert(host:render("compact", hello))
    local simplified = assert(host:render("simplified", hello))
    local full = assert(host:render("full", hello))
    assert.is_true(compact.chars <= 1000, "compact is " .. compact.chars)
    assert.is_true(simplified.chars <= 2000, "simplified is " .. simplified.chars)
    assert.is_true(full.chars >= 6000 and full.chars <= 13000, "full is " .. full.chars)
    assert.is_true(compact.chars < simplified.chars and simplified.chars < full.chars)
    assert.equal(math.ceil(compact.chars / 4), compact.tokens)
  end)

  it("name every tool of their subset and no other tool", function()
    local expect = { compact = subsets.compact, simplified = subsets.simplified, batch = subsets.simplified }
    local all = {}
    for _, t in ipairs(tools) do all[#all + 1] = t.name end
    expect.full = all
    for _, t in ipairs(host:templates()) do
      assert.same(expect[t.name], t.tools, t.name .. " subset")
      local p = assert(host:render(t.name, hello))
      local text = p.system .. p.user
      local inside = {}
      for _, n in ipairs(t.tools) do
        inside[n] = true
        assert.is_true(names_word(text, n), t.name .. " does not name " .. n)
      end
      for _, n in ipairs(all) do
        if not inside[n] then assert.is_false(names_word(text, n), t.name .. " names " .. n .. " outside its subset") end
      end
    end
  end)

  it("show the exact output shape", function()
    for _, name in ipairs { "compact", "simplified", "full", "batch" } do
      local p = assert(host:render(name, hello))
      local text = p.system .. p.user
      assert.truthy(text:find('{"plan_id":', 1, true), name)
      assert.truthy(text:find('"steps":[{"act":', 1, true), name)
    end
    local b = assert(host:render("batch", hello))
    assert.truthy((b.system .. b.user):find('"agent_id"', 1, true))
  end)

  it("keep the system part static across snapshots", function()
    for _, name in ipairs { "compact", "simplified", "full" } do
      local a = assert(host:render(name, hello))
      local b = assert(host:render(name, H.snapshot("twelve_enemies")))
      assert.equal(a.system, b.system, name)
      assert.is_false(a.system:find("Rival", 1, true) ~= nil, name .. " system part holds snapshot data")
      assert.not_equal(a.user, b.user)
    end
  end)

  it("put the snapshot in as compact JSON without t and last_seen, objective kept", function()
    local p = assert(host:render("compact", hello))
    assert.is_nil(p.user:find('"last_seen"', 1, true))
    assert.is_nil(p.user:find('"t":', 1, true))
    assert.truthy(p.user:find('"objective":"extract"', 1, true))
    assert.is_nil(p.user:find(": ", 1, true))
  end)

  it("render the same text twice", function()
    local a = assert(host:render("full", hello))
    local b = assert(host:render("full", hello))
    assert.equal(a.system .. a.user, b.system .. b.user)
  end)

  it("fill defaults for a snapshot missing fields", function()
    for _, name in ipairs { "compact", "simplified", "full", "batch" } do
      local p = assert(host:render(name, '{}'))
      assert.truthy(p.user:find('"enemies":[]', 1, true), name)
      p = assert(host:render(name, '{"me":{"hp":5}}'))
      assert.truthy(p.user:find('"hp":5', 1, true), name)
    end
  end)

  it("keep non-ASCII names intact", function()
    local snap = H.snapshot("non_ascii_names")
    local p = assert(host:render("compact", snap))
    local decoded = H.cjson.decode(snap)
    for _, e in ipairs(decoded.enemies) do
      for piece in (e.name or ""):gmatch('[^"\\]+') do   -- quotes come out escaped
        assert.truthy(p.user:find(piece, 1, true), e.name)
      end
    end
    assert.is_true(p.chars < #(p.system .. p.user), "chars count code points, not bytes")
  end)

  it("reject malformed snapshot JSON with a position", function()
    local p, msg, code = host:render("compact", '{"agent": "c2", "me": {"hp": 80,}')
    assert.is_nil(p)
    assert.equal("json", code)
    assert.matches("invalid JSON", msg)
    assert.matches("%d", msg)
  end)

  it("reject an unknown template and list the known ones", function()
    local p, msg, code = host:render("fancy", hello)
    assert.is_nil(p)
    assert.equal("notfound", code)
    assert.matches("known: batch, compact, full, simplified", msg, 1, true)
  end)

  it("pass the self-check on every example snapshot", function()
    local rows, failed = host:check()
    assert.equal(0, failed)
    assert.is_true(#rows >= 4 * 9)
    for _, r in ipairs(rows) do
      assert.is_true(r.ok, r.template .. "/" .. r.snapshot .. ": " .. tostring(r.error))
      assert.equal(r.tools_total, r.tools_named)
    end
  end)
end)
