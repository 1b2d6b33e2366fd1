"""Fixtures shared across test modules: the session's one smoke run of every table (the CI's longest step)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from support.e2e import run_all


@pytest.fixture(scope="session")
def smoke_all(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], float]:
    """``run_all.sh smoke``: every table and Figure 7, once per test session, shared by every module that needs it."""
    base = tmp_path_factory.mktemp("smoke")
    t0 = time.perf_counter()
    proc = run_all(base)
    (base / "run_all.log").write_text(proc.stdout + proc.stderr)
    return base, proc, time.perf_counter() - t0
