#!/usr/bin/env bash
# The GPU check (issue 12.5): one command, at most 5 minutes on one GPU.
#
#   benchmarks/gpu_check.sh [--resume] [--smoke] [--budget SECONDS] [...]   (see benchmarks/gpu_check.py --help)
#
# Runs from the repository root with the machine's python3 and PYTHONPATH=. (nothing is installed), and writes
# benchmarks/results/gpu_<device>.csv (rows written as they finish) and diffloss_speed_<device>.{txt,json}.
# If $OUT is set (a lent device machine), the results folder is copied there at exit, even after a time-out.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python3}"
if [ -n "${OUT:-}" ]; then
    trap 'mkdir -p "$OUT/results" && cp -r benchmarks/results/. "$OUT/results/" 2>/dev/null' EXIT
fi
# the Python side keeps to --budget (default 250 s); this is the hard stop if a row hangs inside a device call
timeout --signal=INT --kill-after=10 "${GPU_CHECK_TIMEOUT:-290}" "$PY" benchmarks/gpu_check.py "$@"
