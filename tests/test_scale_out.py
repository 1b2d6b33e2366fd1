"""Many workers on one runs folder: every job runs exactly once, dead holders are taken over, pools agree.

Each test reuses the session's smoke run (data and smoke prior jobs are copied, so only IAT's
two trainings, two evaluations and the render run) and compares with its summaries: the same job
keys computed once by ``run_all.sh`` in one process per job, with the same single CPU thread.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from support.e2e import bench, bench_popen, copy_jobs, evaluate_summaries, job_kind_of, running_lines

IAT_TABLE1 = ("run", "--table", "1", "--profile", "smoke", "--baseline", "iat", "--no-progress")
REUSED = {"prepare_data", "train_prior"}


def _summaries(runs: Path) -> pd.DataFrame:
    return evaluate_summaries(runs)


def _reference(smoke_runs: Path, ours: pd.DataFrame) -> pd.DataFrame:
    ref = _summaries(smoke_runs)
    return ref[ref["config_hash"].isin(set(ours["config_hash"]))].reset_index(drop=True)


def _fresh(smoke_all, tmp_path: Path) -> Path:
    base, proc, _ = smoke_all
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    copy_jobs(base / "runs", tmp_path / "runs", REUSED)
    return base


def _iat_rows(md: str) -> list[str]:
    """IAT's rows without bold: bold marks the best of the rows a table holds, and an IAT-only run holds fewer."""
    return [ln.replace("**", "") for ln in md.splitlines() if ln.startswith("| IAT")]


def _check_once_each(outputs: list[str], tmp_path: Path, smoke_base: Path) -> None:
    lines = [ln for out in outputs for ln in running_lines(out)]
    keys = Counter(ln.split("(", 1)[1].split(")", 1)[0] for ln in lines)
    assert keys and max(keys.values()) == 1, f"a job ran twice: {keys}"
    assert len(keys) == 5, lines  # 2 train, 2 evaluate, 1 render
    ours = _summaries(tmp_path / "runs")
    pd.testing.assert_frame_equal(ours, _reference(smoke_base / "runs", ours))


@pytest.mark.parametrize("stagger_s", [0.0, 4.0], ids=["together", "staggered"])
def test_three_processes_share_one_runs_folder(smoke_all, tmp_path: Path, stagger_s: float) -> None:
    smoke_base = _fresh(smoke_all, tmp_path)
    procs = []
    for i in range(3):
        procs.append(bench_popen(tmp_path, *IAT_TABLE1, BENCH_TABLES=str(tmp_path / f"tables{i}")))
        time.sleep(stagger_s)
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n\n".join(o[-2000:] for o in outputs)
    _check_once_each(outputs, tmp_path, smoke_base)
    tables = {(tmp_path / f"tables{i}" / "table1.md").read_text().split("rendered:")[0] for i in range(3)}
    assert len(tables) == 1
    assert _iat_rows(tables.pop()) == _iat_rows((smoke_base / "tables" / "table1.md").read_text())


def _wait_for(pred, timeout: float, proc=None) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("foreign", [False, True], ids=["same-host", "other-host"])
def test_a_killed_holder_is_taken_over_and_resumed(smoke_all, tmp_path: Path, foreign: bool) -> None:
    """SIGKILL the process training a job; a second process breaks its lease and resumes from the checkpoint.

    ``other-host``: the dead lease is made to look as if it came from another machine, where the pid
    cannot be checked, so the taker must wait for the heartbeat timeout (shortened to 5 s here).
    """
    smoke_base = _fresh(smoke_all, tmp_path)
    first = bench_popen(tmp_path, *IAT_TABLE1)

    def checkpoints() -> list[Path]:
        return [c for c in (tmp_path / "runs").glob("*/checkpoint.pt") if job_kind_of(c.parent) == "train"]

    assert _wait_for(lambda: bool(checkpoints()), 600, first), first.communicate()[0][-3000:]
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    (held,) = [c.parent for c in checkpoints() if (c.parent / "lease.json").is_file()]
    if foreign:
        lease = json.loads((held / "lease.json").read_text())
        lease.update(host="node-that-died", started=time.time())
        (held / "lease.json").write_text(json.dumps(lease))
    t0 = time.time()
    second = bench(tmp_path, *IAT_TABLE1, BENCH_LEASE_TIMEOUT="5")
    out = second.stdout + second.stderr
    assert second.returncode == 0, out[-3000:]
    assert "broke the lease" in out and "resuming from step" in out
    if foreign:
        assert "no heartbeat from node-that-died" in out and time.time() - t0 >= 5
    else:
        assert "is gone" in out
    ours = _summaries(tmp_path / "runs")
    pd.testing.assert_frame_equal(ours, _reference(smoke_base / "runs", ours))


def test_pool_executor_gives_the_local_executors_table(smoke_all, tmp_path: Path) -> None:
    """Two single-threaded pool workers compute exactly what one process computes (same thread count)."""
    smoke_base = _fresh(smoke_all, tmp_path)
    out = bench(tmp_path, *IAT_TABLE1, "--executor", "pool", "--workers", "2", "--threads", "1")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert len(running_lines(out.stdout + out.stderr)) == 5
    ours = _summaries(tmp_path / "runs")
    pd.testing.assert_frame_equal(ours, _reference(smoke_base / "runs", ours))
    md = (tmp_path / "tables" / "table1.md").read_text()
    assert _iat_rows(md) == _iat_rows((smoke_base / "tables" / "table1.md").read_text())


def test_force_refuses_jobs_another_worker_holds(smoke_all, tmp_path: Path) -> None:
    _fresh(smoke_all, tmp_path)
    first = bench_popen(tmp_path, *IAT_TABLE1)
    try:
        leased = lambda: [d for d in (tmp_path / "runs").iterdir()  # noqa: E731
                          if (d / "lease.json").is_file() and job_kind_of(d) == "train"]
        assert _wait_for(lambda: bool(leased()), 600, first)
        forced = bench(tmp_path, *IAT_TABLE1, "--force")
        assert forced.returncode == 2
        assert "another worker is running now" in forced.stdout + forced.stderr
    finally:
        first.kill()
        first.wait()


def test_status_shows_a_running_jobs_host_and_step(smoke_all, tmp_path: Path) -> None:
    import socket

    _fresh(smoke_all, tmp_path)
    # 40 steps, not the smoke profile's 20: IAT's trainings must outlast a few `bench status` polls
    longer = ("--steps", "40")
    run = bench_popen(tmp_path, *IAT_TABLE1, *longer, BENCH_HEARTBEAT_S="0.3")
    try:
        seen = ""
        deadline = time.time() + 600
        while time.time() < deadline and run.poll() is None:
            out = bench(tmp_path, "status", "--table", "1", "--profile", "smoke", "--baseline", "iat", *longer)
            assert out.returncode == 0, out.stderr
            line = next((ln for ln in out.stdout.splitlines() if "train:iat" in ln and "running" in ln), "")
            if " step " in line:
                seen = line
                break
            time.sleep(0.5)
        assert seen, "bench status never showed the running training's step"
        assert socket.gethostname() in seen and f"pid {run.pid}" in seen and "of 40" in seen and "heartbeat" in seen
    finally:
        run.kill()
        run.wait()
    after = bench(tmp_path, "status", "--table", "1", "--profile", "smoke", "--baseline", "iat", *longer)
    assert "done" in after.stdout and "pending" in after.stdout  # the killed job is pending again (its lease is dead)
