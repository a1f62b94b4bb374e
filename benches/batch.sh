#!/usr/bin/env bash
# The festival batch: examples/festival.toml at one minute a film (4 entries, 3 genres),
# --jobs 1 against --jobs 2 in interleaved rounds, then one entry broken on purpose and the
# batch killed (SIGKILL) while entry 2 is being made, and rerun. Needs the starter archive
# (scripts/setup.sh). With SLURM=1, also the same batch as a Slurm array (start one with
# sudo bash scripts/slurm_single_node.sh).
#
#   bash benches/batch.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
bin=$(realpath "${BENJAMIN_BIN:-target/release/benjamin}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fresh() { rm -rf "$work/$1"; mkdir -p "$work/$1"; sed 's/minutes = 2/minutes = 1/' examples/festival.toml > "$work/$1/festival.toml"; }
timed() { local s; s=$(date +%s.%N); "$@" || true; echo "$(date +%s.%N) - $s" | bc; }

for r in $(seq 1 "$rounds"); do
  for j in 1 2; do
    fresh "jobs$j"
    t=$(cd "$work/jobs$j" && timed "$bin" --quiet batch festival.toml --hours 0.2 --jobs "$j")
    echo "round $r: --jobs $j: $t s"
  done
done

fresh broken
sed -i '0,/genre = "romance"/s//genre = "romance"\narchive = "no-such-archive"/' "$work/broken/festival.toml"
cd "$work/broken"
"$bin" --quiet batch festival.toml --hours 0.2 --jobs 1 2>/dev/null &
pid=$!
until grep -qs '"state": "running"' festival/state/002.json; do sleep 0.5; done
kill -9 $pid; wait $pid 2>/dev/null || true
echo "killed: entry 2 is $(grep -o '"state": "[a-z]*"' festival/state/002.json)"
t=$(timed "$bin" --quiet batch festival.toml --hours 0.2 --jobs 1 2>/dev/null)
echo "rerun: $t s"
python3 - <<'PY'
import json
for e in json.load(open("festival/report.json"))["entries"]:
    print(e["number"], e["title"], e["genre"], e["state"], e.get("error", "")[:100])
PY
cd - >/dev/null

if [ "${SLURM:-0}" = 1 ]; then
  fresh slurm
  cd "$work/slurm"
  s=$(date +%s)
  "$bin" --quiet batch festival.toml --slurm --hours 0.2
  while [ -n "$(squeue -h)" ]; do sleep 2; done
  echo "slurm: $(( $(date +%s) - s )) s"
  "$bin" batch festival.toml --status
fi
