#!/usr/bin/env bash
# cli_info.sh — `xswarm info` on the golden model files (text and --json),
# and on broken files: exit status 1 with the file named, never a crash.
# $1 = xswarm binary, $2 = golden dir, $3 = source dir.
X=$1; G=$2
[ -x "$X" ] || { echo "no binary $X"; exit 77; }
[ -d "$G/lm_tiny" ] || { echo "SKIP: golden folder missing"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 needed"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }

# Text output: format, layout, totals.
check_text() { # file format layout count
  out=$("$X" info "$1" 2>&1); rc=$?
  [ $rc -eq 0 ] && ok || bad "info $1: rc $rc"
  echo "$out" | grep -q "^format: *$2" && ok || bad "$1: format $2 not shown"
  echo "$out" | grep -q "^layout: *$3\$" && ok || bad "$1: layout $3 not shown"
  echo "$out" | grep -q "^total: *$4 tensors" && ok || bad "$1: total $4 tensors not shown"
}
check_text "$G/lm_tiny/model.safetensors" safetensors pytorch 95
check_text "$G/lm_tiny_candle_q8/model.q8.gguf" "gguf v2" candle 151
check_text "$G/lm_tiny_candle_q8/model.candle.safetensors" safetensors candle 151
check_text "$G/mimi_tiny/model.safetensors" safetensors mimi 150
check_text "$G/lm_tiny/golden.safetensors" safetensors unknown 16
"$X" info "$G/lm_tiny_candle_q8/model.q8.gguf" | grep -q "96 q8_0" && ok || bad "per-dtype counts"

# --json: one object, parsed by python, checked against the known contents.
check_json() { # file format layout count tensor dtype shape-as-python-list
  "$X" info --json "$1" > "$T/out.json" 2>"$T/err" && ok || bad "info --json $1: $(cat "$T/err")"
  python3 - "$T/out.json" "$2" "$3" "$4" "$5" "$6" "$7" <<'PY' && ok || bad "json of $1"
import json, sys
d = json.load(open(sys.argv[1]))
fmt, layout, count, name, dtype, shape = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6], json.loads(sys.argv[7])
assert d["format"] == fmt, d["format"]
assert d["layout"] == layout, d["layout"]
assert len(d["tensors"]) == count == d["tensor_count"], len(d["tensors"])
ok_dtypes = {"f32", "f16", "bf16", "q8_0", "q4_0", "i64", "i32", "i8", "u8", "bool"}
assert all(t["dtype"] in ok_dtypes for t in d["tensors"])
assert all(isinstance(t["shape"], list) and all(isinstance(x, int) and x >= 0 for x in t["shape"]) for t in d["tensors"])
t = {t["name"]: t for t in d["tensors"]}[name]
assert t["dtype"] == dtype and t["shape"] == shape, t
assert d["params"] == sum(__import__("math").prod(t["shape"]) for t in d["tensors"])
assert d["bytes"] == sum(t["bytes"] for t in d["tensors"])
PY
}
check_json "$G/lm_tiny/model.safetensors" safetensors pytorch 95 depformer.layers.0.gating.0.linear_out.weight f32 '[32, 88]'
check_json "$G/lm_tiny/model.bf16.safetensors" safetensors pytorch 95 text_emb.weight bf16 '[101, 64]'
check_json "$G/lm_tiny_candle_q8/model.q8.gguf" gguf candle 151 depformer.0.emb.weight q8_0 '[101, 32]'
check_json "$G/lm_tiny_candle_q8/model.q8.gguf" gguf candle 151 out_norm.alpha f32 '[1, 1, 64]'
check_json "$G/mimi_tiny/model.safetensors" safetensors mimi 150 upsample.convtr.convtr.convtr.weight f32 '[32, 1, 4]'
check_json "$G/lm_tiny/golden.safetensors" safetensors unknown 16 sampled_text i64 '[60]'
check_json "$G/lm_tiny/golden.safetensors" safetensors unknown 16 step_out_valid bool '[60]'
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["metadata"]["naming"]=="kyutai-checkpoint"' \
  <("$X" info --json "$G/lm_tiny/model.safetensors") 2>/dev/null && ok || bad "safetensors metadata in json"

# Broken files: exit 1 (not a signal), one line naming the file.
printf '' > "$T/empty.safetensors"
head -c 100 "$G/lm_tiny_candle_q8/model.q8.gguf" > "$T/trunc.gguf"
head -c 5000 "$G/lm_tiny/model.safetensors" > "$T/trunc.safetensors"
printf '\xff\xff\xff\xff\xff\xff\xff\x7f{}' > "$T/hugelen.safetensors"
head -c 4096 /dev/urandom > "$T/random.bin"
printf 'GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00' > "$T/absurd.gguf"
mkdir -p "$T/dir.safetensors"
for f in empty.safetensors trunc.gguf trunc.safetensors hugelen.safetensors random.bin absurd.gguf dir.safetensors missing.gguf; do
  "$X" info "$T/$f" >/dev/null 2>"$T/err"; rc=$?
  [ $rc -ge 1 ] && [ $rc -le 125 ] && ok || bad "$f: exit status $rc"
  grep -q "$f" "$T/err" && ok || bad "$f: message does not name the file: $(cat "$T/err")"
  [ "$(wc -l < "$T/err")" -eq 1 ] && ok || bad "$f: not one line of error"
  "$X" info --json "$T/$f" >"$T/out" 2>/dev/null; rc=$?
  [ $rc -eq 1 ] && [ ! -s "$T/out" ] && ok || bad "$f --json: rc $rc or output on stdout"
done

# Usage.
"$X" info 2>/dev/null; [ $? -eq 2 ] && ok || bad "no FILE -> 2"
"$X" info --bogus x 2>/dev/null; [ $? -eq 2 ] && ok || bad "unknown option -> 2"
"$X" info a b 2>/dev/null; [ $? -eq 2 ] && ok || bad "two files -> 2"
"$X" info --help | grep -q -- "--json" && ok || bad "--help"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
