"""Leases and the run store under several workers: one holder at a time, dead holders broken, outputs checksummed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.graph import lease as leases
from bench.graph.job import JOB_KINDS, Job, JobContext, job_kind
from bench.graph.store import RunStore
from bench.graph.worker import run_job


@pytest.fixture(autouse=True)
def _kinds():
    @job_kind("t_write")
    def write(ctx: JobContext) -> dict:
        (ctx.out_dir / "value.txt").write_text(str(ctx.job.config["value"]))
        return {"value": ctx.job.config["value"]}

    yield
    JOB_KINDS.pop("t_write", None)


def test_only_one_claim_wins_and_release_frees_it(tmp_path: Path) -> None:
    first = leases.claim(tmp_path / "job")
    assert first is not None
    assert leases.claim(tmp_path / "job") is None  # a live holder (this very process)
    state = leases.read(tmp_path / "job")
    assert state is not None and state.holder.pid == os.getpid() and state.dead() is None
    first.release()
    assert leases.read(tmp_path / "job") is None
    again = leases.claim(tmp_path / "job")
    assert again is not None
    again.release()


def test_a_dead_local_holder_is_broken_at_once(tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(proc.stdout)
    holder = leases.Holder.me()
    holder.pid, holder.pid_start = dead_pid, None
    job_dir.mkdir()
    (job_dir / leases.LEASE).write_text(json.dumps(holder.__dict__))
    state = leases.read(job_dir)
    assert state is not None and "is gone" in (state.dead() or "")
    messages: list[str] = []
    taken = leases.claim(job_dir, log=messages.append)
    assert taken is not None and "broke the lease" in messages[0]
    assert leases.read(job_dir).holder.token == taken.holder.token  # type: ignore[union-attr]
    taken.release()


def test_another_hosts_lease_dies_only_after_the_heartbeat_timeout(tmp_path: Path, monkeypatch) -> None:
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    holder = leases.Holder.me()
    holder.host, holder.started = "some-other-node", time.time() - 30
    (job_dir / leases.LEASE).write_text(json.dumps(holder.__dict__))
    monkeypatch.setenv("BENCH_LEASE_TIMEOUT", "60")
    assert leases.claim(job_dir) is None  # 30 s old heartbeat, 60 s limit: alive
    monkeypatch.setenv("BENCH_LEASE_TIMEOUT", "10")
    taken = leases.claim(job_dir)
    assert taken is not None
    taken.release()


def test_a_fresh_heartbeat_keeps_a_foreign_lease_alive(tmp_path: Path, monkeypatch) -> None:
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    holder = leases.Holder.me()
    holder.host, holder.started = "some-other-node", time.time() - 3600
    (job_dir / leases.LEASE).write_text(json.dumps(holder.__dict__))
    (job_dir / f"heartbeat-{holder.token}.json").write_text(json.dumps({"time": time.time(), "step": 7,
                                                                       "steps": 40}))
    monkeypatch.setenv("BENCH_LEASE_TIMEOUT", "60")
    state = leases.read(job_dir)
    assert state is not None and state.dead() is None and (state.step, state.steps) == (7, 40)
    assert leases.claim(job_dir) is None


def test_a_holder_whose_lease_was_taken_over_notices(tmp_path: Path) -> None:
    lease = leases.claim(tmp_path / "job", heartbeat_s=3600)
    assert lease is not None
    (tmp_path / "job" / leases.LEASE).unlink()  # as a breaker that judged us dead would
    other = leases.claim(tmp_path / "job")
    assert other is not None
    lease.beat()
    assert lease.lost and "taken over" in lease.lost
    lease.release()  # must not remove the new holder's lease
    assert leases.read(tmp_path / "job").holder.token == other.holder.token  # type: ignore[union-attr]
    other.release()


def test_run_job_skips_held_jobs_and_records_host_in_done(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    job = Job("t_write", {"value": 3})
    store.write_spec(job)
    held = store.claim(job)
    assert run_job(job.key, tmp_path, "cpu", log=lambda m: None) == "held"
    held.release()  # type: ignore[union-attr]
    assert run_job(job.key, tmp_path, "cpu", log=lambda m: None) == "done"
    rec = store.done_record(job)
    assert rec is not None and rec["host"] == socket.gethostname()
    assert rec["outputs"] == {"value.txt": rec["outputs"]["value.txt"]} and rec["outputs"]["value.txt"].startswith(
        "sha256:")
    assert "-> running" in (store.dir(job) / "log.txt").read_text()
    assert leases.read(store.dir(job)) is None  # released


def test_a_changed_output_means_not_done_and_the_job_reruns(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    job = Job("t_write", {"value": 5})
    store.write_spec(job)
    assert run_job(job.key, tmp_path, "cpu", log=lambda m: None) == "done"
    (store.dir(job) / "value.txt").write_text("50")  # a truncated / edited output
    info = store.inspect(job)
    assert info.status == "pending" and "changed since" in info.problem
    logs: list[str] = []
    assert run_job(job.key, tmp_path, "cpu", log=logs.append) == "done"
    assert (store.dir(job) / "value.txt").read_text() == "5"
    assert any("changed since" in m for m in logs)
    assert list(store.dir(job).glob("done.corrupt-*.json"))  # the untrusted record is kept aside


def test_a_corrupt_done_json_means_not_done(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    job = Job("t_write", {"value": 1})
    store.write_spec(job)
    run_job(job.key, tmp_path, "cpu", log=lambda m: None)
    (store.dir(job) / "done.json").write_text('{"key": "trunc')
    assert store.status(job) == "pending"


def test_load_job_refuses_an_edited_spec(tmp_path: Path) -> None:
    from bench.errors import BenchError

    store = RunStore(tmp_path)
    job = Job("t_write", {"value": 2})
    store.write_spec(job)
    spec = json.loads((store.dir(job) / "job.json").read_text())
    spec["config"]["value"] = 9
    (store.dir(job) / "job.json").write_text(json.dumps(spec))
    with pytest.raises(BenchError, match="hashes to"):
        RunStore(tmp_path).load_job(job.key)
