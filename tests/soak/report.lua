-- The end of a soak run: judge turns a mode's result record into checks, report writes the
-- Markdown report (to stdout and to opt.out) from the records of the modes that ran.
--
-- Depends on tests/helpers.lua (H) and soak.common (check, check_rss, fd_text, constants).
-- The options come in as an argument: judge(opt, res), report(opt, results, wall_s, all_ok).
local H = require "helpers"
local C = require "soak.common"
local SIM_ARGS, SAMPLE_EVERY = C.SIM_ARGS, C.SAMPLE_EVERY
local check, check_rss, fd_text = C.check, C.check_rss, C.fd_text

-- ---- the checks of a mode -------------------------------------------------------------------

-- Adds the checks of a mode that ran to the end to res.checks; `opt` the options it ran with.
local function judge(opt, res)
  local expected = opt.requests - res.refused
  check(res, "every request submitted", res.submitted == opt.requests and res.refused == 0,
    ("%d of %d submitted, %d refused"):format(res.submitted, opt.requests, res.refused))
  check(res, "requests lost = 0", res.lost == 0, res.lost .. " without a plan")
  check(res, "duplicate plans = 0", res.duplicates == 0, res.duplicates .. " extra plan events")
  check(res, "no event after a cancel (or after the plan)", res.after_cancel == 0, res.after_cancel .. " events")
  check(res, "no event for an unknown request", res.stray == 0, res.stray .. " events")
  if res.mode == "api" then
    check(res, "plans = requests - cancelled in flight", res.plans == expected - res.cancel_in_flight,
      ("%d plans, %d requests, %d cancelled in flight"):format(res.plans, expected, res.cancel_in_flight))
    check(res, "nothing pending at the end", res.pending_end == 0, tostring(res.pending_end))
    check(res, "reload events match the edits",
      res.reload_ok == res.edits_ok and res.reload_failed == res.edits_broken and res.reload_wrong == 0 and res.reload_missed == 0,
      ("edits %d good / %d broken; events %d ok / %d failed; %d wrong, %d missing"):format(res.edits_ok,
        res.edits_broken, res.reload_ok, res.reload_failed, res.reload_wrong, res.reload_missed))
    check(res, "the last good generation serves while a broken script is on disk",
      res.edits_broken == 0 or res.plans_while_broken > 0, res.plans_while_broken .. " plans delivered meanwhile")
    check(res, "open fds back to the starting level", res.fd_after.total == res.fd_before.total,
      ("%d before the host, %d after closing it"):format(res.fd_before.total, res.fd_after.total))
  else
    check(res, "every stream complete unless we killed it", res.bad_streams == 0 and res.bad_lines == 0,
      ("%d bad streams, %d bad or cut lines"):format(res.bad_streams, res.bad_lines))
    -- a client killed before the response headers may or may not have had its body read
    local sub = res.metric_submitted or -1
    check(res, "the host saw every snapshot (but those of clients killed before an answer)",
      sub <= opt.requests and sub >= opt.requests - res.unsent,
      ("planhost_requests_submitted_total %d; %d snapshots sent, %d of them in POSTs killed before an answer")
        :format(sub, opt.requests, res.unsent))
    check(res, "serve answers /health at the end, nothing pending", res.health_end == 200 and res.pending_end == 0,
      ("HTTP %s, pending %s"):format(tostring(res.health_end), tostring(res.pending_end)))
    check(res, "serve exits 0 on SIGTERM, nothing from the sanitizers", res.exit_status == 0 and not res.serve_log_bad,
      ("exit status %s%s"):format(tostring(res.exit_status), res.serve_log_bad and (", log: " .. res.serve_log_bad) or ""))
    check(res, "edits of serve's --root give reloads (ok / failed as edited)",
      res.reload_ok == res.edits_ok and res.reload_failed == res.edits_broken,
      ("edits %d good / %d broken; planhost_reloads_total ok %d / failed %d; /health generation %s%s")
        :format(res.edits_ok, res.edits_broken, res.reload_ok, res.reload_failed, tostring(res.generation),
          res.reload_ok + res.reload_failed == 0 and res.edits_ok + res.edits_broken > 0
            and " — serve never looked: it opens its host with watch off (host/serve.c, ph_cli_open_host(&o, 0))" or ""))
    check(res, "the serving generation keeps serving", res.plans > 0 and res.health_end == 200,
      ("%d plans, generation %s at the end"):format(res.plans, tostring(res.generation)))
    -- libcurl keeps its connections to the model server open between requests: those are
    -- counted apart; everything else must be back where it was before the first request
    local other_before, other_after = res.fd_before.total - res.fd_before.pool, res.fd_after.total - res.fd_after.pool
    check(res, "open fds back to the starting level (keep-alive connections to the model server apart)",
      other_after == other_before and res.fd_after.pool <= 64,
      ("%d other fds after the banner, %d at the end; %d kept-alive connections to the model server")
        :format(other_before, other_after, res.fd_after.pool))
  end
  check(res, "the simulator is still up", res.sim_alive, res.sim_alive and "yes" or "it died")
  check_rss(opt, res)
