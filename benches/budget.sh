#!/usr/bin/env bash
# What --hours buys: `make` of a 4-minute noir film at each budget, without and with an actor
# (the drawn actor of the tests, cast over the lecture in ../shared/data), one after another.
# For each run: wall time against the budget, each stage's share of the budget (used/planned),
# the genre's held-out loss after the run's fine-tuning, the chosen draft's critic score, the
# faces' held-out SSIM (or why none was shown), the x264 preset.
#
#   bash benches/budget.sh [HOURS...]        # default: 0.05 0.1 0.5
#   ACTORS=no|yes|both (default both)  MINUTES=4
#
# The genre's fine-tuning checkpoint lives in the user's data folder and goes on film after
# film, so the loss column depends on the order of the runs (that is the point of it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BENJAMIN_BIN:-target/release/benjamin}
hours=("${@:-0.05 0.1 0.5}")
read -r -a hours <<<"${hours[*]}"
minutes=${MINUTES:-4}
actors=${ACTORS:-both}
video=../shared/data/video/physicsworks.webm
[ -x "$bin" ] || cargo build --release
work=${BUDGET_WORK:-$(mktemp -d)}
mkdir -p "$work"
echo "work folder: $work" >&2

setup_actor() {
  [ -d "$work/actors" ] && return
  [ -f "$video" ] || { echo "needs $video (see ../shared/data/README.md)" >&2; exit 1; }
  mkdir -p "$work/footage" "$work/drawn"
  cp "$video" "$work/footage/"
  cat >"$work/footage/physicsworks.webm.json" <<'EOF'
{"licence": "CC BY 3.0", "attribution": "Walter Lewin, MIT OpenCourseWare, via Wikimedia Commons"}
EOF
  cargo run --release --quiet --example face_synth -- "$work/drawn" >/dev/null
  cat >"$work/consent.toml" <<'EOF'
name = "Drawn Actor"
signed_by = "Drawn Actor"
date = "2026-01-01"
uses = ["face-swap"]
note = "a drawn face, no real person: a benchmark"
EOF
  "$bin" --quiet archive add --archive "$work/archive" "$work/footage"
  "$bin" --quiet actors add "Drawn Actor" --photos "$work/drawn" --consent "$work/consent.toml" \
    --actors "$work/actors"
}

report() {
  python3 - "$1" "$2" "$3" "$4" <<'EOF'
import json, sys, os
film, hours, wall, who = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
budget = hours * 3600
def manifest(stage):
    try:
        return json.load(open(os.path.join(film, stage, "manifest.json")))
    except Exception:
        return None
shares = []
for stage in ["screenplay", "voice", "shots", "faces", "music", "cut"]:
    m = manifest(stage)
    if m:
        p = (m.get("planned") or {}).get("planned_s", 0)
        shares.append(f"{stage} {100*m['duration_s']/budget:.0f}%/{100*p/budget:.0f}%")
sp = (manifest("screenplay") or {}).get("notes", {})
genre = (sp.get("genre") or {})
faces = (manifest("faces") or {}).get("notes", {})
cut = (manifest("cut") or {}).get("notes", {})
ssim = faces.get("held_out_ssim")
over = wall - budget
print(f"| {hours} h | {who} | {wall:.0f} s of {budget:.0f} s ({over:+.0f} s, {100*wall/budget:.1f}%) "
      f"| {', '.join(shares)} | {genre.get('baseline_val_loss', float('nan')):.4f} -> {genre.get('best_val_loss') or float('nan'):.4f} "
      f"({(sp.get('tuned') or {}).get('steps', '-')} steps) "
      f"| {sp.get('drafts', '-')} drafts, best {sp.get('critic', {}).get('score', float('nan')):.3f} "
      f"| {('%.3f' % ssim) if ssim is not None else '-'}, swapped {faces.get('swapped', '-')}"
      f"{(' (' + faces['why_none'][:60] + '...)') if faces.get('why_none') else ''} "
      f"| {cut.get('preset', '-')} |")
EOF
}

echo "| budget | actor | wall (over) | used/planned share of the budget | genre val loss (baseline -> best) | drafts, critic | faces SSIM | x264 |"
echo "|---|---|---|---|---|---|---|---|"
for h in "${hours[@]}"; do
  for who in no yes; do
    [ "$actors" = both ] || [ "$actors" = "$who" ] || continue
    film="$work/film-$h-$who"
    rm -rf "$film"
    extra=()
    if [ "$who" = yes ]; then
      setup_actor
      extra=(--archive "$work/archive" --actors "$work/actors")
    fi
    s=$(date +%s.%N)
    "$bin" --quiet make --genre noir --minutes "$minutes" --hours "$h" --seed 11 --film "$film" \
      "${extra[@]}" 2>"$film.log" || { echo "| $h h | $who | failed: $(tail -1 "$film.log") |"; continue; }
    wall=$(echo "$(date +%s.%N) - $s" | bc)
    report "$film" "$h" "$wall" "$who"
  done
done
