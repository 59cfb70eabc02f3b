#!/usr/bin/env bash
# cli_lm_parts.sh — bench/lm_parts.sh end to end on the embedded tiny LM
# (--quick, cpu): one table row per layer count, a fit whose per-layer
# weight bytes are what `bench lm` itself reports between 1 and 2 layers
# (exactly linear: residual 0), and clear refusals. Args: $1 xswarm binary,
# $2 golden dir (unused), $3 source dir.
bin=$1; src=$3
[ -x "$bin" ] || { echo "no binary"; echo "0 passed, 0 failed"; exit 77; }
[ -f "$(dirname "$bin")/tiny-model/model.safetensors" ] || { echo "no tiny model"; echo "0 passed, 0 failed"; exit 77; }
pass=0; fail=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $1"; fi; }
tmp=$(mktemp -d)
script="$src/bench/lm_parts.sh"
tiny="$(dirname "$bin")/tiny-model/model.safetensors"
check "lm_parts.sh --quick runs" 'bash "$script" "$bin" --quick > "$tmp/out" 2> "$tmp/err"'
check "one row per layer count (1, 2)" \
  '[ "$(grep -c "^| [12] | " "$tmp/out")" -eq 2 ]'
check "the fit has a temporal-layer row and a rest row" \
  'grep -q "^| one temporal layer | " "$tmp/out" && grep -q "^| the rest " "$tmp/out"'
wb() { "$bin" -q bench lm --lm "$tiny" --backend cpu --layers "$1" --steps 1 --warmup 0 --json |
       grep -o '"weight_bytes":[0-9]*' | cut -d: -f2; }
w1=$(wb 1); w2=$(wb 2)
want=$(awk -v a="$w1" -v b="$w2" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
check "bench lm reports more weight bytes at 2 layers than at 1 ($w1, $w2)" '[ "${w2:-0}" -gt "${w1:-0}" ]'
check "fitted weight MB of one layer = bench lm's difference ($want)" \
  'grep "^| one temporal layer | " "$tmp/out" | awk -F"|" "{ gsub(/ /, \"\", \$6); exit !(\$6 == \"$want\") }"'
check "weights fit exactly (linear in the layer count)" 'grep -q "(time), 0 bytes (weights)" "$tmp/out"'
check "one layer count is refused (exit 1, says why)" \
  'bash "$script" "$bin" --quick --layers 1 > /dev/null 2> "$tmp/e1"; [ $? -eq 1 ] && grep -q "two different layer counts" "$tmp/e1"'
check "an unknown option is a usage error" 'bash "$script" "$bin" --bogus 2> /dev/null; [ $? -eq 2 ]'
check "a missing binary is named" \
  'bash "$script" "$tmp/none" 2> "$tmp/e2"; [ $? -eq 2 ] && grep -q "no xswarm binary" "$tmp/e2"'
check "--help says what it fits" 'bash "$script" --help | grep -q "least squares"'
rm -rf "$tmp"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
