#!/usr/bin/env bash
# cuda_table.sh — issue 8's speed and memory table in one run on a GPU machine.
#
# usage: bench/cuda_table.sh [XSWARM] [--steps S] [--sessions N] [--max-seconds T]
#                            [--search-steps K] [--frames F] [--quick] [--backend B]
#   XSWARM          the binary (default ./build/xswarm)
#   --steps S       frames of the concurrency run at N sessions (default 1000)
#   --sessions N    sessions of that run (default 80)
#   --max-seconds T stop that run after T s of timed frames (default 60), so the
#                   whole script stays under 9 minutes whatever the frame time;
#                   the table says how many frames actually ran. Each command
#                   is also cut to what is left of TABLE_BUDGET_S (default 520 s).
#   --search-steps K frames per --find-max probe (default 30)
#   --frames F      frames / steps of the batch-1 rows (default 100)
#   --quick         tiny sizes on the cpu backend (checks the script end to end
#                   in a minute; the numbers mean nothing)
#   --skip NAMES    comma-separated rows not to run (lm_q8, lm_bf16, lm_bf16_b32,
#                   codec, frame_q8, conc_q8, frame_bf16, conc_bf16): a partial
#                   rerun when device time is short; the table says "skipped"
#   --backend B     default cuda (quick: cpu)
#
# Every number is measured by xswarm itself (weights generated in memory, no
# model files): `bench lm` (LM step, bandwidth and floor), `bench codec`
# (Mimi), `bench batch` (whole frames: Mimi encode + LM step + Mimi decode per
# session, N sessions batched). The full-frame rows are `bench batch
# --sessions 1 --random moshi-7b:DTYPE`: the real batch-1 pipeline with random
# Mimi and LM at real size (not a sum of parts). Raw JSON and logs go to
# $OUT_DIR (default a temp folder; printed at the end).
set -u
bin=./build/xswarm
steps=1000; sessions=80; max_s=60; search=30; frames=100; quick=0; backend=; skip=
budget=${TABLE_BUDGET_S:-520} # whole script, seconds: each run is cut to what is left
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then bin=$1; shift; fi
while [ $# -gt 0 ]; do
    case $1 in
        --steps) steps=$2; shift 2 ;;
        --sessions) sessions=$2; shift 2 ;;
        --max-seconds) max_s=$2; shift 2 ;;
        --search-steps) search=$2; shift 2 ;;
        --frames) frames=$2; shift 2 ;;
        --backend) backend=$2; shift 2 ;;
        --quick) quick=1; shift ;;
        --skip) skip=",$2,"; shift 2 ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "cuda_table.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -x "$bin" ] || { echo "cuda_table.sh: no xswarm binary at $bin (give its path as \$1)" >&2; exit 2; }
out=${OUT_DIR:-$(mktemp -d)}
mkdir -p "$out"
t_start=$(date +%s)

# Sizes. Full: Moshi 7B at real shapes. Quick: the same commands on the
# embedded tiny LM / `--random tiny` (real-size Mimi), cpu, a few frames.
if [ $quick = 1 ]; then
    backend=${backend:-cpu}
    tiny="$(dirname "$bin")/tiny-model/model.safetensors"
    [ -f "$tiny" ] || { echo "cuda_table.sh: --quick needs $tiny (a normal build makes it)" >&2; exit 2; }
    lm_bf16=(--lm "$tiny"); lm_q8=(--lm "$tiny")
    rnd_bf16=tiny:bf16; rnd_q8=tiny:q8_0
    kv_q8=bf16 # the tiny LM's head dim (16) is too small for q8 KV blocks of 32
    steps=3; sessions=3; max_s=2; search=2; frames=3; probe_max=1
else
    backend=${backend:-cuda}
    lm_bf16=(--random moshi-7b:bf16); lm_q8=(--random moshi-7b:q8_0)
    rnd_bf16=moshi-7b:bf16; rnd_q8=moshi-7b:q8_0
    kv_q8=q8; probe_max=20
fi
common=(--backend "$backend")

# The test utterance beside the binary, so sessions hear speech even where
# the source tree is not at its build-time path (device copies).
bdir=$(dirname "$bin"); sdir=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -e "$bdir/test-utterance.wav" ] && [ -f "$sdir/assets/test-utterance.wav" ] && [ -w "$bdir" ]; then
    cp "$sdir/assets/test-utterance.wav" "$bdir/" 2>/dev/null
fi

