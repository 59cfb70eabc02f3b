#!/bin/bash
# cli_codec.sh — `xswarm codec encode | decode | roundtrip` on golden/mimi_tiny:
# codes equal Kyutai's codes_stream, decoded pcm within 1e-4 of
# pcm_decoded_stream (from I64 and from I32 codes), taps written, usage errors.
# $1 = xswarm binary, $2 = golden dir, $3 = source dir.
XS="$1"; G="$2/mimi_tiny"
[ -x "$XS" ] || { echo "SKIP: no binary"; exit 77; }
[ -f "$G/model.safetensors" ] || { echo "SKIP: no golden mimi_tiny"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 needed to read safetensors"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
ko() { fail=$((fail+1)); echo "FAIL: $*"; }
check() { local what="$1"; shift; if "$@"; then ok; else ko "$what"; fi; }

# Minimal safetensors reader/writer (no numpy): compare tensors, write codes.
cat > "$T/st.py" <<'EOF'
import json, struct, sys
def load(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8+n]); data = b[8+n:]
    out = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']; raw = data[s:e]
        fmt = {'F32': 'f', 'I64': 'q', 'I32': 'i'}[v['dtype']]
        out[k] = (v['dtype'], v['shape'], struct.unpack('<%d%s' % (len(raw) // struct.calcsize(fmt), fmt), raw))
    return out
def save(path, name, dtype, shape, vals):
    fmt = {'I64': 'q', 'I32': 'i'}[dtype]
    raw = struct.pack('<%d%s' % (len(vals), fmt), *vals)
    h = json.dumps({name: {'dtype': dtype, 'shape': shape, 'data_offsets': [0, len(raw)]}}).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(h)) + h + raw)
cmd = sys.argv[1]
if cmd == 'codes_equal':      # file golden name
    a = load(sys.argv[2])['codes']; g = load(sys.argv[3])[sys.argv[4]]
    sys.exit(0 if a[1] == g[1] and a[2] == g[2] else 1)
if cmd == 'pcm_close':        # file golden name tol
    a = load(sys.argv[2])['pcm']; g = load(sys.argv[3])[sys.argv[4]]
    err = max(abs(x - y) for x, y in zip(a[2], g[2])) if len(a[2]) == len(g[2]) else 1e9
    print('max abs err', err); sys.exit(0 if err <= float(sys.argv[5]) else 1)
if cmd == 'write_codes':      # golden name out dtype
    g = load(sys.argv[2])[sys.argv[3]]
    save(sys.argv[4], 'codes', sys.argv[5], g[1], g[2]); sys.exit(0)
if cmd == 'has':              # file tensor
    sys.exit(0 if sys.argv[3] in load(sys.argv[2]) else 1)
EOF
PY="python3 $T/st.py"
M="--mimi $G/model.safetensors"

for be in ref cpu; do
  "$XS" codec encode $M --backend $be --dump-taps "$T/taps_$be.safetensors" "$G/input.wav" -o "$T/codes_$be.safetensors" 2>"$T/err"
  check "encode on $be exits 0 ($(cat "$T/err"))" [ $? -eq 0 ]
  check "codes on $be == codes_stream" $PY codes_equal "$T/codes_$be.safetensors" "$G/golden.safetensors" codes_stream
  check "taps hold mimi.enc.seanet_out" $PY has "$T/taps_$be.safetensors" mimi.enc.seanet_out
done

$PY write_codes "$G/golden.safetensors" codes_stream "$T/g64.safetensors" I64
$PY write_codes "$G/golden.safetensors" codes_stream "$T/g32.safetensors" I32
for dt in 64 32; do
  "$XS" codec decode $M --backend cpu "$T/g$dt.safetensors" -o "$T/pcm$dt.safetensors" 2>"$T/err"
  check "decode I$dt exits 0 ($(cat "$T/err"))" [ $? -eq 0 ]
  check "decoded pcm (I$dt codes) within 1e-4" $PY pcm_close "$T/pcm$dt.safetensors" "$G/golden.safetensors" pcm_decoded_stream 1e-4
done
"$XS" codec decode $M "$T/g64.safetensors" -o "$T/out.wav" 2>/dev/null
check "decode to WAV" [ -s "$T/out.wav" ]
# 147840 samples * 2 bytes + 44-byte header
check "WAV has 147840 samples" [ "$(stat -c %s "$T/out.wav")" -ge 295680 ]

"$XS" codec roundtrip $M --codebooks 4 "$G/input.wav" -o "$T/rt.wav" 2>/dev/null
check "roundtrip exits 0" [ $? -eq 0 ]
check "roundtrip WAV is written" [ -s "$T/rt.wav" ]

# a model folder (Hugging Face snapshot layout) instead of a file
mkdir -p "$T/bundle"
cp "$G/model.safetensors" "$T/bundle/tokenizer-e351c8d8-checkpoint125.safetensors"
cp "$G/config.json" "$T/bundle/mimi_config.json"
"$XS" codec encode --mimi "$T/bundle" "$G/input.wav" -o "$T/codes_dir.safetensors" 2>/dev/null
check "encode with --mimi DIR" $PY codes_equal "$T/codes_dir.safetensors" "$G/golden.safetensors" codes_stream
"$XS" codec encode --mimi "$T" "$G/input.wav" -o "$T/x.safetensors" 2>"$T/err"
check "a folder without Mimi weights fails with 1" [ $? -eq 1 ]

# usage and errors
for v in encode decode roundtrip; do
  "$XS" codec $v --help >/dev/null; check "codec $v --help exits 0" [ $? -eq 0 ]
done
"$XS" codec --help >/dev/null; check "codec --help exits 0" [ $? -eq 0 ]
"$XS" codec encode "$G/input.wav" -o "$T/x.safetensors" 2>/dev/null
check "encode without --mimi is a usage error" [ $? -eq 2 ]
"$XS" codec frobnicate 2>/dev/null; check "unknown subcommand is a usage error" [ $? -eq 2 ]
"$XS" codec encode $M "$T/missing.wav" -o "$T/x.safetensors" 2>"$T/err"
check "missing input fails with 1" [ $? -eq 1 ]
check "message names the file" grep -q missing.wav "$T/err"
"$XS" codec decode $M "$T/taps_ref.safetensors" -o "$T/x.wav" 2>"$T/err"
check "decode of a file without codes fails with 1" [ $? -eq 1 ]
check "message says what is missing" grep -q codes "$T/err"
"$XS" codec encode --mimi "$G/golden.safetensors" --mimi-config "$G/config.json" "$G/input.wav" -o "$T/x.safetensors" 2>"$T/err"
check "non-Mimi weights fail with 1" [ $? -eq 1 ]
check "message names a missing tensor" grep -q "encoder.model.0.conv.conv.weight" "$T/err"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
