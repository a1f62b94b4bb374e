#!/usr/bin/env bash
# Opens a batch's report.html in a real headless browser (Debian's chromium; apt-get install
# chromium) and saves a screenshot beside it, to check the page renders with its images.
#
#   bash scripts/batch_report_screenshot.sh FESTIVAL/report.html [WIDTHxHEIGHT]
set -euo pipefail
report=$(realpath "$1")
size=${2:-1280x2400}
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "needs chromium: sudo apt-get install chromium" >&2; exit 1; }
out="${report%.html}.png"
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size="${size/x/,}" --screenshot="$out" "file://$report" 2>/dev/null
[ -s "$out" ] || { echo "chromium wrote no screenshot" >&2; exit 1; }
echo "$out"
