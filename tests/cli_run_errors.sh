#!/usr/bin/env bash
# xswarm run on bad input: missing/garbage model files, a bundle missing a
# part, empty / too short / silent / non-finite / 8 kHz stereo / over-long
# input, and Ctrl-C. Each gives a clear message and a sane exit status (never
# a crash); resampling and mixing down are done and said.
XS=$1; G=$2; SRC=$3
pass=0; fail=0
ok() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $1"; cat "$W/err" 2>/dev/null | head -5; fi; }
M=$(dirname "$XS")/tiny-model
[ -f "$M/model.safetensors" ] || { echo "no tiny-model next to the binary"; echo "0 passed, 0 failed"; exit 77; }
command -v sox >/dev/null || { echo "sox needed"; echo "0 passed, 0 failed"; exit 77; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
UTT="$SRC/assets/test-utterance.wav"
run() { "$XS" run "$@" >"$W/out" 2>"$W/err"; echo $?; }
nocrash() { [ "$1" -ge 1 ] && [ "$1" -lt 128 ]; }

# model problems
rc=$(run --lm "$W/none.safetensors" --mimi "$M/tokenizer-e351c8d8-checkpoint125.safetensors" "$UTT" -o "$W/o.wav")
ok "missing LM file: rc $rc" 'nocrash $rc && grep -q "none.safetensors" "$W/err"'
echo "not a model" > "$W/garbage.safetensors"
rc=$(run --lm "$W/garbage.safetensors" --config "$M/config.json" --mimi "$M/tokenizer-e351c8d8-checkpoint125.safetensors" "$UTT" -o "$W/o.wav")
ok "garbage LM file: rc $rc" 'nocrash $rc && grep -q "garbage.safetensors" "$W/err"'
mkdir "$W/partial"; cp "$M/model.safetensors" "$M/config.json" "$W/partial/"
rc=$(run --model "$W/partial" "$UTT" -o "$W/o.wav")
ok "bundle without Mimi: rc $rc" 'nocrash $rc && grep -qi "no Mimi weights" "$W/err"'
rc=$(run --model "$W/nonexistent" "$UTT" -o "$W/o.wav")
ok "missing model folder: rc $rc" 'nocrash $rc && grep -q "nonexistent" "$W/err"'
rc=$(run --lm "$M/model.safetensors" --config "$M/config.json" --mimi "$G/mimi_tiny/model.safetensors" --mimi-config "$G/mimi_tiny/config.json" "$UTT" -o "$W/o.wav")
[ -f "$G/mimi_tiny/model.safetensors" ] && \
  ok "parts of two models (card 128 vs 64 bins): rc $rc" 'nocrash $rc && grep -q "does not match" "$W/err"'
rc=$(run "$UTT" -o "$W/o.wav" --hf-repo kyutai/not-downloaded)
ok "--hf-repo not in cache: rc $rc" 'nocrash $rc && grep -q "huggingface-cli download" "$W/err"'
rc=$(run "$UTT" -o "$W/o.wav")
ok "no model at all: usage error 2 (rc $rc)" '[ $rc -eq 2 ]'

# input problems
rc=$(run --model "$M" "$W/missing.wav" -o "$W/o.wav")
ok "missing input: rc $rc" 'nocrash $rc && grep -q "missing.wav" "$W/err"'
: > "$W/empty.wav"
rc=$(run --model "$M" "$W/empty.wav" -o "$W/o.wav")
ok "empty file: rc $rc" 'nocrash $rc && grep -q "empty.wav" "$W/err"'
sox -n -r 24000 -c 1 -b 16 "$W/short.wav" trim 0 0.05
rc=$(run --model "$M" "$W/short.wav" -o "$W/o.wav")
ok "shorter than a frame: rc $rc, suggests --pad-silence" 'nocrash $rc && grep -q "pad-silence" "$W/err"'
rc=$(run --model "$M" "$W/short.wav" -o "$W/o.wav" --pad-silence 1)
ok "short + --pad-silence 1 works: rc $rc" '[ $rc -eq 0 ] && [ $(soxi -s "$W/o.wav") -eq $((13 * 1920)) ]'
sox -n -r 24000 -c 1 -b 16 "$W/silent.wav" trim 0 1
rc=$(run --model "$M" "$W/silent.wav" -o "$W/o.wav")
ok "silent input runs and says so: rc $rc" '[ $rc -eq 0 ] && grep -q "silence" "$W/err"'
sox -n -r 8000 -c 2 -b 16 "$W/st8k.wav" synth 1 sine 300 sine 500
rc=$(run --model "$M" "$W/st8k.wav" -o "$W/o.wav")
ok "8 kHz stereo: mixed down + resampled, rc $rc" '[ $rc -eq 0 ] && grep -q "mixed down" "$W/err" && grep -q "resampled" "$W/err"'
ok "8 kHz stereo: 1 s -> 12 frames out" '[ $(soxi -s "$W/o.wav") -eq $((12 * 1920)) ]'
if command -v python3 >/dev/null; then
  python3 - "$W/nan.wav" <<'PY'
import struct, sys
n = 4800
data = b''.join(struct.pack('<f', float('nan') if i == 100 else 0.1) for i in range(n))
hdr = b'RIFF' + struct.pack('<I', 36 + len(data)) + b'WAVEfmt ' + struct.pack('<IHHIIHH', 16, 3, 1, 24000, 96000, 4, 32) + b'data' + struct.pack('<I', len(data))
open(sys.argv[1], 'wb').write(hdr + data)
PY
  rc=$(run --model "$M" "$W/nan.wav" -o "$W/o.wav")
  ok "non-finite samples refused: rc $rc" 'nocrash $rc && grep -qi "finite\|nan" "$W/err"'
fi
# over one hour (the reader's limit) at a low rate to keep the file small
sox -n -r 1000 -c 1 -b 8 "$W/long.wav" synth 3700 sine 100 2>/dev/null
rc=$(run --model "$M" "$W/long.wav" -o "$W/o.wav")
ok "over an hour refused: rc $rc" 'nocrash $rc && grep -q "long.wav" "$W/err"'

# bad option values
rc=$(run --model "$M" "$UTT" -o "$W/o.wav" --temp -1)
ok "bad --temp: usage error (rc $rc)" '[ $rc -eq 2 ]'
rc=$(run --model "$M" "$UTT" -o "$W/o.wav" --backend gpu)
ok "bad --backend: usage error (rc $rc)" '[ $rc -eq 2 ]'

# Ctrl-C: stop after the current frame, write what exists, say so, non-zero
"$XS" run --model "$M" "$UTT" --pad-silence 600 -o "$W/int.wav" --codes-out "$W/int.st" >"$W/out" 2>"$W/err" &
pid=$!
sleep 1.5
kill -INT $pid
wait $pid; rc=$?
ok "Ctrl-C: non-zero exit, no crash (rc $rc)" 'nocrash $rc'
ok "Ctrl-C: says interrupted" 'grep -qi "interrupted" "$W/err"'
ok "Ctrl-C: partial response written" '[ -s "$W/int.wav" ] && [ -s "$W/int.st" ]'
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
