#!/bin/sh
# `make bench`: performance figures, each against a peer measured in the same run.
# Writes build/bench/BENCH.md (the README quotes it) and prints it. Never part of `make test`.
#   1. JSON tokenizer MB/s (whole, 4, 16, 64-byte pieces) vs yajl and vs naive re-parsing.
#   2. The same corpus re-parsed with lua-cjson after every piece (what most clients do).
#   3. Host CPU per streamed plan vs a bare libcurl client, against `planhost sim --profile
#      instant` — a SIMULATED server, so the figure is client work, not model latency.
#   Peers from tests/bench/peers (npm ones installed into build/bench/node, each skipped with one
#   line when it cannot be installed or run); last, the DESIGN.md budgets met or not.
set -u
cd "$(dirname "$0")/../.."
out=build/bench
mkdir -p "$out"
md=$out/BENCH.md
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
CFLAGS="-std=c11 -O2 -D_POSIX_C_SOURCE=200809L -Ihost $(pkg-config --cflags lua5.4)"

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
if ! have_pkg libyajl-dev; then
  echo "make bench: installing libyajl-dev (the yajl peer)"
  $SUDO apt-get install -y -qq libyajl-dev >/dev/null 2>&1 || echo "make bench: libyajl-dev unavailable; yajl column skipped"
fi
# Node peers (tests/bench/peers/package.json, exact versions, lock file) go to build/bench/node.
node_dir=$out/node
node_peers=""
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  if ! cmp -s tests/bench/peers/package-lock.json "$node_dir/package-lock.json" || [ ! -d "$node_dir/node_modules/ollama" ]; then
    echo "make bench: installing the Node peers (@streamparser/json, ollama) into $node_dir"
    mkdir -p "$node_dir" && cp tests/bench/peers/package.json tests/bench/peers/package-lock.json "$node_dir/"
    npm ci --prefix "$node_dir" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null 2>&1 ||
      rm -f "$node_dir/package-lock.json"
  fi
  [ -d "$node_dir/node_modules/ollama" ] && [ -f "$node_dir/package-lock.json" ] && node_peers=yes
fi
[ -n "$node_peers" ] || echo "make bench: node/npm missing or npm ci failed; Node peers skipped"

{
  echo "# planhost benchmarks"
  echo
  echo "Produced by \`make bench\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -m)."
  echo "Medians of repeated runs; every ratio compares two things measured in this same run."
  echo
  echo "## JSON tokenizer on plan JSON (tests/fixtures/plans)"
  echo
  if have_pkg libyajl-dev && cc $CFLAGS tests/bench/json_bench.c host/jsonstream.c host/jsonstream_scan.c -lyajl -o $out/json_bench; then
    $out/json_bench tests/fixtures/plans
  else
    echo "(skipped: yajl is not installed)"
  fi
  echo
  echo "Budget (DESIGN.md): >= 500 MB/s whole, >= 100 MB/s in 4-byte pieces, >= 2x yajl at every piece size."
  echo
  echo "## The plan parser on the same corpus (tokenizer + finding the plan + per-step checks)"
  echo
  if cc $CFLAGS -DPH_SOURCE_ROOT="\"$(pwd)\"" tests/bench/planparse_bench.c build/libplanhost.a \
      $(pkg-config --libs lua5.4) -lcurl -lxxhash -lm -ldl -o $out/planparse_bench; then
    $out/planparse_bench tests/fixtures/plans
  fi
  echo
  echo "## Snapshot hash (budget: <= 2 us for a 1 KB snapshot), beside the tokenizer alone"
  echo
  if cc $CFLAGS tests/bench/snaphash_bench.c host/snaphash.c host/snaphash_rules.c host/jsonstream.c \
      host/jsonstream_scan.c host/buf.c host/error.c -lxxhash -lm -o $out/snaphash_bench; then
    $out/snaphash_bench examples/snapshots
  fi
  echo
  echo "## Plan cache (budget: <= 2 KB per cached plan)"
  echo
  if cc $CFLAGS tests/bench/cache_bench.c build/libplanhost.a -lcurl -lxxhash -lm -ldl -o $out/cache_bench; then
    $out/cache_bench
  fi
  echo
  echo "## Plan cache on the scenario streams (examples/scenarios): hit ratio per key, cost of a hit"
  echo
  if cc $CFLAGS tests/bench/scenario_bench.c build/libplanhost.a \
      $(pkg-config --libs lua5.4) -lcurl -lxxhash -lm -ldl -o $out/scenario_bench; then
    $out/scenario_bench "$(pwd)"
  fi
  echo
  echo "## What most clients do: re-parse the accumulated text with cjson after every piece"
  echo
  lua5.4 tests/bench/reparse_cjson.lua tests/fixtures/plans
  echo
  echo "## The same corpus and pieces through @streamparser/json (Node), a peer of the tokenizer table"
  echo
  if [ -n "$node_peers" ]; then
    node tests/bench/peers/streamparser_bench.mjs tests/fixtures/plans "$node_dir" ||
      echo "(skipped: the @streamparser/json bench failed, see its stderr)"
  else
    echo "(skipped: @streamparser/json could not be installed: node/npm missing or npm ci failed)"
  fi
  echo
  echo "## Host CPU per streamed plan (SIMULATED server: planhost sim --profile instant)"
  echo
} >"$md"

