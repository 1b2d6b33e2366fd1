"""Leases: which worker runs a job now, safe on one machine and on a shared (NFS) file system.

Only primitives that hold on NFS are used: exclusive create (``O_CREAT | O_EXCL``), rename and
unlink; no advisory locks. In ``runs/<key>/``:

* ``lease.json``: created exclusively by the holder (host, boot id, pid, process start time,
  Slurm job id, start time, a random token). Whoever creates it holds the job.
* ``heartbeat-<token>.json``: the holder's own file, rewritten every ``heartbeat_s`` seconds
  (time, step, steps); nobody else writes it, so a heartbeat can never clobber another lease.
* ``breaking-<token>``: created exclusively by the one worker allowed to break a dead lease,
  so two workers that both found it dead cannot both take it over.

A lease is dead when its holder ran on this host (same host name and boot id) and its process
is gone (or the pid now belongs to a process started later), or when its heartbeat is older than
the timeout (default 10 minutes, ``BENCH_LEASE_TIMEOUT``) on any host. A holder that finds its
lease taken over (a stalled process, a broken network) stops at its next check.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LEASE = "lease.json"
HEARTBEAT_S = float(os.environ.get("BENCH_HEARTBEAT_S", "30"))
DEFAULT_TIMEOUT_S = 600.0


def lease_timeout() -> float:
    """Seconds without a heartbeat after which another host's lease counts as dead."""
    return float(os.environ.get("BENCH_LEASE_TIMEOUT", DEFAULT_TIMEOUT_S))


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _alive(pid: int, ticks: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    now = _start_ticks(pid)
    return ticks is None or now is None or now == ticks


@dataclass
class Holder:
    """Who holds a lease; read back from ``lease.json``."""

    host: str
    boot_id: str
    pid: int
    pid_start: int | None
    token: str
    started: float
    slurm_job_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def me(cls) -> Holder:
        pid = os.getpid()
        slurm = os.environ.get("SLURM_JOB_ID", "")
        if slurm and os.environ.get("SLURM_ARRAY_TASK_ID"):
            slurm = f"{os.environ.get('SLURM_ARRAY_JOB_ID', slurm)}_{os.environ['SLURM_ARRAY_TASK_ID']}"
        return cls(socket.gethostname(), _boot_id(), pid, _start_ticks(pid), uuid.uuid4().hex, time.time(), slurm)

    @property
    def where(self) -> str:
        slurm = f", Slurm job {self.slurm_job_id}" if self.slurm_job_id else ""
        return f"{self.host} pid {self.pid}{slurm}"


@dataclass
class LeaseState:
    """A lease as another process sees it."""

    holder: Holder
    heartbeat: float  # seconds since the epoch of the last heartbeat (or the start)
    step: int | None = None
    steps: int | None = None

    def dead(self, timeout: float | None = None) -> str | None:
        """Why this lease is dead, or None while its holder is alive."""
        h = self.holder
        if h.host == socket.gethostname() and h.boot_id == _boot_id() and not _alive(h.pid, h.pid_start):
            return f"process {h.pid} on {h.host} is gone"
        age = time.time() - self.heartbeat
        limit = lease_timeout() if timeout is None else timeout
        if age > limit:
            return f"no heartbeat from {h.where} for {age:.0f} s (limit {limit:.0f} s)"
        return None


def read(job_dir: Path) -> LeaseState | None:
    """The current lease of ``job_dir`` (None when nobody holds it or the file is half-gone)."""
    try:
        raw = json.loads((job_dir / LEASE).read_text())
        holder = Holder(**raw)
    except (OSError, ValueError, TypeError):
        return None
    beat = holder.started
    info: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        info = json.loads((job_dir / f"heartbeat-{holder.token}.json").read_text())
        beat = max(beat, float(info.get("time", beat)))
    return LeaseState(holder, beat, info.get("step"), info.get("steps"))


def _write_exclusive(path: Path, data: bytes) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, data)
        os.fsync(fd)
    except OSError as e:  # a full disk: leave no empty lease behind
        os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()
        from bench.io import disk_full, is_disk_full

        if is_disk_full(e):
            raise disk_full(path) from None
        raise
    else:
        os.close(fd)
    return True


