#!/usr/bin/env bash
# Run every table and figure of the paper for a profile (default: smoke). Resumable: a second
# invocation after completion runs no job. Extra arguments go to every `bench run`.
#   ./run_all.sh                      # smoke profile, embedded data, CPU is fine
#   ./run_all.sh paper --data-root /data --device cuda
set -euo pipefail
cd "$(dirname "$0")"
profile="${1:-smoke}"
shift || true
./scripts/setup.sh
for t in $(.venv/bin/python -c "from bench.pipeline import TABLES; print(*TABLES)"); do
  .venv/bin/bench run --table "$t" --profile "$profile" "$@"
done
for f in $(.venv/bin/python -c "from bench.pipeline import FIGURES; print(*FIGURES)"); do
  .venv/bin/bench run --figure "$f" --profile "$profile" "$@"
done
