#!/bin/sh
# `make memcheck`: every integration spec under valgrind memcheck, one valgrind process per
# spec file (stock lua5.4 loading build/planhost.so; child processes such as the simulator
# run natively). Fails when valgrind reports a memory error or a definite leak in any of
# them. Valgrind slows the host 20-50x, so a spec whose assertion has a time bound may fail
# there without any memory problem: those are listed separately and do not fail the run
# (make test runs the same specs at full speed, and under ASan/UBSan/LSan).
set -u
cd "$(dirname "$0")/.."
export PLANHOST_SOURCE="$(pwd)"
mkdir -p build/memcheck
bad=0
slow=""
for spec in tests/integration/*_spec.lua; do
  name=$(basename "$spec" .lua)
  log=build/memcheck/$name.log
  printf '%-28s ' "$name"
  valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite --num-callers=30 -q \
    lua5.4 /usr/bin/busted -o TAP "$spec" >"$log" 2>&1
  rc=$?
  fails=$(grep -c '^not ok' "$log")
  if [ "$rc" -eq 99 ] || grep -q '^==[0-9]*== ' "$log"; then
    echo "MEMORY ERRORS (see $log)"
    bad=1
  elif [ "$fails" -gt 0 ]; then
    echo "clean; $fails spec(s) failed under valgrind's slowness (see $log)"
    slow="$slow $name"
  else
    echo "clean"
  fi
done
echo
[ -n "$slow" ] && echo "specs that failed only under valgrind:$slow (memory clean; they pass in make test)"
if [ "$bad" -ne 0 ]; then
  echo "memcheck: memory errors or definite leaks found"
  exit 1
fi
echo "memcheck: no memory errors, no definite leaks"
