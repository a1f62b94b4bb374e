#!/usr/bin/env bash
# benjamin's cut against the same cut by the ffmpeg CLI; see cut_vs_ffmpeg.py.
exec python3 "$(dirname "$0")/cut_vs_ffmpeg.py" "$@"
