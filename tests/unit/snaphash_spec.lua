-- snaphash: the perceptual snapshot hash (host/snaphash.c), through planhost.snaphash.hash
-- (host/lua_snaphash.c): hash(json [, rules [, canonical]]) -> hex, canonical | nil, msg, code.
-- Every equal/different pair is checked with and without the canonical text, which must not
-- change the hash.
local planhost = require "planhost"
local sh = planhost.snaphash
local cjson = require "cjson"

local function repo_root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local root = src:gsub("[^/]*$", ""):gsub("/?tests/unit/?$", "")
  return os.getenv("PLANHOST_SOURCE") or (root == "" and "." or root)
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local SNAPSHOTS = repo_root() .. "/examples/snapshots/"

-- Rules close to what policies/cache.lua is meant to hold.
local DEFAULT = {
  quantise = { ["me.pos"] = 2, ["enemies[].pos"] = 2, ["enemies[].hp"] = 10, ["me.hp"] = 10,
               ["me.ammo"] = 5, ["me.morale"] = 0.25 },
  ignore = { "t", "**.last_seen" },
  sets = { "enemies" },
}

-- The hash, after checking that asking for the canonical text does not change it.
local function H(json, rules)
  local hex, text = sh.hash(json, rules)
  assert(hex, text)
  local bare, none = sh.hash(json, rules, false)
  assert.equal(hex, bare)
  assert.is_nil(none)
  assert.matches("^%x+$", hex)
  assert.equal(16, #hex)
  return hex, text
end

local function canon(json, rules)
  local _, text = H(json, rules)
  return text
end

local function same(a, b, rules) assert.equal(H(a, rules), H(b, rules)) end
local function differ(a, b, rules) assert.are_not.equal(H(a, rules), H(b, rules)) end

-- The hello snapshot decoded, changed by f, encoded again.
local HELLO = read(SNAPSHOTS .. "hello_companion.json")
local function hello(f)
  local t = cjson.decode(HELLO)
  if f then f(t) end
  return cjson.encode(t)
end

local function shift_pos(p, dx, dy) p.x, p.y = p.x + dx, p.y + dy end

describe("snaphash", function()
  it("is exposed as planhost.snaphash.hash", function()
    assert.is_table(sh)
    assert.is_function(sh.hash)
  end)

  describe("fields that do not matter", function()
    it("ignores t and last_seen at any depth", function()
      local a = hello()
      local b = hello(function(t) t.t = 99.5; t.enemies[1].last_seen = 3 end)
      same(a, b, DEFAULT)
      differ(a, b, {})
    end)

    it("leaves ignored fields out of the canonical text", function()
      local text = canon(HELLO, DEFAULT)
      assert.is_nil(text:find('"t":', 1, true))
      assert.is_nil(text:find("last_seen", 1, true))
      assert.truthy(text:find('"objective":"extract"', 1, true))
    end)

    it("'*' is one key down, '**' any depth including arrays", function()
      local a = [[{"last_seen":1,"me":{"last_seen":1},"enemies":[{"last_seen":1}]}]]
      local b = [[{"last_seen":2,"me":{"last_seen":2},"enemies":[{"last_seen":2}]}]]
      assert.equal('{"enemies":[{"last_seen":1}],"last_seen":1,"me":{}}',
                   canon(a, { ignore = { "*.last_seen" } }))
      assert.equal('{"enemies":[{}],"me":{}}', canon(a, { ignore = { "**.last_seen" } }))
      assert.equal('{"enemies":[{}],"last_seen":1,"me":{"last_seen":1}}',
                   canon(a, { ignore = { "enemies[].last_seen" } }))
      same(a, b, { ignore = { "**.last_seen" } })
      differ(a, b, { ignore = { "*.last_seen" } })
    end)

    it("ignores whole subtrees and array elements", function()
      assert.equal('{"b":2}', canon('{"a":{"x":[1,{"y":2}]},"b":2}', { ignore = { "a" } }))
      assert.equal('{"e":[]}', canon('{"e":[{"id":1},{"id":2}]}', { ignore = { "e[]" } }))
      assert.equal('{"e":[1,[],3]}', canon('{"e":[1,[2,[4]],3]}', { ignore = { "e[][]" } }))
    end)
  end)

  describe("sets", function()
    local function enemies(order)
      return hello(function(t)
        local base = t.enemies[1]
        t.enemies = {}
        for _, id in ipairs(order) do
          t.enemies[#t.enemies + 1] = { id = id, hp = 10 * id, pos = { x = id, y = 1 } }
        end
        t.enemies[#t.enemies + 1] = base
      end)
    end

    it("enemy order does not matter when enemies is a set", function()
      same(enemies({ 4, 5, 6 }), enemies({ 6, 4, 5 }), DEFAULT)
      differ(enemies({ 4, 5, 6 }), enemies({ 6, 4, 5 }), {})
    end)

    it("still counts duplicates and membership", function()
      local r = { sets = { "s" } }
      differ('{"s":[1,1,2]}', '{"s":[1,2]}', r)
      differ('{"s":[1,2]}', '{"s":[1,3]}', r)
      same('{"s":[[1,2],[3]]}', '{"s":[[3],[1,2]]}', r)
      differ('{"s":[[1,2],[3]]}', '{"s":[[2,1],[3]]}', r)   -- inner arrays stay ordered
    end)

    it("applies the rules inside each element before sorting", function()
      local r = { sets = { "e" }, quantise = { ["e[].hp"] = 10 } }
      same('{"e":[{"hp":61},{"hp":12}]}', '{"e":[{"hp":19},{"hp":65}]}', r)
    end)

    it("has no effect on an object or a scalar", function()
      local r = { sets = { "a" } }
      same('{"a":{"x":1,"y":2}}', '{"a":{"y":2,"x":1}}', r)
      differ('{"a":1}', '{"a":2}', r)
    end)
  end)

  describe("quantisation", function()
    local r = { quantise = { ["me.pos"] = 2, ["e[].hp"] = 10 } }
    local function pos(x, y) return ('{"me":{"pos":{"x":%s,"y":%s}}}'):format(x, y) end
    local function hp(v) return ('{"e":[{"hp":%s}]}'):format(v) end

    it("hashes values within one cell equal, up to the cell border", function()
      same(pos(2, 3), pos(3.99, 2), r)            -- cell [2,4) on both axes
      same(pos(2, 3), pos(2.5, 3.999999), r)
      same(hp(60), hp(69.9), r)
      same(pos(-0.5, 0), pos(-1.9, 1), r)          -- floor: [-2,0) is one cell
    end)

    it("hashes values across a border differently, however close", function()
      differ(pos(3.99, 2), pos(4, 2), r)
      differ(pos(-0.01, 0), pos(0, 0), r)
      differ(hp(69.99), hp(70), r)
    end)

    it("writes the cell's lower bound in the canonical text", function()
      assert.equal('{"me":{"pos":{"x":2,"y":-2}}}', canon(pos(3.5, -0.5), r))
      assert.equal('{"e":[{"hp":60}]}', canon(hp(63), r))
      assert.equal('{"m":0.75}', canon('{"m":0.8}', { quantise = { m = 0.25 } }))
    end)

    it("reaches every number inside a container", function()
      local q = { quantise = { obstacles = 4 } }
      same('{"obstacles":[{"x":1,"y":5}]}', '{"obstacles":[{"x":3,"y":7}]}', q)
    end)

    it("lets the more specific rule win, and step 0 mean exact", function()
      local q = { quantise = { ["**"] = 1, ["me.pos"] = 4, ["me.hp"] = 0 } }
      assert.equal('{"me":{"hp":80.5,"pos":{"x":4,"y":0}},"t":12}',
                   canon('{"t":12.9,"me":{"hp":80.5,"pos":{"x":7.5,"y":1}}}', q))
    end)

    it("among equally specific rules, the deeper then the finer one wins", function()
      assert.equal('{"me":{"hp":80}}', canon('{"me":{"hp":83}}', { quantise = { me = 5, ["*.hp"] = 10 } }))
      assert.equal('{"a":{"b":3}}', canon('{"a":{"b":3.5}}', { quantise = { ["a.*"] = 1, ["*.b"] = 2 } }))
    end)
  end)

  describe("fields no rule mentions are hashed exactly", function()
    it("a string", function()
      differ(hello(), hello(function(t) t.objective = "hold" end), DEFAULT)
    end)

    it("a number", function()
      differ(hello(), hello(function(t) t.player.hp = 99 end), DEFAULT)
      differ(hello(), hello(function(t) t.enemies[1].id = 4 end), DEFAULT)
    end)

    it("a nested object: a value or a key inside it", function()
      differ(hello(), hello(function(t) t.me.cooldowns["throw:smoke"] = 1 end), DEFAULT)
      differ(hello(), hello(function(t) t.me.cooldowns.heal = 0 end), DEFAULT)
    end)

    it("an array element added", function()
      differ(hello(), hello(function(t) table.insert(t.obstacles, { x = 9, y = 9 }) end), DEFAULT)
      differ(hello(), hello(function(t) table.insert(t.player.orders, "move") end), DEFAULT)
    end)

    it("an extra key nobody knows", function()
      differ(hello(), hello(function(t) t.weather = "rain" end), DEFAULT)
    end)
  end)

  describe("relative positions", function()
    local function moved(dx, dy, all)
      return hello(function(t)
        shift_pos(t.me.pos, dx, dy)
        for _, e in ipairs(t.enemies) do shift_pos(e.pos, dx, dy) end
        if all then
          shift_pos(t.player.pos, dx, dy)
          for _, p in ipairs(t.pois) do shift_pos(p.pos, dx, dy) end
        end
      end)
    end
    local rel = { quantise = DEFAULT.quantise, ignore = DEFAULT.ignore, sets = DEFAULT.sets,
                  relative = true }

    it("moving the agent and every position by one offset keeps the hash", function()
      same(hello(), moved(7, -3, true), rel)
      differ(hello(), moved(7, -3, true), DEFAULT)
    end)

    it("moving the agent alone, or leaving a position behind, changes it", function()
      differ(hello(), hello(function(t) shift_pos(t.me.pos, 7, -3) end), rel)
      differ(hello(), moved(7, -3, false), rel)       -- player and pois stayed
      same(hello(), moved(1, 0, false), { relative = { "enemies[].pos" }, ignore = { "me.pos" } })
    end)

    it("makes the anchor the origin and shows shifted cells", function()
      local text = canon(HELLO, rel)
      assert.truthy(text:find('"me":{"ammo":30,"cooldowns":{"throw:smoke":0},"hp":80,"morale":0.75,"pos":{"x":0,"y":0}}', 1, true))
      assert.truthy(text:find('"pos":{"x":10,"y":-2}', 1, true))     -- enemy (12,2)-(2,3), step 2
      assert.truthy(text:find('"pos":{"x":0,"y":-1}', 1, true))      -- player, exact
    end)

    it("takes explicit paths and a custom anchor", function()
      local r = { relative = { "e[]" }, anchor = "a.at" }
      local a = '{"e":[{"x":5,"y":5,"z":1}],"a":{"at":{"x":1,"y":2}}}'
      local b = '{"a":{"at":{"x":11,"y":12}},"e":[{"x":15,"y":15,"z":1}]}'
      assert.equal('{"a":{"at":{"x":1,"y":2}},"e":[{"x":4,"y":3,"z":1}]}', canon(a, r))
      differ(a, b, r)                                 -- the anchor itself is not relative here
      same(a, b, { relative = { "e[]" }, anchor = "a.at", ignore = { "a" } })
    end)

    it("does nothing when the snapshot has no anchor", function()
      local r = { relative = true }
      assert.equal('{"e":{"pos":{"x":5,"y":6}}}', canon('{"e":{"pos":{"x":5,"y":6}}}', r))
    end)
  end)

  describe("canonical form", function()
    it("3, 3.0, 30e-1 and 0.3E1 are one number; -0 is 0", function()
      same('{"a":3}', '{"a":3.0}')
      same('{"a":3}', '{"a":30e-1}')
      same('{"a":3}', '{"a":0.3E1}')
      same('{"a":0}', '{"a":-0.0}')
      same('{"a":0.1}', '{"a":1e-1}')
      differ('{"a":3}', '{"a":3.0000001}')
      assert.equal('{"a":3,"b":0.1,"c":1e+300,"d":-2.5}', canon('{"d":-25e-1,"c":1e300,"b":0.10,"a":3.000}'))
    end)

    it("object key order does not matter, at every depth", function()
      same('{"a":1,"b":{"c":2,"d":[{"e":1,"f":2}]}}', '{"b":{"d":[{"f":2,"e":1}],"c":2},"a":1}')
      assert.equal('{"a":1,"b":{"c":2,"d":[{"e":1,"f":2}]}}',
                   canon('{"b":{"d":[{"f":2,"e":1}],"c":2},"a":1}'))
    end)

    it("whitespace and string escapes do not matter", function()
      same('{"a":"A\\n","b":[1,2]}', ' { "b" : [ 1 , 2 ] , "\\u0061" : "\\u0041\\n" } ')
    end)

    it("types never collide", function()
      differ('{"a":3}', '{"a":"3"}')
      differ('{"a":null}', '{"a":false}')
      differ('{"a":{}}', '{"a":[]}')
      differ('{"a":[]}', '{}')
      differ('{"a":1,"b":2}', '{"a":2,"b":1}')
      differ('[1,2]', '[2,1]')
    end)

    it("is valid JSON that hashes the same as the snapshot", function()
      for _, name in ipairs({ "hello_companion", "twelve_enemies", "non_ascii_names", "escort" }) do
        local snap = read(SNAPSHOTS .. name .. ".json")
        local text = canon(snap, DEFAULT)
        assert.is_table(cjson.decode(text))
        assert.equal(H(snap, DEFAULT), H(text, DEFAULT))
        assert.equal(text, canon(text, DEFAULT))
      end
    end)

    it("escapes what JSON needs and keeps UTF-8 as is", function()
      assert.equal('{"k\\"":"\\\\\\u0001é"}', canon('{"k\\"":"\\\\\\u0001\\u00e9"}'))
      assert.equal('{"":""}', canon('{"":""}'))
    end)

    it("keeps empty containers, at the top and inside", function()
      assert.equal("{}", canon("{}"))
      assert.equal("[]", canon(" [ ] "))
      assert.equal('{"a":{},"b":[[]]}', canon('{"b":[[]],"a":{}}'))
      assert.equal('{"a":{}}', canon('{"a":{"t":1}}', { ignore = { "a.t" } }))
      differ("{}", "[]")
    end)

    it("does not depend on how a snapshot is spelled (cjson re-encoding)", function()
      for _, name in ipairs({ "hello_companion", "surrounded", "non_ascii_names" }) do
        local snap = read(SNAPSHOTS .. name .. ".json")
        same(snap, cjson.encode(cjson.decode(snap)), DEFAULT)
      end
    end)

    it("hashes any top-level value", function()
      assert.equal("[1,2]", canon("[1, 2.0]"))
      assert.equal('"x"', canon(' "x" '))
      differ("1", "2")
    end)
  end)

  describe("the rules", function()
    it("are part of the hash: other rules, other hashes", function()
      local snap = '{"me":{"hp":80}}'
      assert.equal(canon(snap), canon(snap, { quantise = { ["me.hp"] = 0 } }))
      assert.are_not.equal(H(snap), H(snap, { quantise = { ["me.hp"] = 0 } }))
      assert.are_not.equal(H(snap, { ignore = { "x" } }), H(snap, { ignore = { "y" } }))
    end)

    it("scale to hundreds of rules", function()
      local q, keys = {}, {}
      for i = 1, 300 do q["k" .. i] = 10; keys[#keys + 1] = ('"k%d":%d'):format(i, i) end
      local r = { quantise = q, ignore = { "**.noise" } }
      local function snap(v) return "{" .. table.concat(keys, ",") .. ',"k150":' .. v .. "}" end
      -- duplicate key k150: both members count, the second one varies
      same(snap(151), snap(159), r)
      differ(snap(159), snap(160), r)
    end)

    it("do not depend on the order they are given in", function()
      local snap = HELLO
      local a = H(snap, { ignore = { "t", "**.last_seen" }, sets = { "enemies", "pois" } })
      local b = H(snap, { ignore = { "**.last_seen", "t" }, sets = { "pois", "enemies" } })
      assert.equal(a, b)
    end)

    it("reject bad paths with a clear message", function()
      local cases = {
        { "", "empty" },
        { "a..b", "empty key at byte 2" },
        { ".a", "empty key at byte 0" },
        { "a.", "empty key at byte 2" },
        { "a[", "'%[' not followed by '%]' at byte 1" },
        { "a[x]", "'%[' not followed by '%]' at byte 1" },
        { "a]", "stray '%]' at byte 1" },
        { "a*", "'%*' inside a key" },
        { "*a", "'%*' inside a key" },
        { "***", "'%*%*%*'" },
        { "a.[]", "must follow a key at byte 2" },
        { "a[]b", "expected '%.' or" },
        { "a\\", "must escape" },
        { "a\\q", "must escape" },
        { ("a."):rep(40) .. "a", "more than 32 parts" },
      }
      for _, c in ipairs(cases) do
        local ok, msg = pcall(sh.hash, "{}", { ignore = { c[1] } })
        assert.is_false(ok, c[1])
        assert.matches(c[2], msg)
        assert.matches("hash rule path", msg)
      end
    end)

    it("accept escapes, leading [] and wildcards", function()
      assert.equal('{"a.b":1}', canon('{"a.b":1,"c":2}', { ignore = { "c" } }))
      assert.equal('{"c":2}', canon('{"a.b":1,"c":2}', { ignore = { "a\\.b" } }))
      assert.equal("[{}]", canon('[{"x":1}]', { ignore = { "[].x" } }))
      assert.equal('{"a":{}}', canon('{"a":{"b":1}}', { ignore = { "a.*" } }))
    end)

    it("reject bad steps, anchors, keys and types", function()
      local function fails(rules, pat)
        local ok, msg = pcall(sh.hash, "{}", rules)
        assert.is_false(ok)
        assert.matches(pat, msg)
      end
      fails({ quantise = { a = -1 } }, "step must be a finite number >= 0")
      fails({ quantise = { a = 1 / 0 } }, "step must be a finite number")
      fails({ quantise = { a = "2" } }, "path = number")
      fails({ anchor = "me.*" }, "plain dotted path")
      fails({ anchor = "e[]" }, "plain dotted path")
      fails({ ignroe = { "t" } }, "unknown rules key 'ignroe'")
      fails({ ignore = "t" }, "list of paths")
      fails({ ignore = { x = "t" } }, "must be a list")
      fails({ sets = { 3 } }, "must be a string")
      assert.has_error(function() sh.hash({}, {}) end)
    end)
  end)

  describe("malformed JSON", function()
    it("returns nil, a message with the byte offset, and code json", function()
      local cases = {
        { '{"a":1,}', 7 },
        { '{"a":[1,2', 9 },
        { '{"a" 1}', 5 },
        { '{"a":1} x', 8 },
        { "", 0 },
        { '{"a":1]', 6 },
      }
      for _, c in ipairs(cases) do
        for _, rules in ipairs({ {}, DEFAULT, { relative = true } }) do
          local hex, msg, code = sh.hash(c[1], rules)
          assert.is_nil(hex)
          assert.equal("json", code)
          assert.matches("invalid JSON at byte " .. c[2] .. ":", msg)
        end
      end
    end)

    it("fails past the depth cap instead of overflowing", function()
      local deep = ("["):rep(200) .. ("]"):rep(200)
      local hex, msg = sh.hash(deep)
      assert.is_nil(hex)
      assert.matches("invalid JSON", msg)
      assert.truthy(sh.hash(("["):rep(64) .. ("]"):rep(64)))
    end)
  end)

  describe("the example snapshots", function()
    it("all hash, deterministically, and to distinct values", function()
      local seen = {}
      for _, name in ipairs({ "escort", "hello_companion", "low_health_morale", "no_ammo",
                              "no_enemies", "non_ascii_names", "reach", "reach_position",
                              "surrounded", "twelve_enemies" }) do
        local snap = read(SNAPSHOTS .. name .. ".json")
        local hex = H(snap, DEFAULT)
        assert.equal(hex, H(snap, DEFAULT))
        assert.is_nil(seen[hex], name .. " collides with " .. tostring(seen[hex]))
        seen[hex] = name
      end
    end)
  end)
end)
