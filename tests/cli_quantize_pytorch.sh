#!/usr/bin/env bash
# cli_quantize_pytorch.sh — `xswarm quantize` on a PyTorch-layout LM writes
# the candle layout: lm_tiny/model.safetensors -> exactly
# lm_tiny_candle_q8/model.q8.gguf (candle's file of the same weights), the
# result runs greedy to that folder's golden step_out, q4_0 output equals the
# q4_0 of the candle-layout input and runs; config errors are clear.
# $1 = xswarm binary, $2 = golden dir, $3 = source dir.
X=$1; G=$2
[ -x "$X" ] || { echo "no binary $X"; echo "0 passed, 0 failed"; exit 77; }
[ -f "$G/lm_tiny_candle_q8/model.q8.gguf" ] && [ -f "$G/lm_tiny/model.safetensors" ] \
  || { echo "SKIP: no golden lm_tiny / lm_tiny_candle_q8"; echo "0 passed, 0 failed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 needed"; echo "0 passed, 0 failed"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
PT=$G/lm_tiny/model.safetensors
Q8=$G/lm_tiny_candle_q8

# Tensor `name` of a safetensors file as a list of ints (I64) — no numpy needed.
cat > "$T/st.py" <<'PY'
import json, struct, sys
def tensor(path, name):
    b = open(path, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n]); v = h[name]; lo, hi = v['data_offsets']
    assert v['dtype'] == 'I64', v['dtype']
    return v['shape'], list(struct.unpack('<%dq' % ((hi - lo) // 8), b[8 + n + lo:8 + n + hi]))
PY

# 1. q8_0: the whole file equals candle's (same order too: both sorted by name).
"$X" quantize "$PT" "$T/q8.gguf" --type q8_0 2>"$T/err" && ok || bad "quantize q8_0 failed: $(cat "$T/err")"
grep -q "PyTorch layout: writing the candle layout (151 tensors from 95)" "$T/err" && ok \
  || bad "no layout note: $(cat "$T/err")"
tail -1 "$T/err" | grep -q "151 tensors (96 q8_0, 55 f32)" && ok || bad "summary line: $(tail -1 "$T/err")"
cmp -s "$T/q8.gguf" "$Q8/model.q8.gguf" && ok || bad "q8_0 output is not byte-identical to $Q8/model.q8.gguf"

# 2. It loads and reproduces the golden greedy run of the dequantized model.
# --kv f32: the golden is an f32 run; q8_0 weights default to a bf16 KV cache
"$X" -q lm generate --lm "$T/q8.gguf" --config "$Q8/config.json" --input-codes "$Q8/golden.safetensors" \
  --greedy --backend ref --kv f32 -o "$T/o8.safetensors" 2>"$T/err" && ok || bad "generate on q8_0 failed: $(cat "$T/err")"
python3 - "$T/o8.safetensors" "$Q8/golden.safetensors" "$T/st.py" <<'PY' && ok || bad "q8_0 step_out differs from golden"
import sys; sys.path.insert(0, sys.argv[3].rsplit('/', 1)[0]); import st
a, b = st.tensor(sys.argv[1], 'step_out'), st.tensor(sys.argv[2], 'step_out')
print(f"q8_0 step_out: shape {a[0]}, {sum(x == y for x, y in zip(a[1], b[1]))}/{len(b[1])} equal to golden")
sys.exit(0 if a == b and any(x > 0 for x in a[1]) else 1)
PY

# 3. q4_0: same bytes as quantizing the candle-layout copy; loads and runs.
"$X" quantize "$PT" "$T/q4.gguf" --type=q4_0 2>"$T/err" && ok || bad "quantize q4_0 failed: $(cat "$T/err")"
"$X" quantize "$Q8/model.candle.safetensors" "$T/q4c.gguf" --type q4_0 2>/dev/null \
  && cmp -s "$T/q4.gguf" "$T/q4c.gguf" && ok || bad "q4_0 of the PyTorch input differs from q4_0 of the candle input"
"$X" -q lm generate --lm "$T/q4.gguf" --config "$Q8/config.json" --input-codes "$Q8/golden.safetensors" \
  --greedy -o "$T/o4.safetensors" 2>"$T/err" && ok || bad "generate on q4_0 failed: $(cat "$T/err")"
python3 - "$T/o4.safetensors" "$G/lm_tiny/golden.safetensors" "$T/st.py" <<'PY' && ok || bad "q4_0 step_out malformed"
import sys; sys.path.insert(0, sys.argv[3].rsplit('/', 1)[0]); import st
(sa, a), (sb, b) = st.tensor(sys.argv[1], 'step_out'), st.tensor(sys.argv[2], 'step_out')
# tokens may differ from the f32 model (4-bit weights); report the agreement
valid = [(x, y) for x, y in zip(a, b) if y != -1]
print(f"q4_0 greedy tokens equal to the f32 golden: {sum(x == y for x, y in valid)}/{len(valid)}")
cols = sa[1]
ok = sa == sb and all((x == -1) == (y == -1) for x, y in zip(a, b)) and \
     all(0 <= x < (101 if i % cols == 0 else 65) for i, x in enumerate(a) if x != -1)
sys.exit(0 if ok else 1)
PY

# 4. A bf16 checkpoint converts through the same map.
"$X" quantize "$G/lm_tiny/model.bf16.safetensors" "$T/bf.gguf" --type q8_0 2>"$T/err" \
  && tail -1 "$T/err" | grep -q "151 tensors (96 q8_0, 55 f32)" && ok || bad "bf16 input: $(cat "$T/err")"
[ "$(stat -c %s "$T/bf.gguf")" = "$(stat -c %s "$Q8/model.q8.gguf")" ] && ok || bad "bf16 output size differs"

# 5. Configuration problems are errors that name what is wrong.
sed 's/"depformer_num_layers": 2/"depformer_num_layers": 1/' "$G/lm_tiny/config.json" > "$T/dl1.json"
"$X" quantize "$PT" "$T/x.gguf" --type q8_0 --config "$T/dl1.json" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "has no place in the candle layout" "$T/err" && ok || bad "depformer_num_layers mismatch: rc $rc, $(cat "$T/err")"
mkdir "$T/bare" && ln -s "$PT" "$T/bare/model.safetensors"
"$X" quantize "$T/bare/model.safetensors" "$T/x.gguf" --type q8_0 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "Moshiko 7B" "$T/err" && grep -q "expected \[32001, 4096\]" "$T/err" && ok \
  || bad "no config beside: rc $rc, $(cat "$T/err")"
"$X" quantize "$PT" "$T/x.gguf" --type q8_0 --config 2>/dev/null; [ $? -eq 2 ] && ok || bad "--config without value not exit 2"
"$X" quantize "$PT" "$T/x.gguf" --type q8_0 --config "$T/none.json" 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "none.json" "$T/err" && ok || bad "missing config: rc $rc, $(cat "$T/err")"

# 6. A PyTorch LM that candle cannot represent (Kyutai's test LM: no gating)
#    keeps its names, with a note, and still loads in xswarm.
K=$G/kyutai_test_lm
if [ -f "$K/test_lm_model.safetensors" ]; then
  "$X" quantize "$K/test_lm_model.safetensors" "$T/k.gguf" --type q8_0 2>"$T/err" \
    && grep -q "tensor names kept" "$T/err" && ok || bad "no-candle-layout fallback: $(cat "$T/err")"
  "$X" -q lm score --lm "$T/k.gguf" --config "$K/config.json" --codes "$K/test_lm_codes.safetensors" \
    -o "$T/ks.safetensors" 2>"$T/err" && ok || bad "fallback GGUF does not load: $(cat "$T/err")"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
