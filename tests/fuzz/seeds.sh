#!/bin/sh
# seeds.sh — builds the seed corpora of the fuzz targets from the repository's fixtures.
#
#   sh tests/fuzz/seeds.sh [OUT]      (OUT defaults to build/fuzz/corpus)
#
# Writes OUT/<target>/seed-* for jsonstream, planparse, framing, snaphash and serve_body, each
# fixture behind the header its target reads (see the comment at the top of each
# tests/fuzz/fuzz_*.c). Nothing is copied into tests/fuzz: the fixtures stay where they are
# (tests/fixtures/{plans,model_output,streams}, examples/snapshots, lines of
# examples/scenarios/*.ndjson, and ../shared/testdata/JSONTestSuite when it is there).
# Files the fuzzer added to OUT/<target>/ are kept; seeds are rewritten each run. POSIX sh.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-build/fuzz/corpus}
SUITE="$ROOT/../shared/testdata/JSONTestSuite/test_parsing"

for t in jsonstream planparse framing snaphash serve_body; do
  mkdir -p "$OUT/$t"
done

# seed TARGET NAME HEADER FILE: HEADER (printf escapes) then FILE's bytes, as OUT/TARGET/seed-NAME.
seed() {
  { printf "$3"; cat "$4"; } > "$OUT/$1/seed-$2"
}

# Piece sizes in the headers (piece() in the targets): byte v < 192 is v % 32 + 1 bytes, else
# (v - 191) * 64; so SIZES below is 2, 3, 4, 32 and 64 bytes.
SIZES='\001\002\003\037\300'

# ---- jsonstream: header flags, caps, stop, 5 piece sizes ----
for f in "$ROOT"/tests/fixtures/plans/*.json "$ROOT"/examples/snapshots/*.json; do
  n=$(basename "$f" .json)
  seed jsonstream "strict-$n" "\000\000\000$SIZES" "$f"
  seed jsonstream "stops-$n" "\000\000\003\000\006\011\014\017" "$f"
done
for f in "$ROOT"/tests/fixtures/model_output/*.txt; do
  # trailing commas + stop after the first value; the text before the JSON makes most of
  # these errors, which is fine: errors must not depend on the split either
  seed jsonstream "lenient-$(basename "$f" .txt)" "\005\000\000$SIZES" "$f"
done
if [ -d "$SUITE" ]; then
  for f in "$SUITE"/*.json; do
    seed jsonstream "suite-$(basename "$f" .json)" "\000\000\000$SIZES" "$f"
  done
fi

# ---- planparse: header mode (bit 0 batch, bits 1-2 tools), stop, 6 piece sizes ----
for f in "$ROOT"/tests/fixtures/model_output/*.txt "$ROOT"/tests/fixtures/plans/*.json; do
  n=$(basename "$f"); n=${n%.*}
  case "$n" in
    *batch*) mode='\001' ;;
    *) mode='\000' ;;
  esac
  seed planparse "$n" "$mode\000$SIZES\010" "$f"
done
# the compact subset and a stop after the second event, on a few
for f in "$ROOT"/tests/fixtures/model_output/0*.txt; do
  seed planparse "compact-stop-$(basename "$f" .txt)" "\002\002$SIZES\000" "$f"
done

# ---- framing: header api, max_line, stop, 5 piece sizes ----
for f in "$ROOT"/tests/fixtures/streams/*.ndjson "$ROOT"/tests/fixtures/streams/*.sse; do
  n=$(basename "$f")
  case "$n" in
    ollama_chat_*) api='\000' ;;
    ollama_generate_*) api='\001' ;;
    openai_*) api='\002' ;;
    *) api='\003' ;;
  esac
  seed framing "${n%.*}" "$api\000\000$SIZES" "$f"
  seed framing "short-lines-${n%.*}" "$api\100\002$SIZES" "$f"   # max_line 256, stop at 2
done

# ---- snaphash: header rule set; snapshots and scenario lines ----
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in "$ROOT"/examples/snapshots/*.json; do
  n=$(basename "$f" .json)
  seed snaphash "brief-$n" '\000' "$f"
  seed snaphash "cache-$n" '\001' "$f"
done
for f in "$ROOT"/examples/scenarios/*.ndjson; do
  s=$(basename "$f" .ndjson)
  # every 100th line (1, 101, ...): snapshots of each scenario as it goes on
  awk -v dir="$tmp" -v s="$s" 'NR % 100 == 1 { print > (dir "/" s "-" NR ".json"); close(dir "/" s "-" NR ".json") }' "$f"
done
for f in "$tmp"/*.json; do
  n=$(basename "$f" .json)
  seed snaphash "brief-$n" '\000' "$f"
  seed snaphash "cache-$n" '\001' "$f"
  seed jsonstream "scenario-$n" "\000\000\000$SIZES" "$f"
done

# ---- serve_body: header max-snapshots (\200 = the default 256, \002 = 3) ----
for f in "$ROOT"/examples/snapshots/*.json; do
  seed serve_body "one-$(basename "$f" .json)" '\200' "$f"
done
set -- "$ROOT"/examples/snapshots/*.json
{ printf '['; cat "$1"; printf ','; cat "$2"; printf ','; cat "$3"; printf ']'; } > "$tmp/array"
seed serve_body array '\200' "$tmp/array"
seed serve_body array-over-max '\001' "$tmp/array"
{ printf '{"snapshots":['; cat "$1"; printf ','; cat "$2"
  printf '],"budget_ms":1500,"template":"compact","game":{"urgency":"high"}}'; } > "$tmp/wrapper"
seed serve_body wrapper '\200' "$tmp/wrapper"
printf '{"snapshots":[{"agent":"a"}],"budget_ms":0,"template":"","extra":1}' > "$tmp/bad"
seed serve_body wrapper-bad '\200' "$tmp/bad"
for f in "$ROOT"/examples/scenarios/*.ndjson; do
  s=$(basename "$f" .ndjson)
  { printf '['; head -n 4 "$f" | paste -sd, -; printf ']'; } > "$tmp/$s"
  seed serve_body "scenario-$s" '\200' "$tmp/$s"
done

for t in jsonstream planparse framing snaphash serve_body; do
  printf 'seeds: %-10s %4d files in %s\n' "$t" "$(ls "$OUT/$t" | wc -l)" "$OUT/$t"
done
