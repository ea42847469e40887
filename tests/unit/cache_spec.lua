-- cache: the plan cache (host/cache.c) through planhost.cache.
--
-- LRU order and both caps, time to live with passed-in times, the counters, remove, the
-- warm-start file (round trip, other generations skipped, malformed and missing files), the
-- in-flight bookkeeping for coalescing, and a randomized run against a plain Lua model of an
-- LRU cache. Times are always given, so nothing here depends on the clock.
local cache = require("planhost").cache

local function key(i) return string.format("%016x", i) end

local function plan(id, pad)
  return string.format('{"plan_id":"%s","steps":[{"act":"Wait","duration":%d}]%s}', id, 1,
                       pad and (',"pad":"' .. string.rep("x", pad) .. '"') or "")
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

local function rmdir(d) os.execute("rm -rf '" .. d .. "'") end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function listdir(d)
  local out = {}
  local p = assert(io.popen("ls -A '" .. d .. "'"))
  for name in p:lines() do out[#out + 1] = name end
  p:close()
  return out
end

describe("cache options", function()
  it("takes entries, bytes and ttl_ms, with defaults", function()
    local s = cache.new():stats()
    assert.are.equal(4096, s.max_entries)
    assert.are.equal(8 * 1024 * 1024, s.max_bytes)
    assert.are.equal(0, s.ttl_ms)
    s = cache.new{entries = 3, bytes = 1000, ttl_ms = 50}:stats()
    assert.are.same({3, 1000, 50}, {s.max_entries, s.max_bytes, s.ttl_ms})
  end)

  it("raises on unknown option keys and bad arguments", function()
    assert.has_error(function() cache.new{entires = 3} end, "cache.new: unknown option 'entires'")
    assert.has_error(function() cache.new{entries = -1} end,
                     "cache.new: option 'entries' must be an integer >= 0")
    assert.has_error(function() cache.new{ttl_ms = "soon"} end)
    local c = cache.new()
    assert.has_error(function() c:put(key(1), plan("a"), {teir = "x"}) end,
                     "cache:put: unknown option 'teir'")
    assert.has_error(function() c:put(key(1), plan("a"), {tier = "a\0b"}) end,
                     "cache:put: option 'tier' must be a string without NUL bytes")
    assert.has_error(function() c:put(key(1), plan("a"), {generation = "zz"}) end,
                     "cache:put: option 'generation' must be 1 to 16 hex digits")
    assert.has_error(function() c:put(key(1), plan("a"), {now = 1.5}) end)
    assert.has_error(function() c:put("xyz", plan("a")) end)
    assert.has_error(function() c:put("", plan("a")) end)
    assert.has_error(function() c:put(string.rep("1", 17), plan("a")) end)
    assert.has_error(function() c:get(key(1), -1) end)
  end)

  it("writes keys as 16 lower-case hex digits and reads any case", function()
    local c = cache.new()
    c:put("ABC", plan("a"))
    assert.are.same({"0000000000000abc"}, c:keys())
    assert.are.equal(plan("a"), (c:get("0000000000000AbC")))
  end)

  it("refuses a closed cache", function()
    local c = cache.new()
    c:close()
    assert.has_error(function() c:get(key(1)) end, "cache: the cache is closed")
    c:close()
  end)
end)

describe("cache LRU", function()
  it("evicts the least recently used, and a get refreshes", function()
    local c = cache.new{entries = 3}
    for i = 1, 3 do assert.are.equal("stored", c:put(key(i), plan("p" .. i))) end
    assert.are.same({key(3), key(2), key(1)}, c:keys())
    assert.is_truthy(c:get(key(1)))
    assert.are.same({key(1), key(3), key(2)}, c:keys())
    c:put(key(4), plan("p4"))
    assert.are.same({key(4), key(1), key(3)}, c:keys())
    assert.is_nil(c:get(key(2)))
    assert.are.equal(1, c:stats().evictions)
  end)

  it("a miss does not change the order; a put of a present key replaces and refreshes", function()
    local c = cache.new{entries = 3}
    for i = 1, 3 do c:put(key(i), plan("p" .. i)) end
    c:get(key(9))
    assert.are.same({key(3), key(2), key(1)}, c:keys())
    assert.are.equal("replaced", c:put(key(1), plan("new"), {tier = "compact"}))
    assert.are.same({key(1), key(3), key(2)}, c:keys())
    local p, tier = c:get(key(1))
    assert.are.same({plan("new"), "compact"}, {p, tier})
    assert.are.equal(3, c:stats().entries)
    assert.are.equal(0, c:stats().evictions)
  end)

  it("holds at most `entries` entries", function()
    local c = cache.new{entries = 10}
    for i = 1, 25 do c:put(key(i), plan("p" .. i)) end
    local s = c:stats()
    assert.are.same({10, 15, 25}, {s.entries, s.evictions, s.puts})
    local keys = c:keys()
    for i = 1, 10 do assert.are.equal(key(26 - i), keys[i]) end
  end)
end)

describe("cache byte cap", function()
  local small = plan("s", 100)
  local each = cache.entry_bytes(small, "t", "llm")

  it("charges the whole block: header plus texts", function()
    assert.is_true(each > #small + 5)
    assert.is_true(each < #small + 5 + 128)
    local c = cache.new()
    c:put(key(1), small, {tier = "t", source = "llm"})
    assert.are.equal(each, c:stats().bytes)
    assert.is_true(c:stats().memory >= each)
  end)

  it("evicts as many as needed, oldest first", function()
    local c = cache.new{bytes = 4 * each}
    for i = 1, 4 do c:put(key(i), small, {tier = "t", source = "llm"}) end
    assert.are.equal(4, c:stats().entries)
    local big = plan("b", 100 + 2 * (each - 1))   -- needs three small entries' room
    local need = cache.entry_bytes(big, "t", "llm")
    assert.is_true(need > 2 * each and need <= 3 * each)
    c:put(key(5), big, {tier = "t", source = "llm"})
    assert.are.same({key(5), key(4)}, c:keys())
    local s = c:stats()
    assert.are.same({3, need + each}, {s.evictions, s.bytes})
    assert.is_true(s.bytes <= s.max_bytes)
  end)

  it("refuses a value bigger than the cap and changes nothing", function()
    local c = cache.new{bytes = 2 * each}
    c:put(key(1), small, {tier = "t", source = "llm"})
    c:put(key(2), small, {tier = "t", source = "llm"})
    local ok, msg, code = c:put(key(1), plan("huge", 3 * each), {tier = "t", source = "llm"})
    assert.is_nil(ok)
    assert.are.equal("too_big", code)
    assert.matches("bigger than the byte cap", msg)
    assert.are.same({key(2), key(1)}, c:keys())
    assert.are.equal(small, (c:get(key(1))))
    local s = c:stats()
    assert.are.same({1, 0, 2}, {s.refused, s.evictions, s.puts})
  end)

  it("accepts a value exactly at the cap", function()
    local c = cache.new{bytes = each}
    assert.are.equal("stored", c:put(key(1), small, {tier = "t", source = "llm"}))
    assert.are.equal("stored", c:put(key(2), small, {tier = "t", source = "llm"}))
    assert.are.same({key(2)}, c:keys())
  end)

  it("refuses tier or source names longer than 255 bytes, and text that is not UTF-8", function()
    local c = cache.new()
    local ok, _, code = c:put(key(1), small, {tier = string.rep("t", 256)})
    assert.are.same({nil, "bad_text"}, {ok, code})
    assert.are.equal("stored", c:put(key(1), small, {tier = string.rep("t", 255)}))
    local function refusal(ok, _, code) return ok == nil and code end
    local long = string.rep("a", 37)
    for _, bad in ipairs({"\xff", "a\xc3", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                          long .. "\xff" .. long, long .. "\xe2\x82", long .. "\xe2\x82" .. long}) do
      assert.are.equal("bad_text", refusal(c:put(key(2), bad)))
      assert.are.equal("bad_text", refusal(c:put(key(2), small, {source = bad})))
    end
    assert.are.equal("stored", c:put(key(2), "h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"))
    assert.are.equal("replaced", c:put(key(2), long .. "\xc3\xa9" .. long .. "\xf0\x9f\x98\x80"))
    assert.are.equal(2, c:stats().entries)
  end)
end)

describe("cache time to live", function()
  it("is a miss at ttl_ms after creation, removed and counted", function()
    local c = cache.new{ttl_ms = 100}
    c:put(key(1), plan("a"), {now = 1000})
    assert.is_truthy(c:get(key(1), 1099))
    assert.is_nil(c:get(key(1), 1100))
    local s = c:stats()
    assert.are.same({1, 1, 1, 0}, {s.hits, s.misses, s.expirations, s.entries})
    assert.are.same({}, c:keys())
  end)

  it("counts from creation: a get does not extend it, a put does", function()
    local c = cache.new{ttl_ms = 100}
    c:put(key(1), plan("a"), {now = 0})
    c:put(key(2), plan("b"), {now = 0})
    assert.is_truthy(c:get(key(1), 90))
    assert.is_nil(c:get(key(1), 100))
    c:put(key(2), plan("b2"), {now = 90})
    assert.are.equal(plan("b2"), (c:get(key(2), 189)))
    assert.is_nil(c:get(key(2), 190))
  end)

  it("a time before creation is not expiry", function()
    local c = cache.new{ttl_ms = 10}
    c:put(key(1), plan("a"), {now = 500})
    assert.is_truthy(c:get(key(1), 0))
  end)

  it("an expired entry dropped by a cap counts as an expiration, not an eviction", function()
    local c = cache.new{entries = 1, ttl_ms = 10}
    c:put(key(1), plan("a"), {now = 0})
    c:put(key(2), plan("b"), {now = 50})
    local s = c:stats()
    assert.are.same({1, 0}, {s.expirations, s.evictions})
  end)

  it("without ttl_ms nothing expires", function()
    local c = cache.new()
    c:put(key(1), plan("a"), {now = 0})
    assert.is_truthy(c:get(key(1), 2 ^ 53))
  end)
end)

describe("cache counters and remove", function()
  it("counts hits, misses, puts, removes, coalesced and stale", function()
    local c = cache.new()
    c:put(key(1), plan("a"), {tier = "compact", source = "llm"})
    c:put(key(2), plan("b"))
    local p, tier, source = c:get(key(1))
    assert.are.same({plan("a"), "compact", "llm"}, {p, tier, source})
    c:get(key(3))
    -- a hit that fails validation: count it stale and remove it
    assert.is_truthy(c:get(key(2)))
    c:count_stale()
    assert.is_true(c:remove(key(2)))
    assert.is_false(c:remove(key(2)))
    c:count_coalesced(3)
    local s = c:stats()
    assert.are.same({2, 1, 2, 1, 1, 3, 1}, {s.hits, s.misses, s.puts, s.removes, s.entries, s.coalesced, s.stale})
    assert.are.equal(cache.entry_bytes(plan("a"), "compact", "llm"), s.bytes)
    assert.is_nil(c:get(key(2)))
  end)

  it("keeps plan text with NUL bytes whole", function()
    local c = cache.new()
    c:put(key(1), "a\0b")
    assert.are.equal("a\0b", (c:get(key(1))))
  end)
end)

describe("cache warm start", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() rmdir(dir) end)

  local GEN, OTHER = "00000000000000aa", "00000000000000bb"

  local function filled()
    local c = cache.new{entries = 10}
    for i = 1, 5 do
      c:put(key(i), plan("p" .. i), {tier = "t" .. i, source = "llm", generation = GEN, now = 100 + i})
    end
    c:put(key(6), plan("other"), {generation = OTHER, now = 106})
    c:get(key(2))
    return c
  end

  it("round trip: same keys, same order, same values; other generations skipped", function()
    local c = filled()
    local path = dir .. "/cache.ndjson"
    assert.is_true(c:save(path))
    assert.are.same({"cache.ndjson"}, listdir(dir))   -- the temporary file is gone
    local d = cache.new{entries = 10}
    local loaded, skipped = d:load(path, GEN, 1000)
    assert.are.same({5, 1}, {loaded, skipped})
    local want = {}
    for _, k in ipairs(c:keys()) do if k ~= key(6) then want[#want + 1] = k end end
    assert.are.same(want, d:keys())
    for i = 1, 5 do
      local a = {c:get(key(i))}
      assert.are.same(a, {d:get(key(i))})
    end
    assert.is_nil(d:get(key(6)))
  end)

  it("writes one JSON object per line, least recently used first", function()
    local c = cache.new()
    c:put(key(1), plan("a"), {tier = "compact", source = "llm", generation = "ff", now = 7})
    c:put(key(2), "not json\nat all", {tier = 'q"t', generation = "ff", now = 8})
    c:put(key(3), "\0\1\t\"\\ \xe2\x82\xac}", {generation = "ff", now = 9})
    local path = dir .. "/c.ndjson"
    assert.is_true(c:save(path))
    local lines = {}
    for l in read(path):gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(3, #lines)
    assert.are.equal('{"key":"0000000000000001","generation":"00000000000000ff","tier":"compact",'
      .. '"source":"llm","created":7,"plan":' .. plan("a") .. '}', lines[1])
    local tail = '"plan":"not json\\nat all"}'
    assert.are.equal(tail, lines[2]:sub(-#tail))
    local d = cache.new()
    assert.are.same({3, 0}, {d:load(path, "ff", 9)})
    assert.are.same({"not json\nat all", 'q"t', ""}, {d:get(key(2))})
    assert.are.same({"\0\1\t\"\\ \xe2\x82\xac}", "", ""}, {d:get(key(3))})
  end)

  it("round-trips plans nested as deep as the reader allows, and deeper ones as strings", function()
    local c = cache.new()
    for depth = 60, 66 do
      c:put(key(depth), string.rep("{\"a\":", depth - 1) .. "{}" .. string.rep("}", depth - 1),
            {generation = GEN})
    end
    local path = dir .. "/c.ndjson"
    assert.is_true(c:save(path))
    local d = cache.new()
    assert.are.same({7, 0}, {d:load(path, GEN)})
    for depth = 60, 66 do assert.are.equal((c:get(key(depth))), (d:get(key(depth)))) end
  end)

  it("keeps creation times, so entries past their time to live are skipped", function()
    local c = cache.new{ttl_ms = 100}
    c:put(key(1), plan("a"), {generation = GEN, now = 0})
    c:put(key(2), plan("b"), {generation = GEN, now = 60})
    local path = dir .. "/c.ndjson"
    c:save(path)
    local d = cache.new{ttl_ms = 100}
    assert.are.same({1, 1}, {d:load(path, GEN, 120)})
    assert.is_truthy(d:get(key(2), 159))
    assert.is_nil(d:get(key(2), 160))
  end)

  it("loading into a smaller cache keeps the most recent", function()
    local c = filled()
    local path = dir .. "/c.ndjson"
    c:save(path)
    local d = cache.new{entries = 2}
    assert.are.same({5, 1}, {d:load(path, GEN, 1000)})
    assert.are.same({key(2), key(5)}, d:keys())
  end)

  it("a malformed line is an error naming the line, and the cache is unchanged", function()
    local c = filled()
    local path = dir .. "/c.ndjson"
    c:save(path)
    local text = read(path)
    local first, rest = text:match("^([^\n]*\n)(.*)$")
    write(path, first .. '{"key":"0000000000000009","plan":{"plan_id":\n' .. rest)
    local d = cache.new()
    d:put(key(42), plan("keep"))
    local ok, msg, code, where = d:load(path, GEN, 1000)
    assert.is_nil(ok)
    assert.are.equal("json", code)
    assert.are.equal(path .. ":2", where)
    assert.matches(path .. ":2: ", msg, 1, true)
    assert.are.same({key(42)}, d:keys())
  end)

  it("names missing members, bad keys and non-object lines", function()
    local path = dir .. "/c.ndjson"
    local good = '{"key":"01","generation":"aa","tier":"t","source":"s","created":1,"plan":{}}\n'
    local cases = {
      {'{"key":"01","generation":"aa","tier":"t","source":"s","created":1}', 'missing "plan"'},
      {'{"key":"0g","generation":"aa","tier":"t","source":"s","created":1,"plan":{}}', '"key" must be'},
      {'{"key":"01","generation":"aa","tier":"t","source":"s","created":-1,"plan":{}}', '"created" must be'},
      {'{"key":"01","generation":"aa","tier":"t","source":"s","created":1,"plan":[]}', '"plan" must be'},
      {'[1,2]', "a line must be one JSON object"},
      {'{"key":"01"} {}', "column"},
    }
    for _, case in ipairs(cases) do
      write(path, good .. "\n" .. case[1] .. "\n")
      local ok, msg = cache.new():load(path, "aa")
      assert.is_nil(ok)
      assert.matches(path .. ":3: " .. case[2], msg, 1, true)
    end
  end)

  it("ignores unknown members and blank lines", function()
    local path = dir .. "/c.ndjson"
    write(path, '\n  \n{"x":{"y":[1,{"z":2}]},"key":"01","generation":"aa","tier":"t","source":"s",'
      .. '"created":1,"plan":{"plan_id":"p","steps":[{"act":"Wait"}]}}')
    local c = cache.new()
    assert.are.same({1, 0}, {c:load(path, "aa", 5)})
    assert.are.equal('{"plan_id":"p","steps":[{"act":"Wait"}]}', (c:get("01")))
  end)

  it("a line past the 1 MiB cap is refused by name", function()
    local path = dir .. "/c.ndjson"
    write(path, '{"key":"01","x":"' .. string.rep("y", 1 << 20) .. '"}\n')
    local ok, msg, code = cache.new():load(path, GEN)
    assert.is_nil(ok)
    assert.are.equal("limit", code)
    assert.matches(path .. ":1: line longer than", msg, 1, true)
  end)

  it("a missing file is a clear error", function()
    local ok, msg, code = cache.new():load(dir .. "/nope.ndjson", GEN)
    assert.is_nil(ok)
    assert.are.equal("notfound", code)
    assert.matches("nope.ndjson: No such file", msg, 1, true)
  end)

  it("saving into a missing directory fails and leaves nothing", function()
    local ok, msg, code = filled():save(dir .. "/no/such/c.ndjson")
    assert.is_nil(ok)
    assert.are.equal("io", code)
    assert.is_string(msg)
    assert.are.same({}, listdir(dir))
  end)

  it("an empty cache saves an empty file that loads as nothing", function()
    local path = dir .. "/c.ndjson"
    assert.is_true(cache.new():save(path))
    assert.are.equal("", read(path))
    assert.are.same({0, 0}, {cache.new():load(path, GEN)})
  end)
end)

describe("cache in-flight bookkeeping", function()
  it("the first request leads, later ones wait and come back on end", function()
    local c = cache.new()
    assert.is_true(c:inflight_begin(key(1), 10))
    assert.is_false(c:inflight_begin(key(1), 11))
    assert.is_true(c:inflight_begin(key(2), 20))
    assert.is_false(c:inflight_begin(key(1), 12))
    assert.are.equal(2, c:stats().inflight)
    assert.are.same({11, 12}, c:inflight_end(key(1)))
    assert.are.same({}, c:inflight_end(key(2)))
    assert.are.equal(0, c:stats().inflight)
    local ok, msg = c:inflight_end(key(1))
    assert.is_nil(ok)
    assert.matches("not in flight", msg)
    assert.is_true(c:inflight_begin(key(1), 13))
  end)

  it("many keys and many waiters", function()
    local c = cache.new()
    for k = 1, 2000 do assert.is_true(c:inflight_begin(key(k), k)) end
    for w = 1, 100 do assert.is_false(c:inflight_begin(key(7), 10000 + w)) end
    assert.are.equal(2000, c:stats().inflight)
    local ids = c:inflight_end(key(7))
    assert.are.equal(100, #ids)
    assert.are.equal(10001, ids[1])
    assert.are.equal(10100, ids[100])
    for k = 1, 2000 do
      if k ~= 7 then assert.are.same({}, c:inflight_end(key(k))) end
    end
    assert.are.equal(0, c:stats().inflight)
  end)
end)

-- A plain model of the same cache: an array, most recently used first.
local function model(entries, bytes, ttl)
  local M = {list = {}, bytes = 0, hits = 0, misses = 0, evictions = 0, expirations = 0, puts = 0,
             removes = 0, refused = 0}
  local function find(k)
    for i, e in ipairs(M.list) do if e.k == k then return i end end
  end
  local function drop(i)
    M.bytes = M.bytes - M.list[i].size
    table.remove(M.list, i)
  end
  local function old(e, now) return ttl > 0 and now >= e.created and now - e.created >= ttl end
  function M.get(k, now)
    local i = find(k)
    if i and old(M.list[i], now) then drop(i); M.expirations = M.expirations + 1; i = nil end
    if not i then M.misses = M.misses + 1; return nil end
    local e = table.remove(M.list, i)
    table.insert(M.list, 1, e)
    M.hits = M.hits + 1
    return e.plan, e.tier
  end
  function M.put(k, plan, tier, now)
    local size = cache.entry_bytes(plan, tier, "")
    if size > bytes then M.refused = M.refused + 1; return nil end
    local i = find(k)
    if i then drop(i) end
    while #M.list > 0 and (#M.list + 1 > entries or M.bytes + size > bytes) do
      if old(M.list[#M.list], now) then M.expirations = M.expirations + 1
      else M.evictions = M.evictions + 1 end
      drop(#M.list)
    end
    table.insert(M.list, 1, {k = k, plan = plan, tier = tier, size = size, created = now})
    M.bytes = M.bytes + size
    M.puts = M.puts + 1
    return i and "replaced" or "stored"
  end
  function M.remove(k)
    local i = find(k)
    if i then drop(i); M.removes = M.removes + 1 end
    return i ~= nil
  end
  function M.keys()
    local out = {}
    for i, e in ipairs(M.list) do out[i] = e.k end
    return out
  end
  return M
end

describe("cache against a reference model", function()
  -- save, load into a fresh cache at the same time: the live entries, in the same order
  local function round_trip(c, m, now, entries, bytes, ttl)
    local path = os.tmpname()
    assert.is_true(c:save(path))
    local d = cache.new{entries = entries, bytes = bytes, ttl_ms = ttl}
    local loaded, skipped = d:load(path, "0", now)
    os.remove(path)
    local live = {}
    for _, e in ipairs(m.list) do
      if not (ttl > 0 and now - e.created >= ttl) then live[#live + 1] = e.k end
    end
    assert.are.same(live, d:keys())
    assert.are.same({#live, #m.list - #live}, {loaded, skipped})
  end

  local function run(seed, ops, entries, bytes, ttl)
    math.randomseed(seed)
    local c = cache.new{entries = entries, bytes = bytes, ttl_ms = ttl}
    local m = model(entries, bytes, ttl)
    local now = 0
    for n = 1, ops do
      local k = key(math.random(1, 40))
      local r = math.random()
      now = now + math.random(0, 3)
      if r < 0.45 then
        local p = plan("p" .. n, math.random(0, 250))
        local tier = ({"full", "compact", "simplified"})[math.random(1, 3)]
        assert.are.equal(m.put(k, p, tier, now), (c:put(k, p, {tier = tier, now = now})))
      elseif r < 0.9 then
        local p1, t1 = m.get(k, now)
        local p2, t2 = c:get(k, now)
        assert.are.same({p1, t1}, {p2, t2})
      else
        assert.are.equal(m.remove(k), c:remove(k))
      end
      if n % 50 == 0 or n == ops then
        assert.are.same(m.keys(), c:keys())
        local s = c:stats()
        assert.are.same({m.hits, m.misses, m.puts, m.evictions, m.expirations, m.removes, m.refused, m.bytes, #m.list},
                        {s.hits, s.misses, s.puts, s.evictions, s.expirations, s.removes, s.refused, s.bytes, s.entries})
        assert.is_true(s.entries <= entries and s.bytes <= bytes)
      end
      if n % 1000 == 0 then round_trip(c, m, now, entries, bytes, ttl) end
    end
    return c:stats()
  end

  it("entry cap binds (5000 ops)", function()
    local s = run(1, 5000, 12, 1 << 20, 0)
    assert.is_true(s.evictions > 100)
  end)

  it("byte cap binds (5000 ops)", function()
    local s = run(2, 5000, 64, 1500, 0)
    assert.is_true(s.evictions > 100)
  end)

  it("a byte cap so small some values are refused (5000 ops)", function()
    local s = run(4, 5000, 64, 320, 0)
    assert.is_true(s.evictions > 100 and s.refused > 100)
  end)

  it("time to live and both caps (5000 ops)", function()
    local s = run(3, 5000, 16, 3000, 25)
    assert.is_true(s.expirations > 100 and s.evictions > 50)
  end)
end)
