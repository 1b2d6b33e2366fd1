"""Follow a job graph to its end on any backend, with the run store as the only truth.

The loop re-reads every job's status before each decision, so several ``bench run`` processes
(on one machine or many, sharing one runs folder) cooperate: a job that another worker holds is
waited for, a dead holder's job is taken over (the worker breaks its lease and resumes), and a
finished job is never run again. A failure stops only the jobs that need its output; the run
ends with every failure listed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bench import preempt
from bench.errors import BenchError, JobsFailed
from bench.graph.job import Job, toposort
from bench.graph.store import RunStore


class Backend(Protocol):
    """Where jobs run: this process, a pool of processes, or Slurm (see ``bench.graph.executor``)."""

    capacity: int

    def submit(self, job: Job) -> None: ...

    def poll(self, timeout: float) -> list[tuple[str, str]]: ...

    def in_flight(self) -> set[str]: ...

    def close(self) -> None: ...


@dataclass
class RunReport:
    """What happened to every job of the graph in this run."""

    done: list[str] = field(default_factory=list)  # keys done at the end (by anyone)
    ran: list[str] = field(default_factory=list)  # keys this run's backend finished
    failed: dict[str, str] = field(default_factory=dict)  # key -> first line of its error
    blocked: dict[str, str] = field(default_factory=dict)  # key -> which input failed
    preempted: list[str] = field(default_factory=list)
    nospace: list[str] = field(default_factory=list)  # keys whose worker stopped on a full disk (resumable)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.blocked or self.preempted)

    def failure_lines(self) -> list[str]:
        lines = [f"{self.labels.get(k, k)} ({k}): {msg.rstrip('.')}" for k, msg in self.failed.items()]
        lines += [f"{self.labels.get(k, k)} ({k}): not run, {msg}" for k, msg in self.blocked.items()]
        return lines


def force_reset(jobs: list[Job], store: RunStore, log: Callable[[str], None]) -> None:
    """``--force``: empty every job's folder, refusing (before touching any) when a live worker holds one."""
    held = [(j, s) for j in jobs if (s := store.inspect(j)).status == "running"]
    if held:
        where = "; ".join(f"{j.describe()} on {s.lease.holder.where}" for j, s in held[:3] if s.lease)
        raise BenchError(f"--force would redo {len(held)} job(s) that another worker is running now ({where}).",
                         fix="Wait for them (bench status shows them), stop their workers, or drop --force.")
    for j in jobs:
        lease = store.claim(j, log=log)
        if lease is None:
            raise BenchError(f"Job {j.describe()} was claimed by another worker while --force reset the graph.",
                             fix="Rerun without --force once it has finished.")
        try:
            store.clear(j)
        finally:
            lease.release()


def run_graph(roots: list[Job], store: RunStore, backend: Backend, *, force: bool = False,
              log: Callable[[str], None] = print, on_progress: Callable[[int, int], None] | None = None,
              poll_s: float = 1.0, queued: Callable[[Job], bool] | None = None) -> RunReport:
    """Run every job of ``roots``' graph that is not done; return what happened (never raises for a job).

    ``queued(job)`` tells whether the backend has the job waiting in an external queue already
    (a Slurm job submitted by an earlier ``bench run``), so it is not submitted twice.
    """
    store.ensure_writable()
    jobs = toposort(roots)
    for j in jobs:
        store.write_spec(j)
    if force:
        force_reset(jobs, store, log)
    report = RunReport(labels={j.key: j.describe() for j in jobs})
    tried: set[str] = set()  # keys this run submitted (a job is tried at most once per run)
    total = len(jobs)
    while True:
        _reap(backend, store, report, jobs, timeout=0.0)
        if preempt.requested() and not backend.in_flight():
            report.preempted.append("scheduler")
            break
        if report.nospace and not backend.in_flight():
            break  # a full disk: every other job would fail the same way
        status = {j.key: store.inspect(j) for j in jobs}
        done = [k for k, s in status.items() if s.status == "done"]
        if on_progress is not None:
            on_progress(len(done), total)
        waiting = False
        for j in jobs:
            k, st = j.key, status[j.key]
            if st.status == "done" or k in report.failed or k in report.blocked:
                continue
            if k in backend.in_flight() or st.status == "running" or (queued is not None and queued(j)):
                waiting = True
                continue
            bad = [d for d in j.inputs.values() if d.key in report.failed or d.key in report.blocked]
            if bad:
                report.blocked[k] = f"its input {bad[0].describe()} failed"
                continue
            if any(status[d.key].status != "done" for d in j.inputs.values()):
                waiting = True  # an input is pending, running elsewhere, or about to be submitted
                continue
            if k in tried:
                continue  # tried in this run: its outcome (done, failed, preempted) was recorded
            if preempt.requested() or report.nospace:
                continue
            if len(backend.in_flight()) >= backend.capacity:
                waiting = True
                continue
            tried.add(k)
            backend.submit(j)
            waiting = True
        if not waiting and not backend.in_flight():
            break
        _reap(backend, store, report, jobs, timeout=poll_s)
    report.done = [j.key for j in jobs if store.status(j) == "done"]
    return report


def _reap(backend: Backend, store: RunStore, report: RunReport, jobs: list[Job], timeout: float) -> bool:
    """Record the outcomes the backend reports; True if there were any."""
    by_key = {j.key: j for j in jobs}
    outcomes = backend.poll(timeout)
    for key, outcome in outcomes:
        job = by_key.get(key)
        if outcome == "done":
            report.ran.append(key)
        elif outcome == "failed" and job is not None:
            err = store.error(job) or {}
            report.failed[key] = str(err.get("message", "failed")).splitlines()[0]
        elif outcome == "lost" and job is not None:
            report.failed[key] = "its worker ended without an outcome (killed, cancelled or lost)"
        elif outcome == "preempted":
            report.preempted.append(key)
        elif outcome == "nospace":
            report.nospace.append(key)
    return bool(outcomes)


def raise_for(report: RunReport, store: RunStore | None = None) -> None:
    """Turn failures into one error (exit 1) that lists every failed job; a full disk into its own sentence."""
    if report.nospace:  # a pool worker said which file on its console; here: which job, how much is free
        from bench.io import disk_full

        label = report.labels.get(report.nospace[0], report.nospace[0])
        err = disk_full((store.root if store is not None else Path.cwd()) / report.nospace[0] / "log.txt")
        free = err.message.split(" failed with ", 1)[1]
        raise type(err)(f"Job {label} stopped because the disk is full ({free.rstrip('.')}).", fix=err.fix)
    if report.preempted and not report.failed:
        raise preempt.Preempted("The run was stopped on a signal after checkpointing its jobs.")
    if report.failed or report.blocked:
        lines = report.failure_lines()
        raise JobsFailed(f"{len(report.failed)} job(s) failed and {len(report.blocked)} could not run: "
                         + "; ".join(lines[:8]) + (f"; and {len(lines) - 8} more" if len(lines) > 8 else ""),
                         fix="Each failed job's error.json and log.txt (runs/<key>/) say why; fix it and rerun "
                             "the same command: finished jobs are kept.")

