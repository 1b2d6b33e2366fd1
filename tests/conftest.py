"""Shared fixtures.

Slurm: one throw-away single-node cluster per test session (``tests/slurm_cluster.py``), started by the
first test that asks for ``slurm_cluster`` and stopped at the end of the session. Without its packages
(or without root) a test needing it fails under CI=true and is skipped loudly elsewhere, like tests whose
shared/ material is missing; BENCH_SLURM_INSTALL=1 lets the fixture apt-get the packages first.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest


def load_slurm_cluster():
    """tests/slurm_cluster.py as module ``slurm_cluster`` (a site-packages ``tests`` package shadows ours)."""
    name = "slurm_cluster"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("slurm_cluster.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster(request):
    """A running cluster (``.env``: SLURM_CONF and the cluster's marker; ``.partition``; ``.run(...)``)."""
    sc = load_slurm_cluster()
    reason = sc.unavailable_reason()
    if reason and os.environ.get("BENCH_SLURM_INSTALL") == "1" and os.geteuid() == 0:
        sc.install_packages()
        reason = sc.unavailable_reason()
    if reason:
        _missing(reason)
    with sc.running_cluster(keep=os.environ.get("BENCH_SLURM_KEEP") == "1") as cluster:
        yield cluster
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:  # the cluster's cost, in the CI log
        t = cluster.timings
        tr.write_line(f"[slurm test cluster] start {t['start_s']:.1f} s (slurmctld {t['slurmctld_s']:.1f} s), "
                      f"stop {t['stop_s']:.1f} s, leftover processes killed: {len(cluster.leftovers_killed)}")


@pytest.fixture
def slurm_env(slurm_cluster, monkeypatch):
    """The cluster, with its environment set for this test (submitit's sbatch calls read os.environ)."""
    for k, v in slurm_cluster.env.items():
        monkeypatch.setenv(k, v)
    return slurm_cluster
