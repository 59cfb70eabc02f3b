#!/usr/bin/env bash
# lm_parts.sh — where an LM step's time goes: one temporal layer versus the
# rest of the step (embeddings, text head and its sampling, the depformer's
# sub-steps with theirs), each as a ratio to its own floor.
#
# usage: bench/lm_parts.sh [XSWARM] [--random moshi-7b:DTYPE | --lm FILE]
#                          [--layers "1 2 8 32"] [--steps N] [--backend B] [--quick]
#   XSWARM      the binary (default ./build/xswarm)
#   --random    the 7B at real shapes, weights made in memory (default
#               moshi-7b:bf16)
#   --lm FILE   a model file instead (config.json beside it)
#   --layers L  temporal layer counts to run (`bench lm --layers`), at least
#               two different ones (default "1 2 8 32")
#   --steps N   timed steps per run (default 100, after 5 warm-up steps)
#   --backend B default cuda (quick: cpu)
#   --quick     the embedded tiny LM on the cpu, layers "1 2" (checks the script
#               end to end in seconds; the times mean nothing)
#
# It runs `xswarm bench lm --sample` once per layer count and fits p50 =
# a + b * layers by least squares, and the same for the floor (weight + KV
# bytes read / the bandwidth each run measured) and for the weight bytes:
# b is one temporal layer, a everything else. A step is a chain of dependent
# kernels, so the parts add up; the fit's residual says how well.
set -u
bin=./build/xswarm
model=(--random moshi-7b:bf16); layers=; steps=; backend=; quick=0
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then bin=$1; shift; fi
while [ $# -gt 0 ]; do
    case $1 in
        --random) model=(--random "$2"); shift 2 ;;
        --lm) model=(--lm "$2"); shift 2 ;;
        --layers) layers=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --backend) backend=$2; shift 2 ;;
        --quick) quick=1; shift ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "lm_parts.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -x "$bin" ] || { echo "lm_parts.sh: no xswarm binary at $bin (give its path as \$1)" >&2; exit 2; }
if [ $quick = 1 ]; then
    tiny="$(dirname "$bin")/tiny-model/model.safetensors"
    [ -f "$tiny" ] || { echo "lm_parts.sh: --quick needs $tiny (a normal build makes it)" >&2; exit 2; }
    model=(--lm "$tiny"); layers=${layers:-1 2}; steps=${steps:-5}; backend=${backend:-cpu}
fi
layers=${layers:-1 2 8 32}; steps=${steps:-100}; backend=${backend:-cuda}

# field NAME LINE: a number from bench lm's one-line JSON
field() { printf '%s\n' "$2" | grep -o "\"$1\":[0-9.eE+-]*" | head -n 1 | cut -d: -f2; }

rows=
echo "| temporal layers | p50 ms | p99 ms | weight MB | floor ms | x floor |"
echo "|---|---|---|---|---|---|"
for l in $layers; do
    line=$("$bin" -q bench lm --backend "$backend" "${model[@]}" --layers "$l" --sample \
           --steps "$steps" --warmup 5 --json 2>/dev/null | grep '"bench":"lm"')
    if [ -z "$line" ]; then
        echo "lm_parts.sh: bench lm --layers $l failed; its command:" >&2
        echo "  $bin bench lm --backend $backend ${model[*]} --layers $l --sample --steps $steps" >&2
        exit 1
    fi
    L=$(field layers "$line"); p50=$(field p50_ms "$line"); p99=$(field p99_ms "$line")
    wb=$(field weight_bytes "$line"); fl=$(field floor_ms "$line")
    awk -v L="$L" -v a="$p50" -v b="$p99" -v w="$wb" -v f="$fl" \
        'BEGIN { printf "| %d | %.3f | %.3f | %.1f | %.3f | %.2fx |\n", L, a, b, w / 1e6, f, (f > 0 ? a / f : 0) }'
    rows="$rows$L $p50 $fl $wb
"
done

# least squares of each column on the layer count; needs two distinct counts
printf '%s' "$rows" | awk '
{ n++; x[n] = $1; t[n] = $2; f[n] = $3; w[n] = $4; sx += $1; sxx += $1 * $1 }
function fit(y, res,   i, sy, sxy, d) {
    sy = 0; sxy = 0
    for (i = 1; i <= n; i++) { sy += y[i]; sxy += x[i] * y[i] }
    d = n * sxx - sx * sx
    res["b"] = (n * sxy - sx * sy) / d; res["a"] = (sy - res["b"] * sx) / n
    res["r"] = 0
    for (i = 1; i <= n; i++) {
        e = y[i] - res["a"] - res["b"] * x[i]; if (e < 0) e = -e
        if (e > res["r"]) res["r"] = e
    }
}
END {
    if (n < 2 || n * sxx - sx * sx == 0) {
        print "lm_parts.sh: need runs at two different layer counts" > "/dev/stderr"; exit 1
    }
    fit(t, T); fit(f, F); fit(w, W)
    printf "\n| part | ms | floor ms | x floor | weight MB |\n|---|---|---|---|---|\n"
    printf "| one temporal layer | %.4f | %.4f | %.2fx | %.3f |\n", T["b"], F["b"], T["b"] / F["b"], W["b"] / 1e6
    printf "| the rest (embeddings, text head + sampling, depformer + sampling) | %.3f | %.3f | %.2fx | %.3f |\n",
           T["a"], F["a"], T["a"] / F["a"], W["a"] / 1e6
    printf "\nfit: largest residual %.3f ms (time), %.0f bytes (weights)\n", T["r"], W["r"]
}'
