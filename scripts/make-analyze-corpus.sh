#!/usr/bin/env bash
# Regenerates the analyzer's committed calibration corpus (tests/data/analyze/):
# clean speech only, 24 kHz mono 16-bit, a few seconds each. The corrupted
# versions are made at test time in memory (src/diag/analyze_corrupt.c), and
# `xswarm analyze --corrupt KIND IN OUT` writes any of them to a file to listen.
# Needs espeak-ng and sox (scripts/install-deps.sh). Deterministic for a given
# espeak-ng version: no random input anywhere.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/tests/data/analyze"
real="${XS_REAL_SPEECH:-$root/../shared/audio/fr_speech_intro_24k.wav}"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

say() { # name voice speed pitch text
  espeak-ng -v "$2" -s "$3" -p "$4" -w "$tmp/$1.wav" "$5"
  # 22050 -> 24000 Hz, 16-bit, no dither so the file is reproducible.
  sox "$tmp/$1.wav" -r 24000 -b 16 -c 1 -D "$out/clean_$1.wav"
}
say en_us_m  en-us            165 50 "The quick brown fox jumps over the lazy dog, and then it runs away."
say en_us_f  en-us+f3         170 60 "Please call Stella and ask her to bring these things with her from the store."
say en_gb_m  en-gb-x-rp       150 40 "Hello, this is a short test of our speech analyzer, spoken slowly."
say en_sc_m  en-gb-scotland   180 35 "Six spoons of fresh snow peas, five thick slabs of blue cheese."
say en_us_f2 en-us+f5         160 70 "We also need a small plastic snake and a big toy frog for the kids."
# Clean-only regression clips (tests/test_analyze_corpus.c k_clean_only),
# held-out voices that were false alarms: espeak's gbcwmd voice cuts its
# pauses straight to digital zero (was named `dropouts`); a female voice in
# a reverberant room keeps a harmonic standing out through the pauses (was
# named `tonal`).
say en_gb_cw en-gb-x-gbcwmd 160 50 "Could you please send me the report before Friday? I need to check the numbers."
say en_us_f1 en-us+f1 165 55 "She sells sea shells by the sea shore, or so the old story goes."
sox "$out/clean_en_us_f1.wav" -b 16 -D "$out/clean_en_us_f1_room.wav" reverb 40
rm "$out/clean_en_us_f1.wav"
# A real recording: 4.5 s of French speech (one speaker) from the shared samples.
if [ -f "$real" ]; then
  sox "$real" -r 24000 -b 16 -c 1 -D "$out/clean_fr_real.wav" trim 1.0 4.5
else
  echo "make-analyze-corpus: $real not found; real-speech clip not regenerated" >&2
fi
ls -l "$out"
