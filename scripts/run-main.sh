#!/usr/bin/env bash
# The main job of `make run`: test mode on the embedded default model.
set -euo pipefail
XS=${1:-build/xswarm}
"$XS" --version
MOSHI_TEST_MODE=1 "$XS" --dev || { rc=$?; [ $rc -eq 2 ] && echo "(test mode not implemented yet)"; }
