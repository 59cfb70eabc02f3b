#!/bin/bash
# cli_diagnose.sh — `xswarm diagnose --backends ref,cpu` on the golden tiny
# models (lm_tiny + mimi_tiny, 4 input frames): consistent without a fault;
# with XSWARM_FAULT=cpu:<op> for every op of issue 7, verdict `backend`
# naming that op; a fault that starts late (matmul@step=500) is found at a
# later step; a transient one gives `numerics`; --against and
# --reference-weights (good and corrupted Q8); --ops runs the parity suite; bad options are usage errors;
# each fault writes the op call, and --replay reproduces it (exit 3) only with the fault; --replay
# on garbage is an error; --kv f32,bf16 reports the KV cost; --random tiny is consistent.
# $1 = xswarm binary, $2 = golden dir, $3 = source dir.
XS="$1"; G="$2"
[ -x "$XS" ] || { echo "SKIP: no binary"; exit 77; }
[ -f "$G/lm_tiny/model.safetensors" ] && [ -f "$G/mimi_tiny/model.safetensors" ] ||
    { echo "SKIP: no golden tiny models"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
ko() { fail=$((fail+1)); echo "FAIL: $*"; }
MODEL=(--lm "$G/lm_tiny/model.safetensors" --config "$G/lm_tiny/config.json"
       --mimi "$G/mimi_tiny/model.safetensors" --mimi-config "$G/mimi_tiny/config.json"
       --input "$G/mimi_tiny/input.wav" --steps 4 --greedy --backends ref,cpu)
unset XSWARM_FAULT
# jget FILE KEY: the value of "KEY": in cJSON's printed object (first match)
jget() { grep -m1 -o "\"$2\":[[:space:]]*[^,]*" "$1" | sed 's/^[^:]*:[[:space:]]*//; s/"//g'; }

# 1. no fault: consistent, exit 0, full JSON
"$XS" diagnose "${MODEL[@]}" --json --out "$T/none" > "$T/none.json" 2> "$T/none.err"; rc=$?
[ $rc -eq 0 ] && ok || ko "no fault: exit $rc (want 0)"; cat "$T/none.err" | head -5
[ "$(jget "$T/none.json" verdict)" = consistent ] && ok || ko "no fault: verdict $(jget "$T/none.json" verdict)"
[ "$(jget "$T/none.json" first_divergence)" = null ] && ok || ko "no fault: first_divergence not null"
[ "$(jget "$T/none.json" steps)" = 5 ] && [ "$(jget "$T/none.json" equal)" = 5 ] && ok ||
    ko "no fault: token agreement $(jget "$T/none.json" equal)/$(jget "$T/none.json" steps)"
for k in backends token_agreement audio score defects first_difference; do
    grep -q "\"$k\"" "$T/none.json" && ok || ko "no fault: JSON lacks $k"
done
for f in report.json report.txt diagnose.log parity.txt taps_A_lm.safetensors taps_B_lm.safetensors response_A_ref.wav response_B_cpu.wav; do
    [ -s "$T/none/$f" ] && ok || ko "no fault: $f not written"
done

# 2. every op fault on cpu: verdict backend naming that op
for op in matmul conv1d conv_transpose1d elu gelu layer_norm rms_norm rope softmax attention embedding; do
    XSWARM_FAULT=cpu:$op "$XS" diagnose "${MODEL[@]}" --json --out "$T/$op" > "$T/$op.json" 2> "$T/$op.err"; rc=$?
    v=$(jget "$T/$op.json" verdict); o=$(jget "$T/$op.json" op)
    [ $rc -eq 3 ] && [ "$v" = backend ] && [ "$o" = "$op" ] && ok ||
        ko "fault cpu:$op: exit $rc verdict '$v' op '$o'"
    grep -q "FAULT INJECTION ACTIVE" "$T/$op.err" && ok || ko "fault cpu:$op not announced"
    # the recorded call: its file, the reproduce line, --replay beyond tolerance with the
    # fault (the variable is read by --replay too), within without it
    f=$(ls "$T/$op"/op-$op-*.safetensors 2>/dev/null | head -1)
    [ -n "$f" ] && ok || ko "fault cpu:$op: no op-$op-*.safetensors written"
    grep -q "\"reproduce\":[[:space:]]*\"xswarm diagnose --replay .*op-$op-.*--backends ref,cpu\"" "$T/$op.json" && ok ||
        ko "fault cpu:$op: reproduce is not a --replay command: $(grep reproduce "$T/$op.json")"
    if [ -n "$f" ]; then
        XSWARM_FAULT=cpu:$op "$XS" diagnose --replay "$f" --backends ref,cpu > "$T/$op.r1" 2>/dev/null; rc=$?
        [ $rc -eq 3 ] && grep -q "^$op: ref vs cpu: .*BEYOND TOLERANCE" "$T/$op.r1" && ok ||
            ko "replay of $op with the fault: exit $rc: $(tail -1 "$T/$op.r1")"
        "$XS" diagnose --replay "$f" --backends ref,cpu > "$T/$op.r2" 2>&1; rc=$?
        [ $rc -eq 0 ] && grep -q "^$op: ref vs cpu: .*within tolerance" "$T/$op.r2" && ok ||
            ko "replay of $op without the fault: exit $rc: $(tail -1 "$T/$op.r2")"
    fi
done
# ops the model calls give a call of the model run (step N), others a parity case
ls "$T/elu"/op-elu-step*.safetensors > /dev/null 2>&1 && ok || ko "elu: not recorded from the model run"
grep -q "^op call: first call of matmul over tolerance at step" "$T/matmul/report.txt" && ok ||
    ko "matmul: report lacks the op call line"
# a fault in ops the tiny models run shows up as a tap, with its step
[ "$(jget "$T/matmul.json" tap)" != null ] && ok || ko "matmul fault: no divergent tap"
grep -q "^op: matmul" "$T/matmul/report.txt" && ok || ko "matmul: text report lacks the op"

# 3. a fault that only starts late is still found, at a later step
XSWARM_FAULT=cpu:matmul@step=500 "$XS" diagnose "${MODEL[@]}" --json --out "$T/late" > "$T/late.json" 2>/dev/null; rc=$?
step=$(jget "$T/late.json" step)
[ $rc -eq 3 ] && [ "$(jget "$T/late.json" op)" = matmul ] && ok || ko "late fault: exit $rc op $(jget "$T/late.json" op)"
[ -n "$step" ] && [ "$step" != null ] && [ "$step" -ge 2 ] && ok || ko "late fault: step '$step' (want >= 2)"

# 3b. a transient glitch (5 matmul calls) no op test reproduces: numerics, not backend
XSWARM_FAULT=cpu:matmul@step=300@until=305 "$XS" diagnose "${MODEL[@]}" --json --out "$T/num" > "$T/num.json" 2>/dev/null; rc=$?
[ $rc -eq 3 ] && [ "$(jget "$T/num.json" verdict)" = numerics ] && [ "$(jget "$T/num.json" op)" = null ] && ok ||
    ko "transient fault: exit $rc verdict $(jget "$T/num.json" verdict) op $(jget "$T/num.json" op)"
[ -s "$T/num/parity_real.txt" ] && ok || ko "transient fault: real-shape parity not tried"

# 4. a fault on another backend leaves cpu alone
XSWARM_FAULT=cuda:matmul "$XS" diagnose "${MODEL[@]}" --out "$T/other" > "$T/other.txt" 2>/dev/null; rc=$?
[ $rc -eq 0 ] && grep -q "^verdict: consistent" "$T/other.txt" && ok || ko "cuda fault changed a ref,cpu run (exit $rc)"

# 5. a malformed XSWARM_FAULT is refused loudly and ignored
XSWARM_FAULT=cpu:nosuchop "$XS" diagnose "${MODEL[@]}" --out "$T/bad" > /dev/null 2> "$T/bad.err"; rc=$?
[ $rc -eq 0 ] && grep -q "XSWARM_FAULT ignored" "$T/bad.err" && ok || ko "bad XSWARM_FAULT: exit $rc"

# 6. --ops: the parity suite (small shapes here), fault found there too
"$XS" diagnose --ops --small --backends ref,cpu --filter elu,matmul > "$T/ops.txt" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q " 0 failed" "$T/ops.txt" && ok || ko "--ops: exit $rc"
XSWARM_FAULT=cpu:elu "$XS" diagnose --ops --small --backends ref,cpu --filter elu > "$T/ops2.txt" 2>&1; rc=$?
[ $rc -eq 3 ] && ok || ko "--ops with an elu fault: exit $rc (want 3)"

# 7. --against: ref's taps vs Kyutai's own pipeline dump (same input, same protocol)
"$XS" diagnose "${MODEL[@]}" --out "$T/ag" --against "$G/pipeline_tiny/golden.safetensors" > "$T/ag.txt" 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q "against dump: all 1[0-9] shared taps within tolerance" "$T/ag.txt" && ok ||
    ko "--against pipeline_tiny: exit $rc: $(grep against "$T/ag.txt")"
# a dump of a different run (lm_tiny's own token inputs) diverges, and says where
"$XS" diagnose "${MODEL[@]}" --json --out "$T/ag2" --against "$G/lm_tiny/golden.safetensors" > "$T/ag2.json" 2>/dev/null
grep -A3 '"against"' "$T/ag2.json" | grep -q '"tap":[[:space:]]*"lm\.' && ok || ko "--against lm_tiny: no divergence found"

# 8. --reference-weights: the candle Q8 export vs its float source; then a corrupted copy
Q="$G/lm_tiny_candle_q8"
if [ -f "$Q/model.q8.gguf" ] && command -v python3 >/dev/null; then
    QM=(--lm "$Q/model.q8.gguf" --config "$Q/config.json" --mimi "$G/mimi_tiny/model.safetensors"
        --mimi-config "$G/mimi_tiny/config.json" --input "$G/mimi_tiny/input.wav" --steps 3 --greedy
        --backends ref,cpu --reference-weights "$Q/model.candle.safetensors")
    "$XS" diagnose "${QM[@]}" --json --out "$T/w" > "$T/w.json" 2>/dev/null; rc=$?
    [ $rc -eq 0 ] && [ "$(jget "$T/w.json" beyond_quantization)" = 0 ] && [ "$(jget "$T/w.json" compared)" -gt 100 ] && ok ||
        ko "q8 vs source: exit $rc, beyond $(jget "$T/w.json" beyond_quantization)"
    cp "$Q/model.q8.gguf" "$T/bad.gguf"; chmod u+w "$T/bad.gguf"
    python3 -c "
import sys; f=open(sys.argv[1],'r+b'); f.seek(400000); b=f.read(64); f.seek(400000); f.write(bytes(x^0x5a for x in b))" "$T/bad.gguf"
    QM[1]="$T/bad.gguf"
    "$XS" diagnose "${QM[@]}" --json --out "$T/w2" > "$T/w2.json" 2>/dev/null; rc=$?
    [ $rc -eq 3 ] && [ "$(jget "$T/w2.json" verdict)" = weights ] && ok ||
        ko "corrupt q8: exit $rc verdict $(jget "$T/w2.json" verdict)"
fi

# 8b. --replay on garbage: a truncated call, a foreign safetensors file, a missing file
f=$(ls "$T/conv1d"/op-conv1d-*.safetensors 2>/dev/null | head -1)
if [ -n "$f" ]; then
    head -c 300 "$f" > "$T/trunc.safetensors"
    "$XS" diagnose --replay "$T/trunc.safetensors" > /dev/null 2> "$T/trunc.err"; rc=$?
    [ $rc -ge 1 ] && [ $rc -le 2 ] && [ -s "$T/trunc.err" ] && ok || ko "truncated --replay: exit $rc"
fi
"$XS" diagnose --replay "$G/lm_tiny/golden.safetensors" > /dev/null 2> "$T/foreign.err"; rc=$?
[ $rc -ge 1 ] && [ $rc -le 2 ] && grep -q "not a valid xswarm op call" "$T/foreign.err" && ok ||
    ko "foreign --replay: exit $rc: $(cat "$T/foreign.err")"
"$XS" diagnose --replay "$T/nonexistent.safetensors" > /dev/null 2>&1; rc=$?
[ $rc -ge 1 ] && [ $rc -le 2 ] && ok || ko "missing --replay file: exit $rc"

# 8c. --kv A,B: B with a bf16 KV cache; the report says so and shows the growth over steps
M2=("${MODEL[@]:0:10}" --steps 6 --greedy)
"$XS" diagnose "${M2[@]}" --backends cpu,cpu --kv f32,bf16 --json --out "$T/kv" > "$T/kv.json" 2>/dev/null; rc=$?
[ $rc -eq 0 ] || [ $rc -eq 3 ] && ok || ko "--kv f32,bf16: exit $rc"
grep -A3 '"kv_cache"' "$T/kv.json" | grep -q '"differs":[[:space:]]*true' && ok || ko "--kv f32,bf16: kv_cache.differs not true"
grep -q '"error_growth"' "$T/kv.json" && ok || ko "--kv f32,bf16: no error_growth"
grep -q "B used a different KV cache dtype (A f32, B bf16)" "$T/kv/report.txt" && ok || ko "--kv: text report does not say B's KV dtype differs"
[ "$(jget "$T/kv.json" verdict)" != backend ] && ok || ko "--kv f32,bf16 on cpu,cpu: verdict backend"
"$XS" diagnose "${M2[@]}" --backends cpu,cpu --kv f32,q3 > /dev/null 2>&1; [ $? -eq 2 ] && ok || ko "--kv f32,q3: not a usage error"

# 8d. --random tiny (the test preset of --random moshi-7b): real Mimi, small LM, random weights
"$XS" diagnose --random tiny --input "$G/mimi_tiny/input.wav" --steps 2 --greedy --backends ref,cpu \
    --json --out "$T/rnd" > "$T/rnd.json" 2> "$T/rnd.err"; rc=$?
[ $rc -eq 0 ] && [ "$(jget "$T/rnd.json" verdict)" = consistent ] && ok ||
    ko "--random tiny: exit $rc verdict $(jget "$T/rnd.json" verdict): $(head -2 "$T/rnd.err")"
"$XS" diagnose --random moshi-9b --input "$G/mimi_tiny/input.wav" --out "$T/rnd2" > /dev/null 2>&1; rc=$?
[ $rc -ge 1 ] && [ $rc -le 2 ] && ok || ko "--random moshi-9b: exit $rc"

# 9. usage errors
"$XS" diagnose --backends ref > /dev/null 2>&1; [ $? -eq 2 ] && ok || ko "--backends ref: not a usage error"
"$XS" diagnose "${MODEL[@]}" --steps 0 > /dev/null 2>&1; [ $? -eq 2 ] && ok || ko "--steps 0: not a usage error"
"$XS" diagnose --lm /nonexistent --mimi /nonexistent --input x.wav --out "$T/e" > /dev/null 2>&1; rc=$?
[ $rc -eq 1 ] || [ $rc -eq 2 ] && ok || ko "missing model: exit $rc (want 1 or 2)"

# 10. no model options: the model --dev would pick (here the embedded tiny
#     bundle, since the Hugging Face cache is empty) and the test utterance
mkdir -p "$T/emptyhub"
(cd "$T" && HF_HUB_CACHE="$T/emptyhub" XSWARM_MODEL= "$XS" diagnose --steps 2 --json --out "$T/dflt" \
    > "$T/dflt.json" 2> "$T/dflt.err"); rc=$?
[ $rc -eq 0 ] && [ "$(jget "$T/dflt.json" verdict)" = consistent ] && ok ||
    ko "default model: exit $rc verdict $(jget "$T/dflt.json" verdict): $(head -3 "$T/dflt.err")"
grep -q "embedded tiny" "$T/dflt.err" && ok || ko "default model: does not say it uses the embedded tiny model"

# 11. on a machine with a usable GPU: the same fault checks for cuda (A = cpu), the
#     no-fault run and --random tiny consistent on cpu,cuda
if "$XS" diagnose --ops --small --backends cpu,cuda --filter fill > /dev/null 2>&1; then
    "$XS" diagnose "${MODEL[@]}" --backends cpu,cuda --json --out "$T/cu" > "$T/cu.json" 2>/dev/null; rc=$?
    [ $rc -eq 0 ] && [ "$(jget "$T/cu.json" verdict)" = consistent ] && ok ||
        ko "cpu,cuda no fault: exit $rc verdict $(jget "$T/cu.json" verdict) tap $(jget "$T/cu.json" tap)"
    "$XS" diagnose --random tiny --input "$G/mimi_tiny/input.wav" --steps 3 --greedy --backends cpu,cuda \
        --json --out "$T/curnd" > "$T/curnd.json" 2>/dev/null; rc=$?
    [ $rc -eq 0 ] && ok || ko "cpu,cuda --random tiny: exit $rc verdict $(jget "$T/curnd.json" verdict) tap $(jget "$T/curnd.json" tap)"
    for op in matmul conv1d conv_transpose1d elu gelu layer_norm rms_norm rope softmax attention embedding; do
        XSWARM_FAULT=cuda:$op "$XS" diagnose "${MODEL[@]}" --backends cpu,cuda --json --out "$T/cu-$op" > "$T/cu-$op.json" 2>/dev/null; rc=$?
        v=$(jget "$T/cu-$op.json" verdict); o=$(jget "$T/cu-$op.json" op)
        [ $rc -eq 3 ] && [ "$v" = backend ] && [ "$o" = "$op" ] && ok || ko "fault cuda:$op: exit $rc verdict '$v' op '$o'"
        f=$(ls "$T/cu-$op"/op-$op-*.safetensors 2>/dev/null | head -1)
        [ -n "$f" ] && ok || ko "fault cuda:$op: no op call recorded"
        [ -n "$f" ] || continue
        XSWARM_FAULT=cuda:$op "$XS" diagnose --replay "$f" > /dev/null 2>&1; rc=$?
        [ $rc -eq 3 ] && ok || ko "replay cuda:$op with the fault: exit $rc (want 3)"
        "$XS" diagnose --replay "$f" > "$T/cu-$op.r" 2>&1; rc=$?
        [ $rc -eq 0 ] && ok || ko "replay cuda:$op without the fault: exit $rc: $(tail -1 "$T/cu-$op.r")"
    done
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
