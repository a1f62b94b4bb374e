#!/usr/bin/env bash
# benjamin's voice stage against the espeak-ng command line speaking the same lines, with the
# same voices, to WAV files, one after the other on this machine. Not a test: run it by hand.
#
#     bash benches/voice_vs_espeak_cli.sh [SCREENPLAY.fountain]
# Default: the first noir screenplay in corpora/ (about five pages).
set -euo pipefail
cd "$(dirname "$0")/.."
script=${1:-$(ls corpora/noir/*.fountain | head -1)}
cargo build --release -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pages=$(python3 -c "import sys; print(round(sum(1 for _ in open(sys.argv[1])) / 55, 1))" "$script")
echo "screenplay: $script (~$pages pages by line count)"
start=$(date +%s.%N)
target/release/benjamin speak --screenplay "$script" --out "$work/benjamin" --json --quiet > "$work/summary.json"
end=$(date +%s.%N)
python3 - "$work" "$start" "$end" <<'PY'
import json, os, subprocess, sys, time
work, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
summary = json.load(open(f"{work}/summary.json"))
timings = json.load(open(f"{work}/benjamin/dialogue.json"))
cast = json.load(open(f"{work}/benjamin/voices.json"))
os.makedirs(f"{work}/cli", exist_ok=True)
t0 = time.perf_counter()
for i, line in enumerate(timings["lines"]):
    v = cast[line["character"]]
    subprocess.run(["espeak-ng", "-v", f"{v['language']}+{v['variant']}", "-p", str(v["pitch"]), "-s", str(v["rate"]),
                    "-w", f"{work}/cli/{i:03}.wav", line["spoken"]], check=True)
cli = time.perf_counter() - t0
speech = summary["speech_seconds"]
whole = end - start
print(f"lines: {summary['lines']}, speech: {speech:.1f} s")
print(f"benjamin speak : {summary['wall_seconds']:.2f} s voicing ({whole:.2f} s for the whole command), real-time factor {summary['wall_seconds'] / speech:.4f}")
print(f"espeak-ng CLI  : {cli:.2f} s for the same lines, real-time factor {cli / speech:.4f}")
print(f"ratio benjamin / espeak-ng CLI = {whole / cli:.3f} (whole command; goal <= 1.1)")
PY
