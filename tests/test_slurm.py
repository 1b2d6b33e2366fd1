"""The Slurm backend (bench.graph.slurm): option parsing and requeue decisions without a cluster; round
trips, failures, cancellation, preemption with requeue, resources and restarts on a real single-node
cluster (tests/slurm_cluster.py, one per session, ``slurm_env`` fixture in conftest.py).

The jobs run stand-in workers with the worker's signature, ``fn(key, runs_root, device) -> outcome``,
defined here and pickled by value (the job's process cannot import this test module by name).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pytest

from bench import preempt
from bench.errors import BenchError
from bench.graph.job import Job
from bench.graph.slurm import (
    RECORD,
    Resources,
    SlurmBackend,
    SlurmEntry,
    SlurmOptions,
    _Submission,
    parse_extra,
    parse_mem,
    parse_time,
    read_record,
    resources_for,
)
from bench.graph.store import RunStore

cloudpickle.register_pickle_by_value(sys.modules[__name__])

# -- stand-in workers (they run inside Slurm jobs) --------------------------------------------------------------


def standin_done(key: str, runs_root: str, device: str) -> str:
    d = Path(runs_root) / key
    d.mkdir(parents=True, exist_ok=True)
    (d / "ran.json").write_text(json.dumps({"slurm_job_id": os.environ.get("SLURM_JOB_ID"), "device": device,
                                            "cpus": os.environ.get("SLURM_CPUS_PER_TASK")}))
    return "done"


def standin_raises(key: str, runs_root: str, device: str) -> str:
    raise RuntimeError("stand-in worker failed on purpose")


def standin_dies(key: str, runs_root: str, device: str) -> str:
    os._exit(3)  # like a segfault or the OOM killer: no outcome at all


def advance(state: dict) -> dict:
    """One step of the stand-in's training: a recurrence whose result depends on every step, once each."""
    return {"step": state["step"] + 1, "acc": (state["acc"] * 31 + state["step"] * 7 + 1) % 1_000_003}


def standin_steps(key: str, runs_root: str, device: str) -> str:
    """A checkpointing loop: saves its state every step, stops at the flag like bench.train does."""
    d = Path(runs_root) / key
    spec = json.loads((d / "spec.json").read_text())
    st = d / "state.json"
    state = json.loads(st.read_text()) if st.exists() else {"step": 0, "acc": 0}
    with open(d / "starts.txt", "a") as f:
        f.write(f"{state['step']} {os.environ.get('SLURM_RESTART_COUNT', '0')}\n")
    while state["step"] < spec["steps"]:
        time.sleep(spec["sleep"])
        state = advance(state)
        tmp = st.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, st)
        if preempt.requested():
            (d / "stopped.json").write_text(json.dumps({"reason": preempt.requested(), "step": state["step"]}))
            return "preempted"
    (d / "final.json").write_text(json.dumps(state))
    return "done"


def standin_signals(key: str, runs_root: str, device: str) -> str:
    """Sends itself submitit's signal, then reports what the flag saw (run under submitit's own process_job)."""
    os.kill(os.getpid(), signal.SIGUSR2)
    return f"flag={preempt.requested()}"


# -- helpers ----------------------------------------------------------------------------------------------------


def make_job(name: str) -> Job:
    return Job("train", {"test": name, "profile": "smoke"}, label=f"test:{name}")


def make_backend(runs: Path, fn, logs: list[str], **opts) -> SlurmBackend:
    options = SlurmOptions(**{"cpus": 1, "mem_gb": 1.0, "time_min": 10, **opts})
    return SlurmBackend(runs, device="cpu", options=options, fn=fn, log=logs.append, query_interval_s=1.0,
                        lost_grace_s=2.0, command_timeout_s=10.0)


