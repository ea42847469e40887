#!/bin/sh
# `make bench`: performance figures, each against a peer measured in the same run.
# Writes build/bench/BENCH.md (the README quotes it) and prints it. Never part of `make test`.
#   1. JSON tokenizer MB/s (whole, 4, 16, 64-byte pieces) vs yajl and vs naive re-parsing.
#   2. The same corpus re-parsed with lua-cjson after every piece (what most clients do).
#   3. Host CPU per streamed plan vs a bare libcurl client, against `planhost sim --profile
#      instant` — a SIMULATED server, so the figure is client work, not model latency.
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
sh tests/bench/embed_bench.sh build >>"$md"
echo >>"$md"
cat "$md"
