"""The Slurm backend: each job is one sbatch job (through submitit) running the worker entry point.

Jobs are submitted one by one as their inputs finish (an array would wait for its slowest input), each
with resources from its kind (:data:`RESOURCES`) unless the user's options say otherwise. The run store
stays the truth: ``runs/<key>/slurm.json`` records the Slurm job id of every submission, so a restarted
``bench run`` asks Slurm about that id (:meth:`SlurmBackend.is_queued`) instead of submitting twice, and
follows the job to its end.

Preemption and time limits: sbatch gets ``--signal=USR1@<delay>``, so Slurm warns a job before its time
limit. The job's process routes SIGUSR1 (and submitit's own signal) to ``bench.preempt``'s flag
instead of submitit's handler, which would checkpoint from inside the handler and exit at once; the
training loop checkpoints at its next step boundary, the worker returns "preempted", and
:class:`SlurmEntry` requeues the Slurm job (``scontrol requeue``) and exits without a result, so the
requeued job calls the worker again and resumes from the checkpoint. SIGTERM is Slurm ending the job
(scancel, the time limit itself, preemption): the job checkpoints and stops without requeueing itself and
without a result, so the backend follows Slurm: a job Slurm requeues (preemption) stays in flight, one it
ends is reported "lost" (its checkpoint is on disk; running it again resumes it).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.io import write_json

#: What the submitted job runs: ``fn(key, runs_root, device) -> outcome``.
WORKER = "bench.graph.worker:run_job"
#: Where submitit keeps its sbatch scripts, pickles and logs, under the runs folder.
SUBMITIT_DIR = ".submitit"
#: The per-job record of submissions, in ``runs/<key>/``.
RECORD = "slurm.json"


# -- resources -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Resources:
    """What one job asks Slurm for."""

    gpus: int
    cpus: int
    mem_gb: float
    time_min: int


#: Default requests by job kind, for the paper profile ("full") and the smoke and truncated ones ("small").
#: Estimates, to be refined with measurements on a GPU cluster. Sources (REPRODUCE.md, "Measured speed"):
#: - train, full: 36-41 TFLOP per DiffLoss step x 40,000 steps at an assumed 100 TFLOP/s = 4.0-4.5 GPU-hours
#:   (arithmetic, not measured); 12 h leaves a 2.5x margin, and a job that hits the limit checkpoints on the
#:   USR1 warning and is requeued, so the limit costs a restart, not the run. Host memory: the 256x256
#:   prior (2.2 GB of fp32 weights) plus data loading, 32 GB.
#: - train_prior: only the smoke profile trains a prior (500 steps at batch 8 in 172 s on 2 CPU cores); its
#:   jobs (like prepare_data's) carry no profile in their config, so they are sized modestly in both tables.
#: - evaluate: FID/LPIPS/PSNR over a test set; full-size test sets on a GPU, estimated under 1 h.
#: - restore_cub / classify / finetune_classifier (Table 2, Figure 7): 200 CUB test images restored at 227 px
#:   took 1,054 s on 2 loaded CPU cores (measured once); classifiers are VGG16/ResNet50 fine-tunes.
#: - prepare_data / prepare_cub / degrade_cub / render: CPU work on files (decoding, fingerprints, synthetic
#:   degradations), seconds to minutes.
#: - small: the whole smoke Table 1 is 664 s of jobs on 2 CPU cores (prior 106 s, 12 trainings, 12
#:   evaluations), peak RSS of a DiffLoss smoke step 160 MiB above torch's own; the smoke networks are small
#:   enough that one thread per job, several jobs at once, uses cores best: 1 core, 4 GB, 1 h each.
RESOURCES: dict[str, dict[str, Resources]] = {
    "full": {
        "prepare_data": Resources(gpus=0, cpus=2, mem_gb=8, time_min=120),
        "train_prior": Resources(gpus=1, cpus=2, mem_gb=8, time_min=60),
        "train": Resources(gpus=1, cpus=8, mem_gb=32, time_min=720),
        "evaluate": Resources(gpus=1, cpus=8, mem_gb=32, time_min=120),
        "render": Resources(gpus=0, cpus=1, mem_gb=4, time_min=30),
        "prepare_cub": Resources(gpus=0, cpus=4, mem_gb=16, time_min=120),
        "degrade_cub": Resources(gpus=0, cpus=4, mem_gb=16, time_min=120),
        "restore_cub": Resources(gpus=1, cpus=8, mem_gb=32, time_min=240),
        "finetune_classifier": Resources(gpus=1, cpus=8, mem_gb=32, time_min=240),
        "classify": Resources(gpus=1, cpus=8, mem_gb=32, time_min=60),
    },
    "small": {
        "render": Resources(gpus=0, cpus=1, mem_gb=2, time_min=30),
    },
}
#: A kind missing from a table gets this.
FALLBACK = {"full": Resources(gpus=1, cpus=8, mem_gb=32, time_min=240),
            "small": Resources(gpus=0, cpus=1, mem_gb=4, time_min=60)}
#: Profiles whose jobs are sized by the "small" table.
SMALL_PROFILES = frozenset({"smoke", "truncated"})

#: sbatch settings that have their own option (``--slurm-...``); ``--slurm-extra`` may not set them.
OWN_OPTIONS = {"partition": "--slurm-partition", "time": "--slurm-time", "t": "--slurm-time",
               "mem": "--slurm-mem", "cpus-per-task": "--slurm-cpus", "c": "--slurm-cpus",
               "gpus-per-node": "--slurm-gpus-per-job", "gpus": "--slurm-gpus-per-job", "gres": "--slurm-gpus-per-job",
               "output": None, "error": None, "job-name": None, "array": None, "open-mode": None}


@dataclass(frozen=True)
class SlurmOptions:
    """The user's ``--slurm-*`` options; None means "the job kind's default"."""

    partition: str | None = None
    time_min: int | None = None
    gpus_per_job: int | None = None
    mem_gb: float | None = None
    cpus: int | None = None
    array_parallelism: int = 256
    extra: dict[str, Any] = field(default_factory=dict)
    #: seconds before the time limit at which Slurm sends SIGUSR1 (Slurm may send it up to 60 s earlier)
    signal_delay_s: int = 120
    #: Ctrl-C in ``bench run``: cancel this run's queued and running jobs (default: leave them; the next
    #: ``bench run`` finds them through runs/<key>/slurm.json)
    cancel_on_close: bool = False
    #: requeues after a USR1 warning before a job gives up and reports "preempted"
    max_requeues: int = 20

    @classmethod
    def parse(cls, partition: str | None = None, time: str | None = None, gpus_per_job: int | None = None,
              mem: str | None = None, cpus: int | None = None, array_parallelism: int | None = None,
              extra: Iterable[str] = (), cancel_on_close: bool = False) -> SlurmOptions:
        """Options as the CLI takes them (strings), checked; a bad value is a BenchError."""
        if gpus_per_job is not None and gpus_per_job < 0:
            raise BenchError(f"--slurm-gpus-per-job must be 0 or more, not {gpus_per_job}.",
                             fix="Pass --slurm-gpus-per-job 0 for CPU jobs, or a positive count.")
        if cpus is not None and cpus < 1:
            raise BenchError(f"--slurm-cpus must be at least 1, not {cpus}.", fix="Pass --slurm-cpus 1 or more.")
        if array_parallelism is not None and array_parallelism < 1:
            raise BenchError(f"--slurm-array-parallelism must be at least 1, not {array_parallelism}.",
                             fix="Pass how many of this run's Slurm jobs may be queued or running at once.")
        return cls(partition=partition or None, time_min=parse_time(time) if time else None,
                   gpus_per_job=gpus_per_job, mem_gb=parse_mem(mem) if mem else None, cpus=cpus,
                   array_parallelism=array_parallelism or 256, extra=parse_extra(extra),
                   cancel_on_close=cancel_on_close)


