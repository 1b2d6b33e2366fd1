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
from pathlib import Path

import pytest
import slurm_cluster as sc
from support.e2e import BackgroundRunAll

SMOKE_FIXTURE = "smoke_all"
_BACKGROUND: list[BackgroundRunAll] = []


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: start it only for the tests that will run
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules that read the session's smoke run go last, and the run starts now, in the background.

    Everything before them runs beside it (their bench processes are single-threaded; the pool's two
    workers take what is left), so the CI pays for the smoke run once instead of waiting for it.
    """
    modules = {item.module.__name__ for item in items if SMOKE_FIXTURE in item.fixturenames}  # type: ignore[attr-defined]
    if not modules:
        return
    items.sort(key=lambda item: item.module.__name__ in modules)  # type: ignore[attr-defined]  # stable: order kept
    if not config.option.collectonly:
        _BACKGROUND.append(BackgroundRunAll(config._tmp_path_factory.mktemp("smoke")))  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for run in _BACKGROUND:
        run.stop()


@pytest.fixture(scope="session")
def smoke_all(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], float]:
    """``run_all.sh smoke``: every table and Figure 7, once per test session, shared by every module that needs it
    (started at collection; see ``pytest_collection_modifyitems``). The seconds are the run's own wall time."""
    if not _BACKGROUND:  # e.g. a test selected by -k after collection: start it here
        _BACKGROUND.append(BackgroundRunAll(tmp_path_factory.mktemp("smoke")))
    run = _BACKGROUND[0]
    proc, seconds = run.result(timeout=3600)
    (run.base / "run_all.log").write_text(proc.stdout + proc.stderr)
    _SUMMARY.append(f"[smoke run] run_all.sh smoke: {seconds:.0f} s wall, started at collection (beside other tests)")
    return run.base, proc, seconds


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
