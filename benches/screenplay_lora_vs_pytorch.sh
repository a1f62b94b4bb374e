#!/usr/bin/env bash
# The screenplay adapters against PyTorch + peft on the same base and data (see
# benches/torch_lora_reference.py; pip install torch transformers peft gguf): fine-tuning
# tokens/s (steps only, after warm-up) and greedy sampling tokens/s, ROUNDS interleaved rounds,
# then the medians. Not a test: run it by hand on an idle machine.
#
#     bash benches/screenplay_lora_vs_pytorch.sh [ROUNDS]   (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
gguf=models/third-party/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
[ -f "$gguf" ] || { echo "needs $gguf: bash scripts/screenplay-base.sh"; exit 1; }
if [ -z "${BENJAMIN_BIN:-}" ]; then cargo build --release -q; fi
bin=${BENJAMIN_BIN:-${CARGO_TARGET_DIR:-target}/release/benjamin}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for r in $(seq 1 "$rounds"); do
  echo "== round $r: benjamin" >&2
  rm -rf "$work/ad"
  $bin train screenplay --arch llama --steps 14 --eval-every 1000 --out "$work/ad" --json --quiet > "$work/b-train-$r.json"
  $bin write --genre noir --seed 1 --minutes 4 --json --quiet > "$work/b-write-$r.json"
  echo "== round $r: PyTorch" >&2
  python3 benches/torch_lora_reference.py --gguf "$gguf" --steps 12 --warmup 2 > "$work/t-$r.json" 2>/dev/null
done
python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys
w, n = sys.argv[1], int(sys.argv[2])
med = lambda xs: statistics.median(xs)
bt = [json.load(open(f"{w}/b-train-{r}.json"))["train_tokens_per_second"] for r in range(1, n + 1)]
bw = [json.load(open(f"{w}/b-write-{r}.json"))["stats"]["tokens_per_second"] for r in range(1, n + 1)]
bs = [json.load(open(f"{w}/b-write-{r}.json"))["stats"]["seconds"] for r in range(1, n + 1)]
t = [json.load(open(f"{w}/t-{r}.json")) for r in range(1, n + 1)]
tt = [x["train_tokens_per_second"] for x in t]
tw = [x["sample_tokens_per_second"] for x in t]
print(f"fine-tuning tokens/s: benjamin {med(bt):.0f} {[round(x) for x in bt]}  PyTorch+peft {med(tt):.0f} {[round(x) for x in tt]}  ratio {med(bt)/med(tt):.2f} (goal >= 1)")
print(f"sampling tokens/s:    benjamin {med(bw):.1f} {[round(x,1) for x in bw]}  transformers generate {med(tw):.1f} {[round(x,1) for x in tw]}  ratio {med(bw)/med(tw):.2f} (goal >= 1)")
print(f"a 4-minute screenplay: benjamin {med(bs):.0f} s of sampling (goal for the whole stage <= 60 s)")
PY