def parse_time(text: str) -> int:
    """Slurm's time formats (``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``) to whole minutes."""
    t = text.strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", t)
    if not m or t in {"", "0"}:
        raise BenchError(f"--slurm-time '{text}' is not a Slurm time limit.",
                         fix="Give minutes (90) or [days-]hours:minutes[:seconds] (1:30:00, 2-00:00).")
    days, a, b, c = m.groups()
    if days is not None:  # D-H, D-H:M, D-H:M:S
        minutes = int(days) * 1440 + int(a) * 60 + int(b or 0) + (1 if c and int(c) else 0)
    elif c is not None:  # H:M:S
        minutes = int(a) * 60 + int(b) + (1 if int(c) else 0)
    elif b is not None:  # M:S
        minutes = int(a) + (1 if int(b) else 0)
    else:
        minutes = int(a)
    if minutes < 1:
        raise BenchError(f"--slurm-time '{text}' is shorter than a minute.", fix="Give at least 1 minute.")
    return minutes


def parse_mem(text: str) -> float:
    """``16G``, ``16GB``, ``500M``, ``1T`` or a bare number of gigabytes, to gigabytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*", text, flags=re.IGNORECASE)
    if not m or float(m.group(1)) <= 0:
        raise BenchError(f"--slurm-mem '{text}' is not an amount of memory.",
                         fix="Give it with a unit, e.g. 16G or 500M (a bare number means gigabytes).")
    scale = {"": 1, "K": 1 / 1024**2, "M": 1 / 1024, "G": 1, "T": 1024}[m.group(2).upper()]
    return float(m.group(1)) * scale


def parse_extra(items: Iterable[str]) -> dict[str, Any]:
    """``--slurm-extra key=value`` (or a bare ``flag``) items to sbatch settings (``--key=value``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-").replace("_", "-")
        if not key or not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", key):
            raise BenchError(f"--slurm-extra '{item}' is not an sbatch setting.",
                             fix="Give it as key=value without the leading dashes, e.g. --slurm-extra qos=high.")
        if key in OWN_OPTIONS:
            own = OWN_OPTIONS[key]
            raise BenchError(f"--slurm-extra cannot set sbatch's --{key}.",
                             fix=f"Use {own} instead." if own else "The Slurm backend sets it itself; leave it out.")
        out[key] = value if sep else True
    return out


def resources_for(kind: str, profile: str | None, options: SlurmOptions, device: str) -> Resources:
    """A job's requests: the kind's default for its profile's size, then the user's options on top.

    ``device="cpu"`` asks for no GPU unless ``--slurm-gpus-per-job`` says otherwise.
    """
    size = "small" if profile in SMALL_PROFILES else "full"
    base = RESOURCES[size].get(kind, FALLBACK[size])
    if device == "cpu":
        base = replace(base, gpus=0)
    return Resources(gpus=base.gpus if options.gpus_per_job is None else options.gpus_per_job,
                     cpus=base.cpus if options.cpus is None else options.cpus,
                     mem_gb=base.mem_gb if options.mem_gb is None else options.mem_gb,
                     time_min=base.time_min if options.time_min is None else options.time_min)


# -- what runs inside the Slurm job ----------------------------------------------------------------------------

def resolve(fn: str | Callable[..., str]) -> Callable[..., str]:
    """``"module:function"`` to the function (imported in the job, not in the submitting process)."""
    if callable(fn):
        return fn
    module, _, name = fn.partition(":")
    return getattr(importlib.import_module(module), name)


#: Signals a job routes to the preemption flag: Slurm's warning (USR1), its stop (TERM), submitit's own.
def _job_signals() -> tuple[signal.Signals, ...]:
    own = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), signal.SIGUSR2)
    return tuple(dict.fromkeys((signal.SIGTERM, signal.SIGUSR1, own)))