end

-- ---- the report ---------------------------------------------------------------------------------

local function tally(t)
  local keys, out = {}, {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do out[#out + 1] = k .. " " .. t[k] end
  return #out > 0 and table.concat(out, ", ") or "none"
end

local function mode_report(opt, md, res)
  local title = res.mode == "api" and "(a) the embedding API (Lua module, one host, watch = true)"
    or "(b) planhost serve (HTTP/NDJSON, curl clients)"
  md[#md + 1] = "## " .. title .. " — against planhost sim (SIMULATED)\n"
  md[#md + 1] = "Commands:\n"
  for _, c in ipairs(res.commands) do md[#md + 1] = "    " .. c end
  md[#md + 1] = ""
  local faults = 0
  for _, v in pairs(res.faults) do faults = faults + v end
  local rows = {
    { "requests (snapshots) submitted", res.submitted },
    { "faults (SIMULATED), by mode", faults .. ": " .. tally(res.faults) },
  }
  if res.mode == "api" then
    rows[#rows + 1] = { "cancels", ("%d: %d in flight (no plan follows), %d after the request had ended (%d of them refused"
      .. " while the plan was queued, not yet polled; those plans: %s)"):format(res.cancels, res.cancel_in_flight,
      res.cancel_late, res.cancel_queued, tally(res.queued_cache)) }
  else
    rows[#rows + 1] = { "POSTs / clients killed", ("%s POSTs; %s kills planned, %s came before the stream's end: %s after"
      .. " the response headers (mid-stream), the others before them; %s requests cut without a plan line")
      :format(res.posts, res.kills_planned, res.killed, res.killed_mid, res.cut_requests) }
  end
  rows[#rows + 1] = { "script edits (every " .. opt.reload_ms .. " ms)", ("%d good, %d broken"):format(res.edits_ok, res.edits_broken) }
  rows[#rows + 1] = { "reloads", ("%d ok, %d failed%s"):format(res.reload_ok, res.reload_failed,
    res.mode == "serve" and " (planhost_reloads_total)" or "") }
  rows[#rows + 1] = { "plans, by source", res.plans .. ": " .. tally(res.by_source) }
  rows[#rows + 1] = { "plans, by cache", tally(res.by_cache) }
  rows[#rows + 1] = { "fallbacks, by reason", tally(res.fallbacks) }
  rows[#rows + 1] = { "plan cache at the end", ("%s entries, %s bytes, %s evicted"):format(res.cache_entries, res.cache_bytes, res.cache_evictions) }
  rows[#rows + 1] = { "requests lost", res.lost }
  rows[#rows + 1] = { "duplicate plans", res.duplicates }
  rows[#rows + 1] = { "events after a cancel / stray events", res.after_cancel .. " / " .. res.stray }
  rows[#rows + 1] = { "open fds", res.mode == "api"
    and ("%s before the host; with it open %s at the start, %s at the end; %s after closing it"):format(
      fd_text(res.fd_before), fd_text(res.fd_open_start), fd_text(res.fd_open_end), fd_text(res.fd_after))
    or ("%s after the banner, %s at the end"):format(fd_text(res.fd_before), fd_text(res.fd_after)) }
  rows[#rows + 1] = { "wall time", ("%.1f s"):format(res.wall_s or 0) }
  rows[#rows + 1] = { "requests per second (SIMULATED server)", ("%.0f"):format(res.submitted / math.max(res.wall_s or 1, 1e-3)) }
  md[#md + 1] = "| what | figure |\n|---|---|"
  for _, row in ipairs(rows) do md[#md + 1] = ("| %s | %s |"):format(row[1], tostring(row[2])) end
  md[#md + 1] = ""
  md[#md + 1] = ("Resident memory (VmRSS of %s), every %d requests%s:\n"):format(
    res.mode == "api" and "this Lua process, after a full GC" or "serve's process", SAMPLE_EVERY,
    res.mode == "api" and "; the Lua heap (the soak's own bookkeeping included) beside it" or "")
  local cells = {}
  for _, s in ipairs(res.rss) do
    cells[#cells + 1] = ("%d: %s KiB%s"):format(s.n, tostring(s.kib), s.lua_kib and (" (Lua " .. s.lua_kib .. ")") or "")
  end
  md[#md + 1] = table.concat(cells, " · ") .. "\n"
  md[#md + 1] = "| check | result | detail |\n|---|---|---|"
  for _, c in ipairs(res.checks) do
    md[#md + 1] = ("| %s | %s | %s |"):format(c.name, c.ok and "pass" or "**FAIL**", c.detail or "")
  end
  md[#md + 1] = ""
  if #res.notes > 0 then
    md[#md + 1] = "Notes (first 20):\n"
    for n = 1, math.min(20, #res.notes) do md[#md + 1] = "- " .. res.notes[n]:gsub("|", "\\|") end
    md[#md + 1] = ""
  end
end

-- Writes the report of `results` (one record per mode, in run order) to stdout and to
-- opt.out, making its directory; `wall_s` the whole run, `all_ok` whether every check passed.
local function report(opt, results, wall_s, all_ok)
  local cmd = ("build/planhost lua tests/soak/soak.lua --requests %d --mode %s --seed %d --out %s")
    :format(opt.requests, opt.mode, opt.seed, opt.out)
  local md = {
    "# Soak test — SIMULATED model server\n",
    ("Rerun: `%s` (from the repository root; `--reload-ms %d --clients %d` are the defaults)."):format(cmd, opt.reload_ms, opt.clients),
    "",
    "What it measures: " .. opt.requests .. " requests " .. ({ api = "through the embedding API (one host, watch = true, on a"
      .. " scratch copy of the scripts)", serve = "through `planhost serve` (its --root a scratch copy of the scripts)",
      both = "through the embedding API (one host, watch = true, on a scratch copy of the scripts), then as many through"
      .. " `planhost serve` (its --root another copy)" })[opt.mode] .. ", against `planhost sim " .. SIM_ARGS .. "` —"
      .. " **a simulated model server, not a real model: no figure here says anything about a model's latency**."
      .. " 10 % of requests carry a fault (API: the `X-Sim-Fault` header, uniform over the eight modes, budget"
      .. " 300–800 ms; serve, which passes no headers on, makes them in the simulator's model script), 5 % are"
      .. " cancelled (API: `host:cancel` at a random moment; serve: the curl client killed), and a prompt file is"
      .. " edited every " .. opt.reload_ms .. " ms (every third edit a syntax error in prompts/compact.lua, fixed by"
      .. " the next). Checked: one plan per request not cancelled, nothing after a cancel, no crash, reload events,"
      .. " VmRSS flat after warm-up (last ≤ the sample at 20 % + max(10 %, 8 MiB)), open fds back where they started.",
    "",
    ("Run %s, seed %d, %s; total wall time %.1f s. **Result: %s.**\n"):format(os.date("!%Y-%m-%d %H:%M UTC"), opt.seed,
      (function() local p = io.popen("nproc") local n = p:read("l") p:close() return n .. " cores" end)(),
      wall_s, all_ok and "every check passed" or "some checks FAILED"),
  }
  for _, res in ipairs(results) do mode_report(opt, md, res) end
  local text = table.concat(md, "\n")
  io.write(text)
  local dir = opt.out:match("^(.*)/[^/]*$")
  if dir then H.sh("mkdir -p " .. H.q(dir)) end
  H.write(opt.out, text)
end

return { judge = judge, report = report }
