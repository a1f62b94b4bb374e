#!/usr/bin/env bash
# The faces against PyTorch, on this machine (CPU):
#  1. detection: benjamin's MTCNN and facenet-pytorch's on ../shared/data/faces and 12 frames of
#     physicsworks.webm, scored against benches/faces/labels.json (hand-labelled): recall, false
#     positives, landmark error, seconds per image;
#  2. training: benjamin's swap model and the same architecture in PyTorch
#     (benches/faces/swap_pytorch.py), same size, same data (the lecturer's aligned 64x64 faces
#     and drawn faces), equal wall time: steps/s and SSIM of held-out faces (the video's last 20%);
#  3. conversion: frames per second of detection + swap on the video's 320x240 frames.
# Needs: pip install torch numpy pillow; facenet-pytorch 2.6.0 is fetched with `pip download`.
# SECONDS (default 180) is the training time of each side; THREADS (default 2) PyTorch's threads.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
SECONDS_EACH=${SECONDS:-180}
export THREADS=${THREADS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --locked --example faces_bench >&2
bench=${CARGO_TARGET_DIR:-target}/release/examples/faces_bench

pip download facenet-pytorch==2.6.0 --no-deps -q -d "$work/fnp" >&2
unzip -q "$work"/fnp/facenet_pytorch-2.6.0-py3-none-any.whl -d "$work/fnp/src"

echo "== detection" >&2
mkdir -p "$work/det"
ln -s "$(realpath "$DATA/faces")" "$work/det/faces"
"$bench" frames "$DATA/video/physicsworks.webm" "$work/det/frames" 12
images=("$work"/det/faces/*.png "$work"/det/faces/*.jpg "$work"/det/frames/*.png)
"$bench" detect "${images[@]}" > "$work/det/benjamin.json"
python3 benches/faces_mtcnn_pytorch.py "$work/fnp/src" "${images[@]}" > "$work/det/pytorch.json"
python3 benches/faces/detect_eval.py benches/faces/labels.json \
  benjamin="$work/det/benjamin.json" facenet-pytorch="$work/det/pytorch.json"

echo "== training (${SECONDS_EACH} s each)" >&2
"$bench" export "$DATA/video/physicsworks.webm" "$work/lecturer" 64
"$bench" synth "$work/drawn" 200 64
"$bench" train "$work/lecturer" "$work/drawn" "$SECONDS_EACH" 64 32 256 8
python3 benches/faces/swap_pytorch.py "$work/lecturer" "$work/drawn" "$SECONDS_EACH" 64 32 256 8

echo "== conversion" >&2
"$bench" convert "$DATA/video/physicsworks.webm" 10 64
