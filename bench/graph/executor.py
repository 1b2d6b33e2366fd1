"""Executors run a job graph. The local one runs pending jobs in order in this process.

The interface is one method, ``run(jobs, store, force)``; a cluster executor (e.g.
submitit on Slurm) implements it by submitting ``run_one`` for each ready job, since
``run_one`` needs nothing but the job, the store and the device.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from bench.errors import BenchError
from bench.graph.job import JOB_KINDS, Job, JobContext, toposort
from bench.graph.store import RunStore


class Executor(Protocol):
    def run(self, roots: list[Job], store: RunStore, force: bool = False) -> list[dict[str, Any]]: ...


def plan(roots: list[Job], store: RunStore) -> list[tuple[Job, str]]:
    """Every job with its status; a job below a pending or stale one is stale too."""
    out: list[tuple[Job, str]] = []
    redo: set[str] = set()
    for job in toposort(roots):
        st = store.status(job)
        if st == "done" and any(dep.key in redo for dep in job.inputs.values()):
            st = "stale"
        if st != "done":
            redo.add(job.key)
        out.append((job, st))
    return out


def run_one(job: Job, store: RunStore, device: str, progress: Any = None,
            log: Callable[[str], None] = print, fresh: bool = False) -> dict[str, Any]:
    """Run a single job whose inputs are done; write ``done.json`` last."""
    fn = JOB_KINDS.get(job.kind)
    if fn is None:
        raise BenchError(f"No runner for job kind '{job.kind}'.")
    for name, dep in job.inputs.items():
        if store.status(dep) != "done":
            raise BenchError(f"Job {job.describe()} needs input '{name}' ({dep.describe()}), which is not done.")
    out_dir = store.prepare(job, fresh=fresh)
    ctx = JobContext(job=job, out_dir=out_dir, input_dirs={n: store.dir(d) for n, d in job.inputs.items()},
                     device=device, progress=progress, log=log)
    t0 = time.perf_counter()
    result = fn(ctx)
    return store.mark_done(job, result, time.perf_counter() - t0)


class LocalExecutor:
    """Runs pending jobs one after another in this process."""

    def __init__(self, device: str = "cpu", progress: Any = None, log: Callable[[str], None] = print):
        self.device = device
        self.progress = progress
        self.log = log

    def run(self, roots: list[Job], store: RunStore, force: bool = False) -> list[dict[str, Any]]:
        store.ensure_writable()
        todo = [(j, st) for j, st in plan(roots, store) if force or st != "done"]
        task = self.progress.add_task("jobs", total=len(todo)) if self.progress and todo else None
        records = []
        for job, st in todo:
            # A forced or stale job starts from scratch; a pending one may resume its own checkpoints.
            fresh = force or st == "stale"
            self.log(f"[job] {job.describe()} ({job.key}): {st} -> running")
            records.append(run_one(job, store, self.device, self.progress, self.log, fresh=fresh))
            if task is not None:
                self.progress.advance(task)
        return records