# run NAME TIMEOUT ARGS...: xswarm ARGS, JSON line to $out/NAME.json, stderr to
# $out/NAME.log; progress on stderr.
run() {
    local name=$1 limit=$2; shift 2
    local t0; t0=$(date +%s)
    if [ "${skip#*,$name,}" != "$skip" ]; then
        echo "[$(( t0 - t_start ))s] $name: SKIPPED (--skip)" >&2
        : > "$out/$name.json"; echo "skipped: --skip" > "$out/$name.log"
        return 0
    fi
    local left=$(( budget - (t0 - t_start) ))
    [ $left -lt $limit ] && limit=$left
    if [ $limit -lt 15 ]; then
        echo "[$(( t0 - t_start ))s] $name: SKIPPED (the ${budget} s budget is spent)" >&2
        : > "$out/$name.json"; echo "skipped: time budget" > "$out/$name.log"
        return 0
    fi
    echo "[$(( t0 - t_start ))s] $name: xswarm $*" >&2
    timeout "$limit" "$bin" "$@" > "$out/$name.out" 2> "$out/$name.log"
    local rc=$?
    grep '^{' "$out/$name.out" | tail -1 > "$out/$name.json"
    echo "[$(( $(date +%s) - t_start ))s] $name: rc $rc, $(( $(date +%s) - t0 )) s" >&2
    [ $rc -eq 124 ] && echo "  (timed out after $limit s)" >&2
    [ $rc -ne 0 ] && tail -3 "$out/$name.log" >&2
    return 0
}
# j NAME KEY: a field of NAME's JSON ("" when missing)
j() { grep -o "\"$2\":\(\"[^\"]*\"\|[-0-9.eE]*\|true\|false\)" "$out/$1.json" 2>/dev/null | head -1 | cut -d: -f2- | tr -d '"'; }
f2() { [ -n "$1" ] && awk -v x="$1" 'BEGIN { printf "%.2f", x }' || printf "n/a"; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else printf "n/a" }' || printf "n/a"; }
gib() { [ -n "$1" ] && [ "$1" != 0 ] && awk -v x="$1" 'BEGIN { printf "%.2f GiB", x / 1073741824 }' || printf "n/a"; }

# Order: what the issue's goals hinge on first (q8_0 rows, concurrency), so a
# slow card loses the less important rows to the time budget, not those.
# 1. LM step, batch 1, q8_0 and bf16 (+ GPU bandwidth and floor, measured in the same run);
#    tokens picked by top-k sampling, as in a conversation (and in Kyutai's anchor)
run lm_q8 150 -q bench lm "${common[@]}" "${lm_q8[@]}" --sample --steps "$frames" --warmup 5 --json
run lm_bf16 150 -q bench lm "${common[@]}" "${lm_bf16[@]}" --sample --steps "$frames" --warmup 5 --json
# 2. LM step at batch 32, bf16
run lm_bf16_b32 150 -q bench lm "${common[@]}" "${lm_bf16[@]}" --sample --batch 32 --steps "$((frames / 2 + 1))" --warmup 3 --json
# 3. Mimi encode + decode (real size, random weights)
run codec 120 -q bench codec "${common[@]}" --frames "$frames" --json
# 4. Whole frame at batch 1, q8_0: the pipeline with random Mimi + LM; GPU memory of one session
run frame_q8 200 -q bench batch "${common[@]}" --random "$rnd_q8" --sessions 1 --steps "$frames" --warmup 5 --json
# 5. Concurrency: q8_0 weights + 8-bit KV, every cache full: p99 at N, then the largest real-time N
run conc_q8 $(( max_s + 200 )) bench batch "${common[@]}" --random "$rnd_q8" --kv "$kv_q8" --fill-context \
    --sessions "$sessions" --steps "$steps" --max-seconds "$max_s" --warmup 3 \
    --find-max --search-steps "$search" --json
# 6. Whole frame at batch 1, bf16
run frame_bf16 200 -q bench batch "${common[@]}" --random "$rnd_bf16" --sessions 1 --steps "$frames" --warmup 5 --json
# 7. Largest real-time N with bf16 weights + bf16 KV
run conc_bf16 240 bench batch "${common[@]}" --random "$rnd_bf16" --kv bf16 --fill-context \
    --find-max --search-steps "$search" --max-seconds "$probe_max" --warmup 3 --json

# ---- the table ----------------------------------------------------------------
card="$(j lm_q8 gpu)"; driver=""
if command -v nvidia-smi >/dev/null 2>&1; then
    q=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
    [ -n "$q" ] && card=${q%%,*} && driver=$(echo "$q" | cut -d, -f2- | sed 's/^ *//')
fi
[ -z "$card" ] && card="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//') (no GPU)"
# largest real-time N of run NAME, or why there is none
maxn() {
    [ -s "$out/$1.json" ] || { printf "n/a (%s)" "$(tail -1 "$out/$1.log" 2>/dev/null | cut -c1-120)"; return; }
    printf "%s (limited by %s; first failing N %s)" "$(j "$1" max_realtime_sessions)" \
        "$(j "$1" max_limited_by)" "$(j "$1" first_failing_sessions)"
}
conc_n=$(j conc_q8 sessions); conc_steps=$(j conc_q8 steps_run)
conc_p99="$(f2 "$(j conc_q8 frame_p99_ms)") ms p99 (max $(f2 "$(j conc_q8 frame_max_ms)"), $(j conc_q8 over_80ms) over 80 ms) over ${conc_steps:-0} frames"
[ "$(j conc_q8 ok)" = false ] && conc_p99="FAILED: $(j conc_q8 error)"
[ -s "$out/conc_q8.json" ] || conc_p99="no result (see $out/conc_q8.log)"

