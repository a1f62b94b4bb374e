#!/usr/bin/env bash
# The GPU check (issue 21), in two halves:
#
#   bash benches/gpu_check.sh build   here, on the CPU machine: builds the CUDA binaries (the
#                                     parity tests and examples/faces_gpu.rs), strips them, and
#                                     makes their data (the lecturer's aligned faces and drawn
#                                     faces at 64 and 128 px, frames of the lecture as PNG) into
#                                     .gpu/, which travels to the GPU machine (under 64 MiB)
#   bash benches/gpu_check.sh run     there, from the repository's root: names every shared
#                                     library the binaries need and where it was found, runs the
#                                     parity tests, then faces training steps/s at 64x64 and
#                                     128x128 against benches/faces/swap_pytorch.py (same model,
#                                     batch and f32 precision), then conversion frames/s with
#                                     detection. Everything it prints goes to $OUT/gpu_check.log
#                                     too when $OUT is set.
#
# The GPU machine has the NVIDIA driver (CUDA 13), nvcc 13.0 and PyTorch (whose pip packages
# carry cuBLAS, cuRAND, NVRTC and the CUDA runtime), but no Rust and no network. The binaries
# link no FFmpeg or espeak-ng (the check's binaries use neither), so nothing else travels.
# SECONDS (default 40) is each training run's time; build needs scripts/setup-cuda.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
pack=.gpu
seconds=${SECONDS_EACH:-40}

build() {
  local data=${DATA:-../shared/data} cuda=${BENJAMIN_CUDA:-${XDG_DATA_HOME:-$HOME/.local/share}/benjamin-cuda}
  [ -f "$cuda/env.sh" ] || { echo "run scripts/setup-cuda.sh first" >&2; exit 1; }
  [ -f "$data/video/physicsworks.webm" ] || { echo "needs $data/video/physicsworks.webm" >&2; exit 1; }
  rm -rf "$pack" && mkdir -p "$pack/data"
  # The data, with the CPU build (the CUDA one cannot run here).
  cargo build --release --locked --example faces_bench >&2
  local bench=target/release/examples/faces_bench
  for size in 64 128; do
    "$bench" export "$data/video/physicsworks.webm" "$pack/data/lecturer$size" "$size" >&2
    "$bench" synth "$pack/data/drawn$size" 200 "$size"
  done
  "$bench" frames "$data/video/physicsworks.webm" "$pack/data/frames" 60
  # The CUDA build, in its own target folder.
  (
    # shellcheck disable=SC1091
    source "$cuda/env.sh"
    cargo build --release --locked --features cuda --example faces_gpu >&2
    local tests
    tests=$(cargo test --release --locked --features cuda --test cuda_parity --no-run \
      --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "cuda_parity" and m.get("executable"):
        print(m["executable"])')
    cp "$CARGO_TARGET_DIR/release/examples/faces_gpu" "$pack/faces_gpu"
    cp "$tests" "$pack/cuda_parity"
  )
  # Stripped they are about 55 MB each (candle's kernels for every GPU generation); xz
  # takes each to about 9, so that they and the data travel under the 64 MiB limit.
  strip "$pack/faces_gpu" "$pack/cuda_parity"
  tar -C "$pack" -cJf "$pack/bin.tar.xz" faces_gpu cuda_parity
  rm "$pack/faces_gpu" "$pack/cuda_parity"
  du -sh "$pack" "$pack/bin.tar.xz" >&2
}

# Where PyTorch's pip packages keep the CUDA libraries, for the dynamic linker.
cuda_libraries() {
  python3 - <<'EOF'
import glob, os, site
dirs = set()
for root in site.getsitepackages():
    for lib in glob.glob(os.path.join(root, "nvidia", "**", "lib*.so*"), recursive=True):
        dirs.add(os.path.dirname(lib))
print(":".join(sorted(dirs)))
EOF
}

run() {
  [ -f "$pack/bin.tar.xz" ] || { echo "no $pack/bin.tar.xz: run 'bash benches/gpu_check.sh build' first" >&2; exit 1; }
  # Python's tarfile, in case the machine has no xz.
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$pack/bin.tar.xz" "$pack"
  export LD_LIBRARY_PATH="$(cuda_libraries)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  echo "== shared libraries"
  for bin in "$pack/cuda_parity" "$pack/faces_gpu"; do
    echo "$bin:"
    ldd "$bin" | sed 's/^/  /'
  done
  if ldd "$pack/cuda_parity" "$pack/faces_gpu" | grep -q 'not found'; then
    echo "MISSING libraries above ('not found')"
  fi
  echo "== parity"
  "$pack/cuda_parity" --test-threads 1 --nocapture
  local d=$pack/data
  for size in 64 128; do
    echo "== training at ${size}x${size}, ${seconds} s each"
    "$pack/faces_gpu" train "$d/lecturer$size" "$d/drawn$size" "$seconds" "$size" 32 256 8
    python3 benches/faces/swap_pytorch.py "$d/lecturer$size" "$d/drawn$size" "$seconds" "$size" 32 256 8
  done
  for size in 64 128; do
    echo "== conversion at ${size}x${size} on $(ls "$d/frames" | wc -l) frames"
    "$pack/faces_gpu" convert "$d/frames" "$size"
  done
}

case "${1:-}" in
  build) build ;;
  run)
    if [ -n "${OUT:-}" ]; then run 2>&1 | tee "$OUT/gpu_check.log"; else run; fi
    ;;
  *) echo "usage: bash benches/gpu_check.sh build|run" >&2; exit 2 ;;
esac
