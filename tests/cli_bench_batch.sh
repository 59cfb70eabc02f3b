#!/usr/bin/env bash
# cli_bench_batch.sh — `xswarm bench batch`: 3 sessions x 5 frames on the
# cpu backend with the embedded tiny model (every cache filled) and with
# `--random tiny` (real-size random Mimi, tiny LM): the JSON carries the
# sessions, frames, per-part times that add up, memory; --find-max returns
# a positive N with its probes; bad arguments exit 2 with a message.
# $1 = xswarm binary, $2 = golden dir, $3 = source dir.
X=$1
[ -x "$X" ] || { echo "no binary $X"; echo "0 passed, 0 failed"; exit 77; }
[ -d "$(dirname "$X")/tiny-model" ] || { echo "no embedded tiny-model"; echo "0 passed, 0 failed"; exit 77; }
pass=0; fail=0
ok()  { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
# numeric field of a one-line JSON object
jnum() { echo "$1" | grep -o "\"$2\":[-0-9.eE]*" | head -1 | cut -d: -f2; }
has()  { echo "$1" | grep -q "\"$2\":$3"; }

"$X" bench batch --help | grep -q "usage: xswarm bench batch" && ok || bad "--help"
"$X" bench --help | grep -q "bench batch" && ok || bad "bench --help lists batch"

# bad arguments: exit 2 and a message naming the problem
err=$("$X" bench batch --sessions 0 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q -- "--sessions" && ok || bad "--sessions 0: rc $rc '$err'"
err=$("$X" bench batch --sessions abc 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && ok || bad "--sessions abc: rc $rc"
err=$("$X" bench batch --steps 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "needs a value" && ok || bad "--steps without value: rc $rc '$err'"
err=$("$X" bench batch --random gpt-9 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "moshi-7b" && ok || bad "--random gpt-9: rc $rc '$err'"
err=$("$X" bench batch --kv f16 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && ok || bad "--kv f16: rc $rc"
err=$("$X" bench batch --max-seconds -1 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && ok || bad "--max-seconds -1: rc $rc"
"$X" bench batch --no-such-option >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "unknown option: exit 2"

# 3 sessions x 5 frames, embedded tiny model, full context
out=$("$X" -q bench batch --backend cpu --threads 2 --sessions 3 --steps 5 --warmup 1 \
      --fill-context --json 2>&1); rc=$?
[ $rc -eq 0 ] && ok || bad "tiny run: rc $rc: $out"
has "$out" bench '"batch"' && has "$out" sessions 3 && has "$out" steps_run 5 && ok || bad "sessions/steps: $out"
has "$out" fill_context true && has "$out" backend '"cpu"' && has "$out" ok true && ok || bad "fields: $out"
p50=$(jnum "$out" frame_p50_ms); p99=$(jnum "$out" frame_p99_ms); mx=$(jnum "$out" frame_max_ms)
e=$(jnum "$out" encode_p50_ms); l=$(jnum "$out" lm_p50_ms); d=$(jnum "$out" decode_p50_ms)
awk -v a="$p50" -v b="$p99" -v m="$mx" 'BEGIN { exit !(a > 0 && b >= a && m >= b) }' && ok \
  || bad "p50 $p50 <= p99 $p99 <= max $mx"
awk -v e="$e" -v l="$l" -v d="$d" -v t="$p50" 'BEGIN { exit !(e > 0 && l > 0 && d > 0 && e + l + d <= 1.5 * t + 0.5) }' \
  && ok || bad "parts $e + $l + $d vs frame $t"
[ "$(jnum "$out" kv_cache_bytes_per_session)" -gt 0 ] 2>/dev/null && ok || bad "kv bytes"
[ "$(jnum "$out" rss_kb)" -gt 1000 ] 2>/dev/null && ok || bad "rss"

# random Mimi at real size + tiny LM (the --random path the 7B uses), bf16 KV
out=$("$X" -q bench batch --backend cpu --threads 2 --random tiny:q8_0 --kv bf16 --sessions 3 \
      --steps 5 --warmup 1 --fill-context --json 2>&1); rc=$?
[ $rc -eq 0 ] && ok || bad "random tiny run: rc $rc: $out"
has "$out" model '"tiny:q8_0"' && has "$out" weights '"q8_0"' && has "$out" kv_dtype '"bf16"' \
  && has "$out" sessions 3 && ok || bad "random fields: $out"
e=$(jnum "$out" encode_p50_ms)
awk -v e="$e" 'BEGIN { exit !(e > 0) }' && ok || bad "random encode $e"

# --find-max: doubling then bisection, a positive N, probes listed
out=$("$X" -q bench batch --backend cpu --threads 2 --find-max --search-steps 2 --warmup 1 \
      --max-seconds 1 --json 2>&1); rc=$?
[ $rc -eq 0 ] && ok || bad "find-max: rc $rc: $out"
n=$(jnum "$out" max_realtime_sessions)
[ "${n:-0}" -ge 1 ] && echo "$out" | grep -q '"probes":\[{"sessions":1,' && ok || bad "find-max N '$n': $out"

# out of memory: a clear message saying how much the sessions took (address
# space capped; not under the sanitizers, which reserve terabytes of it)
if ! grep -q "__asan_init" "$X" 2>/dev/null; then
    err=$( (ulimit -v 1500000; "$X" -q bench batch --backend cpu --threads 1 --random tiny:q8_0 \
            --kv bf16 --sessions 4000 --steps 1 --warmup 0) 2>&1 >/dev/null); rc=$?
    [ $rc -eq 1 ] && echo "$err" | grep -q "out of memory" && echo "$err" | grep -q "MiB each" \
      && ok || bad "out of memory: rc $rc '$err'"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
