#!/usr/bin/env bash
# The main job of `make run`: one deterministic test turn (MOSHI_TEST_MODE=1)
# on the best model available (HF cache, else the embedded tiny random model).
# Leaves ./tmp/moshi-response.wav and ./tmp/experiments/<stamp>-<backend>/.
set -euo pipefail
XS=${1:-build/xswarm}
"$XS" --version
MOSHI_TEST_MODE=1 "$XS" --dev
test -s ./tmp/moshi-response.wav
echo "run-main: OK — listen to ./tmp/moshi-response.wav; details in the experiment folder above"
