"""The one entry point every executor runs: ``run_job(key, runs_root, device)``.

It needs nothing but the key and the runs folder (the job's spec is in ``runs/<key>/job.json``),
imports the job kinds itself and hands back a plain string, so it pickles into a process pool or
a Slurm job unchanged. It claims the job's lease first (nobody else runs it meanwhile), logs to
``runs/<key>/log.txt``, writes ``done.json`` or ``error.json`` and releases the lease.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import faults, preempt
from bench.graph.job import JobContext, job_kinds
from bench.graph.store import LOG, RunStore

#: What ``run_job`` returns.
OUTCOMES = ("done", "held", "blocked", "failed", "preempted")


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _console(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _job_log(job_dir: Path, echo: Callable[[str], None]) -> Iterator[Callable[[str], None]]:
    """A log function writing to ``log.txt`` (appended, so a resumed job's history stays) and ``echo``."""
    job_dir.mkdir(parents=True, exist_ok=True)
    with open(job_dir / LOG, "a", encoding="utf-8") as f:
        def log(msg: str) -> None:
            with contextlib.suppress(OSError):  # a full disk loses a log line; the next result write reports it
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")
                f.flush()
            echo(msg)

        yield log


def tidy_interrupted(store: RunStore, job: Any, log: Callable[[str], None], broke: str | None = None) -> None:
    """Remove what a killed run of ``job`` left half-written and say what it left that this run resumes from.

    Only the lease holder calls this, so every temporary file in the job's folder is a dead
    writer's; the smoke data a ``prepare_data`` job writes into the cache is tidied the same way.
    """
    from bench.graph.store import output_files
    from bench.io import remove_stale_temps

    d = store.dir(job)
    removed = remove_stale_temps(d, recursive=True, any_owner=True)
    if job.kind == "prepare_data" and job.config.get("source") == "smoke":
        from bench.paths import cache_dir

        removed += remove_stale_temps(cache_dir() / "smoke-data" / job.key, recursive=True, any_owner=True)
    kept = [p.name for p in sorted(d.glob("checkpoint*.pt"))]
    outputs = output_files(d)
    if not (removed or kept or outputs or broke):
        return
    parts = [f"its last holder died ({broke})"] if broke else []
    if removed:
        names = ", ".join(p.name for p in removed[:3]) + (f" and {len(removed) - 3} more" if len(removed) > 3 else "")
        parts.append(f"removed {len(removed)} temporary file(s) a killed writer left ({names})")
    if kept:
        parts.append(f"kept its checkpoint(s) {', '.join(kept)} to resume from")
    if outputs:
        parts.append(f"found {len(outputs)} output file(s) of an unfinished run (rewritten or kept as the job "
                     "resumes)")
    log(f"[job] {job.describe()}: resuming an interrupted run: " + "; ".join(parts))


@contextlib.contextmanager
def _preemptible() -> Iterator[None]:
    """SIGTERM / SIGUSR1 set the preemption flag while the job runs (main thread only); restored after."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.getsignal(s) for s in preempt.PREEMPT_SIGNALS}
    preempt.install()
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def describe_failure(exc: BaseException, job_label: str) -> tuple[str, str | None]:
    """(one sentence, fix) for an exception a job raised: CUDA out-of-memory gets its own advice."""
    from bench.errors import BenchError

    if type(exc).__name__ == "OutOfMemoryError":
        return (f"Job {job_label} ran out of GPU memory ({str(exc).splitlines()[0][:160]}).",
                "Lower its memory with --prior-checkpointing, --precision bf16 or a smaller --batch, or give it a "
                "larger GPU (bench run --check prints each job's estimated peak memory).")
    if isinstance(exc, BenchError):
        return exc.message, exc.fix
    first = (str(exc).splitlines() or [""])[0]
    return f"Job {job_label} failed: {type(exc).__name__}: {first}", None


def run_job(key: str, runs_root: str | Path, device: str = "auto", *, log: Callable[[str], None] | None = None,
            progress: Any = None, store: RunStore | None = None) -> str:
    """Run the job ``key`` of the run store at ``runs_root`` unless it is done or held; return the outcome.

    ``log`` and ``progress`` are for the in-process executor (console and progress bars); workers of
    other executors log to the console (their stderr) and ``log.txt`` only. A write that finds the disk
    full raises :class:`bench.errors.DiskFull` (nothing is recorded: the job is neither done nor failed,
    and the next run resumes it from what it kept, e.g. its checkpoint).
    """
    from bench.errors import BenchError, DiskFull
    from bench.io import disk_full, is_disk_full

    store = store or RunStore(Path(runs_root))
    echo = log or _console
    job = store.load_job(key)
    before = store.status(job)
    if before == "done":
        return "done"
    if any(store.status(dep) != "done" for dep in job.inputs.values()):
        return "blocked"
    lease = store.claim(job, log=echo)
    if lease is None:
        return "held"
    kind = job_kinds().get(job.kind)
    try:
        info = store.inspect(job)  # re-read under the lease: someone may have finished it meanwhile
        if info.status == "done":
            return "done"
        if info.status == "running":  # our own lease: report what the job was before we took it
            info.status = before if before != "running" else "pending"
        with _job_log(store.dir(job), echo) as jlog:
            if info.problem:
                jlog(f"[job] {job.describe()}: {info.problem}; running it again")
                store.set_aside_done(job)
            fresh = info.status == "stale"
            out_dir = store.prepare(job, fresh=fresh)
            jlog(f"[job] {job.describe()} ({job.key}): {info.status} -> running on {lease.holder.where}")
            if not fresh:
                tidy_interrupted(store, job, jlog, lease.broke)
            if kind is None:
                raise BenchError(f"No runner for job kind '{job.kind}'.",
                                 fix="Install the bench version that wrote this run, or remove the job's folder.")
            dev = resolve_device(device)
            results = {n: (store.done_record(d) or {}).get("result", {}) for n, d in job.inputs.items()}
            ctx = JobContext(job=job, out_dir=out_dir, input_dirs={n: store.dir(d) for n, d in job.inputs.items()},
                             device=dev, progress=progress, log=jlog, lease=lease, input_results=results)
            t0 = time.perf_counter()
            try:
                with _preemptible(), faults.scope(job.kind):
                    faults.fault_point("start")
                    result = kind.run(ctx)
                    if lease.lost:
                        raise BenchError(f"Job {job.describe()} lost its lease ({lease.lost}); its result is "
                                         "discarded.", fix="Check that no other worker runs it, then rerun.")
                    store.mark_done(job, result, time.perf_counter() - t0)
                    if freed := store.drop_resume_state(job):
                        jlog(f"[job] {job.describe()}: done; its resume checkpoints removed ({freed / 2**20:.0f} MiB)")
            except preempt.Preempted as e:
                jlog(f"[job] {job.describe()}: {e.message} Run again to resume.")
                return "preempted"
            except Exception as e:  # every failure is recorded, whatever raised it
                if is_disk_full(e):  # not the job's fault: nothing is recorded, the rerun resumes it
                    full = e if isinstance(e, DiskFull) else disk_full(Path(getattr(e, "filename", "") or out_dir))
                    jlog(f"[job] {job.describe()} stopped: {full.message} Its folder is kept for resuming.")
                    raise full from None
                message, fix = describe_failure(e, job.describe())
                try:
                    store.mark_failed(job, e, {"message": message, "fix": fix, "device": dev, "pid": os.getpid()})
                except DiskFull:
                    jlog(f"[job] {job.describe()} FAILED: {message}; its error.json could not be written")
                    raise
                jlog(f"[job] {job.describe()} FAILED: {message}" + (f" Fix: {fix}" if fix else ""))
                return "failed"
            jlog(f"[job] {job.describe()}: done in {time.perf_counter() - t0:.1f}s")
            return "done"
    finally:
        lease.release()