def wait_outcome(backend: SlurmBackend, key: str, timeout: float, logs: list[str]) -> tuple[str, list[tuple]]:
    """Poll until ``key`` is reported; every report seen on the way (none should be for ``key`` before)."""
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for k, outcome in backend.poll(1.0):
            seen.append((k, outcome))
            if k == key:
                return outcome, seen
    rec = read_record(backend.runs_root, key) or {}
    err = Path(rec.get("stderr", "/nonexistent"))
    tail = err.read_text()[-2000:] if err.exists() else "(no stderr)"
    pytest.fail(f"no outcome for {key[:12]} after {timeout} s; backend log: {logs}; job stderr:\n{tail}")


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def read_state(d: Path) -> dict:
    try:
        return json.loads((d / "state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {"step": 0}


# -- without a cluster ------------------------------------------------------------------------------------------


def test_parse_time_mem_extra():
    assert [parse_time(t) for t in ("90", "1:30", "1:30:00", "2-00:00", "1-2", "0:07:00", "0:00:30")] == \
        [90, 2, 90, 2880, 1560, 7, 1]
    assert parse_mem("16G") == 16 and parse_mem("500M") == 500 / 1024 and parse_mem("2") == 2 \
        and parse_mem("1TB") == 1024
    assert parse_extra(["qos=high", "--constraint=a100", "exclusive", "mail_type=END"]) == \
        {"qos": "high", "constraint": "a100", "exclusive": True, "mail-type": "END"}
    for bad, call in [("abc", parse_time), ("0", parse_time), ("16Q", parse_mem), ("0G", parse_mem)]:
        with pytest.raises(BenchError) as e:
            call(bad)
        assert e.value.fix
    with pytest.raises(BenchError, match="--slurm-extra cannot set sbatch's --time") as e:
        parse_extra(["time=10"])
    assert "--slurm-time" in e.value.fix
    with pytest.raises(BenchError, match="not an sbatch setting"):
        parse_extra(["=x"])
    with pytest.raises(BenchError, match="--slurm-cpus must be at least 1"):
        SlurmOptions.parse(cpus=0)


def test_resources_by_kind_profile_device_and_options():
    none = SlurmOptions()
    full_train = resources_for("train", "paper", none, "auto")
    assert full_train.gpus == 1 and full_train.time_min == 720
    assert resources_for("train", "paper", none, "cpu").gpus == 0  # a CPU run asks for no GPU
    assert resources_for("render", "paper", none, "auto").gpus == 0
    small = resources_for("train", "smoke", none, "auto")
    assert small.gpus == 0 and small.mem_gb <= 4
    assert resources_for("new_kind", None, none, "auto") == Resources(gpus=1, cpus=8, mem_gb=32, time_min=240)
    opts = SlurmOptions.parse(time="1:00:00", gpus_per_job=2, mem="8G", cpus=3)
    assert resources_for("train", "smoke", opts, "cpu") == Resources(gpus=2, cpus=3, mem_gb=8, time_min=60)


def test_cpu_jobs_run_on_cpu_and_missing_slurm_is_a_bench_error(tmp_path, monkeypatch):
    b = SlurmBackend(tmp_path / "runs", device="auto", fn=standin_done, log=lambda m: None)
    assert b.runs_root == SlurmBackend(RunStore(tmp_path / "runs")).runs_root == (tmp_path / "runs").resolve()
    train_full = Job("train", {"profile": "paper"})
    assert b.entry(train_full, b.resources(train_full)).device == "auto"  # given a GPU: the worker picks it
    train_smoke = Job("train", {"profile": "smoke"})
    assert b.entry(train_smoke, b.resources(train_smoke)).device == "cpu"  # no GPU asked for: CPU, even on a GPU node
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BenchError, match="missing: sbatch, srun, squeue, scancel") as e:
        b.submit(train_smoke)
    assert "--executor local" in e.value.fix


def run_entry(monkeypatch, reason: str | None, state: str = "RUNNING", restarts: int = 0, requeue_rc: int = 0,
              slurm: bool = True):
    """Call SlurmEntry's after-preemption step with Slurm's answers faked; (exit message or None, commands)."""
    calls: list[list[str]] = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        out = f"JobId=7 JobName=x JobState={state} Reason=None" if cmd[:2] == ["scontrol", "show"] else ""
        return subprocess.CompletedProcess(cmd, requeue_rc if cmd[1] == "requeue" else 0, out, "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    for k, v in {"SLURM_JOB_ID": "7" if slurm else None, "SLURM_RESTART_COUNT": str(restarts)}.items():
        if v is None:
            monkeypatch.delenv(k, raising=False)
        else:
            monkeypatch.setenv(k, v)
    entry = SlurmEntry(fn=lambda key, root, device: "preempted", key="k", runs_root="/nonexistent", max_requeues=3)
    monkeypatch.setattr(preempt, "install", lambda signals: None)
    preempt.clear()
    if reason:
        preempt.request(reason)
    try:
        result = entry()
    except SystemExit as e:
        return str(e), calls
    finally:
        preempt.clear()
    return f"returned {result}", calls


def test_entry_requeues_on_warning_only(monkeypatch):
    msg, calls = run_entry(monkeypatch, "SIGUSR1")
    assert "requeued Slurm job 7" in msg and ["scontrol", "requeue", "7"] in calls
    # SIGTERM: Slurm is ending the job (scancel, time limit, preemption): no requeue, and no result either
    msg, calls = run_entry(monkeypatch, "SIGTERM")
    assert "SIGTERM" in msg and calls == []
    # a job already cancelled is not requeued (scontrol would requeue it)
    msg, calls = run_entry(monkeypatch, "SIGUSR1", state="CANCELLED")
    assert "not requeued" in msg and not any(c[1] == "requeue" for c in calls)
    # out of requeues, or requeue refused, or not under Slurm: "preempted" is the result
    assert run_entry(monkeypatch, "SIGUSR1", restarts=3)[0] == "returned preempted"
    assert run_entry(monkeypatch, "SIGUSR1", requeue_rc=1)[0] == "returned preempted"
    assert run_entry(monkeypatch, "SIGUSR1", slurm=False) == ("returned preempted", [])


def test_entry_signal_handlers_win_over_submitits(tmp_path):
    """Under submitit's own process_job (its local executor), submitit's USR2 handler would checkpoint and
    exit; SlurmEntry routes it to the flag instead, and the worker returns normally."""
    import submitit

    ex = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="local")
    ex.update_parameters(timeout_min=2)
    job = ex.submit(SlurmEntry(fn=standin_signals, key="k", runs_root=str(tmp_path)))
    wait_for(job.done, 60, "the local submitit job")
    assert job.result() == "flag=SIGUSR2"


def test_poll_never_blocks_past_its_timeout(tmp_path, monkeypatch):
    """A hung squeue/sacct (slurmctld or slurmdbd stuck) costs poll its timeout, no more."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("squeue", "sacct"):
        (bin_dir / name).write_text("#!/bin/sh\nexec sleep 30\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    b = SlurmBackend(tmp_path / "runs", fn=standin_done, log=lambda m: None, query_interval_s=0.0,
                     command_timeout_s=30.0)
    b._subs["k"] = _Submission("k", "123", ours=True)
    t0 = time.monotonic()
    assert b.poll(1.0) == []
    assert time.monotonic() - t0 < 2.5
    assert b.in_flight() == {"k"}


# -- on the cluster ---------------------------------------------------------------------------------------------


def test_round_trip(slurm_env, tmp_path):
    logs: list[str] = []
    b = make_backend(tmp_path / "runs", standin_done, logs)
    job = make_job("round-trip")
    b.submit(job)
    assert b.in_flight() == {job.key}
    outcome, seen = wait_outcome(b, job.key, 60, logs)
    assert outcome == "done" and seen == [(job.key, "done")] and b.in_flight() == set()
    rec = read_record(b.runs_root, job.key)
    ran = json.loads((b.runs_root / job.key / "ran.json").read_text())
    assert ran == {"slurm_job_id": rec["slurm_job_id"], "device": "cpu", "cpus": "1"}
    assert rec["outcome"] == "done" and rec["final_state"] == "COMPLETED" and rec["kind"] == "train"
    assert b.poll(0) == []  # reported once


def test_failing_worker_reported_failed(slurm_env, tmp_path):
    logs: list[str] = []
    b = make_backend(tmp_path / "runs", standin_raises, logs)
    job = make_job("raises")
    b.submit(job)
    outcome, _ = wait_outcome(b, job.key, 60, logs)
    assert outcome == "failed"
    rec = read_record(b.runs_root, job.key)
    assert "stand-in worker failed on purpose" in rec["error"] and rec["outcome"] == "failed"


def test_killed_worker_reported_lost(slurm_env, tmp_path):
    logs: list[str] = []
    b = make_backend(tmp_path / "runs", standin_dies, logs)
    job = make_job("dies")
    b.submit(job)
    outcome, _ = wait_outcome(b, job.key, 60, logs)
    assert outcome == "lost"
    assert read_record(b.runs_root, job.key)["final_state"] == "FAILED"


def test_scancel_reported_lost_after_checkpoint(slurm_env, tmp_path):
    """scancel sends SIGTERM: the job checkpoints and stops, does not requeue itself, writes no result;
    the backend reports "lost" within query interval + grace of Slurm's end."""
    logs: list[str] = []
    b = make_backend(tmp_path / "runs", standin_steps, logs)
    job = make_job("cancelled")
    d = b.runs_root / job.key
    d.mkdir(parents=True)
    (d / "spec.json").write_text(json.dumps({"steps": 600, "sleep": 0.1}))
    b.submit(job)
    wait_for(lambda: read_state(d)["step"] >= 2, 60, "the job to take steps")
    t0 = time.monotonic()
    slurm_env.run("scancel", read_record(b.runs_root, job.key)["slurm_job_id"])
    outcome, _ = wait_outcome(b, job.key, 45, logs)
    took = time.monotonic() - t0
    assert outcome == "lost" and took < 20, (outcome, took)
    stopped = json.loads((d / "stopped.json").read_text())
    assert stopped["reason"] == "SIGTERM" and stopped["step"] == read_state(d)["step"] < 600
    assert (d / "starts.txt").read_text().splitlines() == ["0 0"]  # not requeued
    assert read_record(b.runs_root, job.key)["final_state"] == "CANCELLED"


def test_usr1_checkpoints_requeues_and_resumes(slurm_env, tmp_path):
    """Slurm's time-limit warning (SIGUSR1): checkpoint at a step boundary, requeue, resume from the saved
    state, and end with exactly the result of an uninterrupted run; the submission stays in flight."""
    logs: list[str] = []
    b = make_backend(tmp_path / "runs", standin_steps, logs)
    job = make_job("requeued")
    d = b.runs_root / job.key
    d.mkdir(parents=True)
    steps = 20
    (d / "spec.json").write_text(json.dumps({"steps": steps, "sleep": 0.2}))
    b.submit(job)
    wait_for(lambda: read_state(d)["step"] >= 3, 60, "the job to take steps")
    slurm_env.run("scancel", "--signal=USR1", read_record(b.runs_root, job.key)["slurm_job_id"])
    outcome, seen = wait_outcome(b, job.key, 90, logs)
    assert outcome == "done" and seen == [(job.key, "done")]
    starts = [tuple(map(int, line.split())) for line in (d / "starts.txt").read_text().splitlines()]
    stopped = json.loads((d / "stopped.json").read_text())
    assert stopped["reason"] == "SIGUSR1"
    assert starts == [(0, 0), (stopped["step"], 1)] and 0 < stopped["step"] < steps  # resumed where it stopped
    expected = {"step": 0, "acc": 0}
    for _ in range(steps):
        expected = advance(expected)
    assert json.loads((d / "final.json").read_text()) == expected


def test_resource_options_reach_sbatch(slurm_env, tmp_path):
    logs: list[str] = []
    opts = SlurmOptions.parse(partition=slurm_env.partition, time="0:07:00", mem="300M", cpus=1,
                              extra=["comment=bench-resources-test"])
    b = SlurmBackend(tmp_path / "runs", device="cpu", options=opts, fn=standin_done, log=logs.append,
                     query_interval_s=1.0, lost_grace_s=2.0)
    job = make_job("resources")
    b.submit(job)
    rec = read_record(b.runs_root, job.key)
    show = dict(kv.split("=", 1) for kv in slurm_env.run("scontrol", "show", "job", "-o", rec["slurm_job_id"])
                .stdout.split() if "=" in kv)
    assert (show["Partition"], show["TimeLimit"], show["MinMemoryNode"], show["NumCPUs"], show["Comment"]) == \
        (slurm_env.partition, "00:07:00", "300M", "1", "bench-resources-test")
    assert show["JobName"] == rec["job_name"] and job.key[:16] in show["JobName"]
    script = Path(rec["sbatch_script"]).read_text()
    assert "#SBATCH --signal=USR1@120" in script and "--gpus" not in script
    assert wait_outcome(b, job.key, 60, logs)[0] == "done"


def test_restarted_backend_follows_queued_job_and_never_resubmits(slurm_env, tmp_path):
    logs: list[str] = []
    runs = tmp_path / "runs"
    first = make_backend(runs, standin_steps, logs)
    job = make_job("restart")
    d = runs / job.key
    d.mkdir(parents=True)
    (d / "spec.json").write_text(json.dumps({"steps": 25, "sleep": 0.2}))
    first.submit(job)
    job_id = read_record(runs, job.key)["slurm_job_id"]
    # a second bench run (the first one was stopped): it finds the job through slurm.json and follows it
    second = make_backend(runs, standin_steps, logs)
    assert second.is_queued(job) and second.in_flight() == {job.key}
    # a record whose id now names another job (a new cluster reuses ids) is not taken for this one
    other = make_job("other")
    (runs / other.key).mkdir()
    (runs / other.key / RECORD).write_text(json.dumps({"slurm_job_id": job_id, "job_name": "bench-train-x"}))
    assert not make_backend(runs, standin_steps, logs).is_queued(other)
    outcome, _ = wait_outcome(second, job.key, 60, logs)
    assert outcome == "done" and (d / "final.json").exists()
    assert (d / "starts.txt").read_text().splitlines() == ["0 0"]  # ran once
    assert not make_backend(runs, standin_steps, logs).is_queued(job)  # ended: a new run may submit it


def test_close_cancels_only_its_own_jobs_and_only_when_asked(slurm_env, tmp_path):
    logs: list[str] = []
    runs = tmp_path / "runs"
    jobs = {name: make_job(name) for name in ("left", "adopted", "cancelled")}
    for job in jobs.values():
        (runs / job.key).mkdir(parents=True)
        (runs / job.key / "spec.json").write_text(json.dumps({"steps": 600, "sleep": 0.1}))

    def state(job: Job) -> str:
        job_id = read_record(runs, job.key)["slurm_job_id"]
        return slurm_env.run("squeue", "-h", "--states=all", "-o", "%T", "-j", job_id).stdout.strip()

    default = make_backend(runs, standin_steps, logs)
    default.submit(jobs["left"])
    default.submit(jobs["adopted"])
    default.close()  # Ctrl-C with the default: the jobs stay queued for the next bench run
    assert state(jobs["left"]) in {"PENDING", "RUNNING"} and state(jobs["adopted"]) in {"PENDING", "RUNNING"}
    cancelling = make_backend(runs, standin_steps, logs, cancel_on_close=True)
    assert cancelling.is_queued(jobs["adopted"])  # followed, but submitted by an earlier run
    cancelling.submit(jobs["cancelled"])
    cancelling.close()
    wait_for(lambda: state(jobs["cancelled"]) == "CANCELLED", 20, "the closing backend's own job to be cancelled")
    assert state(jobs["adopted"]) in {"PENDING", "RUNNING"} and state(jobs["left"]) in {"PENDING", "RUNNING"}
    assert cancelling.in_flight() == {jobs["adopted"].key}
    slurm_env.run("scancel", *(read_record(runs, j.key)["slurm_job_id"] for j in jobs.values()))


# -- the CLI on the cluster -------------------------------------------------------------------------------------


def _evaluate_summaries(runs: Path):
    from support.e2e import evaluate_summaries

    return evaluate_summaries(runs)


def test_slurm_executor_gives_the_local_executors_table(smoke_all, slurm_env, tmp_path):
    """``bench run --table 1 --profile smoke --baseline iat --executor slurm``: five Slurm jobs (IAT's two
    trainings, two evaluations, the render; data and smoke prior reused from the session's local smoke run)
    whose summaries and Table 1 rows equal the local run's exactly (one CPU thread in both, as CPU
    training's last bits depend on the thread count)."""
    import pandas as pd
    from support.e2e import bench, copy_jobs, job_kind_of

    base, proc, _ = smoke_all
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = tmp_path / "runs"
    copy_jobs(base / "runs", runs, {"prepare_data", "train_prior"})
    out = bench(tmp_path, "run", "--table", "1", "--profile", "smoke", "--baseline", "iat", "--no-progress",
                "--executor", "slurm", timeout=1200)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    submitted = [ln for ln in text.splitlines() if ln.startswith("[slurm] ") and "-> Slurm job" in ln]
    assert len(submitted) == 5, text[-3000:]
    ran = [d for d in runs.iterdir() if d.is_dir() and (d / RECORD).is_file()]
    assert sorted(job_kind_of(d) for d in ran) == ["evaluate", "evaluate", "render", "train", "train"]
    for d in ran:  # each ran inside its Slurm job, which took the lease under that id
        rec = json.loads((d / RECORD).read_text())
        assert rec["outcome"] == "done" and f"Slurm job {rec['slurm_job_id']}" in (d / "log.txt").read_text()
    ours = _evaluate_summaries(runs)
    ref = _evaluate_summaries(base / "runs")
    pd.testing.assert_frame_equal(ours, ref[ref["config_hash"].isin(set(ours["config_hash"]))].reset_index(drop=True))
    # IAT's rows without bold (bold marks the best of the rows a table holds; an IAT-only run holds fewer)
    iat = lambda md: [ln.replace("**", "") for ln in md.splitlines() if ln.startswith("| IAT")]  # noqa: E731
    assert iat((tmp_path / "tables" / "table1.md").read_text()) == iat((base / "tables" / "table1.md").read_text())
    assert iat((tmp_path / "tables" / "table1.md").read_text())
