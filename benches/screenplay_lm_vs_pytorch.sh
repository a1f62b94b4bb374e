#!/usr/bin/env bash
# The screenplay model against nanoGPT's shakespeare_char CPU configuration (4 layers, 4 heads,
# 128 wide, context 64, batch 12, dropout 0, 2000 iterations, char level, 90/10 split): benjamin's
# GPT and a PyTorch reference (benches/torch_gpt_reference.py, `pip install torch`), one after
# the other, each for at most SECONDS of wall time; then benjamin's LSTM at a similar size, and
# benjamin's sampling speed with the built-in model. Not a test: run it by hand.
#
#     bash benches/screenplay_lm_vs_pytorch.sh [SECONDS]   (default 180)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-180}
text=../shared/data/text/tinyshakespeare.txt
[ -f "$text" ] || { echo "needs $text (../shared/data)"; exit 1; }
# BENJAMIN_BIN: a binary built elsewhere (else this checkout's release build).
if [ -z "${BENJAMIN_BIN:-}" ]; then cargo build --release -q; fi
bin=${BENJAMIN_BIN:-${CARGO_TARGET_DIR:-target}/release/benjamin}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
hours=$(python3 -c "print($secs/3600)")
common=(--corpus "$text" --vocab 260 --context 64 --batch 12 --steps 2000 --eval-every 2000 --hours "$hours" --json --quiet)

echo "== benjamin GPT (4x128, 4 heads), up to ${secs}s"
$bin train screenplay --arch gpt --layers 4 --heads 4 --width 128 --out "$work/gpt" "${common[@]}" | tee "$work/gpt.json"
echo "== PyTorch GPT, same configuration, up to ${secs}s"
python3 benches/torch_gpt_reference.py --text "$text" --iters 2000 --seconds "$secs" 2>/dev/null | tee "$work/torch.json"
echo "== benjamin LSTM (2x224), up to ${secs}s"
$bin train screenplay --arch lstm --layers 2 --width 128 --hidden 224 --out "$work/lstm" "${common[@]}" | tee "$work/lstm.json"
echo "== sampling with the built-in model (a 3-minute screenplay)"
$bin write --genre noir --seed 1 --minutes 3 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['stats'])"

python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
g, t, l = (json.load(open(f"{w}/{n}.json")) for n in ("gpt", "torch", "lstm"))
print(f"\nbenjamin GPT : {g['tokens_per_second']:8.0f} tokens/s, {g['steps']} steps, val loss {g['best_val_loss']:.3f}, {g['parameters']} parameters")
print(f"PyTorch GPT  : {t['tokens_per_second']:8.0f} tokens/s, {t['steps']} steps, val loss {t['val_loss']:.3f}, {t['parameters']} parameters")
print(f"benjamin LSTM: {l['tokens_per_second']:8.0f} tokens/s, {l['steps']} steps, val loss {l['best_val_loss']:.3f}, {l['parameters']} parameters")
print(f"speed ratio benjamin/PyTorch = {g['tokens_per_second'] / t['tokens_per_second']:.2f} (goal >= 1); anchor: nanoGPT val 1.88 in ~3 min")
PY