echo
echo "## xswarm on $card"
echo
echo "Card: $card; driver: ${driver:-n/a}; date: $(date -u '+%Y-%m-%d %H:%M UTC'); backend: $backend$([ $quick = 1 ] && echo ' (QUICK: tiny sizes, numbers meaningless)')"
echo "Binary: $bin; bandwidth: $(f2 "$(j lm_q8 read_gbs)") GB/s device read kernel, $(f2 "$(j lm_q8 gpu_copy_gbs)") GB/s D2D copy (read+write), measured in the LM runs."
echo
echo "| measure | xswarm | floor / ratio | Kyutai PyTorch anchor | goal |"
echo "|---|---|---|---|---|"
echo "| LM step, batch 1, bf16 | $(f2 "$(j lm_bf16 p50_ms)") ms p50 ($(f2 "$(j lm_bf16 p99_ms)") p99) | floor $(f2 "$(j lm_bf16 floor_ms)") ms, $(ratio "$(j lm_bf16 p50_ms)" "$(j lm_bf16 floor_ms)") | 12.5 ms (floor 4.9) | <= 1.2x floor |"
echo "| LM step, batch 1, q8_0 | $(f2 "$(j lm_q8 p50_ms)") ms p50 ($(f2 "$(j lm_q8 p99_ms)") p99) | floor $(f2 "$(j lm_q8 floor_ms)") ms, $(ratio "$(j lm_q8 p50_ms)" "$(j lm_q8 floor_ms)") | | |"
echo "| Mimi encode + decode | $(f2 "$(j codec total_p50_ms)") ms p50 (enc $(f2 "$(j codec encode_p50_ms)") + dec $(f2 "$(j codec decode_p50_ms)")) | floor $(f2 "$(j codec floor_ms)") ms, $(ratio "$(j codec total_p50_ms)" "$(j codec floor_ms)") | 4.9 ms | |"
# parts of a batch-1 frame, or "one graph" where it ran as one recorded graph
parts() {
    if [ "$(j "$1" one_graph)" = true ]; then printf "one graph"
    else printf "enc %s / LM %s / dec %s" "$(f2 "$(j "$1" encode_p50_ms)")" "$(f2 "$(j "$1" lm_p50_ms)")" \
        "$(f2 "$(j "$1" decode_p50_ms)")"; fi
}
echo "| full frame, batch 1, bf16 | $(f2 "$(j frame_bf16 frame_p50_ms)") ms p50 ($(f2 "$(j frame_bf16 frame_p99_ms)") p99; $(parts frame_bf16)) | | 18.7 ms | <= 6.5 ms |"
echo "| full frame, batch 1, q8_0 | $(f2 "$(j frame_q8 frame_p50_ms)") ms p50 ($(f2 "$(j frame_q8 frame_p99_ms)") p99; $(parts frame_q8)) | | | <= 4 ms |"
echo "| LM step, batch 32, bf16 | $(f2 "$(j lm_bf16_b32 p50_ms)") ms p50 ($(f2 "$(j lm_bf16_b32 per_session_ms)") ms per session) | floor $(f2 "$(j lm_bf16_b32 floor_ms)") ms, $(ratio "$(j lm_bf16_b32 p50_ms)" "$(j lm_bf16_b32 floor_ms)") | 31.3 ms | |"
echo "| GPU memory, q8_0, one session | $(gib "$(j frame_q8 gpu_mem_used)") used on the card (model $(gib "$(j frame_q8 gpu_mem_model)"), host RSS $(f2 "$(awk -v k="$(j frame_q8 rss_kb)" 'BEGIN { print k / 1048576 }')") GiB) | | 17 GB (bf16) | < 10 GiB |"
echo "| concurrency q8_0 + q8 KV, full context, N=${conc_n:-$sessions} | $conc_p99 | | | p99 <= 80 ms at N=80 over 1000 frames |"
echo "| largest real-time N, q8_0 + q8 KV, full context | $(maxn conc_q8) | | | >= 80 |"
echo "| largest real-time N, bf16 + bf16 KV, full context | $(maxn conc_bf16) | | | report |"
echo
echo "Method: bench batch steps N sessions through one batched LM step per frame (Mimi encode and"
echo "decode batched over the sessions on cuda); a frame's time is the wall time for all N; caches filled to the full"
echo "context first (--fill-context). Largest N: doubling from 1, then bisection, $search frames per"
echo "probe, real time = p99 <= 80 ms. Every LM row samples its tokens (top-k, the model's defaults). KV of the q8_0 concurrency rows: $kv_q8. Raw JSON and logs: $out"
echo "Total time: $(( $(date +%s) - t_start )) s"
