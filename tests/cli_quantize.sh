#!/usr/bin/env bash
# cli_quantize.sh — `xswarm quantize` reproduces candle's Q8_0 GGUF of the
# tiny LM: same header fields and, tensor by tensor (matched by name), the
# same bytes as lm_tiny_candle_q8/model.q8.gguf. Also q4_0 output and errors.
# $1 = xswarm binary, $2 = golden dir, $3 = source dir.
X=$1; G=$2
[ -x "$X" ] || { echo "no binary $X"; exit 77; }
[ -f "$G/lm_tiny_candle_q8/model.q8.gguf" ] || { echo "SKIP: no golden lm_tiny_candle_q8"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 needed"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }

# A small GGUF parser (v2/v3) used to compare files field by field.
cat > "$T/gguf.py" <<'PY'
import struct, sys
SIZES = {0:1,1:1,2:2,3:2,4:4,5:4,6:4,7:1,10:8,11:8,12:8}
def read(path):
    b = open(path, 'rb').read(); p = 4  # after the magic
    def u(fmt):
        nonlocal p; v = struct.unpack_from('<' + fmt, b, p); p += struct.calcsize(fmt); return v[0]
    def s():
        nonlocal p; n = u('Q'); v = b[p:p+n]; p += n; return v.decode()
    def val(t):
        nonlocal p
        if t == 8: return s()
        if t == 9:
            et = u('I'); n = u('Q'); return [val(et) for _ in range(n)]
        p += SIZES[t]; return None
    assert b[:4] == b'GGUF'
    ver = u('I'); nt = u('Q'); nkv = u('Q')
    kv = {}
    for _ in range(nkv):
        k = s(); t = u('I'); kv[k] = val(t)
    align = 32
    infos = []
    for _ in range(nt):
        name = s(); nd = u('I'); ne = [u('Q') for _ in range(nd)]; typ = u('I'); off = u('Q')
        infos.append((name, ne, typ, off))
    data = (p + align - 1) // align * align
    bsize = {0: lambda n: 4*n, 1: lambda n: 2*n, 30: lambda n: 2*n, 8: lambda n: n//32*34, 2: lambda n: n//32*18}
    tensors = {}
    for name, ne, typ, off in infos:
        n = 1
        for d in ne: n *= d
        nb = bsize[typ](n)
        tensors[name] = (ne, typ, b[data+off:data+off+nb], off)
    return dict(version=ver, n_tensors=nt, n_kv=nkv, kv=kv, data=data, size=len(b), tensors=tensors, order=[i[0] for i in infos])
PY

# 1. q8_0: byte-identical to the golden file apart from tensor order.
"$X" quantize "$G/lm_tiny_candle_q8/model.candle.safetensors" "$T/q8.gguf" --type q8_0 2>"$T/err" \
  && ok || bad "quantize q8_0 failed: $(cat "$T/err")"
tail -1 "$T/err" | grep -q "96 q8_0, 55 f32" && ok || bad "summary line: $(tail -1 "$T/err")"
[ "$(wc -l < "$T/err")" -le 6 ] && ok || bad "progress output is not short ($(wc -l < "$T/err") lines)"
python3 - "$T/q8.gguf" "$G/lm_tiny_candle_q8/model.q8.gguf" "$T/gguf.py" <<'PY' && ok || bad "q8_0 file differs from candle's"
import sys, importlib.util
spec = importlib.util.spec_from_file_location("gguf", sys.argv[3]); g = importlib.util.module_from_spec(spec); spec.loader.exec_module(g)
a, b = g.read(sys.argv[1]), g.read(sys.argv[2])
errs = []
for k in ('version', 'n_tensors', 'n_kv', 'data', 'size'):
    if a[k] != b[k]: errs.append(f"{k}: {a[k]} != {b[k]}")
if set(a['tensors']) != set(b['tensors']): errs.append("tensor names differ")
for name, (ne, typ, data, off) in b['tensors'].items():
    if name not in a['tensors']: continue
    ne2, typ2, data2, _ = a['tensors'][name]
    if ne != ne2 or typ != typ2: errs.append(f"{name}: ne/type {ne2}/{typ2} != {ne}/{typ}")
    elif data != data2: errs.append(f"{name}: bytes differ")
for e in errs[:10]: print(e)
print(f"compared {len(b['tensors'])} tensors, version {a['version']}, data at {a['data']}, {len(errs)} differences")
sys.exit(1 if errs else 0)
PY
cmp -s "$T/q8.gguf" "$G/lm_tiny_candle_q8/model.q8.gguf" && ok || bad "q8_0 output not byte-identical (same order expected here: both sorted by name)"

# 2. q4_0: same choice of tensors, and values within half a q4 step of the source.
"$X" quantize "$G/lm_tiny_candle_q8/model.candle.safetensors" "$T/q4.gguf" --type=q4_0 2>"$T/err" \
  && ok || bad "quantize q4_0 failed: $(cat "$T/err")"
python3 - "$T/q4.gguf" "$G/lm_tiny_candle_q8/model.q8.gguf" "$G/lm_tiny_candle_q8/model.candle.safetensors" "$T/gguf.py" <<'PY' && ok || bad "q4_0 file wrong"
import sys, json, struct, importlib.util
spec = importlib.util.spec_from_file_location("gguf", sys.argv[4]); g = importlib.util.module_from_spec(spec); spec.loader.exec_module(g)
a, ref = g.read(sys.argv[1]), g.read(sys.argv[2])
raw = open(sys.argv[3], 'rb').read(); hn = struct.unpack_from('<Q', raw)[0]; hdr = json.loads(raw[8:8+hn])
def f16(h): return struct.unpack('<e', struct.pack('<H', h))[0]
bad = 0; nq = 0
for name, (ne, typ, data, _) in a['tensors'].items():
    want = 2 if ref['tensors'][name][1] == 8 else 0
    if typ != want: bad += 1; continue
    if typ != 2: continue
    nq += 1
    b0, b1 = hdr[name]['data_offsets']
    n = (b1 - b0) // 4
    src = struct.unpack_from(f'<{n}f', raw, 8 + hn + b0)
    for blk in range(n // 32):
        d = f16(struct.unpack_from('<H', data, blk*18)[0]); qs = data[blk*18+2: blk*18+18]
        x = src[blk*32:(blk+1)*32]; amax = max(abs(v) for v in x)
        for j in range(32):
            q = (qs[j % 16] & 15) if j < 16 else (qs[j % 16] >> 4)
            # ggml q4_0: d = -max/8; at most half a step off, one step where +8 is clamped to 7
            if abs(d * (q - 8) - x[j]) > amax / 8 * 1.01 + 1e-7: bad += 1
print(f"q4_0 tensors {nq}, problems {bad}")
sys.exit(1 if bad or nq != 96 else 0)
PY
"$X" info --json "$T/q4.gguf" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["format"]=="gguf" and d["layout"]=="candle"; assert sum(t["dtype"]=="q4_0" for t in d["tensors"])==96' \
  && ok || bad "info on the q4_0 output"

# 3. bf16 PyTorch-layout input works (written in the candle layout: issue 2;
#    the mapping itself is tested by cli_quantize_pytorch.sh).
"$X" quantize "$G/lm_tiny/model.bf16.safetensors" "$T/pt.gguf" --type q8_0 2>"$T/err" && ok || bad "bf16 input: $(cat "$T/err")"
"$X" info --json "$T/pt.gguf" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["layout"]=="candle" and d["tensor_count"]==151' \
  && ok || bad "bf16 pytorch output layout"

# 4. errors: exit status and a message naming the file.
"$X" quantize "$T/missing.safetensors" "$T/o.gguf" --type q8_0 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "missing.safetensors" "$T/err" && ok || bad "missing input: rc $rc, $(cat "$T/err")"
"$X" quantize "$G/lm_tiny_candle_q8/model.q8.gguf" "$T/o.gguf" --type q8_0 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "model.q8.gguf" "$T/err" && ok || bad "gguf input: rc $rc"
"$X" quantize "$G/lm_tiny/golden.safetensors" "$T/o.gguf" --type q8_0 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "golden.safetensors" "$T/err" && ok || bad "int64 tensors refused: rc $rc, $(cat "$T/err")"
"$X" quantize a b --type q5_k 2>/dev/null; [ $? -eq 2 ] && ok || bad "bad --type -> 2"
"$X" quantize a 2>/dev/null; [ $? -eq 2 ] && ok || bad "missing OUT -> 2"
"$X" quantize --help | grep -q "q8_0" && ok || bad "--help"
[ ! -e "$T/o.gguf" ] && ok || bad "failed runs left an output file"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
