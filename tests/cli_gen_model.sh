#!/usr/bin/env bash
# xswarm gen-model: the tiny bundle (all parts, loads and runs, same seed ->
# identical files), the 7B plan (--dry-run: sizes, no weights written), and
# usage errors.
XS=$1; SRC=$3
pass=0; fail=0
ok() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $1"; head -5 "$W/err" 2>/dev/null; fi; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
"$XS" gen-model --preset tiny --seed 3 -o "$W/t1" 2>"$W/err"; rc=$?
ok "tiny: exit 0 (rc $rc)" '[ $rc -eq 0 ]'
for f in config.json mimi_config.json model.safetensors tokenizer-e351c8d8-checkpoint125.safetensors tokenizer_spm_32k_3.model; do
  ok "tiny has $f" '[ -s "$W/t1/$f" ]'
done
ok "tiny reports diverse codes" 'grep -q "distinct codes per codebook" "$W/err"'
"$XS" gen-model --quiet --preset tiny --seed 3 -o "$W/t2" 2>/dev/null
ok "same seed: identical LM" 'cmp -s "$W/t1/model.safetensors" "$W/t2/model.safetensors"'
"$XS" gen-model --quiet --preset tiny --seed 3 --dtype bf16 -o "$W/t3" 2>/dev/null
s1=$(stat -c %s "$W/t1/model.safetensors"); s3=$(stat -c %s "$W/t3/model.safetensors")
ok "bf16 LM is about half the f32 one ($s3 vs $s1)" '[ $((s3 * 2)) -lt $((s1 + 65536)) ] && [ $((s3 * 2)) -gt $((s1 - 65536)) ]'
"$XS" info "$W/t3/model.safetensors" >"$W/info" 2>&1
ok "xswarm info reads the bf16 LM" 'grep -qi "bf16" "$W/info"'
"$XS" run --model "$W/t3" "$SRC/assets/test-utterance.wav" -o "$W/r.wav" --text-out "$W/r.txt" 2>"$W/err"; rc=$?
ok "the bf16 bundle runs (rc $rc)" '[ $rc -eq 0 ] && [ -s "$W/r.wav" ]'
"$XS" gen-model --preset moshi-7b --dtype bf16 --dry-run -o "$W/m7b" 2>"$W/err"; rc=$?
ok "7B dry run: exit 0 (rc $rc)" '[ $rc -eq 0 ]'
ok "7B dry run: ~7.7 G parameters, ~15 GB" 'grep -q "7.6[0-9][0-9] G parameters, 15.[0-9]* GB" "$W/err"'
ok "7B dry run: no weights written" '[ ! -e "$W/m7b/model.safetensors" ] && [ -s "$W/m7b/config.json" ]'
"$XS" gen-model --preset huge -o "$W/x" 2>"$W/err"; rc=$?
ok "unknown preset: usage error (rc $rc)" '[ $rc -eq 2 ] && grep -q "huge" "$W/err"'
"$XS" gen-model --preset tiny 2>"$W/err"; rc=$?
ok "no -o: usage error (rc $rc)" '[ $rc -eq 2 ]'
"$XS" gen-model --quiet --preset tiny --dtype q8_0 -o "$W/q" 2>"$W/err"; rc=$?
ok "q8_0: exit 0 (rc $rc)" '[ $rc -eq 0 ]'
ok "q8_0: model.q8.gguf instead of model.safetensors" '[ -s "$W/q/model.q8.gguf" ] && [ ! -e "$W/q/model.safetensors" ]'
"$XS" run --model "$W/q" "$SRC/assets/test-utterance.wav" -o "$W/q.wav" --max-steps 10 2>"$W/err"; rc=$?
ok "q8_0 bundle runs (rc $rc)" '[ $rc -eq 0 ] && [ $(soxi -s "$W/q.wav") -eq $((10 * 1920)) ]'
"$XS" gen-model --preset tiny --dtype q5 -o "$W/q5" 2>"$W/err"; rc=$?
ok "bad dtype: usage error (rc $rc)" '[ $rc -eq 2 ]'
"$XS" gen-model --preset tiny -o /proc/nope/x 2>"$W/err"; rc=$?
ok "unwritable folder: runtime error (rc $rc)" '[ $rc -eq 1 ]'
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
