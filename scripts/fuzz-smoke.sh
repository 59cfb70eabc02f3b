#!/usr/bin/env bash
# Short libFuzzer run of every fuzz target over its seed corpus (CI smoke).
set -euo pipefail
B=${1:-build-fuzz}
SECS=${FUZZ_SECONDS:-20}
shopt -s nullglob
for f in "$B"/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus=tests/fuzz/corpus/${name#fuzz_}
  mkdir -p "$B/corpus-$name"
  echo "fuzz: $name for ${SECS}s"
  "$f" -max_total_time="$SECS" -max_len=65536 "$B/corpus-$name" $( [ -d "$corpus" ] && echo "$corpus" ) 2>&1 | tail -3
done
