#!/usr/bin/env bash
# Installs the Debian packages xswarm needs, only those missing.
# Uses sudo only when not root. Safe to run again (does nothing when all are present).
set -euo pipefail
PKGS=(build-essential cmake pkg-config clang
      libsndfile1-dev libsoxr-dev libcjson-dev libsentencepiece-dev sentencepiece
      libopenblas-dev libpng-dev libssl-dev espeak-ng sox
      pocketsphinx pocketsphinx-en-us)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "xswarm: installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
