#!/usr/bin/env bash
# The faces stage killed halfway through conversion, then rerun: how long the rerun takes
# against a whole run. A one-minute film cut from the lecture in ../shared/data (a real face
# on screen) with a drawn actor (no real person) cast over it.
#
#   bash benches/faces_resume.sh [ROUNDS]
#
# Each round: the faces stage from nothing (timed: "whole"), then again from nothing, killed
# with SIGKILL once half its clips are recorded, then rerun (timed: "rerun").
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
bin=${BENJAMIN_BIN:-target/release/benjamin}
video=../shared/data/video/physicsworks.webm
[ -f "$video" ] || { echo "needs $video (see ../shared/data/README.md)" >&2; exit 1; }
[ -x "$bin" ] || cargo build --release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/footage" "$work/drawn"
cp "$video" "$work/footage/"
cat > "$work/footage/physicsworks.webm.json" <<'EOF'
{"licence": "CC BY 3.0", "attribution": "Walter Lewin, MIT OpenCourseWare, via Wikimedia Commons"}
EOF
cargo run --release --quiet --example face_synth -- "$work/drawn" >/dev/null
cat > "$work/consent.toml" <<'EOF'
name = "Drawn Actor"
signed_by = "Drawn Actor"
date = "2026-01-01"
uses = ["face-swap"]
note = "a drawn face, no real person: a benchmark"
EOF
"$bin" --quiet archive add --archive "$work/archive" "$work/footage"
"$bin" --quiet actors add "Drawn Actor" --photos "$work/drawn" --consent "$work/consent.toml" \
  --actors "$work/actors"
film="$work/film"
"$bin" --quiet make --genre noir --minutes 1 --hours 0.05 --seed 3 --film "$film" \
  --archive "$work/archive" --actors "$work/actors" --screenplay-model gpt

clips_recorded() {
  python3 - "$film/faces/clips/items.json" <<'EOF'
import json, sys
try:
    print(len(json.load(open(sys.argv[1]))))
except Exception:
    print(0)
EOF
}
total=$(python3 -c "import json,sys; print(sum(1 for s in json.load(open(sys.argv[1])) if s.get('clip')))" "$film/faces/tracks.json")
echo "film: $(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$film/faces/tracks.json") shots, $total with a swapped face"
[ "$total" -ge 2 ] || { echo "fewer than two swapped shots: nothing to measure" >&2; exit 1; }

for r in $(seq 1 "$rounds"); do
  rm -rf "$film/faces"
  s=$(date +%s.%N)
  "$bin" --quiet run faces --film "$film"
  whole=$(echo "$(date +%s.%N) - $s" | bc)

  rm -rf "$film/faces"
  "$bin" --quiet run faces --film "$film" &
  pid=$!
  while [ "$(clips_recorded)" -lt $(( (total + 1) / 2 )) ]; do
    kill -0 $pid 2>/dev/null || { echo "the run ended before half its clips" >&2; exit 1; }
    sleep 0.2
  done
  kill -9 $pid; wait $pid 2>/dev/null || true
  kept=$(clips_recorded)
  s=$(date +%s.%N)
  "$bin" --quiet run faces --film "$film"
  rerun=$(echo "$(date +%s.%N) - $s" | bc)
  swapped=$(python3 -c "import json,sys; print(sum(1 for s in json.load(open(sys.argv[1])) if s.get('clip')))" "$film/faces/tracks.json")
  [ "$swapped" -eq "$total" ] || { echo "the rerun swapped $swapped of $total shots" >&2; exit 1; }
  echo "round $r: whole $whole s; killed with $kept of $total clips recorded; rerun $rerun s"
done
