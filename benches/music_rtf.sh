#!/usr/bin/env bash
# The music stage composing and rendering a three-minute score (12 scenes of 15 s) in each
# genre: real-time factor of the whole `benjamin run music` (wall time / score length), and
# the share of melody notes that fit the harmony (examples/music_fit.rs). Not a test: run it
# by hand.
#
#     bash benches/music_rtf.sh
# BENJAMIN=path and MUSIC_FIT=path use prebuilt release binaries instead of building.
#
# Recorded on this project's 2-core AMD EPYC machine (shared with two builds, load ~2.6),
# release build: real-time factor 0.0141 (noir), 0.0164 (scifi), 0.0161 (romance) for the
# whole `benjamin run music` on 180 s of score (composing 0.06-0.09 s of it, the rest is
# rendering through rustysynth and writing); melody fit 100% under the harmony mask (83.7%
# chord tones, the rest marked passing tones); the model with no mask 44.0% chord tones and
# 80.5% in scale, against 29.3% and 59.6% for random pitches.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${BENJAMIN:-}" || -z "${MUSIC_FIT:-}" ]]; then
    cargo build --release -q --bin benjamin --example music_fit
    target=${CARGO_TARGET_DIR:-target}
    BENJAMIN=${BENJAMIN:-$target/release/benjamin}
    MUSIC_FIT=${MUSIC_FIT:-$target/release/examples/music_fit}
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for genre in noir scifi romance; do
    film="$work/$genre"
    python3 - "$film" "$genre" <<'PY'
import json, os, sys
film, genre = sys.argv[1], sys.argv[2]
os.makedirs(f"{film}/screenplay"); os.makedirs(f"{film}/voice")
open(f"{film}/film.toml", "w").write(f'format = 1\ntitle = "Bench"\ngenre = "{genre}"\nseed = 7\nhours = 1.0\n')
actions = ["Rain on the window. She waits.", "He runs down the stairs and fires twice.",
           "They sit and smile over coffee.", "A siren. Glass breaks. She grabs the gun."]
scenes = []
for i in range(12):
    scenes.append({"number": i + 1, "estimated_seconds": 15.0,
                   "heading": {"text": "INT. ROOM - NIGHT", "int_ext": "INT", "place": "ROOM",
                               "time": "NIGHT" if i % 2 else "DAY"},
                   "elements": [{"type": "action", "text": actions[i % 4]},
                                {"type": "dialogue", "character": "ANA", "text": "Not tonight."}]})
json.dump({"title": "Bench", "scenes": scenes, "characters": ["ANA"], "estimated_seconds": 180.0},
          open(f"{film}/screenplay/screenplay.json", "w"))
json.dump({"engine": "bench", "sample_rate": 22050, "lines": [], "total_seconds": 180.0,
           "scenes": [{"number": i + 1, "start": 15.0 * i, "duration": 15.0} for i in range(12)]},
          open(f"{film}/voice/dialogue.json", "w"))
PY
    start=$(date +%s.%N)
    "$BENJAMIN" --quiet run music --film "$film" --seed 7
    end=$(date +%s.%N)
    python3 - "$film" "$start" "$end" "$genre" <<'PY'
import json, sys
film, start, end, genre = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
m = json.load(open(f"{film}/music/manifest.json"))
sheet = json.load(open(f"{film}/music/cues.json"))
seconds = sum(c["duration"] for c in sheet["cues"])
wall = end - start
notes = m["notes"]
print(f"{genre:>8}: {len(sheet['cues'])} cues, {seconds:.0f} s of score in {wall:.2f} s "
      f"(compose {notes['compose_s']:.2f} s, stage {m['duration_s']:.2f} s): real-time factor {wall / seconds:.4f}; "
      f"melody fit {100 * sheet['melody_fit']:.1f}%; {sheet['home_key']}")
PY
done
"$MUSIC_FIT" 5
