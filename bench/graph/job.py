"""Jobs: a kind, a resolved config and named input jobs; identity = content hash of all three.

A job never knows where it runs: executors hand it a :class:`JobContext` with its
output folder and its inputs' output folders, so a cluster executor can run the same
job code on another machine. ``params`` says where things are on this installation (a
data root, a prior file): it is saved with the job so a worker can find them, but it never
enters the key, so two paths to the same content (a symlink, another mount) share one job;
the content itself enters ``config`` as a fingerprint or SHA-256.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.hashing import content_hash

#: Bump when a job kind's outputs change meaning, so old runs are not reused.
SCHEMA = 1


@dataclass(frozen=True, eq=False)
class Job:
    """One unit of work. ``label`` (for people) and ``params`` (paths) never enter the hash."""

    kind: str
    config: dict[str, Any]
    inputs: dict[str, Job] = field(default_factory=dict)
    label: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        cached = self.__dict__.get("_key")
        if cached is None:  # a job is frozen, so its key never changes: compute it once
            cached = content_hash(
                {"schema": SCHEMA, "kind": self.kind, "config": self.config,
                 "inputs": {name: dep.key for name, dep in self.inputs.items()}}
            )
            object.__setattr__(self, "_key", cached)
        return cached

    def walk(self) -> Iterator[Job]:
        """This job and everything it depends on, dependencies first, each once."""
        seen: set[str] = set()

        def visit(j: Job) -> Iterator[Job]:
            if j.key in seen:
                return
            for dep in j.inputs.values():
                yield from visit(dep)
            seen.add(j.key)
            yield j

        yield from visit(self)

    def describe(self) -> str:
        return self.label or f"{self.kind}:{self.key[:8]}"


def toposort(roots: list[Job]) -> list[Job]:
    """All jobs reachable from ``roots``, dependencies before dependants, without duplicates."""
    out: dict[str, Job] = {}
    for r in roots:
        for j in r.walk():
            out.setdefault(j.key, j)
    return list(out.values())


@dataclass(frozen=True)
class Artifact:
    """An output a job kind declares: its file (or folder) in the job's folder and, for tables, its columns.

    Jobs read each other's outputs by (input name, artifact name) through :class:`JobContext`, never
    by a literal file name, so a kind's files are named in exactly one place: its declaration.
    """

    path: str  # relative to the job's folder; a trailing "/" marks a folder
    columns: tuple[str, ...] = ()  # a CSV's required columns (checked when another job reads it)
    doc: str = ""

    @property
    def is_folder(self) -> bool:
        return self.path.endswith("/")


@dataclass(frozen=True)
class JobKind:
    """A registered job kind: its runner and the artifacts it writes."""

    name: str
    run: Callable[[JobContext], dict[str, Any]]
    outputs: dict[str, Artifact]


JOB_KINDS: dict[str, JobKind] = {}
#: Modules whose import registers the job kinds (by name, so this layer imports none of them).
KIND_MODULES = ("bench.jobs",)


def job_kinds() -> dict[str, JobKind]:
    """Every registered job kind (importing the modules that register them, once)."""
    import importlib

    for mod in KIND_MODULES:
        importlib.import_module(mod)
    return JOB_KINDS


def artifact_of(kind: str, name: str) -> Artifact:
    """The declaration of ``kind``'s artifact ``name`` (one sentence when it has none)."""
    from bench.errors import BenchError

    spec = job_kinds().get(kind)
    if spec is None:
        raise BenchError(f"No job kind '{kind}' is registered.", fix="Install the bench version that wrote this run.")
    if name not in spec.outputs:
        raise BenchError(f"Job kind '{kind}' declares no output '{name}' (it writes {', '.join(spec.outputs)}).",
                         fix="Read one of the declared outputs.")
    return spec.outputs[name]


@dataclass
class JobContext:
    """What a running job may touch: its own outputs, its inputs' declared outputs and results."""

    job: Job
    out_dir: Path
    input_dirs: dict[str, Path]
    device: str
    progress: Any = None  # bench.ui.Progress or None
    log: Callable[[str], None] = print
    extra: dict[str, Any] = field(default_factory=dict)
    lease: Any = None  # bench.graph.lease.Lease while a worker holds the job
    input_results: dict[str, dict[str, Any]] = field(default_factory=dict)  # each input's done.json result

    def input(self, name: str) -> Path:
        return self.input_dirs[name]

    def output(self, artifact: str) -> Path:
        """Where this job writes its declared output ``artifact`` (a folder is created)."""
        spec = artifact_of(self.job.kind, artifact)
        path = self.out_dir / spec.path.rstrip("/")
        (path if spec.is_folder else path.parent).mkdir(parents=True, exist_ok=True)
        return path

    def artifact(self, input_name: str, artifact: str) -> Path:
        """The declared output ``artifact`` of input ``input_name``."""
        dep = self.job.inputs[input_name]
        return self.input_dirs[input_name] / artifact_of(dep.kind, artifact).path.rstrip("/")

    def table(self, input_name: str, artifact: str, **read_csv: Any) -> Any:
        """Input ``input_name``'s CSV ``artifact`` as a DataFrame, its declared columns checked."""
        import pandas as pd

        from bench.errors import BenchError

        dep = self.job.inputs[input_name]
        spec = artifact_of(dep.kind, artifact)
        frame = pd.read_csv(self.artifact(input_name, artifact), keep_default_na=False, **read_csv)
        missing = [c for c in spec.columns if c not in frame.columns]
        if missing:
            raise BenchError(f"{dep.describe()}'s {artifact} lacks the columns {missing}.",
                             fix="Rerun that job with this version of bench (--force).")
        return frame

    def result(self, input_name: str) -> dict[str, Any]:
        """What input ``input_name`` returned when it finished (its ``done.json`` result)."""
        return self.input_results.get(input_name, {})

    def report(self, **progress: Any) -> None:
        """Progress for ``bench status`` (e.g. ``step=10, steps=40``), sent with the lease's next heartbeat."""
        if self.lease is not None:
            self.lease.report(**progress)


JobFn = Callable[[JobContext], dict[str, Any]]


def job_kind(name: str, outputs: dict[str, Artifact] | None = None) -> Callable[[JobFn], JobFn]:
    """Register the runner of kind ``name`` (it returns a JSON-able result) and the artifacts it writes."""

    def deco(fn: JobFn) -> JobFn:
        JOB_KINDS[name] = JobKind(name, fn, dict(outputs or {}))
        return fn

    return deco


def replace_config(job: Job, **changes: Any) -> Job:
    return dataclasses.replace(job, config={**job.config, **changes})
