#!/usr/bin/env bash
# cli_lm_kv.sh — the bf16 KV cache from the shell: `lm generate --kv bf16`
# gives the same tokens on ref and cpu (and not all of the f32 run's),
# `--kv` rejects other dtypes, and `bench lm --kv bf16 --fill-context`
# reports the halved cache. Token values are checked by
# tests/test_lm_kv_bf16.c. Args: $1 xswarm binary, $2 golden dir, $3 source dir.
bin=$1; gold=$2
[ -x "$bin" ] || { echo "no binary"; echo "0 passed, 0 failed"; exit 77; }
[ -d "$gold/lm_tiny" ] || { echo "no goldens"; echo "0 passed, 0 failed"; exit 77; }
pass=0; fail=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $1"; fi; }
tmp=$(mktemp -d)
lm="$gold/lm_tiny/model.safetensors"; cfg="$gold/lm_tiny/config.json"
in="$gold/lm_tiny/golden.safetensors"
gen() { "$bin" -q lm generate --lm "$lm" --config "$cfg" --input-codes "$in" --greedy "$@"; }
check "lm generate --kv bf16 on ref" 'gen --backend ref --kv bf16 -o "$tmp/ref.st"'
check "lm generate --kv bf16 on cpu" 'gen --backend cpu --threads 1 --kv bf16 -o "$tmp/cpu.st"'
check "lm generate --kv f32 on cpu" 'gen --backend cpu --threads 1 --kv f32 -o "$tmp/f32.st"'
check "bf16 KV: ref and cpu outputs identical" 'cmp -s "$tmp/ref.st" "$tmp/cpu.st"'
check "bf16 KV output differs from f32 (a near-tie flips at step 10)" \
  '! cmp -s "$tmp/cpu.st" "$tmp/f32.st"'
check "--kv f16 is a usage error" 'gen --kv f16 -o "$tmp/x.st" 2>/dev/null; [ $? -eq 2 ]'
check "lm --help documents --kv" '"$bin" lm --help | grep -q -- "--kv bf16"'
check "bench lm --help documents --kv and --fill-context" \
  '"$bin" bench lm --help | grep -q -- "--fill-context"'
bench() { "$bin" -q bench lm --lm "$lm" --config "$cfg" --backend cpu --threads 1 --steps 2 \
  --warmup 0 --json "$@" | grep '"bench":"lm"'; }
# lm_tiny: main 2 layers x 12 slots x 64 x (k, v), depformer 2 x 8 x 32 x 2 in f32
check "bench lm --kv bf16 --fill-context: 10240 cache bytes" \
  'bench --kv bf16 --fill-context > "$tmp/b" && grep -q "\"kv_dtype\":\"bf16\",\"kv_cache_bytes\":10240,\"fill_context\":true" "$tmp/b"'
check "bench lm --kv f32: 16384 cache bytes" \
  'bench > "$tmp/f" && grep -q "\"kv_dtype\":\"f32\",\"kv_cache_bytes\":16384,\"fill_context\":false" "$tmp/f"'
check "bench lm --json counts programmatic graph edges (none on the cpu)" \
  'grep -q "\"pdl_edges\":0}" "$tmp/f"'
check "bench lm --kv xx is a usage error" '"$bin" bench lm --kv xx 2>/dev/null; [ $? -eq 2 ]'
rm -rf "$tmp"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
