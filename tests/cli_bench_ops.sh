#!/usr/bin/env bash
# cli_bench_ops.sh — `xswarm bench ops`: help, bad options (exit 2), and a
# quick conv-only run that prints a positive bandwidth, sgemm rate and the
# per-frame conv total.
# $1 = xswarm binary, $2 = golden dir, $3 = source dir.
X=$1
[ -x "$X" ] || { echo "no binary $X"; exit 77; }
pass=0; fail=0
ok()  { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }

"$X" bench ops --help | grep -q "usage: xswarm bench ops" && ok || bad "--help"
"$X" bench ops --no-such-option >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "unknown option: exit 2"
"$X" bench ops --threads 0 >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "--threads 0: exit 2"
"$X" bench ops --membw-mib 0 >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "--membw-mib 0: exit 2"

out=$("$X" bench ops --quick --skip-gemv --membw-mib 64 --threads 2 2>&1); rc=$?
[ $rc -eq 0 ] && ok || bad "quick run: rc $rc: $out"
echo "$out" | grep -q "^machine: .*2 threads, kernels " && ok || bad "machine line"
bw=$(echo "$out" | sed -n 's/^memory read bandwidth: \([0-9.]*\) GB\/s.*/\1/p')
awk -v b="$bw" 'BEGIN { exit !(b > 0.1) }' && ok || bad "bandwidth '$bw'"
gf=$(echo "$out" | sed -n 's/^sgemm .*: \([0-9.]*\) GFLOP\/s/\1/p')
awk -v g="$gf" 'BEGIN { exit !(g > 0.1) }' && ok || bad "sgemm rate '$gf'"
[ "$(echo "$out" | grep -c '^  \(enc\|dec\) ')" -eq 15 ] && ok || bad "15 conv layers"
echo "$out" | grep -q "SEANet convs of one frame (encoder + decoder): [0-9.]* ms" && ok || bad "conv total"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
