#!/bin/sh
# The test suite, as `make test` runs it: the whole busted suite twice, first on the normal
# build (stock lua5.4 loading build/planhost.so), then inside the sanitizer build
# (build/asan/planhost's built-in interpreter, so ASan/UBSan watch every C line the specs
# reach), then each libFuzzer target over its regressions and seed corpus and 30 s of
# seeded mutation. Ends with one line
# "N passed, N failed" summing them all; exits 1 on any failure.
set -u
cd "$(dirname "$0")/.."
mkdir -p build
export PLANHOST_SOURCE="$(pwd)"

# Reads busted's summary line "N successes / N failures / N errors / N pending".
count() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -E '^[0-9]+ successes? / ' | tail -n 1 |
    awk -v what="$2" '{ if (what == "pass") print $1; else print $4 + $7 }'
}

pass=0
fail=0
run_suite() {
  label=$1
  shift
  log=build/test-$label.log
  echo "== busted on the $label build"
  "$@" >"$log" 2>&1
  status=$?
  cat "$log"
  p=$(count "$log" pass)
  f=$(count "$log" fail)
  if [ -z "$p" ]; then    # busted died before its summary: count the run as one failure
    p=0
    f=1
    echo "!! busted on the $label build ended with status $status and no summary"
  elif [ "$status" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
    f=1
    echo "!! busted on the $label build exited $status"
  fi
  pass=$((pass + p))
  fail=$((fail + f))
}

run_suite normal env PLANHOST_BIN=build/planhost busted -o utfTerminal
run_suite sanitizer env PLANHOST_BIN=build/asan/planhost \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  build/asan/planhost lua /usr/bin/busted -o utfTerminal

# The fuzz targets over their regressions and seed corpora, then 30 s of mutation each with a
# fixed seed (make fuzz-smoke): one test per target. Long runs with random seeds: make fuzz.
echo "== fuzz targets (libFuzzer: regressions, seed corpora, 30 s of seeded mutation each)"
log=build/test-fuzz.log
${MAKE:-make} --no-print-directory -s fuzz-smoke >"$log" 2>&1
cat "$log"
p=$(grep -c '^fuzz .*: ok' "$log")
f=$(grep -c '^fuzz .*: FAILED' "$log")
if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; echo "!! the fuzz targets did not run"; fi
pass=$((pass + p))
fail=$((fail + f))

echo
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
