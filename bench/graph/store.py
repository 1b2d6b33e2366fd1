"""The run store: ``runs/<key>/`` per job; the folders are the truth every executor acts on.

A job's folder holds ``job.json`` (its spec, written before it is dispatched, so any worker can
rebuild it from the key alone), a lease while someone runs it (``bench.graph.lease``), its
outputs, ``log.txt``, ``error.json`` after a failure and, last of all, ``done.json``. ``done.json``
records the run id of every input the job consumed and a checksum of every output file; a job is
done only when ``done.json`` parses and every output still matches it, so a truncated or edited
output is reported and redone instead of being used. A job whose input was re-run since is stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import socket
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.faults import fault_point
from bench.graph import lease as leases
from bench.graph.job import Job
from bench.hashing import canonical
from bench.io import write_json

SPEC, DONE, ERROR, LOG = "job.json", "done.json", "error.json", "log.txt"
#: Bookkeeping files and folders that are not outputs (never checksummed, kept by ``clear``).
_BOOKKEEPING = {SPEC, DONE, ERROR, LOG, leases.LEASE, "slurm.json"}
#: Written while a job runs and read only to resume it: not outputs either.
_SCRATCH_PREFIXES = ("checkpoint", "heartbeat-", "breaking-", "done.corrupt", ".")
_SCRATCH_DIRS = {"tensorboard"}
#: Files above this size get a fast checksum (size + SHA-256 of three 4 MiB windows).
FULL_HASH_LIMIT = 64 << 20
_WINDOW = 4 << 20
_verified: dict[tuple[str, int, int], str] = {}


def file_checksum(path: Path) -> str:
    """``sha256:<hex>`` of the whole file, or ``fast:<hex>`` of its size and three windows when large."""
    st = path.stat()
    memo = (str(path), st.st_size, st.st_mtime_ns)
    if memo in _verified:
        return _verified[memo]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if st.st_size <= FULL_HASH_LIMIT:
            while block := f.read(1 << 20):
                h.update(block)
            digest = "sha256:" + h.hexdigest()
        else:
            h.update(str(st.st_size).encode())
            for offset in (0, st.st_size // 2, st.st_size - _WINDOW):
                f.seek(offset)
                h.update(f.read(_WINDOW))
            digest = "fast:" + h.hexdigest()
    _verified[memo] = digest
    return digest


def output_files(job_dir: Path) -> list[Path]:
    """Every output file of a job folder (bookkeeping, checkpoints and temporary files excluded)."""
    out = []
    for p in sorted(job_dir.rglob("*")):
        rel = p.relative_to(job_dir)
        if not p.is_file() or rel.parts[0] in _SCRATCH_DIRS:
            continue
        if len(rel.parts) == 1 and (rel.name in _BOOKKEEPING or rel.name.startswith(_SCRATCH_PREFIXES)):
            continue
        if rel.name.startswith(".") or rel.name.endswith(".tmp"):
            continue
        out.append(p)
    return out


@dataclass
class JobStatus:
    """What the store knows of one job: what ``bench status`` prints and executors act on."""

    status: str  # done | stale | running | failed | pending
    lease: leases.LeaseState | None = None
    error: str = ""  # first line of error.json's message
    problem: str = ""  # why a done.json is not trusted (corrupt, outputs changed)
    record: dict[str, Any] | None = None


class RunStore:
    def __init__(self, root: Path):
        from bench.io import name_location

        self.root = Path(root)
        self._specs: dict[str, Job] = {}
        name_location(self.root, "job outputs", "--runs-dir (or BENCH_RUNS)")

    # -- locations --------------------------------------------------------------------------
    def ensure_writable(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise BenchError(f"Output directory {self.root} is a file, not a folder.",
                             fix="Choose another with --runs-dir or BENCH_RUNS.")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise BenchError(
                f"Output directory {self.root} is not writable ({e.strerror or e}).",
                fix="Choose another with --runs-dir or BENCH_RUNS, or fix its permissions.",
            ) from None

    def dir(self, job: Job | str) -> Path:
        return self.root / (job if isinstance(job, str) else job.key)

    def artifact(self, job: Job, name: str) -> Path:
        """Where ``job`` keeps its declared output ``name`` (``bench.graph.job.Artifact``)."""
        from bench.graph.job import artifact_of

        return self.dir(job) / artifact_of(job.kind, name).path.rstrip("/")

    # -- specs --------------------------------------------------------------------------------
    def write_spec(self, job: Job) -> None:
        """``job.json``: enough to rebuild the job from its key (inputs by key, paths in ``params``)."""
        spec = {"kind": job.kind, "key": job.key, "label": job.label, "config": canonical(job.config),
                "params": canonical(job.params), "inputs": {n: dep.key for n, dep in job.inputs.items()}}
        path = self.dir(job) / SPEC
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()) == json.loads(json.dumps(spec, default=str)):
                return
        write_json(path, spec)

    def load_job(self, key: str) -> Job:
        """The job whose spec is ``runs/<key>/job.json``, with its inputs (their specs must be there too)."""
        if key in self._specs:
            return self._specs[key]
        path = self.dir(key) / SPEC
        try:
            spec = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise BenchError(f"Job {key} has no readable spec at {path} ({e}).",
                             fix="Run 'bench run' for the table that needs it: it writes every job's spec.") from None
        inputs = {name: self.load_job(dep) for name, dep in spec["inputs"].items()}
        job = Job(spec["kind"], spec["config"], inputs, spec.get("label", ""), spec.get("params", {}))
        if job.key != key:
            raise BenchError(f"The spec in {path} hashes to {job.key}, not to its folder's name {key}.",
                             fix="The folder was edited or written by another version of bench; remove it.")
        self._specs[key] = job
        return job

    # -- status -------------------------------------------------------------------------------
    def done_record(self, job: Job) -> dict[str, Any] | None:
        """``done.json`` if it parses and every output it lists is intact, else None."""
        return self._check_done(job)[0]

    def _check_done(self, job: Job) -> tuple[dict[str, Any] | None, str]:
        p = self.dir(job) / DONE
        if not p.exists():
            return None, ""
        try:
            rec = json.loads(p.read_text())
            outputs = rec["outputs"]
        except (OSError, ValueError, KeyError, TypeError):
            return None, f"{p} is unreadable"
        for rel, want in outputs.items():
            f = self.dir(job) / rel
            try:
                got = file_checksum(f)
            except OSError:
                return None, f"output {rel} is missing"
            if got != want:
                return None, f"output {rel} changed since the job finished"
        return rec, ""

    def inspect(self, job: Job) -> JobStatus:
        """The job's status with its details (lease, error line, why done.json is not trusted)."""
        rec, problem = self._check_done(job)
        if rec is not None:
            for name, dep in job.inputs.items():
                dep_rec = self.done_record(dep)
                if dep_rec is None or dep_rec.get("run_id") != rec.get("input_run_ids", {}).get(name):
                    return JobStatus("stale", record=rec)
            return JobStatus("done", record=rec)
        state = leases.read(self.dir(job))
        if state is not None and state.dead() is None:
            return JobStatus("running", lease=state, problem=problem)
        err = self.error(job)
        if err is not None:
            return JobStatus("failed", error=str(err.get("message", "")).splitlines()[0] if err.get("message")
                             else err.get("type", "error"), problem=problem)
        return JobStatus("pending", problem=problem)

    def status(self, job: Job) -> str:
        """'done', 'stale' (done, but an input was re-run since), 'running', 'failed' or 'pending'."""
        return self.inspect(job).status

    def error(self, job: Job) -> dict[str, Any] | None:
        try:
            return json.loads((self.dir(job) / ERROR).read_text())
        except (OSError, ValueError):
            return None

    # -- claiming and writing -----------------------------------------------------------------
    def claim(self, job: Job, log: Any = None) -> leases.Lease | None:
        return leases.claim(self.dir(job), log=log)

    def clear(self, job: Job) -> None:
        """Remove a job's outputs and scratch (a forced or stale rerun starts from nothing); keep the spec.

        Only the lease holder calls this, so no folder another worker holds is ever emptied.
        """
        d = self.dir(job)
        keep = {SPEC, leases.LEASE}
        for p in list(d.iterdir()) if d.is_dir() else []:
            if p.name in keep or p.name.startswith(("heartbeat-", "breaking-")):
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()

    def prepare(self, job: Job, fresh: bool) -> Path:
        """The job's folder, emptied first when ``fresh``; its spec written."""
        d = self.dir(job)
        d.mkdir(parents=True, exist_ok=True)
        if fresh:
            self.clear(job)
        self.write_spec(job)
        return d

    def mark_done(self, job: Job, result: dict[str, Any], wall_time_s: float) -> dict[str, Any]:
        d = self.dir(job)
        outputs = {str(p.relative_to(d)): file_checksum(p) for p in output_files(d)}
        rec = {
            "key": job.key,
            "kind": job.kind,
            "label": job.label,
            "run_id": uuid.uuid4().hex,
            "input_run_ids": {n: (self.done_record(dep) or {}).get("run_id") for n, dep in job.inputs.items()},
            "wall_time_s": round(wall_time_s, 3),
            "finished": time.time(),
            "host": socket.gethostname(),
            "outputs": outputs,
            "result": result,
        }
        fault_point("before_done")
        with contextlib.suppress(FileNotFoundError):
            (d / ERROR).unlink()
        write_json(d / DONE, rec)
        return rec

    def drop_resume_state(self, job: Job) -> int:
        """Delete a finished job's resume checkpoints (``checkpoint*.pt``: model, optimiser and generators,
        never outputs); they were two thirds of a smoke run's disk. Returns the bytes freed."""
        freed = 0
        for p in self.dir(job).glob("checkpoint*.pt"):
            with contextlib.suppress(OSError):
                size = p.stat().st_size
                p.unlink()
                freed += size
        return freed

    def mark_failed(self, job: Job, exc: BaseException, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """``error.json``: what failed, where and when (``bench status`` shows its first line)."""
        rec = {
            "key": job.key,
            "kind": job.kind,
            "label": job.label,
            "type": type(exc).__name__,
            "message": getattr(exc, "message", None) or str(exc) or type(exc).__name__,
            "fix": getattr(exc, "fix", None),
            "traceback": "".join(traceback.format_exception(exc)),
            "host": socket.gethostname(),
            "time": time.time(),
            **(extra or {}),
        }
        write_json(self.dir(job) / ERROR, rec)
        return rec

    def set_aside_done(self, job: Job) -> None:
        """Keep an untrusted ``done.json`` for inspection (``done.corrupt-<time>.json``) so it is not used."""
        p = self.dir(job) / DONE
        with contextlib.suppress(FileNotFoundError):
            p.rename(p.with_name(f"done.corrupt-{int(time.time())}.json"))

    def invalidate(self, job: Job) -> None:
        p = self.dir(job) / DONE
        if p.exists():
            p.unlink()