@dataclass(frozen=True)
class SlurmEntry:
    """The callable submitit pickles: runs the worker, and requeues the Slurm job after a USR1 checkpoint."""

    fn: str | Callable[..., str]
    key: str
    runs_root: str
    device: str = "auto"
    max_requeues: int = 20

    def __call__(self) -> str:
        from bench import preempt

        # submitit's process_job installed its handlers just before calling us (USR2: checkpoint from
        # inside the handler, requeue, exit; TERM: ignore). Ours replace them: a signal only sets the flag,
        # and the worker decides when it is safe to stop. The worker installs the same flag handlers itself.
        preempt.install(_job_signals())
        if os.environ.get("SLURM_CPUS_PER_TASK") and not os.environ.get("OMP_NUM_THREADS"):
            os.environ["OMP_NUM_THREADS"] = os.environ["SLURM_CPUS_PER_TASK"]
        outcome = resolve(self.fn)(self.key, self.runs_root, self.device)
        if outcome == "preempted" and os.environ.get("SLURM_JOB_ID"):
            self._after_preemption(preempt.requested())
        return outcome

    def _after_preemption(self, reason: str | None) -> None:
        """The worker checkpointed and stopped. Requeue on a warning; exit without a result if Slurm is ending
        the job; return (so "preempted" is the job's result) only when requeueing is not possible."""
        job_id = os.environ["SLURM_JOB_ID"]
        if reason == "SIGTERM":
            # scancel, the time limit itself, or preemption: Slurm decides whether the job runs again
            # (PreemptMode=REQUEUE) or ends; a result file now would report an end that may not be one.
            raise SystemExit(f"Slurm job {job_id} stopped on SIGTERM after a checkpoint")
        restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
        if restarts >= self.max_requeues:
            print(f"[slurm] job {job_id} was requeued {restarts} times; not again", file=sys.stderr)
            return
        try:
            # scontrol requeues finished and cancelled jobs too: only requeue one that is still running.
            show = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True,
                                  timeout=60)
            if show.returncode == 0 and "JobState=RUNNING" not in show.stdout.split():
                raise SystemExit(f"Slurm job {job_id} is ending ({_job_state(show.stdout)}); not requeued")
            r = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            print(f"[slurm] could not requeue job {job_id}: {e}", file=sys.stderr)
            return
        if r.returncode != 0:
            print(f"[slurm] scontrol requeue {job_id} failed: {r.stderr.strip()}", file=sys.stderr)
            return
        # No result file: the submitting side sees the job pending again, not ended.
        raise SystemExit(f"requeued Slurm job {job_id} after a checkpoint (restart {restarts + 1})")