cc $CFLAGS -DPH_SOURCE_ROOT="\"$(pwd)\"" tests/bench/bench_plan.c build/libplanhost.a \
  $(pkg-config --libs lua5.4) -lcurl -lxxhash -lm -ldl -o $out/bench_plan || exit 1
log=$(mktemp /tmp/planhost-bench.XXXXXX)
./build/planhost sim --port 0 --profile instant >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$log"' EXIT
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$log" | head -n 1)
  [ -n "$url" ] && break
  sleep 0.05
done
snap=examples/snapshots/hello_companion.json
for api in ollama openai; do
  ./build/planhost prompt --body --api "$api" --template compact "$snap" >$out/body-$api.json 2>/dev/null
  if [ -n "$url" ]; then
    $out/bench_plan "$url" "$api" compact "$snap" $out/body-$api.json 400 >>"$md"
  else
    echo "(skipped: the simulator did not start)" >>"$md"
  fi
  echo >>"$md"
done
{
  echo "## Client peers per streamed plan (same SIMULATED server and ollama body as above)"
  echo
  echo "The first two rows are copied from the ollama table above; each client measures its own process."
  echo
  echo "| client (ollama, compact, 400 requests) | CPU median µs | CPU p99 µs | wall median µs | wall p99 µs |"
  echo "|---|---:|---:|---:|---:|"
  grep -m 2 -E '^\| (planhost \(|bare libcurl)' "$md"
  if [ -z "$url" ]; then
    echo "| (skipped: the simulator did not start) |||||"
  else
    if command -v python3 >/dev/null 2>&1; then
      python3 tests/bench/peers/python_client.py "$url" $out/body-ollama.json 400 ||
        echo "| (skipped: the Python client failed, see its stderr) |||||"
    else
      echo "| (skipped: python3 is not installed) |||||"
    fi
    if [ -n "$node_peers" ]; then
      node tests/bench/peers/ollama_client.mjs "$url" $out/body-ollama.json 400 "$node_dir" ||
        echo "| (skipped: the ollama-js client failed, see its stderr) |||||"
    else
      echo "| (skipped: the ollama npm client could not be installed) |||||"
    fi
  fi
  echo
} >"$md.peers"
cat "$md.peers" >>"$md" && rm -f "$md.peers"
{
  echo "## One poll with 1,000 requests pending and nothing ready"
  echo
  if cc $CFLAGS -DPH_SOURCE_ROOT="\"$(pwd)\"" tests/bench/poll_bench.c build/libplanhost.a \
      $(pkg-config --libs lua5.4) -lcurl -lxxhash -lm -ldl -lpthread -o $out/poll_bench; then
    (ulimit -n 4096 2>/dev/null; $out/poll_bench examples/snapshots/hello_companion.json)
  fi
  echo
} >>"$md"
sh tests/bench/embed_bench.sh build >>"$md"
echo >>"$md"
lua5.4 tests/bench/batch_bench.lua >>"$md" || echo "(batching bench failed: see its stderr above)" >>"$md"
echo >>"$md"
lua5.4 tests/bench/peers/budgets.lua "$md" >"$md.budgets" && cat "$md.budgets" >>"$md"; rm -f "$md.budgets"
cat "$md"
