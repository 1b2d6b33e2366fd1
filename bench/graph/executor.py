"""Executors: where the scheduler's jobs run. All of them call ``bench.graph.worker.run_job``.

* ``local``: in this process, one job at a time (progress bars, the debugger, Ctrl-C).
* ``pool``: N worker processes on this machine (spawn start method), one job each at a time;
  ``gpus=[0, 1, ...]`` pins worker i to GPU ``gpus[i % len(gpus)]`` through
  ``CUDA_VISIBLE_DEVICES``, and each worker uses ``threads`` CPU threads.
* ``slurm``: one Slurm job per job, through submitit (``bench.graph.slurm``).

This module imports neither torch nor the job kinds: a spawned worker sets its GPU and thread
environment before anything imports torch.
"""

from __future__ import annotations

import contextlib
import os
import queue
import time
from collections.abc import Callable
from typing import Any

from bench.graph.job import Job, toposort
from bench.graph.scheduler import RunReport, raise_for, run_graph
from bench.graph.store import RunStore

EXECUTORS = ("local", "pool", "slurm")


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


class LocalBackend:
    """Runs each submitted job at once, in this process."""

    capacity = 1

    def __init__(self, store: RunStore, device: str = "auto", progress: Any = None,
                 log: Callable[[str], None] = print):
        self.store, self.device, self.progress, self.log = store, device, progress, log
        self._done: list[tuple[str, str]] = []

    def submit(self, job: Job) -> None:
        from bench.graph.worker import run_job

        self._done.append((job.key, run_job(job.key, self.store.root, self.device, log=self.log,
                                            progress=self.progress, store=self.store)))

    def poll(self, timeout: float) -> list[tuple[str, str]]:
        out, self._done = self._done, []
        if not out and timeout > 0:
            time.sleep(timeout)  # waiting for jobs other workers hold
        return out

    def in_flight(self) -> set[str]:
        return set()

    def close(self) -> None:
        pass


def _pool_worker(index: int, gpu: str | None, threads: int, runs_root: str, device: str, tasks: Any,
                 results: Any) -> None:
    """A pool process: set its GPU and threads before torch loads, then run jobs until told to stop."""
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)
    from bench.graph.worker import run_job

    while True:
        key = tasks.get()
        if key is None:
            return
        try:
            outcome = run_job(key, runs_root, device)
        except OSError as e:  # bench.errors.DiskFull: said once, on this worker's console; the run stops
            print(f"[pool {index}] {e}", flush=True)
            outcome = "nospace"
        except BaseException as e:  # a broken spec or store: report, keep serving
            print(f"[pool {index}] job {key} could not run: {type(e).__name__}: {e}", flush=True)
            outcome = "lost"
        results.put((key, outcome))


class PoolBackend:
    """Up to N spawned worker processes pulling job keys from one queue.

    A worker is started when a job is submitted and fewer than N are running, so a run with nothing
    left to do (a finished reproduction re-checked) starts none: each start pays torch's import.
    """

    def __init__(self, store: RunStore, workers: int, device: str = "auto", gpus: list[str] | None = None,
                 threads: int | None = None):
        import multiprocessing as mp

        if workers < 1:
            from bench.errors import BenchError

            raise BenchError(f"--workers must be at least 1, got {workers}.", fix="For example: --workers 2.")
        self.capacity = workers
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self._ctx = mp.get_context("spawn")
        self._tasks, self._results = self._ctx.Queue(), self._ctx.Queue()
        self._flying: set[str] = set()
        self._procs: list[Any] = []
        self._worker_args = (str(store.root), device)
        self._gpus = gpus

    def _start_worker(self) -> None:
        i = len(self._procs)
        gpu = self._gpus[i % len(self._gpus)] if self._gpus else None
        p = self._ctx.Process(target=_pool_worker, name=f"bench-pool-{i}", daemon=True,
                              args=(i, gpu, self.threads, *self._worker_args, self._tasks, self._results))
        p.start()
        self._procs.append(p)

    def submit(self, job: Job) -> None:
        self._flying.add(job.key)
        if len(self._procs) < min(self.capacity, len(self._flying)):
            self._start_worker()
        self._tasks.put(job.key)

    def poll(self, timeout: float) -> list[tuple[str, str]]:
        out = []
        deadline = time.time() + timeout
        while True:
            try:
                wait = max(0.0, deadline - time.time()) if not out else 0.0
                key, outcome = self._results.get(timeout=wait) if wait > 0 else self._results.get_nowait()
            except queue.Empty:
                break
            self._flying.discard(key)
            out.append((key, outcome))
        if not out and self._flying and not any(p.is_alive() for p in self._procs):
            out = [(k, "lost") for k in sorted(self._flying)]  # every worker died (killed, out of memory)
            self._flying.clear()
        return out

    def in_flight(self) -> set[str]:
        return set(self._flying)

    def close(self) -> None:
        for _ in self._procs:
            with contextlib.suppress(Exception):
                self._tasks.put(None)
        for p in self._procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()


def make_backend(name: str, store: RunStore, device: str = "auto", *, progress: Any = None,
                 log: Callable[[str], None] = print, workers: int = 1, gpus: list[str] | None = None,
                 threads: int | None = None, slurm: dict[str, Any] | None = None) -> Any:
    """The backend called ``name`` (``local``, ``pool`` or ``slurm``)."""
    if name == "local":
        return LocalBackend(store, device, progress, log)
    if name == "pool":
        return PoolBackend(store, workers, device, gpus, threads)
    if name == "slurm":
        from bench.graph.slurm import SlurmBackend

        return SlurmBackend(store, device=device, **(slurm or {}))
    import difflib

    from bench.errors import UnknownNameError

    close = difflib.get_close_matches(name, EXECUTORS, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise UnknownNameError(f"Unknown executor '{name}'.{hint}", fix=f"Choose one of {', '.join(EXECUTORS)}.")


def execute(roots: list[Job], store: RunStore, backend: Any, *, force: bool = False,
            log: Callable[[str], None] = print, on_progress: Callable[[int, int], None] | None = None) -> RunReport:
    """Run the graph on ``backend``, close it, and raise one error listing every failure."""
    try:
        report = run_graph(roots, store, backend, force=force, log=log, on_progress=on_progress,
                           queued=getattr(backend, "is_queued", None),
                           poll_s=0.2 if isinstance(backend, LocalBackend) else 1.0)
    finally:
        backend.close()
    raise_for(report, store)
    return report


class LocalExecutor:
    """Runs pending jobs one after another in this process (the scheduler with a local backend)."""

    def __init__(self, device: str = "cpu", progress: Any = None, log: Callable[[str], None] = print):
        self.device = device
        self.progress = progress
        self.log = log

    def run(self, roots: list[Job], store: RunStore, force: bool = False) -> RunReport:
        return execute(roots, store, LocalBackend(store, self.device, self.progress, self.log), force=force,
                       log=self.log)

