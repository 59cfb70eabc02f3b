#!/usr/bin/env bash
# xswarm --dev: test mode on the embedded tiny model writes the response and a
# complete experiment folder; same seed twice gives a byte-identical response;
# without MOSHI_TEST_MODE it names the live modes and exits 2.
XS=$1; SRC=$3
pass=0; fail=0
ok() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $1"; fi; }
[ -f "$SRC/assets/test-utterance.wav" ] || { echo "no test utterance"; echo "0 passed, 0 failed"; exit 77; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cd "$W"
# isolate from a real HF cache so the embedded model is used
export HF_HUB_CACHE="$W/nohub"; unset XSWARM_MODEL
env -u MOSHI_TEST_MODE "$XS" --dev >out0.txt 2>&1; rc=$?
ok "no test mode exits 2" '[ $rc -eq 2 ]'
ok "no test mode names live modes" 'grep -q "serve" out0.txt && grep -q "run" out0.txt'
MOSHI_TEST_MODE=1 MOSHI_USE_CPU=1 "$XS" --dev >out1.txt 2>&1; rc=$?
ok "test mode exits 0 (rc $rc)" '[ $rc -eq 0 ]'
ok "says no weights were found" 'grep -q "No Moshi weights were found" out1.txt'
ok "says how to get real weights" 'grep -q "huggingface-cli download kyutai/moshiko-candle-q8" out1.txt'
ok "prints the backend choice" 'grep -q "backend: cpu — MOSHI_USE_CPU=1" out1.txt'
ok "response written" '[ -s tmp/moshi-response.wav ]'
# utterance + 4 s silence, whole frames
n=$(soxi -s tmp/moshi-response.wav 2>/dev/null || echo 0)
ok "response length is whole frames >= 4 s ($n)" '[ $((n % 1920)) -eq 0 ] && [ $n -ge 96000 ]'
ok "response is 24 kHz mono" '[ "$(soxi -r tmp/moshi-response.wav)" = 24000 ] && [ "$(soxi -c tmp/moshi-response.wav)" = 1 ]'
E=$(ls -d tmp/experiments/*-cpu | head -1)
for f in input.wav response.wav codes.safetensors text.txt timings.csv report.json; do
  ok "experiment has $f" '[ -s "$E/$f" ]'
done
for k in backend threads seed sampling model sha256 timings p50_ms p99_ms analysis version; do
  ok "report.json has $k" 'grep -q "\"$k\"" "$E/report.json"'
done
rows=$(($(wc -l < "$E/timings.csv") - 1))
ok "timings.csv has one row per frame ($rows)" '[ $rows -eq $((n / 1920)) ]'
ok "text.txt is not empty" '[ -n "$(tr -d " \n" < "$E/text.txt")" ]'
cp tmp/moshi-response.wav first.wav
sleep 1
MOSHI_TEST_MODE=1 MOSHI_USE_CPU=1 "$XS" --dev >out2.txt 2>&1
ok "second run: byte-identical response" 'cmp -s first.wav tmp/moshi-response.wav'
ok "second run: a new experiment folder" '[ $(ls -d tmp/experiments/* | wc -l) -eq 2 ]'
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
