#!/usr/bin/env bash
# cli_lm.sh — `xswarm lm` from the shell: help texts, exit statuses, and one
# greedy lm_tiny run whose output file exists. Values are checked by
# tests/test_lm_cli.c. Args: $1 xswarm binary, $2 golden dir, $3 source dir.
bin=$1; gold=$2
[ -x "$bin" ] || { echo "no binary"; echo "0 passed, 0 failed"; exit 77; }
[ -d "$gold/lm_tiny" ] || { echo "no goldens"; echo "0 passed, 0 failed"; exit 77; }
pass=0; fail=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $1"; fi; }
tmp=$(mktemp -d)
check "lm --help exits 0 and names both actions" \
  '"$bin" lm --help > "$tmp/h" && grep -q "lm generate" "$tmp/h" && grep -q "lm score" "$tmp/h"'
check "bench lm --help exits 0" '"$bin" bench lm --help > /dev/null'
check "lm without action exits 2" '"$bin" lm 2>/dev/null; [ $? -eq 2 ]'
check "missing -o exits 2" \
  '"$bin" lm generate --lm "$gold/lm_tiny/model.safetensors" --input-codes x 2>/dev/null; [ $? -eq 2 ]'
check "bad --temp exits 2" \
  '"$bin" lm generate --temp abc --lm a --input-codes b -o c 2>/dev/null; [ $? -eq 2 ]'
check "greedy run writes its output" \
  '"$bin" -q lm generate --lm "$gold/lm_tiny/model.safetensors" --input-codes "$gold/lm_tiny/golden.safetensors" --greedy --backend ref -o "$tmp/o.safetensors" && [ -s "$tmp/o.safetensors" ]'
check "error names the missing file" \
  '"$bin" lm score --lm "$tmp/none.safetensors" --codes x -o y 2>&1 | grep -q "none.safetensors"'
rm -rf "$tmp"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
