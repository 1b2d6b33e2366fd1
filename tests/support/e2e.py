"""Running the real ``bench`` CLI in subprocesses, with job outputs and tables in a test's own folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BENCH = [sys.executable, "-m", "bench.cli"]
#: One CPU thread per process everywhere in the end-to-end tests: the pool executor's workers use one
#: thread each, and CPU training's last bits depend on the thread count, so every executor agrees.
THREADS = "1"
#: What run_all.sh gets in CI: two single-threaded workers (the smoke networks are small; two jobs at a
#: time use two cores better than one job with two threads).
RUN_ALL_ARGS = ("--no-progress", "--executor", "pool", "--workers", "2", "--threads", "1")


def bench_env(base: Path, **extra: str) -> dict[str, str]:
    """Job outputs and tables in ``base``; the cache (smoke data, built weights) stays the user's own."""
    env = dict(os.environ)
    env.update(BENCH_RUNS=str(base / "runs"), BENCH_TABLES=str(base / "tables"), COLUMNS="200",
               PYTHONUNBUFFERED="1", OMP_NUM_THREADS=THREADS, MKL_NUM_THREADS=THREADS)
    env.update(extra)
    return env


def bench(base: Path, *args: str, timeout: int = 1500, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BENCH, *args], cwd=REPO, env=bench_env(base, **extra), capture_output=True, text=True,
                          timeout=timeout)


def bench_popen(base: Path, *args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*BENCH, *args], cwd=REPO, env=bench_env(base, **extra), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def run_all(base: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "run_all.sh", "smoke", *RUN_ALL_ARGS, *args], cwd=REPO, env=bench_env(base),
                          capture_output=True, text=True, timeout=1800)


def evaluate_summaries(runs: Path) -> Any:
    """Every evaluate job's summary in ``runs``, sorted, without the columns that measure this run's time or
    memory (``support.tiny.TIMING_COLUMNS``): what two runs of the same jobs must agree on exactly."""
    import pandas as pd

    from support.tiny import is_measured

    frames = [pd.read_csv(f) for f in sorted(runs.glob("*/summary.csv")) if job_kind_of(f.parent) == "evaluate"]
    out = pd.concat(frames)
    out = out[[c for c in out.columns if not is_measured(c)]]
    return out.sort_values(["config_hash", "metric"]).reset_index(drop=True)


def job_kind_of(job_dir: Path) -> str:
    import json

    try:
        return json.loads((job_dir / "job.json").read_text())["kind"]
    except (OSError, ValueError, KeyError):
        return ""


def copy_jobs(src_runs: Path, dst_runs: Path, kinds: set[str]) -> set[str]:
    """Copy the finished jobs of ``kinds`` (e.g. data and the smoke prior) so a test does not redo them."""
    dst_runs.mkdir(parents=True, exist_ok=True)
    copied = set()
    for d in src_runs.iterdir():
        if d.is_dir() and job_kind_of(d) in kinds and (d / "done.json").is_file():
            shutil.copytree(d, dst_runs / d.name)
            copied.add(d.name)
    return copied


def running_lines(output: str) -> list[str]:
    """The ``[job] <label> (<key>): <status> -> running`` lines of a run's output."""
    return [ln for ln in output.splitlines() if ln.startswith("[job] ") and " -> running" in ln]
