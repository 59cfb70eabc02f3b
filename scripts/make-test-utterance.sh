#!/usr/bin/env bash
# Makes assets/test-utterance.wav, the built-in input of `MOSHI_TEST_MODE=1
# xswarm --dev`: an English question spoken by espeak-ng, as 24 kHz mono
# 16-bit PCM (Mimi's rate, so the run needs no resampling).
#
# The WAV is committed; run this only to remake it. espeak-ng's output can
# differ slightly between versions, so a remade file may not be
# byte-identical to the committed one (the pipeline does not depend on that).
#
# Usage: scripts/make-test-utterance.sh [OUT.wav] ["text"]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/assets/test-utterance.wav}
text=${2:-"Hello, can you tell me what the weather is like today?"}
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# en-us voice, 150 words/min: clear and about 3.5 s long. espeak-ng writes
# 22050 Hz mono; sox resamples with its high-quality filter (-v), converts
# to 16-bit, and normalizes to -3 dBFS so the level does not depend on the
# espeak-ng version.
espeak-ng -v en-us -s 150 -w "$tmp/raw.wav" "$text"
mkdir -p "$(dirname "$out")"
sox "$tmp/raw.wav" -r 24000 -c 1 -b 16 -e signed-integer "$out" norm -3 rate -v 24000
echo "$out: $(soxi -D "$out") s, $(soxi -r "$out") Hz, $(soxi -c "$out") channel(s), $(stat -c %s "$out") bytes"