class Lease:
    """A held lease: a heartbeat thread keeps it alive until :meth:`release`."""

    def __init__(self, job_dir: Path, holder: Holder, heartbeat_s: float = HEARTBEAT_S):
        self.job_dir = job_dir
        self.holder = holder
        self.heartbeat_s = heartbeat_s
        self.progress: dict[str, Any] = {}
        self.lost: str | None = None
        self.broke: str | None = None  # why the lease this one replaced was dead (an interrupted run)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def heartbeat_file(self) -> Path:
        return self.job_dir / f"heartbeat-{self.holder.token}.json"

    def beat(self) -> None:
        """Write the heartbeat now; notice (and remember) a lease taken over by someone else."""
        current = read(self.job_dir)
        if current is None or current.holder.token != self.holder.token:
            self.lost = "the lease was taken over by another worker" if current else "the lease file disappeared"
            return
        tmp = self.heartbeat_file.with_name(f".{self.heartbeat_file.name}.{os.getpid()}.tmp")
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps({"time": time.time(), **self.progress}))
            os.replace(tmp, self.heartbeat_file)

    def report(self, **progress: Any) -> None:
        """Progress shown by ``bench status`` (e.g. step=, steps=); written with the next heartbeat."""
        self.progress.update(progress)

    def start(self) -> Lease:
        self.beat()

        def loop() -> None:
            while not self._stop.wait(self.heartbeat_s):
                self.beat()

        self._thread = threading.Thread(target=loop, name=f"heartbeat-{self.job_dir.name}", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        """Stop the heartbeat and give the job up (only if the lease is still ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        current = read(self.job_dir)
        if current is not None and current.holder.token == self.holder.token:
            with contextlib.suppress(FileNotFoundError):
                (self.job_dir / LEASE).unlink()
        for f in (self.heartbeat_file, self.job_dir / f"breaking-{self.holder.token}"):
            with contextlib.suppress(FileNotFoundError):
                f.unlink()


def claim(job_dir: Path, heartbeat_s: float = HEARTBEAT_S, log: Any = None) -> Lease | None:
    """Take the job's lease (breaking a dead one), start its heartbeat; None if a live worker holds it."""
    job_dir.mkdir(parents=True, exist_ok=True)
    holder = Holder.me()
    data = json.dumps(asdict(holder)).encode()
    broke = None
    for _ in range(3):
        if _write_exclusive(job_dir / LEASE, data):
            _tidy(job_dir, holder.token)
            lease = Lease(job_dir, holder, heartbeat_s)
            lease.broke = broke
            return lease.start()
        state = read(job_dir)
        if state is None:  # released or broken between our attempt and the read: try again
            time.sleep(0.05)
            continue
        why = state.dead()
        if why is None:
            return None
        if not _break(job_dir, state):
            return None  # another worker is breaking it
        broke = why
        if log is not None:
            log(f"[lease] broke the lease of {state.holder.where}: {why}")
    return None


def _break(job_dir: Path, state: LeaseState) -> bool:
    """Remove a dead lease; exactly one of several workers that found it dead succeeds."""
    token = state.holder.token
    if not _write_exclusive(job_dir / f"breaking-{token}", b""):
        return False
    current = read(job_dir)
    if current is None or current.holder.token != token:
        return current is None
    with contextlib.suppress(FileNotFoundError):
        (job_dir / LEASE).unlink()
    return True


def _tidy(job_dir: Path, keep: str) -> None:
    """Remove heartbeat and breaking files of former holders (their leases are gone)."""
    for f in list(job_dir.glob("heartbeat-*.json")) + list(job_dir.glob("breaking-*")):
        if keep not in f.name:
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
