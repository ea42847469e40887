#!/bin/sh
# `make run`: the embedded default end to end. Starts the SIMULATED model server on a free
# loopback port, plans the hello_companion snapshot with streaming (steps print as they
# arrive), then shows what the same request does when no server answers. Every latency
# printed here is the simulator's profile, not a real model's.
set -u
cd "$(dirname "$0")/.."
bin=./build/planhost
snap=examples/snapshots/hello_companion.json
profile=${PROFILE:-gpu-7b}
log=$(mktemp /tmp/planhost-sim.XXXXXX)
$bin sim --port 0 --profile "$profile" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$log"' EXIT INT TERM
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$log" | head -n 1)
  [ -n "$url" ] && break
  sleep 0.05
done
if [ -z "$url" ]; then
  echo "make run: the simulator did not start:"; cat "$log"; exit 1
fi
echo "== planhost plan --pretty --template compact, against $url"
echo "   (planhost sim, profile $profile: SIMULATED latency, not a real model's)"
$bin plan --pretty --url "$url" --template compact "$snap"
echo
echo "== the same snapshot with no model server listening (port 9): the policy falls back to the heuristic tier"
$bin plan --pretty --url http://127.0.0.1:9 "$snap"