def _job_state(show: str) -> str:
    m = re.search(r"JobState=(\S+)", show)
    return m.group(1) if m else "state unknown"


# -- the backend -----------------------------------------------------------------------------------------------

#: Slurm job states in which the job may still run (or run again).
ACTIVE_STATES = frozenset({"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING",
                           "COMPLETING", "SUSPENDED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
                           "RESV_DEL_HOLD", "SPECIAL_EXIT"})


@dataclass
class _Submission:
    key: str
    job_id: str
    ours: bool  # submitted by this backend (not adopted from an earlier bench run)
    ended_since: float | None = None  # when Slurm was first seen to have ended it without a result
    state: str = "PENDING"


class SlurmBackend:
    """Runs each job as a Slurm job via submitit; see the module docstring."""

    def __init__(self, runs_root: Any, device: str = "auto", options: SlurmOptions | None = None,
                 fn: str | Callable[..., str] = WORKER, profile: str | None = None,
                 log: Callable[[str], None] = print, query_interval_s: float = 10.0, lost_grace_s: float = 30.0,
                 command_timeout_s: float = 30.0, tick_s: float = 0.5):
        root = runs_root if isinstance(runs_root, str | os.PathLike) else runs_root.root  # a folder or a RunStore
        self.runs_root = Path(root).resolve()
        self.folder = self.runs_root / SUBMITIT_DIR
        self.device = device
        self.options = options or SlurmOptions()
        self.fn = fn
        self.profile = profile
        self.log = log
        self.query_interval_s = query_interval_s
        self.lost_grace_s = lost_grace_s  # a shared file system may show the result file late
        self.command_timeout_s = command_timeout_s
        self.tick_s = tick_s
        self._subs: dict[str, _Submission] = {}
        self._last_query = float("-inf")
        self._last_warning = float("-inf")
        self._ended: set[str] = set()  # recorded Slurm job ids known to have ended (is_queued)

    @property
    def capacity(self) -> int:
        return self.options.array_parallelism

    def in_flight(self) -> set[str]:
        return set(self._subs)

    # -- submit ----------------------------------------------------------------------------------------------

    def resources(self, job: Any) -> Resources:
        return resources_for(job.kind, (job.config or {}).get("profile", self.profile), self.options, self.device)

    def _executor(self, job: Any, res: Resources) -> Any:
        import submitit

        ex = submitit.AutoExecutor(folder=self.folder, cluster="slurm")  # fresh: parameters never carry over
        extra = {"signal": f"USR1@{self.options.signal_delay_s}", **self.options.extra}
        params: dict[str, Any] = {"name": job_name(job), "timeout_min": res.time_min, "mem_gb": res.mem_gb,
                                  "cpus_per_task": res.cpus, "slurm_additional_parameters": extra,
                                  "slurm_array_parallelism": self.options.array_parallelism}
        if res.gpus:
            params["gpus_per_node"] = res.gpus
        if self.options.partition:
            params["slurm_partition"] = self.options.partition
        ex.update_parameters(**params)
        return ex

    def entry(self, job: Any, res: Resources) -> SlurmEntry:
        """What the Slurm job runs. A job given no GPU runs on the CPU even where the node has GPUs."""
        return SlurmEntry(fn=self.fn, key=job.key, runs_root=str(self.runs_root),
                          device="cpu" if res.gpus == 0 else self.device, max_requeues=self.options.max_requeues)

    def submit(self, job: Any) -> None:
        check_available()
        res = self.resources(job)
        entry = self.entry(job, res)
        try:
            sj = self._executor(job, res).submit(entry)
        except Exception as e:  # sbatch's refusal (bad partition, too much memory) is the user's to fix
            raise BenchError(f"Slurm refused job {job.key[:12]} ({job.kind}): {_one_line(e)}",
                             fix="Check --slurm-partition/--slurm-mem/--slurm-time/--slurm-extra against "
                                 "'sinfo' and your cluster's limits.") from e
        rec = {"slurm_job_id": str(sj.job_id), "job_name": job_name(job), "kind": job.kind,
               "submitted": _now(), "submit_host": socket.gethostname(), "resources": asdict(res),
               "partition": self.options.partition, "sbatch_extra": self.options.extra,
               "submitit_folder": str(self.folder), "stdout": str(sj.paths.stdout),
               "stderr": str(sj.paths.stderr), "sbatch_script": str(sj.paths.submission_file)}
        old = read_record(self.runs_root, job.key)
        history = ([*old.get("history", []), {k: v for k, v in old.items() if k != "history"}] if old else [])
        write_json(self.runs_root / job.key / RECORD, {**rec, "history": history})
        self._subs[job.key] = _Submission(job.key, str(sj.job_id), ours=True)
        self.log(f"[slurm] {job.kind} {job.key[:12]} -> Slurm job {sj.job_id} "
                 f"({res.cpus} cpu, {res.gpus} gpu, {res.mem_gb:g} GB, {res.time_min} min)")

    # -- after a restart ---------------------------------------------------------------------------------------

    def is_queued(self, job: Any) -> bool:
        """Is a Slurm job from an earlier submission of ``job`` still queued or running? Then follow it.

        Checks that the id recorded in runs/<key>/slurm.json still names this job (its name carries the key:
        job ids start again on a new cluster). A job found is followed from now on: poll reports its outcome.
        """
        if job.key in self._subs:
            return True
        rec = read_record(self.runs_root, job.key)
        if not rec or "slurm_job_id" not in rec:
            return False
        job_id = str(rec["slurm_job_id"])
        if job_id in self._ended:
            return False
        if self._result_path(job_id).exists():  # the worker returned; Slurm may still be tidying up
            self._ended.add(job_id)
            return False
        states = self._query([job_id], self.command_timeout_s)
        if states is None:  # Slurm did not answer: do not risk a second copy; poll will find out
            self._subs[job.key] = _Submission(job.key, job_id, ours=False, state="UNKNOWN")
            return True
        state, name = states.get(job_id, ("", ""))
        if state not in ACTIVE_STATES or (name and name != rec.get("job_name", name)):
            self._ended.add(job_id)  # the scheduler asks every round: ask Slurm about an ended id once
            return False
        self._subs[job.key] = _Submission(job.key, job_id, ours=False, state=state)
        self.log(f"[slurm] {job.kind} {job.key[:12]}: Slurm job {job_id} already {state.lower()}, following it")
        return True

    # -- poll ------------------------------------------------------------------------------------------------

    def poll(self, timeout: float) -> list[tuple[str, str]]:
        """Outcomes of submissions that ended, waiting up to ``timeout`` seconds for the first (never longer).

        With nothing in flight it still waits (the scheduler is then waiting for jobs other workers hold)."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            out = self._collect(deadline)
            left = deadline - time.monotonic()
            if out or left <= 0:
                return out
            time.sleep(min(self.tick_s, left))

    def _collect(self, deadline: float) -> list[tuple[str, str]]:
        out = []
        with contextlib.suppress(OSError):  # refresh a shared file system's view of the folder
            self.folder.chmod(self.folder.stat().st_mode)
        for sub in list(self._subs.values()):
            outcome = self._result(sub)
            if outcome is not None:
                out.append((sub.key, outcome))
        left = deadline - time.monotonic()
        if self._subs and time.monotonic() - self._last_query >= self.query_interval_s and left > 0.2:
            self._last_query = time.monotonic()
            states = self._query([s.job_id for s in self._subs.values()], min(self.command_timeout_s, left))
            if states is None and time.monotonic() - self._last_warning > 300:
                self._last_warning = time.monotonic()
                self.log("[slurm] squeue/sacct did not answer; following the jobs by their result files until "
                         "Slurm answers again")
            if states is not None:
                now = time.monotonic()
                for sub in list(self._subs.values()):
                    state, _ = states.get(sub.job_id, ("", ""))
                    sub.state = state or "UNKNOWN"
                    if state in ACTIVE_STATES:
                        sub.ended_since = None
                        continue
                    sub.ended_since = sub.ended_since or now
                    outcome = self._result(sub)  # the job may have written its result since the first look
                    if outcome is None and now - sub.ended_since >= self.lost_grace_s:
                        outcome = self._finish(sub, "lost", state=sub.state)
                        self.log(f"[slurm] Slurm job {sub.job_id} ({sub.key[:12]}) ended {sub.state} "
                                 "without an outcome: lost")
                    if outcome is not None:
                        out.append((sub.key, outcome))
        return out

    def _result_path(self, job_id: str) -> Path:
        from submitit.core.utils import JobPaths

        return JobPaths(self.folder, job_id=job_id, task_id=0).result_pickle

    def _result(self, sub: _Submission) -> str | None:
        """The worker's outcome from submitit's result file, or None if there is none yet."""
        from submitit.core.utils import pickle_load

        path = self._result_path(sub.job_id)
        if not path.exists():
            return None
        try:
            kind, value = pickle_load(path)
        except Exception:  # half-visible on a shared file system: look again next time
            return None
        if kind == "success":
            return self._finish(sub, str(value), state="COMPLETED")
        self.log(f"[slurm] Slurm job {sub.job_id} ({sub.key[:12]}) raised:\n{value}")
        return self._finish(sub, "failed", state="FAILED", error=str(value)[-4000:])

    def _finish(self, sub: _Submission, outcome: str, state: str, error: str | None = None) -> str:
        self._subs.pop(sub.key, None)
        rec = read_record(self.runs_root, sub.key)
        if rec and str(rec.get("slurm_job_id")) == sub.job_id:
            rec.update({"outcome": outcome, "final_state": state, "ended": _now()})
            if error:
                rec["error"] = error
            with contextlib.suppress(OSError):
                write_json(self.runs_root / sub.key / RECORD, rec)
        return outcome

    def _query(self, job_ids: list[str], timeout: float) -> dict[str, tuple[str, str]] | None:
        """{job id: (state, job name)} from squeue, then sacct for jobs squeue has forgotten; None if neither
        answered in ``timeout`` seconds (slurmctld or slurmdbd hung)."""
        t0 = time.monotonic()
        ids = ",".join(job_ids)
        got = _run(["squeue", "-h", "--states=all", "-o", "%i|%T|%j", "-j", ids], timeout)
        if got is None:
            return None
        states = _parse_states(got)
        missing = [j for j in job_ids if j not in states]
        left = timeout - (time.monotonic() - t0)
        if missing and left > 0.2:
            acct = _run(["sacct", "-X", "-n", "-P", "-o", "JobIDRaw,State,JobName", "-j", ",".join(missing)], left)
            if acct is not None:
                states.update(_parse_states(acct))
        return states

    # -- close -----------------------------------------------------------------------------------------------

    def close(self) -> None:
        """On Ctrl-C: cancel this backend's own submissions if asked to; by default leave them to Slurm."""
        ours = [s for s in self._subs.values() if s.ours]
        if not self.options.cancel_on_close:
            if self._subs:
                self.log(f"[slurm] leaving {len(self._subs)} Slurm job(s) queued or running: "
                         f"{', '.join(s.job_id for s in self._subs.values())}; the next 'bench run' follows them")
            return
        if ours:
            _run(["scancel", *[s.job_id for s in ours]], self.command_timeout_s)
            self.log(f"[slurm] cancelled Slurm job(s) {', '.join(s.job_id for s in ours)}")
            for s in ours:
                self._subs.pop(s.key, None)


