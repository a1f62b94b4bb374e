#!/usr/bin/env bash
# Installs what `cargo build --release --features cuda` needs on a Debian machine, with or
# without a GPU, from PyPI alone: NVIDIA's CUDA 13.0 compiler (nvcc, ptxas, the front end and
# NVVM), the runtime headers and the libraries candle's CUDA backend links (cudart, cuBLAS,
# cuBLASLt, cuRAND, NVRTC). CUDA 13.0 matches the driver of the GPU machines we run on (580);
# a newer nvcc writes PTX that driver cannot load.
#
# The driver library (libcuda.so.1) comes only with a driver. Where there is none, a stub with
# the driver API's names is built to link against, as the CUDA toolkit's own lib/stubs does;
# the real driver is the one loaded at run time, on the GPU machine.
#
#   bash scripts/setup-cuda.sh            # into ~/.local/share/benjamin-cuda (BENJAMIN_CUDA=DIR)
#   source ~/.local/share/benjamin-cuda/env.sh
#   cargo build --release --features cuda
#
# Licences: NVIDIA's CUDA Toolkit EULA (https://docs.nvidia.com/cuda/eula/), recorded beside
# the wheels in LICENSE files under $BENJAMIN_CUDA/nvidia.
set -euo pipefail
root=${BENJAMIN_CUDA:-${XDG_DATA_HOME:-$HOME/.local/share}/benjamin-cuda}
packages=(
  nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35
)
mkdir -p "$root"
if [ ! -x "$root/nvidia/cu13/bin/nvcc" ]; then
  echo "installing CUDA 13.0's compiler and libraries from PyPI into $root (about 1.2 GB)" >&2
  python3 -m pip install --quiet --no-deps --target "$root" "${packages[@]}"
fi
cuda=$root/nvidia/cu13
"$cuda/bin/nvcc" --version | tail -2 >&2

# The wheels carry only versioned libraries; the linker asks for the plain names.
for lib in "$cuda"/lib/lib*.so.*; do
  name=$(basename "$lib")
  ln -sf "$name" "$cuda/lib/${name%%.so.*}.so"
done

# A stub libcuda.so.1 to link against where no driver is installed.
if ! ldconfig -p | grep -q 'libcuda\.so\.1 '; then
  # The names are those cudarc (candle's CUDA crate, at the version Cargo.lock pins) calls.
  cd "$(dirname "$0")/.."
  version=$(grep -A1 '^name = "cudarc"' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
  cargo fetch --locked >/dev/null 2>&1
  sys=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -path "*/cudarc-$version/src/driver/sys/mod.rs" | head -1)
  [ -f "$sys" ] || { echo "cannot find cudarc $version's sources after cargo fetch" >&2; exit 1; }
  mkdir -p "$cuda/lib/stubs"
  grep -oP '^pub unsafe fn \Kcu\w+' "$sys" | sort -u | sed 's/.*/int &(void) { return 999; }/' >"$cuda/lib/stubs/libcuda.c"
  gcc -shared -fPIC -o "$cuda/lib/stubs/libcuda.so" -Wl,-soname,libcuda.so.1 "$cuda/lib/stubs/libcuda.c"
  echo "no NVIDIA driver here: linking against a stub libcuda ($(grep -c . "$cuda/lib/stubs/libcuda.c") names)" >&2
fi

cat >"$root/env.sh" <<EOF
# Made by scripts/setup-cuda.sh: source it before \`cargo build --features cuda\`.
export CUDA_HOME=$cuda CUDA_PATH=$cuda NVCC=$cuda/bin/nvcc
export PATH=$cuda/bin:\$PATH
export LIBRARY_PATH=$cuda/lib:$cuda/lib/stubs\${LIBRARY_PATH:+:\$LIBRARY_PATH}
# Its own target folder, so the CPU build and the CUDA one do not rebuild each other.
export CARGO_TARGET_DIR=\${CARGO_TARGET_DIR:-target/cuda}
# H100 and H200 (Hopper); set another for another GPU (nvidia-smi --query-gpu=compute_cap).
export CUDA_COMPUTE_CAP=\${CUDA_COMPUTE_CAP:-90}
EOF
echo "ready: source $root/env.sh && cargo build --release --features cuda" >&2
