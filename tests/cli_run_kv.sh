#!/bin/bash
# cli_run_kv.sh — `--kv f32|bf16|q8` reaches the LM's temporal KV cache from
# `run` and `lm generate`, and without --kv the weights decide
# (lm_kv_dtype_default: f32 weights f32, others bf16):
#  - run on the golden tiny pipeline: --kv f32 and no --kv reproduce the
#    golden step_out; bf16 and q8 change it (a near-tie flips, see
#    test_lm_kv_bf16.c / test_lm_kv_q8.c) and differ from each other;
#  - run with lm_tiny's bf16 weights and no --kv == --kv bf16 (not f32);
#  - lm generate with the candle q8_0 GGUF and no --kv == --kv bf16;
#  - bench lm --kv q8 reports the 34/32-byte cache; bad values are usage errors.
# $1 = xswarm binary, $2 = golden dir.
XS="$1"; G="$2"
[ -x "$XS" ] || { echo "SKIP: no binary"; exit 77; }
[ -f "$G/lm_tiny/model.safetensors" ] || { echo "SKIP: no golden tiny models"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
ko() { fail=$((fail+1)); echo "FAIL: $*"; }
MIMI=(--mimi "$G/mimi_tiny/model.safetensors" --mimi-config "$G/mimi_tiny/config.json")
M=(--greedy --backend cpu --lm "$G/lm_tiny/model.safetensors" --config "$G/lm_tiny/config.json"
   "${MIMI[@]}")
for kv in f32 bf16 q8 default; do
    opt=(--kv $kv); [ $kv = default ] && opt=()
    "$XS" run "${M[@]}" "${opt[@]}" "$G/mimi_tiny/input.wav" -o "$T/$kv.wav" --codes-out "$T/$kv.st" 2>/dev/null
    [ $? -eq 0 ] && ok || ko "--kv $kv: run failed"
done
step_out() {
    python3 -c "
import json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n]); o = h['step_out']['data_offsets']
sys.stdout.write(b[8 + n + o[0]:8 + n + o[1]].hex())" "$1" 2>/dev/null
}
gold=$(step_out "$G/pipeline_tiny/golden.safetensors")
[ -n "$gold" ] && [ "$(step_out "$T/f32.st")" = "$gold" ] && ok ||
    ko "--kv f32 does not reproduce the golden step_out"
[ "$(step_out "$T/default.st")" = "$gold" ] && ok ||
    ko "no --kv on f32 weights is not the f32 golden (default rule: f32 weights keep f32)"
[ "$(step_out "$T/f32.st")" != "$(step_out "$T/bf16.st")" ] && ok ||
    ko "--kv bf16 gave the same tokens as f32: the option did not reach the LM"
[ "$(step_out "$T/f32.st")" != "$(step_out "$T/q8.st")" ] && ok ||
    ko "--kv q8 gave the same tokens as f32: the option did not reach the LM"
[ "$(step_out "$T/bf16.st")" != "$(step_out "$T/q8.st")" ] && ok ||
    ko "--kv q8 gave the same tokens as bf16: is it really quantizing?"

# bf16 weights: the default is a bf16 cache
B=(--greedy --backend cpu --lm "$G/lm_tiny/model.bf16.safetensors" --config "$G/lm_tiny/config.json"
   "${MIMI[@]}")
"$XS" run "${B[@]}" "$G/mimi_tiny/input.wav" -o "$T/bw.wav" --codes-out "$T/bw_def.st" 2>/dev/null &&
"$XS" run "${B[@]}" --kv bf16 "$G/mimi_tiny/input.wav" -o "$T/bw.wav" --codes-out "$T/bw_bf16.st" 2>/dev/null &&
"$XS" run "${B[@]}" --kv f32 "$G/mimi_tiny/input.wav" -o "$T/bw.wav" --codes-out "$T/bw_f32.st" 2>/dev/null
[ $? -eq 0 ] && ok || ko "run with bf16 weights failed"
[ "$(step_out "$T/bw_def.st")" = "$(step_out "$T/bw_bf16.st")" ] &&
[ "$(step_out "$T/bw_def.st")" != "$(step_out "$T/bw_f32.st")" ] && ok ||
    ko "bf16 weights without --kv do not run a bf16 cache"

# lm generate, q8_0 weights: the default is a bf16 cache
Q="$G/lm_tiny_candle_q8/model.q8.gguf"
gen() { "$XS" -q lm generate --lm "$Q" --input-codes "$G/lm_tiny/golden.safetensors" --greedy \
          --backend cpu --threads 1 "$@"; }
gen -o "$T/q_def.st" && gen --kv bf16 -o "$T/q_bf16.st" && gen --kv f32 -o "$T/q_f32.st" &&
    gen --kv q8 -o "$T/q_q8.st"
[ $? -eq 0 ] && ok || ko "lm generate on the q8_0 GGUF failed"
cmp -s "$T/q_def.st" "$T/q_bf16.st" && ! cmp -s "$T/q_def.st" "$T/q_f32.st" && ok ||
    ko "q8_0 weights without --kv do not run a bf16 cache"
[ "$(step_out "$T/q_f32.st")" = "$(step_out "$G/lm_tiny_candle_q8/golden.safetensors")" ] && ok ||
    ko "q8_0 weights with --kv f32 do not reproduce their f32 golden"

# bench: lm_tiny's cache is main 2 layers x 12 slots x 64 x (k, v) + the f32
# depformer's 4096 B; q8: 64 values = 2 blocks of 34 B -> 3264 + 4096
bench() { "$XS" -q bench lm --lm "$G/lm_tiny/model.safetensors" --config "$G/lm_tiny/config.json" \
  --backend cpu --threads 1 --steps 2 --warmup 0 --json "$@" | grep '"bench":"lm"'; }
bench --kv q8 --fill-context > "$T/b" 2>/dev/null &&
    grep -q '"kv_dtype":"q8_0","kv_cache_bytes":7360,"fill_context":true' "$T/b" && ok ||
    ko "bench lm --kv q8: $(cat "$T/b")"
"$XS" run "${M[@]}" --kv f16 "$G/mimi_tiny/input.wav" -o "$T/x.wav" > /dev/null 2>&1
[ $? -eq 2 ] && ok || ko "--kv f16: not a usage error"
"$XS" lm generate --lm "$Q" --kv q4 -o "$T/x.st" > /dev/null 2>&1
[ $? -eq 2 ] && ok || ko "lm --kv q4: not a usage error"
"$XS" run --help 2>&1 | grep -q -- "--kv f32|bf16|q8" && "$XS" run --help 2>&1 | grep -q "else bf16" && ok ||
    ko "run --help does not state --kv and its default rule"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
