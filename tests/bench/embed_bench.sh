#!/bin/sh
# The embedding example under load: examples/embed/game_loop (100, then 1000 agents, 60 fps,
# 10 s, each agent asking every 2-4 s) against `planhost sim --profile gpu-7b --parallel 4`,
# a SIMULATED server (a fresh one per run, so each pays the same model load). Prints a
# Markdown section to stdout: host work per frame (this thread's CPU inside planhost calls)
# and plan latency (submit to plan event drained by the game), with the plan sources and
# the fallback reasons.
#
#   sh tests/bench/embed_bench.sh [BUILD_DIR]      (default build; needs BUILD_DIR/game_loop,
#                                                   BUILD_DIR/planhost and lua5.4 with cjson)
# EMBED_AGENTS ("100 1000 1000:4"; N:CAP runs with --max-in-flight CAP) and EMBED_SECONDS (10)
# change the runs. Never part of `make test`.
set -u
cd "$(dirname "$0")/../.."
build=${1:-build}
agents_list=${EMBED_AGENTS:-100 1000 1000:4}   # N, or N:CAP for --max-in-flight CAP
seconds=${EMBED_SECONDS:-10}
log=$(mktemp /tmp/planhost-embed-bench.XXXXXX)
json=$(mktemp /tmp/planhost-embed-bench.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -f "$log" "$json"' EXIT

# Starts the simulator; sets $url (empty when it did not start).
start_sim() {
  "$build/planhost" sim --port 0 --profile gpu-7b --parallel 4 >"$log" 2>&1 &
  pid=$!
  url=""
  for _ in $(seq 1 100); do
    url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$log" | head -n 1)
    [ -n "$url" ] && break
    sleep 0.05
  done
}

stop_sim() {
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=""
}

# One table row from game_loop's --json report.
row() {
  lua5.4 -e '
    local r = require("cjson").decode(io.read("a"))
    local s, c, h, l = r.source, r.cache, r.host_us, r.latency_ms
    local why = {}
    for k, n in pairs(r.fallbacks) do if n > 0 then why[#why + 1] = ("%s %d"):format(k, n) end end
    table.sort(why)
    print(("| %s | %d (+%d draining), %d over %.1f ms | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %d / %d / %d / %d | hit %d, miss %d, stale %d, coalesced %d | %s | %d = %d%s |")
      :format(os.getenv("ROW_LABEL") or tostring(r.agents), r.frames, r.drain_frames, r.over_budget, r.budget_ms, h.median, h.p99, h.max,
              l.p50, l.p95, l.p99, l.max, s.llm, s.cache, s.heuristic, s.emergency,
              c.hit, c.miss, c.stale, c.coalesced, #why > 0 and table.concat(why, ", ") or "none", r.submitted, r.plans, r.ok and "" or " (NOT OK)"))
  ' <"$json"
}

echo "## Embedding: a 60 fps game loop (examples/embed/game_loop) against a SIMULATED gpu-7b server"
echo
echo "SIMULATED server: \`planhost sim --profile gpu-7b --parallel 4\` (a latency model of one consumer"
echo "GPU, not a real model). ${seconds} s per run, each agent asks every 2-4 s. Host work = this thread's CPU"
echo "inside planhost calls in one frame; latency = submit to the plan event drained by the game."
echo
echo "| agents | frames | host work/frame median µs | p99 µs | max µs | latency p50 ms | p95 ms | p99 ms | max ms | plans llm / cache / heuristic / emergency | cache | fallbacks | submitted = plans |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|"
for spec in $agents_list; do
  n=${spec%%:*}
  cap=0
  label=$n
  case $spec in *:*) cap=${spec#*:}; label="$n, max_in_flight $cap" ;; esac
  start_sim
  if [ -z "$url" ]; then
    echo "| $n | (skipped: the simulator did not start) ||||||||||||"
    stop_sim
    continue
  fi
  if "$build/game_loop" --url "$url" --simulated --agents "$n" --seconds "$seconds" --max-in-flight "$cap" \
       --json >"$json" 2>/dev/null || [ -s "$json" ]; then
    ROW_LABEL=$label row
  else
    echo "| $n | (game_loop failed) ||||||||||||"
  fi
  stop_sim
done
