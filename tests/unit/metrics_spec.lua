-- metrics: the host's counters and histograms as Prometheus text (host/metrics.c), through
-- planhost.metrics (host/lua_metrics.c).
--
-- Every render here goes through check(), a small reader of the text exposition format
-- 0.0.4: each line is a HELP or TYPE comment or a `name{labels} value` sample, HELP and TYPE
-- come once per family before its samples, label values use only the \\ \" \n escapes, no
-- series repeats, and histogram buckets rise to le="+Inf", which equals _count. The tests
-- then read values back by name and label set: families and types, counting, bucket
-- placement, NaN first steps, escaping and cutting of label values, the series cap, stable
-- output, the cache gauges, the circuit lines, option checking and the output cap.
local H = require "helpers"
local metrics = H.planhost.metrics

local NAN = 0 / 0

-- Exposition reader ------------------------------------------------------------------------

local ESCAPES = { ["\\"] = "\\", ['"'] = '"', n = "\n" }

-- `{k="v",...}` at position i of s -> labels, keys in order, position after `}` | nil, why
local function parse_labels(s, i)
  local labels, keys = {}, {}
  if s:sub(i, i) == "}" then return labels, keys, i + 1 end
  while true do
    local key, j = s:match('^([%a_][%w_]*)="()', i)
    if not key then return nil, "bad label name at byte " .. i end
    local value = {}
    i = j
    while true do
      local c = s:sub(i, i)
      if c == "" or c == "\n" then return nil, "unterminated label value" end
      if c == '"' then i = i + 1; break end
      if c == "\\" then
        local e = ESCAPES[s:sub(i + 1, i + 1)]
        if not e then return nil, "bad escape at byte " .. i end
        value[#value + 1], i = e, i + 2
      else
        value[#value + 1], i = c, i + 1
      end
    end
    if labels[key] then return nil, "label " .. key .. " repeated" end
    labels[key], keys[#keys + 1] = table.concat(value), key
    local c = s:sub(i, i)
    if c == "}" then return labels, keys, i + 1 end
    if c ~= "," then return nil, "expected , or } at byte " .. i end
    i = i + 1
  end
end

local function parse_value(v)
  if v == "+Inf" then return math.huge end
  if v == "-Inf" then return -math.huge end
  if v == "NaN" then return NAN end
  return v:match("^[+-]?%d*%.?%d*[eE]?[+-]?%d*$") and tonumber(v)
end

-- One sample line -> {name, labels, keys, value} | nil, why
local function parse_sample(line)
  local name, i = line:match("^([%a_:][%w_:]*)()")
  if not name then return nil, "bad metric name" end
  local labels, keys = {}, {}
  if line:sub(i, i) == "{" then
    labels, keys, i = parse_labels(line, i + 1)
    if not labels then return nil, keys end
  end
  local text = line:match("^ (%S+)$", i)
  local value = text and parse_value(text)
  if not value then return nil, "bad value" end
  return { name = name, labels = labels, keys = keys, value = value, text = text }
end

local function series_key(name, labels, skip)
  local keys = {}
  for k in pairs(labels) do if k ~= skip then keys[#keys + 1] = k end end
  table.sort(keys)
  local out = { name }
  for _, k in ipairs(keys) do out[#out + 1] = k .. "=" .. string.format("%q", labels[k]) end
  return table.concat(out, ",")
end

-- Buckets of each label set rise in le to "+Inf", never fall, and +Inf equals _count.
local function check_histogram(fam)
  local sets, order = {}, {}
  for _, s in ipairs(fam.samples) do
    local k = series_key("", s.labels, "le")
    if not sets[k] then sets[k], order[#order + 1] = { buckets = {} }, k end
    local suffix = s.name:sub(#fam.name + 1)
    if suffix == "_bucket" then
      assert(s.labels.le, fam.name .. ": a bucket without le")
      table.insert(sets[k].buckets, s)
    else
      sets[k][suffix] = s.value
    end
  end
  for _, k in ipairs(order) do
    local set, last_le, last = sets[k], -math.huge, 0
    assert(set._sum and set._count, fam.name .. ": _sum and _count for every label set")
    for _, b in ipairs(set.buckets) do
      local le = parse_value(b.labels.le)
      assert(le and le > last_le, fam.name .. ": le must rise")
      assert(b.value >= last, fam.name .. ": buckets must be cumulative")
      last_le, last = le, b.value
    end
    assert.are.equal("+Inf", set.buckets[#set.buckets].labels.le)
    assert.are.equal(set._count, last)
  end
end

-- Reads a whole exposition, failing on anything out of grammar. Returns the families in
-- order, each {name, type, help, samples}, also indexed by name.
local function check(text)
  assert.are.equal("\n", text:sub(-1), "the text ends with a newline")
  local doc, fam, seen, help = {}, nil, {}, {}
  for line in text:gmatch("([^\n]*)\n") do
    local hname, htext = line:match("^# HELP ([%a_:][%w_:]*) (.*)$")
    local tname, ttype = line:match("^# TYPE ([%a_:][%w_:]*) (%a+)$")
    if hname then
      assert(not help[hname] and not doc[hname], "HELP repeated or late: " .. hname)
      help[hname] = htext
    elseif tname then
      assert(not doc[tname], "TYPE repeated: " .. tname)
      assert(({ counter = 1, gauge = 1, histogram = 1, summary = 1, untyped = 1 })[ttype], line)
      assert(help[tname], "no HELP before TYPE " .. tname)
      fam = { name = tname, type = ttype, help = help[tname], samples = {} }
      doc[#doc + 1], doc[tname] = fam, fam
    else
      assert(line:sub(1, 1) ~= "#", "a comment that is not HELP or TYPE: " .. line)
      local s, why = parse_sample(line)
      assert(s, (why or "") .. ": " .. line)
      assert(fam, "a sample before any TYPE: " .. line)
      local base = fam.type == "histogram" and s.name:match("^(.*)_bucket$")
                   or fam.type == "histogram" and s.name:match("^(.*)_sum$")
                   or fam.type == "histogram" and s.name:match("^(.*)_count$") or s.name
      assert.are.equal(fam.name, base, "a sample outside its family: " .. line)
      local key = series_key(s.name, s.labels)
      assert(not seen[key], "a series repeated: " .. line)
      seen[key] = true
      table.insert(fam.samples, s)
    end
  end
  for _, f in ipairs(doc) do
    if f.type == "histogram" then check_histogram(f) end
  end
  return doc
end

local function same_labels(a, b)
  for k, v in pairs(a) do if b[k] ~= v then return false end end
  for k, v in pairs(b) do if a[k] ~= v then return false end end
  return true
end

-- The value of the sample `name` with exactly these labels in doc, or nil.
local function value(doc, name, labels)
  for _, f in ipairs(doc) do
    for _, s in ipairs(f.samples) do
      if s.name == name and same_labels(s.labels, labels or {}) then return s.value end
    end
  end
end

local function render(m, opts) return check(assert(m:render(opts))) end

local BOUNDS = { "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf" }

local function buckets(doc, name, labels)
  local out = {}
  for i, le in ipairs(BOUNDS) do
    local l = { le = le }
    for k, v in pairs(labels) do l[k] = v end
    out[i] = value(doc, name .. "_bucket", l)
  end
  return out
end

local function plan(m, tier, total_ms, more)
  local o = { tier = tier, source = "llm", cache = "miss", total_ms = total_ms }
  for k, v in pairs(more or {}) do o[k] = v end
  m:plan(o)
end

-- Specs -------------------------------------------------------------------------------------

describe("metrics families", function()
  local FAMILIES = {
    { "planhost_requests_submitted_total", "counter" },
    { "planhost_plans_total", "counter" },
    { "planhost_fallbacks_total", "counter" },
    { "planhost_first_step_seconds", "histogram" },
    { "planhost_plan_seconds", "histogram" },
    { "planhost_prompt_chars_total", "counter" },
    { "planhost_reloads_total", "counter" },
    { "planhost_provisional_plans_total", "counter" },
    { "planhost_script_generation", "gauge" },
    { "planhost_requests_pending", "gauge" },
    { "planhost_cache_hits_total", "counter" },
    { "planhost_cache_misses_total", "counter" },
    { "planhost_cache_puts_total", "counter" },
    { "planhost_cache_evictions_total", "counter" },
    { "planhost_cache_expirations_total", "counter" },
    { "planhost_cache_coalesced_total", "counter" },
    { "planhost_cache_stale_total", "counter" },
    { "planhost_cache_entries", "gauge" },
    { "planhost_cache_bytes", "gauge" },
    { "planhost_cache_hit_ratio", "gauge" },
    { "planhost_circuit_state", "gauge" },
    { "planhost_metrics_series_dropped_total", "counter" },
  }

  local function names(doc)
    local out = {}
    for i, f in ipairs(doc) do
      out[i] = { f.name, f.type }
      assert.is_truthy(#f.help > 0, f.name .. " has a HELP text")
    end
    return out
  end

  it("writes every family once, HELP then TYPE, in a fixed order", function()
    local m = metrics.new()
    local text = assert(m:render{ cache = {}, endpoints = { { url = "http://a", state = "closed" } } })
    assert.are.same(FAMILIES, names(check(text)))
    for _, f in ipairs(FAMILIES) do
      local _, helps = ("\n" .. text):gsub("\n# HELP " .. f[1] .. " ", "")
      local _, types = ("\n" .. text):gsub("\n# TYPE " .. f[1] .. " ", "")
      assert.are.same({ f[1], 1, 1 }, { f[1], helps, types })
    end
  end)

  it("leaves the cache families out without cache stats and the circuit without endpoints", function()
    local doc = render(metrics.new())
    local want = {}
    for _, f in ipairs(FAMILIES) do
      if not f[1]:find("^planhost_cache_") and f[1] ~= "planhost_circuit_state" then want[#want + 1] = f end
    end
    assert.are.same(want, names(doc))
    assert.are.same(names(doc), names(render(metrics.new(), { endpoints = {} })))
  end)

  it("starts at zero, with both reload results written", function()
    local doc = render(metrics.new())
    assert.are.equal(0, value(doc, "planhost_requests_submitted_total"))
    assert.are.equal(0, value(doc, "planhost_reloads_total", { result = "ok" }))
    assert.are.equal(0, value(doc, "planhost_reloads_total", { result = "failed" }))
    assert.are.equal(0, value(doc, "planhost_script_generation"))
    assert.are.equal(0, value(doc, "planhost_requests_pending"))
    assert.are.equal(0, value(doc, "planhost_metrics_series_dropped_total"))
    assert.are.same({}, doc.planhost_plans_total.samples)
  end)
end)

describe("metrics counters", function()
  it("count submissions, plans, fallbacks and reloads per label set", function()
    local m = metrics.new()
    for _ = 1, 3 do m:submitted() end
    plan(m, "fast", 10)
    plan(m, "fast", 10)
    m:plan{ tier = "fast", source = "cache", cache = "hit", arm = "b", total_ms = 1 }
    m:plan{ tier = "deep", source = "heuristic", cache = "off", arm = "", total_ms = 1 }
    m:fallback("llm", "timeout")
    m:fallback("llm", "timeout")
    m:fallback("cache", "stale")
    m:reload(true)
    m:reload(false)
    m:reload(true)
    local doc = render(m, { pending = 2, generation = 7 })
    assert.are.equal(3, value(doc, "planhost_requests_submitted_total"))
    assert.are.equal(2, value(doc, "planhost_plans_total", { tier = "fast", source = "llm", cache = "miss" }))
    assert.are.equal(1, value(doc, "planhost_plans_total",
                              { tier = "fast", source = "cache", cache = "hit", arm = "b" }))
    -- arm = "" is no arm label: the two are one series to Prometheus
    assert.are.equal(1, value(doc, "planhost_plans_total", { tier = "deep", source = "heuristic", cache = "off" }))
    assert.are.equal(3, #doc.planhost_plans_total.samples)
    assert.are.equal(2, value(doc, "planhost_fallbacks_total", { from = "llm", reason = "timeout" }))
    assert.are.equal(1, value(doc, "planhost_fallbacks_total", { from = "cache", reason = "stale" }))
    assert.are.equal(2, value(doc, "planhost_reloads_total", { result = "ok" }))
    assert.are.equal(1, value(doc, "planhost_reloads_total", { result = "failed" }))
    assert.are.equal(7, value(doc, "planhost_script_generation"))
    assert.are.equal(2, value(doc, "planhost_requests_pending"))
  end)

  it("write counters as integers", function()
    local m = metrics.new()
    plan(m, "fast", 1, { prompt_chars = 123456789012 })
    local doc = render(m)
    for _, f in ipairs(doc) do
      if f.type == "counter" then
        for _, s in ipairs(f.samples) do assert.is_truthy(s.text:match("^%d+$"), s.name .. " " .. s.text) end
      end
    end
    assert.are.equal(123456789012, value(doc, "planhost_prompt_chars_total", { tier = "fast" }))
  end)

  it("keep series in the order first seen", function()
    local m = metrics.new()
    for _, t in ipairs { "b", "a", "c", "a", "b" } do plan(m, t, 1) end
    local tiers = {}
    for _, s in ipairs(render(m).planhost_plans_total.samples) do tiers[#tiers + 1] = s.labels.tier end
    assert.are.same({ "b", "a", "c" }, tiers)
  end)

  it("add prompt characters per tier, making no series for plans without a prompt", function()
    local m = metrics.new()
    plan(m, "fast", 1, { prompt_chars = 1000 })
    plan(m, "fast", 1, { prompt_chars = 234 })
    plan(m, "cached", 1, { prompt_chars = 0 })
    plan(m, "cached", 1)
    local doc = render(m)
    assert.are.equal(1234, value(doc, "planhost_prompt_chars_total", { tier = "fast" }))
    assert.are.equal(1, #doc.planhost_prompt_chars_total.samples)
  end)
end)

describe("metrics histograms", function()
  it("put a 7 ms plan in le=0.01 and above, not in le=0.005", function()
    local m = metrics.new()
    plan(m, "fast", 7)
    local doc = render(m)
    assert.are.same({ 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, buckets(doc, "planhost_plan_seconds", { tier = "fast", source = "llm" }))
    assert.are.equal(1, value(doc, "planhost_plan_seconds_count", { tier = "fast", source = "llm" }))
    assert.are.equal(0.007, value(doc, "planhost_plan_seconds_sum", { tier = "fast", source = "llm" }))
  end)

  it("are cumulative and agree with _count and _sum", function()
    local m = metrics.new()
    local times = { 1, 5, 7, 30, 30, 400, 999.5, 2600, 20000 }
    for _, t in ipairs(times) do plan(m, "fast", t, { first_step_ms = t / 2 }) end
    local doc = render(m)
    -- le is inclusive: 5 ms is in le="0.005"
    assert.are.same({ 2, 3, 3, 5, 5, 5, 6, 7, 7, 8, 8, 9 }, buckets(doc, "planhost_plan_seconds", { tier = "fast", source = "llm" }))
    local sum = 0
    for _, t in ipairs(times) do sum = sum + t end
    assert.are.equal(#times, value(doc, "planhost_plan_seconds_count", { tier = "fast", source = "llm" }))
    assert.are.equal(sum / 1000, value(doc, "planhost_plan_seconds_sum", { tier = "fast", source = "llm" }))
    assert.are.same({ 3, 3, 5, 5, 5, 6, 7, 7, 8, 8, 9, 9 },
                    buckets(doc, "planhost_first_step_seconds", { tier = "fast", source = "llm" }))
    assert.are.equal(sum / 2 / 1000, value(doc, "planhost_first_step_seconds_sum", { tier = "fast", source = "llm" }))
  end)

  it("leave the first-step histogram alone when first_step_ms is NaN or absent", function()
    local m = metrics.new()
    plan(m, "fast", 12)
    plan(m, "fast", 12, { first_step_ms = NAN })
    plan(m, "slow", 40, { first_step_ms = 20 })
    local doc = render(m)
    assert.are.equal(2, value(doc, "planhost_plan_seconds_count", { tier = "fast", source = "llm" }))
    assert.is_nil(value(doc, "planhost_first_step_seconds_count", { tier = "fast", source = "llm" }))
    assert.are.equal(1, value(doc, "planhost_first_step_seconds_count", { tier = "slow", source = "llm" }))
    assert.are.equal(14, #doc.planhost_first_step_seconds.samples)  -- one label set
  end)

  it("write an infinite time as +Inf and a negative one as 0", function()
    local m = metrics.new()
    plan(m, "inf", math.huge)
    plan(m, "neg", -5)
    local text = assert(m:render())
    local doc = check(text)
    assert.truthy(text:find('\nplanhost_plan_seconds_sum{tier="inf",source="llm"} +Inf\n', 1, true))
    assert.are.same({ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }, buckets(doc, "planhost_plan_seconds", { tier = "inf", source = "llm" }))
    assert.are.equal(1, value(doc, "planhost_plan_seconds_bucket", { tier = "neg", source = "llm", le = "0.005" }))
    assert.are.equal(0, value(doc, "planhost_plan_seconds_sum", { tier = "neg", source = "llm" }))
  end)
end)

describe("metrics label values", function()
  it("escape backslash, double quote and newline", function()
    local m = metrics.new()
    local tier = 'we"ird\\ti\ner'
    plan(m, tier, 3, { first_step_ms = 1, prompt_chars = 5 })
    m:fallback('a"b', "c\\d\ne")
    local text = assert(m:render())
    assert.truthy(text:find('planhost_plans_total{tier="we\\"ird\\\\ti\\ner",source="llm",cache="miss"} 1\n', 1, true))
    local doc = check(text)
    assert.are.equal(1, value(doc, "planhost_plans_total", { tier = tier, source = "llm", cache = "miss" }))
    assert.are.equal(1, value(doc, "planhost_first_step_seconds_count", { tier = tier, source = "llm" }))
    assert.are.equal(5, value(doc, "planhost_prompt_chars_total", { tier = tier }))
    assert.are.equal(1, value(doc, "planhost_fallbacks_total", { from = 'a"b', reason = "c\\d\ne" }))
  end)

  it("cut values at 128 bytes on a UTF-8 boundary, so longer names share a series", function()
    local m = metrics.new()
    local e = "\xc3\xa9"  -- é
    plan(m, e:rep(200), 1)
    plan(m, e:rep(64) .. "different tail", 1)
    plan(m, ("a"):rep(127) .. e, 1)
    local doc = render(m)
    assert.are.equal(2, value(doc, "planhost_plans_total", { tier = e:rep(64), source = "llm", cache = "miss" }))
    assert.are.equal(1, value(doc, "planhost_plans_total", { tier = ("a"):rep(127), source = "llm", cache = "miss" }))
    assert.are.equal(2, #doc.planhost_plans_total.samples)
  end)

  it("replace bytes that are not UTF-8 with '?'", function()
    local m = metrics.new()
    plan(m, "bad\xff\xc3", 1)
    plan(m, "\xed\xa0\x80", 1)  -- a surrogate
    local doc = render(m)
    assert.are.equal(1, value(doc, "planhost_plans_total", { tier = "bad??", source = "llm", cache = "miss" }))
    assert.are.equal(1, value(doc, "planhost_plans_total", { tier = "???", source = "llm", cache = "miss" }))
  end)
end)

describe("metrics series cap", function()
  local function labelled(doc)
    local n = 0
    for _, name in ipairs { "planhost_plans_total", "planhost_fallbacks_total", "planhost_prompt_chars_total" } do
      n = n + #doc[name].samples
    end
    for _, name in ipairs { "planhost_first_step_seconds", "planhost_plan_seconds" } do
      n = n + #doc[name].samples / 14
    end
    return n
  end

  it("counts what would need a series past 1024 as dropped, and stays bounded", function()
    local m = metrics.new()
    for i = 1, 1025 do plan(m, "tier" .. i, 1) end  -- two series a tier: plans, plan_seconds
    local doc = render(m)
    assert.are.equal(1024, labelled(doc))
    local dropped = value(doc, "planhost_metrics_series_dropped_total")
    assert.is_true(dropped >= 1)
    assert.are.equal((1025 - 512) * 2, dropped)
    assert.are.equal(1, value(doc, "planhost_plans_total", { tier = "tier512", source = "llm", cache = "miss" }))
    assert.is_nil(value(doc, "planhost_plans_total", { tier = "tier513", source = "llm", cache = "miss" }))

    local before = assert(m:render()):gsub("\nplanhost_metrics_series_dropped_total %d+\n", "")
    for i = 1026, 6000 do plan(m, ("tier%d-"):format(i) .. ("x"):rep(120), 1, { first_step_ms = 1 }) end
    m:fallback("new", "reason")
    local after = assert(m:render())
    assert.are.equal(before, (after:gsub("\nplanhost_metrics_series_dropped_total %d+\n", "")))
    assert.is_true(value(check(after), "planhost_metrics_series_dropped_total") > dropped)

    plan(m, "tier1", 1)  -- existing series still count
    m:reload(true)
    doc = render(m)
    assert.are.equal(2, value(doc, "planhost_plans_total", { tier = "tier1", source = "llm", cache = "miss" }))
    assert.are.equal(1, value(doc, "planhost_reloads_total", { result = "ok" }))
  end)
end)

describe("metrics output", function()
  local function busy()
    local m = metrics.new()
    m:submitted()
    plan(m, "fast", 7, { first_step_ms = 3, prompt_chars = 10, arm = "a" })
    plan(m, 'q"t', 70)
    m:fallback("llm", "timeout")
    m:reload(false)
    return m
  end
  local GAUGES = { pending = 1, generation = 3, cache = { hits = 2, misses = 1 },
                   endpoints = { { url = "http://a", state = "open" } } }

  it("is byte-identical across renders with no change between, and across instances", function()
    local m = busy()
    local a, b = m:render(GAUGES), m:render(GAUGES)
    check(a)
    assert.are.equal(a, b)
    assert.are.equal(a, busy():render(GAUGES))
  end)

  it("fails cleanly at the byte cap, leaving a prefix of the text", function()
    local m = busy()
    local full = m:render(GAUGES)
    local text, err, partial = m:render{ cap = 100 }
    assert.is_nil(text)
    assert.are.equal("metrics:render: the text passed the cap of 100 bytes", err)
    assert.is_true(#partial <= 100)
    assert.are.equal(full:sub(1, #partial), partial)
    GAUGES.cap = #full
    assert.are.equal(full, m:render(GAUGES))
    GAUGES.cap = #full - 1
    assert.is_nil(m:render(GAUGES))
    GAUGES.cap = nil
  end)
end)

describe("metrics cache gauges", function()
  it("copy the cache's counters and sizes and compute the hit ratio", function()
    local c = H.planhost.cache.new()
    c:put("1", '{"plan_id":"p"}', { tier = "fast", source = "llm" })
    assert.truthy(c:get("1"))
    assert.is_nil(c:get("2"))
    c:count_coalesced(4)
    c:count_stale()
    local st = c:stats()
    local doc = render(metrics.new(), { cache = st })
    assert.are.equal(1, value(doc, "planhost_cache_hits_total"))
    assert.are.equal(1, value(doc, "planhost_cache_misses_total"))
    assert.are.equal(1, value(doc, "planhost_cache_puts_total"))
    assert.are.equal(0, value(doc, "planhost_cache_evictions_total"))
    assert.are.equal(0, value(doc, "planhost_cache_expirations_total"))
    assert.are.equal(4, value(doc, "planhost_cache_coalesced_total"))
    assert.are.equal(1, value(doc, "planhost_cache_stale_total"))
    assert.are.equal(1, value(doc, "planhost_cache_entries"))
    assert.are.equal(st.bytes, value(doc, "planhost_cache_bytes"))
    assert.are.equal(0.5, value(doc, "planhost_cache_hit_ratio"))
    c:close()
  end)

  it("writes a ratio of 0, not NaN, before any lookup, and round-trips others", function()
    local text = assert(metrics.new():render{ cache = { hits = 0, misses = 0 } })
    assert.truthy(text:find("\nplanhost_cache_hit_ratio 0\n", 1, true))
    local doc = render(metrics.new(), { cache = { hits = 1, misses = 2, evictions = 5, expirations = 6 } })
    assert.are.equal(1 / 3, value(doc, "planhost_cache_hit_ratio"))
    assert.are.equal(5, value(doc, "planhost_cache_evictions_total"))
    assert.are.equal(6, value(doc, "planhost_cache_expirations_total"))
    assert.are.equal(1, value(render(metrics.new(), { cache = { hits = 9 } }), "planhost_cache_hit_ratio"))
  end)
end)

describe("metrics circuit states", function()
  it("writes three lines per endpoint, 1 for the current state", function()
    local eps = { { url = "http://a:1", state = "closed" }, { url = "http://b:2", state = "open" },
                  { url = 'http://c/"x"', state = "half_open" }, { url = "http://d", state = "weird" } }
    local doc = render(metrics.new(), { endpoints = eps })
    assert.are.equal(12, #doc.planhost_circuit_state.samples)
    for _, ep in ipairs(eps) do
      local ones = 0
      for _, st in ipairs { "closed", "open", "half_open" } do
        local v = value(doc, "planhost_circuit_state", { endpoint = ep.url, state = st })
        assert.are.equal(st == ep.state and 1 or 0, v)
        ones = ones + v
      end
      assert.are.equal(ep.state == "weird" and 0 or 1, ones)
    end
  end)
end)

describe("metrics binding", function()
  it("raises on unknown option keys and bad arguments", function()
    local m = metrics.new()
    assert.has_error(function() m:plan{ teir = "x", source = "llm", cache = "miss", total_ms = 1 } end,
                     "metrics:plan: unknown option 'teir'")
    assert.has_error(function() m:plan{ source = "llm", cache = "miss", total_ms = 1 } end,
                     "metrics:plan: option 'tier' must be a string without NUL bytes")
    assert.has_error(function() m:plan{ tier = "a\0b", source = "llm", cache = "miss", total_ms = 1 } end)
    assert.has_error(function() m:plan{ tier = "a", source = "llm", cache = "miss" } end,
                     "metrics:plan: option 'total_ms' must be a number")
    assert.has_error(function() m:plan{ tier = "a", source = "llm", cache = "miss", total_ms = 1, prompt_chars = -1 } end)
    assert.has_error(function() m:render{ pendng = 1 } end, "metrics:render: unknown option 'pendng'")
    assert.has_error(function() m:render{ cache = { hitz = 1 } } end,
                     "metrics:render: cache: unknown option 'hitz'")
    assert.has_error(function() m:render{ cache = 5 } end, "metrics:render: option 'cache' must be a table")
    assert.has_error(function() m:render{ endpoints = { { url = "u", state = "open", id = 1 } } } end,
                     "metrics:render: endpoint: unknown option 'id'")
    assert.has_error(function() m:render{ endpoints = { { url = "u" } } } end)
    assert.has_error(function() m:render{ generation = -1 } end)
    assert.has_error(function() m:reload("yes") end)
    assert.has_error(function() m:fallback("llm") end)
    assert.has_error(function() m:fallback("llm", "a\0b") end)
    m:close()
    assert.has_error(function() m:submitted() end, "metrics: the metrics is closed")
    m:close()
  end)

  it("frees on collection and on close", function()
    do local m <close> = metrics.new(); m:submitted() end
    for _ = 1, 50 do plan(metrics.new(), "x", 1) end
    collectgarbage()
    collectgarbage()
  end)
end)
