#!/usr/bin/env bash
# Short libFuzzer run of every fuzz target over its seed corpus (CI smoke).
#   scripts/fuzz-smoke.sh [BUILD_DIR]      (FUZZ_SECONDS=20 per target)
# Seeds: tests/fuzz/corpus/<target without fuzz_>/ (made by
# tests/fuzz/make_corpus.py). New inputs found go to BUILD_DIR/corpus-<target>/,
# crashing inputs to BUILD_DIR/crashes-<target>/. Exit status 1 if any target
# crashed, leaked or timed out; its log tail is printed.
set -uo pipefail
B=${1:-build-fuzz}
SECS=${FUZZ_SECONDS:-20}
shopt -s nullglob
targets=("$B"/fuzz_*)
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz-smoke: no fuzz_* targets in $B (build with 'make fuzz')" >&2
  exit 1
fi
failed=0
for f in "${targets[@]}"; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus=tests/fuzz/corpus/${name#fuzz_}
  mkdir -p "$B/corpus-$name" "$B/crashes-$name"
  log="$B/$name.log"
  echo "fuzz: $name for ${SECS}s"
  seeds=()
  [ -d "$corpus" ] && seeds=("$corpus")
  if "$f" -max_total_time="$SECS" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$B/crashes-$name/" "$B/corpus-$name" "${seeds[@]}" >"$log" 2>&1; then
    grep -E "^#[0-9]+.*(DONE|pulse)" "$log" | tail -1
  else
    failed=1
    echo "fuzz: $name FAILED (log $log, inputs in $B/crashes-$name/):"
    # the sanitizer report, not the REDUCE/NEW progress lines before it
    grep -v -E "^#[0-9]+" "$log" | grep -v -E "^(INFO|MS:|  *)" | tail -25
  fi
done
exit $failed
