-- budgets — the DESIGN.md "Performance budgets" table checked against a finished report:
-- reads build/bench/BENCH.md (after every other section is written) and prints a Markdown
-- section with one row per budget: the figures pulled from the report's sections and "met",
-- "NOT met" or "not measured" (the figure is not in the report, e.g. a section was skipped).
--
--   lua5.4 tests/bench/peers/budgets.lua [build/bench/BENCH.md]
--
-- Sections are found by their "## " heading, tables by their header cells (substring match),
-- so column order and extra columns do not matter; every figure must be found and parse as a
-- number, or the row says "not measured". The budgets themselves are restated here (RULES),
-- in DESIGN.md's order. Plain Lua 5.4, no modules.
local path = arg[1] or "build/bench/BENCH.md"
local f, err = io.open(path, "rb")
if not f then
  print("## Budgets (DESIGN.md), met or not\n\n(skipped: " .. err .. ")")
  return
end
local text = f:read("a")
f:close()

-- ---- reading the report ----

-- Sections by level-2 heading: { {title = "...", lines = {...}}, ... } in file order.
local sections = {}
for line in (text .. "\n"):gmatch("(.-)\r?\n") do
  local title = line:match("^##%s+(.-)%s*$")
  if title and not line:match("^###") then
    sections[#sections + 1] = { title = title, lines = {} }
  elseif #sections > 0 then
    local s = sections[#sections]
    s.lines[#s.lines + 1] = line
  end
end

-- The first section whose title starts with prefix (plain text, case-insensitive).
local function section(prefix)
  prefix = prefix:lower()
  for _, s in ipairs(sections) do
    if s.title:lower():sub(1, #prefix) == prefix then return s end
  end
end

local function cells(line)
  local out = {}
  for c in line:gsub("^%s*|", ""):gsub("|%s*$", ""):gmatch("([^|]*)") do
    out[#out + 1] = c:match("^%s*(.-)%s*$")
  end
  return out
end

-- Every Markdown table of a section: { {head = {...}, rows = {{...}, ...}, after = i}, ... };
-- after is the index of the first line following the table.
local function tables(s)
  local out, lines, i = {}, s and s.lines or {}, 1
  while i < #lines do
    if lines[i]:match("^%s*|") and lines[i + 1]:match("^%s*|[%s:|-]*%-%-") then
      local t = { head = cells(lines[i]), rows = {} }
      i = i + 2
      while lines[i] and lines[i]:match("^%s*|") do
        t.rows[#t.rows + 1] = cells(lines[i])
        i = i + 1
      end
      t.after = i
      out[#out + 1] = t
    else
      i = i + 1
    end
  end
  return out
end

-- Index of the first header cell containing want (plain, case-insensitive).
local function col(t, want)
  for i, h in ipairs(t.head) do
    if h:lower():find(want:lower(), 1, true) then return i end
  end
end

-- The first table of section s having every listed column.
local function table_with(s, ...)
  for _, t in ipairs(tables(s)) do
    local ok = true
    for _, w in ipairs { ... } do ok = ok and col(t, w) ~= nil end
    if ok then return t end
  end
end

-- First number in a cell ("2.11x", "1,234", "182 / 263" -> 182); nth picks a later one.
local function num(cell, nth)
  if not cell then return nil end
  local k = 0
  for m in cell:gmatch("%-?%d[%d,]*%.?%d*") do
    k = k + 1
    if k == (nth or 1) then return tonumber((m:gsub(",", ""))) end
  end
end

local function fmt(x)
  return (x >= 100 and "%.0f" or "%.2f"):format(x)
end

-- ---- the budgets (DESIGN.md order) ----
-- Each measure returns figure text and a verdict (true met, false not met), or nil when the
-- report does not hold the figure.

local function parser_budget()
  local t = table_with(section("JSON tokenizer"), "piece", "jsonstream MB/s", "jsonstream / yajl")
  if not t then return nil end
  local cp, cm, cr = col(t, "piece"), col(t, "jsonstream MB/s"), col(t, "jsonstream / yajl")
  local by, ratios, worst = {}, {}, nil
  for _, r in ipairs(t.rows) do
    local p, mb, x = r[cp], num(r[cm]), num(r[cr])
    if not (mb and x) then return nil end
    by[p] = mb
    ratios[#ratios + 1] = ("%s %sx"):format(p, fmt(x))
    if not worst or x < worst then worst = x end
  end
  if not (by.whole and by["4"] and worst) then return nil end
  local ok = by.whole >= 500 and by["4"] >= 100 and worst >= 2
  return ("whole %s MB/s, 4-byte %s MB/s; vs yajl: %s"):format(fmt(by.whole), fmt(by["4"]),
    table.concat(ratios, ", ")), ok
end

-- Snapshot hash: the row nearest 1 KB of each table that has a bytes and a hash column.
local function hash_budget()
  local found, ok = {}, true
  local function nearest(t, cb, ch, label)
    local best
    for _, r in ipairs(t.rows) do
      local b, ns = num(r[cb]), num(r[ch])
      if b and ns and (not best or math.abs(b - 1024) < math.abs(best.b - 1024)) then
        best = { b = b, ns = ns, name = r[1] }
      end
    end
    if best then
      found[#found + 1] = ("%s ns (%s, %d bytes, %s)"):format(fmt(best.ns), best.name, best.b, label)
      ok = ok and best.ns <= 2000
    end
  end
  local t = table_with(section("Snapshot hash"), "bytes", "snaphash (ns)")
  if t then nearest(t, col(t, "bytes"), col(t, "snaphash (ns)"), "snaphash bench") end
  t = table_with(section("Plan cache on the scenario"), "bytes", "perceptual hash")
  if t then nearest(t, col(t, "bytes"), col(t, "perceptual hash"), "scenario bench") end
  if #found == 0 then return nil end
  return table.concat(found, "; "), ok
end

-- bench_plan's section: per API, the CPU ratio and the cache hit end to end.
local function plan_runs()
  local s, runs, api = section("Host CPU per streamed plan"), {}, nil
  for _, line in ipairs(s and s.lines or {}) do
    api = line:match("^%s*|%s*client %(([%w_-]+)") or api
    local ratio = line:match("CPU ratio planhost / bare libcurl[^:]*:%s*([%d.]+)x")
    local hit = line:match("median ([%d.]+) %S*s CPU over") -- "µs" or "us"
    if api and (ratio or hit) then
      runs[api] = runs[api] or {}
      runs[api].ratio = tonumber(ratio) or runs[api].ratio
      runs[api].hit = tonumber(hit) or runs[api].hit
      runs[#runs + 1] = not runs[api].seen and api or nil
      runs[api].seen = true
    end
  end
  return runs
end

local function list_apis(runs, field, unit, limit, label)
  local out, ok = {}, true
  for _, api in ipairs(runs) do
    local v = runs[api][field]
    if v then
      out[#out + 1] = ("%s%s (%s%s run)"):format(fmt(v), unit, label, api)
      ok = ok and v <= limit
    end
  end
  return out, ok
end

-- Appends "V µs (LABEL)" to `out` for each row of t with a number in column `vc` (LABEL: the
-- `label` format applied to column `lc`); returns out, and ok with each value <= limit.
local function rows_within(t, lc, vc, label, limit, out, ok)
  for _, r in ipairs(t.rows) do
    local v = num(r[vc])
    if v then
      out[#out + 1] = ("%s µs (" .. label .. ")"):format(fmt(v), r[lc])
      ok = ok and v <= limit
    end
  end
  return out, ok
end

local function cache_hit_budget()
  local out, ok = list_apis(plan_runs(), "hit", " µs", 10, "end to end, ")
  local t = table_with(section("Plan cache on the scenario"), "scenario", "whole hit path")
  if t then
    out, ok = rows_within(t, col(t, "scenario"), col(t, "whole hit path"), "%s stream", 10, out, ok)
  end
  if #out == 0 then return nil end
  return "median CPU: " .. table.concat(out, ", "), ok
end

local function plan_cpu_budget()
  local out, ok = list_apis(plan_runs(), "ratio", "x", 1.2, "")
  if #out == 0 then return nil end
  return "planhost / bare libcurl CPU medians: " .. table.concat(out, ", "), ok
end

local function memory_budget()
  local out, ok = {}, true
  local t = table_with(section("Plan cache (budget"), "measure", "bytes per entry")
  if t then
    local cm, cb, worst = col(t, "measure"), col(t, "bytes per entry"), nil
    for _, r in ipairs(t.rows) do
      local v = num(r[cb])
      if v and (not worst or v > worst.v) then worst = { v = v, what = r[cm]:gsub("%s*%(.*", "") } end
    end
    if worst then
      out[#out + 1] = ("%s B (400-byte plans, largest measure: %s)"):format(fmt(worst.v), worst.what)
      ok = ok and worst.v <= 2048
    end
  end
  t = table_with(section("Plan cache on the scenario"), "scenario", "bytes per plan")
  if t then
    local cs, cb = col(t, "scenario"), col(t, "bytes per plan")
    local worst
    for _, r in ipairs(t.rows) do
      local v = num(r[cb], 2) or num(r[cb])
      if v and (not worst or v > worst.v) then worst = { v = v, name = r[cs] } end
    end
    if worst then
      out[#out + 1] = ("%s B (%s stream, all the cache holds)"):format(fmt(worst.v), worst.name)
      ok = ok and worst.v <= 2048
    end
  end
  if #out == 0 then return nil end
  return table.concat(out, "; "), ok
end

local function not_in_report() return nil end

-- Not a timing: tests/unit/planparse_spec.lua checks at every piece size that each step comes
-- out of the very feed call that brought its closing brace (no buffering of the stream).
local function step_event_budget()
  return "checked by tests/unit/planparse_spec.lua at every piece size (make test), not timed", true
end

local function poll_budget()
  local t = table_with(section("One poll with 1,000 requests pending"), "pending", "poll(0) CPU median")
  if not t then return nil end
  local out, ok = rows_within(t, 1, col(t, "poll(0) CPU median"), "%s", 100, {}, true)
  if #out == 0 then return nil end
  return "median CPU: " .. table.concat(out, "; "), ok
end

local RULES = {
  { "incremental parser on plan JSON",
    ">= 500 MB/s whole, >= 100 MB/s in 4-byte pieces, >= 2x yajl at every piece size", parser_budget },
  { "step event after its closing brace arrives", "same call, no extra copy of the stream", step_event_budget },
  { "snapshot hash, 1 KB snapshot JSON", "<= 2 µs", hash_budget },
  { "cache hit, snapshot JSON in -> validated plan out", "<= 10 µs", cache_hit_budget },
  { "CPU per streamed LLM plan against an instant local server",
    "<= 1.2x a bare libcurl client, same run", plan_cpu_budget },
  { "memory per cached plan", "<= 2 KB (2048 B)", memory_budget },
  { "1,000 agents pending, one poll call with nothing ready", "<= 100 µs", poll_budget },
}

local out = {
  "## Budgets (DESIGN.md), met or not",
  "",
  "Figures pulled from the sections above (tests/bench/peers/budgets.lua); a budget whose figure",
  "is not in this report says \"not measured\". Every part of a row must hold for \"met\".",
  "",
  "| path | budget | measured in this report | verdict |",
  "|---|---|---|---|",
}
for _, r in ipairs(RULES) do
  local figure, ok = r[3]()
  local verdict = figure == nil and "not measured" or ok and "met" or "NOT met"
  out[#out + 1] = ("| %s | %s | %s | %s |"):format(r[1], r[2], figure or "-", verdict)
end
io.write(table.concat(out, "\n"), "\n")
