#!/usr/bin/env bash
# cli_analyze.sh — `xswarm analyze`: text, --json (object / array), --png,
# --expect-text note, --corrupt, exit statuses (0 whatever the score, 1 on
# unreadable input, 2 on usage errors), non-finite samples reported.
# Args: $1 xswarm binary, $2 golden dir, $3 source dir.
set -u
X="$1"; SRC="$3"
pass=0; fail=0
ok() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $1"; fi; }
command -v python3 >/dev/null || { echo "SKIP: python3 needed to check JSON"; exit 77; }
T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
clean="$SRC/tests/data/analyze/clean_en_us_m.wav"
real="$SRC/tests/data/analyze/clean_fr_real.wav"

out="$("$X" analyze "$clean")"; rc=$?
ok "text exit 0" '[ $rc -eq 0 ]'
ok "text has score" 'echo "$out" | grep -q "score [0-9]*/100 — clear"'
ok "text has measures" 'echo "$out" | grep -q "duration 4.59 s, rms"'

"$X" analyze --corrupt clicks "$clean" "$T/clicks.wav"; rc=$?
ok "--corrupt exit 0" '[ $rc -eq 0 ] && [ -s "$T/clicks.wav" ]'
out="$("$X" analyze "$T/clicks.wav")"; rc=$?
ok "bad audio still exit 0" '[ $rc -eq 0 ]'
ok "clicks named in text" 'echo "$out" | grep -q "frame_discontinuity *major"'

"$X" analyze --json "$T/clicks.wav" > "$T/one.json"
ok "--json one object" 'python3 -c "
import json,sys; o=json.load(open(\"$T/one.json\"))
assert isinstance(o, dict) and o[\"score\"] <= 60 and o[\"verdict\"] == \"degraded\"
d=[d for d in o[\"defects\"] if d[\"name\"]==\"frame_discontinuity\"][0]
assert abs(d[\"period_ms\"]-80) < 1 and 0 <= d[\"confidence\"] <= 1 and d[\"severity\"] == \"major\"
assert \"snr_db\" in o[\"metrics\"] and \"times_s\" in d"'

"$X" analyze --json "$clean" "$T/clicks.wav" > "$T/two.json"
ok "--json array for two files" 'python3 -c "
import json; a=json.load(open(\"$T/two.json\"))
assert isinstance(a, list) and len(a) == 2 and a[0][\"score\"] >= 80 and a[1][\"score\"] <= 60"'

"$X" analyze "$real" --png "$T/p.png" >/dev/null; rc=$?
ok "--png exit 0" '[ $rc -eq 0 ]'
ok "--png writes a PNG" '[ "$(head -c 8 "$T/p.png" | od -An -tx1 | tr -d " \n")" = "89504e470d0a1a0a" ]'
"$X" analyze "$clean" "$real" --png "$T/m.png" >/dev/null
ok "--png numbered for several files" '[ -s "$T/m-1.png" ] && [ -s "$T/m-2.png" ]'

out="$("$X" analyze "$clean" --expect-text "the quick brown fox")"; rc=$?
ok "--expect-text exit 0" '[ $rc -eq 0 ]'
ok "--expect-text says what it did" 'echo "$out" | grep -q "intelligibility"'

printf 'not audio at all' > "$T/bad.wav"
"$X" analyze "$T/bad.wav" 2> "$T/err"; rc=$?
ok "unreadable: exit 1..125" '[ $rc -ge 1 ] && [ $rc -le 125 ]'
ok "unreadable: names the file" 'grep -q "bad.wav" "$T/err"'
"$X" analyze "$T/missing.wav" 2>/dev/null; rc=$?
ok "missing file: exit 1" '[ $rc -eq 1 ]'
"$X" analyze 2>/dev/null; rc=$?
ok "no file: usage, exit 2" '[ $rc -eq 2 ]'
"$X" analyze --help | grep -q "frame_discontinuity"; rc=$?
ok "--help lists defect names" '[ $rc -eq 0 ]'

# A float WAV with NaN inside: reported as nonfinite, not refused.
python3 - "$T/nan.wav" <<'PY'
import struct, sys, math
n = 24000 * 2
data = [0.3 * math.sin(2 * math.pi * 200 * i / 24000) for i in range(n)]
data[1000] = float("nan")
raw = struct.pack("<%df" % n, *data)
hdr = b"RIFF" + struct.pack("<I", 36 + len(raw)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 3, 1, 24000, 96000, 4, 32)
open(sys.argv[1], "wb").write(hdr + b"data" + struct.pack("<I", len(raw)) + raw)
PY
out="$("$X" analyze --json "$T/nan.wav")"; rc=$?
ok "NaN file: exit 0" '[ $rc -eq 0 ]'
ok "NaN file: nonfinite critical" 'echo "$out" | python3 -c "
import json,sys; o=json.load(sys.stdin)
assert any(d[\"name\"]==\"nonfinite\" and d[\"severity\"]==\"critical\" for d in o[\"defects\"])"'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
