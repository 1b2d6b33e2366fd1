#!/usr/bin/env bash
# Run every table and figure of the paper for a profile (default: smoke). Resumable: a second
# invocation after completion runs no job. Extra arguments go to `bench run --all`.
#   ./run_all.sh                      # smoke profile, embedded data, CPU is fine
#   ./run_all.sh paper --data-root /data --device cuda
set -euo pipefail
cd "$(dirname "$0")"
profile="${1:-smoke}"
shift || true
./scripts/setup.sh
.venv/bin/bench run --all --profile "$profile" "$@"
