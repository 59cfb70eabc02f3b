#!/bin/bash
# cli_run_kv.sh — `xswarm run --kv bf16` reaches the LM's temporal KV cache:
# on the golden tiny pipeline it changes step_out (a near-tie flips, see
# test_lm_kv_bf16.c) while --kv f32 reproduces the golden; a bad value is a
# usage error. $1 = xswarm binary, $2 = golden dir.
XS="$1"; G="$2"
[ -x "$XS" ] || { echo "SKIP: no binary"; exit 77; }
[ -f "$G/lm_tiny/model.safetensors" ] || { echo "SKIP: no golden tiny models"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
ko() { fail=$((fail+1)); echo "FAIL: $*"; }
M=(--greedy --backend cpu --lm "$G/lm_tiny/model.safetensors" --config "$G/lm_tiny/config.json"
   --mimi "$G/mimi_tiny/model.safetensors" --mimi-config "$G/mimi_tiny/config.json")
for kv in f32 bf16; do
    "$XS" run "${M[@]}" --kv $kv "$G/mimi_tiny/input.wav" -o "$T/$kv.wav" --codes-out "$T/$kv.st" 2>/dev/null
    [ $? -eq 0 ] && ok || ko "--kv $kv: run failed"
done
step_out() {
    python3 -c "
import json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n]); o = h['step_out']['data_offsets']
sys.stdout.write(b[8 + n + o[0]:8 + n + o[1]].hex())" "$1"
}
[ "$(step_out "$T/f32.st")" = "$(step_out "$G/pipeline_tiny/golden.safetensors")" ] && ok ||
    ko "--kv f32 does not reproduce the golden step_out"
[ "$(step_out "$T/f32.st")" != "$(step_out "$T/bf16.st")" ] && ok ||
    ko "--kv bf16 gave the same tokens as f32: the option did not reach the LM"
"$XS" run "${M[@]}" --kv f16 "$G/mimi_tiny/input.wav" -o "$T/x.wav" > /dev/null 2>&1
[ $? -eq 2 ] && ok || ko "--kv f16: not a usage error"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
