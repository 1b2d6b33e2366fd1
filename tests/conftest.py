"""Fixtures shared across test modules.

- ``smoke_all``: the session's one smoke run of every table (the CI's longest step).
- ``slurm_cluster`` / ``slurm_env``: one throw-away single-node Slurm cluster per test session
  (``tests/slurm_cluster.py``), started by the first test that asks for it and stopped at the end of the
  session. Without its packages (or without root) a test needing it fails under CI=true and is skipped
  loudly elsewhere, like tests whose shared/ material is missing; BENCH_SLURM_INSTALL=1 lets the fixture
  apt-get the packages first, BENCH_SLURM_KEEP=1 keeps its folder (configuration and daemon logs).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import slurm_cluster as sc
from support.e2e import run_all


@pytest.fixture(scope="session")
def smoke_all(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], float]:
    """``run_all.sh smoke``: every table and Figure 7, once per test session, shared by every module that needs it."""
    base = tmp_path_factory.mktemp("smoke")
    t0 = time.perf_counter()
    proc = run_all(base)
    (base / "run_all.log").write_text(proc.stdout + proc.stderr)
    return base, proc, time.perf_counter() - t0


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running cluster (``.env``: SLURM_CONF and the cluster's marker; ``.partition``; ``.run(...)``)."""
    reason = sc.unavailable_reason()
    if reason and os.environ.get("BENCH_SLURM_INSTALL") == "1" and os.geteuid() == 0:
        sc.install_packages()
        reason = sc.unavailable_reason()
    if reason:
        _missing(reason)
    with sc.running_cluster(keep=os.environ.get("BENCH_SLURM_KEEP") == "1") as cluster:
        yield cluster
    t = cluster.timings
    _SUMMARY.append(f"[slurm test cluster] start {t.get('start_s', float('nan')):.1f} s, "
                    f"stop {t.get('stop_s', float('nan')):.1f} s, "
                    f"leftover processes killed: {len(cluster.leftovers_killed)}")


_SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter) -> None:
    """The Slurm cluster's cost, in the CI log (a fixture's own output is captured)."""
    for line in _SUMMARY:
        terminalreporter.write_line(line)


@pytest.fixture
def slurm_env(slurm_cluster, monkeypatch: pytest.MonkeyPatch):
    """The cluster, with its environment set for this test (submitit's sbatch calls read os.environ)."""
    for k, v in slurm_cluster.env.items():
        monkeypatch.setenv(k, v)
    return slurm_cluster
