-- report.lua — turns trial records into per-arm statistics, a comparison, and the files of
-- `planhost ab --out DIR`: report.md, trials.ndjson, plot.svg. Statistics come from
-- stats.lua (bootstrap intervals on a fixed seed, Wilson intervals, exact or z tests).
local stats = require "stats"
local cjson = require "cjson"

local P = {}

local function values(records, field)
  local out = {}
  for _, r in ipairs(records) do
    local v = r[field]
    if type(v) == "number" and v > 0 then out[#out + 1] = v end
  end
  return out
end

local function count(records, pred)
  local n = 0
  for _, r in ipairs(records) do if pred(r) then n = n + 1 end end
  return n
end

local function tally(records, field)
  local t, keys = {}, {}
  for _, r in ipairs(records) do
    for _, v in ipairs(r[field] or {}) do
      if not t[v] then keys[#keys + 1] = v end
      t[v] = (t[v] or 0) + 1
    end
  end
  table.sort(keys, function(a, b) return t[a] > t[b] or (t[a] == t[b] and a < b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = ("%s %d"):format(k, t[k]) end
  return #parts > 0 and table.concat(parts, ", ") or "none"
end

local function p95(xs) return stats.quantile(xs, 0.95) end
local function mean(xs) local s = 0; for i = 1, #xs do s = s + xs[i] end; return s / #xs end

-- mean, median and p95 of xs, each with its bootstrap 95% interval (seed 1).
local function latency(xs)
  if #xs == 0 then return nil end
  local out = { n = #xs }
  for name, fn in pairs({ mean = mean, median = stats.median, p95 = p95 }) do
    out[name] = stats.bootstrap_ci(xs, fn, { reps = 2000, seed = 1 })
  end
  return out
end

-- Per-arm figures.
function P.arm(records)
  local n = #records
  local valid = count(records, function(r) return r.valid end)
  local fell = count(records, function(r) return not r.from_model end)
  local server = count(records, function(r) return r.counts == "server" end)
  return {
    n = n, records = records,
    prompt_chars = stats.summary(values(records, "prompt_chars")),
    prompt_tokens = stats.summary(values(records, "prompt_tokens")),
    completion_tokens = stats.summary(values(records, "completion_tokens")),
    token_source = server == n and "the server's counts" or server == 0 and "estimated (chars / 4)"
      or ("%d of %d from the server"):format(server, n),
    first_step = latency(values(records, "first_step_ms")),
    total = latency(values(records, "total_ms")),
    total_ms = values(records, "total_ms"), first_ms = values(records, "first_step_ms"),
    valid = valid, validity = stats.wilson(valid, n),
    fallback = fell, fallback_rate = stats.wilson(fell, n),
    cache_hits = count(records, function(r) return r.cache == "hit" or r.cache == "coalesced" end),
    dropped = tally(records, "dropped"), tools = tally(records, "tools"), reasons = tally(records, "fallbacks"),
  }
end

local function latency_verdict(cmp, a, b)
  if not cmp then return "not enough data" end
  local head = ("ratio of medians %s/%s = %.2f [%.2f, %.2f]"):format(a, b, cmp.ratio, cmp.lo, cmp.hi)
  if not cmp.significant then
    return head .. ": no significant difference" ..
      (cmp.needed_n < math.huge and ("; about %d trials per arm would be needed to tell"):format(cmp.needed_n) or "")
  end
  return ("%s: %s is %.2f× %s than %s"):format(head, a, math.max(cmp.ratio, 1 / cmp.ratio),
                                               cmp.ratio < 1 and "faster" or "slower", b)
end

local function validity_verdict(cmp, a, b)
  if not cmp then return "not enough data" end
  local head = ("validity %s − %s = %+.1f points [%+.1f, %+.1f], %s test p = %.3g"):format(a, b,
    100 * cmp.diff, 100 * cmp.diff_lo, 100 * cmp.diff_hi, cmp.test == "fisher" and "Fisher's exact" or "two-proportion z",
    cmp.p_value)
  if not cmp.significant then
    return head .. ": no significant difference" ..
      (cmp.needed_n < math.huge and ("; about %d trials per arm would be needed to detect a difference this size"):format(cmp.needed_n) or "")
  end
  return ("%s: %s is %s valid than %s"):format(head, cmp.diff > 0 and a or b, "more", cmp.diff > 0 and b or a)
end

-- Compares arm b_name against a_name.
function P.compare(A, B, a_name, b_name)
  local lat = #A.total_ms > 0 and #B.total_ms > 0 and stats.compare_latency(A.total_ms, B.total_ms, { seed = 1 }) or nil
  local first = #A.first_ms > 0 and #B.first_ms > 0 and stats.compare_latency(A.first_ms, B.first_ms, { seed = 1 }) or nil
  local val = A.n > 0 and B.n > 0 and stats.compare_validity(A.valid, A.n, B.valid, B.n) or nil
  return {
    total = latency_verdict(lat, a_name, b_name), first = latency_verdict(first, a_name, b_name),
    validity = validity_verdict(val, a_name, b_name),
  }
end

-- ---- the files -------------------------------------------------------------------------

local function ci(c, fmt)
  if not c then return "—" end
  fmt = fmt or "%.1f"
  return (fmt .. " [" .. fmt .. ", " .. fmt .. "]"):format(c.estimate, c.lo, c.hi)
end

local function pct(w) return ("%.0f%% [%.0f, %.0f]"):format(100 * (w.estimate or 0), 100 * w.lo, 100 * w.hi) end

local function md(e, arms, order, cmps, meta)
  local L = {}
  local function add(s) L[#L + 1] = s end
  add("# A/B report: " .. e.name)
  add("")
  add(meta.label)
  add("")
  local per = {}
  for _, name in ipairs(order) do per[#per + 1] = ("%s %d"):format(name, arms[name].n) end
  add(("Trials per arm: %s%s; %s."):format(table.concat(per, ", "),
    e.repetitions and (", interleaved across arms (A B, then B A, ...), %d repetitions"):format(e.repetitions) or "",
    meta.when))
  add("Intervals: 95%; latency intervals are percentile bootstraps (2,000 resamples, seed 1); rates use Wilson intervals.")
  add("Prompt tokens are the server's own counts where it reports them (Ollama's prompt_eval_count leaves out a prefix")
  add("it had cached, so they can be far below the prompt's size); otherwise characters / 4.")
  add("")
  add("| arm | trials | prompt chars (median) | prompt tokens (median) | completion tokens (median) | first step ms: median | total ms: mean | total ms: median | total ms: p95 | valid | fallback | cache hits |")
  add("|---|---:|---:|---:|---:|---|---|---|---|---|---|---:|")
  for _, name in ipairs(order) do
    local a = arms[name]
    add(("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |"):format(name, a.n,
      a.prompt_chars.median and ("%.0f"):format(a.prompt_chars.median) or "—",
      a.prompt_tokens.median and ("%.0f"):format(a.prompt_tokens.median) or "—",
      a.completion_tokens.median and ("%.0f"):format(a.completion_tokens.median) or "—",
      a.first_step and ci(a.first_step.median) or "—", a.total and ci(a.total.mean) or "—",
      a.total and ci(a.total.median) or "—", a.total and ci(a.total.p95) or "—",
      pct(a.validity), pct(a.fallback_rate), a.cache_hits))
  end
  add("")
  add("First step (submission to the first step event), ms:")
  add("")
  add("| arm | n | mean | median | p95 |")
  add("|---|---:|---|---|---|")
  for _, name in ipairs(order) do
    local f = arms[name].first_step
    add(("| %s | %d | %s | %s | %s |"):format(name, f and f.n or 0, f and ci(f.mean) or "—",
      f and ci(f.median) or "—", f and ci(f.p95) or "—"))
  end
  add("")
  for _, name in ipairs(order) do
    local a = arms[name]
    local batch = e.arms and e.arms[name] and e.arms[name].batch
    local per_agent = batch and batch > 1 and a.total and
      (" %d agents per request: %.0f ms of request time per agent (median total / %d) — latency per agent is higher, throughput too."):format(
        batch, a.total.median.estimate / batch, batch) or ""
    add(("- **%s**: tokens %s; tools used: %s; dropped steps: %s; fallback reasons: %s.%s"):format(
      name, a.token_source, a.tools, a.dropped, a.reasons, per_agent))
  end
  add("")
  add("## Comparison")
  add("")
  for _, c in ipairs(cmps) do
    add(("**%s vs %s**"):format(c.a, c.b))
    add("")
    add("- total latency: " .. c.r.total)
    add("- first step: " .. c.r.first)
    add("- " .. c.r.validity)
    add("")
  end
  add("Valid = the plan came from the model (or its cache), complete, with no step dropped.")
  add("")
  add("Files: `trials.ndjson` (one record per agent per trial), `plot.svg` (latency per arm, validity).")
  return table.concat(L, "\n") .. "\n"
end

-- A self-contained SVG: total latency per arm as a box (p25-p75, median line, whiskers
-- p5-p95, every trial a dot), and validity bars with their Wilson intervals.
local function svg(arms, order, label)
  local W, H, top, left = 760, 420, 60, 70
  local pw, ph = 420, 300
  local maxv = 1
  for _, name in ipairs(order) do
    for _, v in ipairs(arms[name].total_ms) do maxv = math.max(maxv, v) end
  end
  local function y(v) return top + ph - ph * v / maxv end
  local out = { ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">'):format(W, H),
                ('<rect width="%d" height="%d" fill="white"/>'):format(W, H),
                ('<text x="10" y="20" font-size="14">%s</text>'):format(label),
                ('<text x="%d" y="45">total latency per trial (ms)</text>'):format(left),
                ('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>'):format(left, top, left, top + ph) }
  for i = 0, 4 do
    local v = maxv * i / 4
    out[#out + 1] = ('<text x="%d" y="%.1f" text-anchor="end">%.0f</text>'):format(left - 6, y(v) + 4, v)
  end
  local slot = pw / #order
  for i, name in ipairs(order) do
    local xs, cx = arms[name].total_ms, left + slot * (i - 0.5)
    if #xs > 0 then
      local q = function(p) return stats.quantile(xs, p) end
      out[#out + 1] = ('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="gray"/>'):format(cx, y(q(0.05)), cx, y(q(0.95)))
      out[#out + 1] = ('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#cde" stroke="black"/>'):format(
        cx - slot / 4, y(q(0.75)), slot / 2, math.max(1, y(q(0.25)) - y(q(0.75))))
      out[#out + 1] = ('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black" stroke-width="2"/>'):format(
        cx - slot / 4, y(q(0.5)), cx + slot / 4, y(q(0.5)))
      for k, v in ipairs(xs) do
        out[#out + 1] = ('<circle cx="%.1f" cy="%.1f" r="1.5" fill="#345" fill-opacity="0.5"/>'):format(
          cx - slot / 6 + (slot / 3) * ((k * 0.618) % 1), y(v))
      end
    end
    out[#out + 1] = ('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'):format(cx, top + ph + 18, name)
  end
  local bx, bw = left + pw + 60, 200
  out[#out + 1] = ('<text x="%d" y="45">valid plans (95%% Wilson)</text>'):format(bx)
  local bslot = bw / #order
  for i, name in ipairs(order) do
    local w, cx = arms[name].validity, bx + bslot * (i - 0.5)
    local function yv(p) return top + ph - ph * p end
    out[#out + 1] = ('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#9c9"/>'):format(
      cx - bslot / 4, yv(w.estimate or 0), bslot / 2, ph * (w.estimate or 0))
    out[#out + 1] = ('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>'):format(cx, yv(w.lo), cx, yv(w.hi))
    out[#out + 1] = ('<text x="%.1f" y="%d" text-anchor="middle">%s %.0f%%</text>'):format(
      cx, top + ph + 18, name, 100 * (w.estimate or 0))
  end
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n") .. "\n"
end

-- Writes report.md, trials.ndjson and plot.svg into dir; returns the Markdown text.
function P.write(dir, e, records, meta)
  local by, order = {}, {}
  for _, r in ipairs(records) do
    if not by[r.arm] then by[r.arm] = {}; order[#order + 1] = r.arm end
    table.insert(by[r.arm], r)
  end
  table.sort(order)
  if #order < 1 then error("planhost ab: no trials to report", 0) end
  local arms = {}
  for _, name in ipairs(order) do arms[name] = P.arm(by[name]) end
  local cmps = {}
  for i = 2, #order do
    cmps[#cmps + 1] = { a = order[1], b = order[i], r = P.compare(arms[order[1]], arms[order[i]], order[1], order[i]) }
  end
  os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
  local text = md(e, arms, order, cmps, meta)
  local f = assert(io.open(dir .. "/report.md", "wb")); f:write(text); f:close()
  f = assert(io.open(dir .. "/trials.ndjson", "wb"))
  for _, r in ipairs(records) do
    r.simulated = meta.simulated
    f:write(cjson.encode(r), "\n")
  end
  f:close()
  f = assert(io.open(dir .. "/plot.svg", "wb")); f:write(svg(arms, order, meta.label)); f:close()
  return text, arms, cmps
end

return P