def check_available() -> None:
    """Slurm's client commands and submitit must be here before anything is submitted."""
    import shutil

    missing = [c for c in ("sbatch", "srun", "squeue", "scancel") if shutil.which(c) is None]
    if missing:
        raise BenchError(f"--executor slurm needs Slurm's client commands on PATH; missing: {', '.join(missing)}.",
                         fix="Run bench on a Slurm login node (or load its module), or use "
                                                "--executor local/pool.")
    if importlib.util.find_spec("submitit") is None:
        raise BenchError("--executor slurm needs the submitit package, which is not installed.",
                         fix="Run ./scripts/setup.sh (or pip install submitit).")


def job_name(job: Any) -> str:
    """The Slurm job name: kind and key, so an id found in slurm.json can be checked against its job."""
    return f"bench-{job.kind}-{job.key[:16]}"


def read_record(runs_root: Path, key: str) -> dict[str, Any] | None:
    p = Path(runs_root) / key / RECORD
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _parse_states(text: str) -> dict[str, tuple[str, str]]:
    out = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 2 and parts[0]:
            # sacct writes "CANCELLED by 0"; squeue lists a requeued job under its plain id
            out[parts[0]] = (parts[1].split()[0] if parts[1] else "", parts[2] if len(parts) > 2 else "")
    return out


def _run(cmd: list[str], timeout: float) -> str | None:
    """stdout of a Slurm client command, "" when it names no known job, None when it failed or hung."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=max(0.1, timeout))
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        return "" if "Invalid job id" in r.stderr else None
    return r.stdout


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:300]


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
