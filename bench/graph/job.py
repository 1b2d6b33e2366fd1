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


@dataclass
class JobContext:
    """What a running job may touch."""

    job: Job
    out_dir: Path
    input_dirs: dict[str, Path]
    device: str
    progress: Any = None  # bench.ui.Progress or None
    log: Callable[[str], None] = print
    extra: dict[str, Any] = field(default_factory=dict)
    lease: Any = None  # bench.graph.lease.Lease while a worker holds the job

    def input(self, name: str) -> Path:
        return self.input_dirs[name]

    def report(self, **progress: Any) -> None:
        """Progress for ``bench status`` (e.g. ``step=10, steps=40``), sent with the lease's next heartbeat."""
        if self.lease is not None:
            self.lease.report(**progress)


JobFn = Callable[[JobContext], dict[str, Any]]
JOB_KINDS: dict[str, JobFn] = {}


def job_kind(name: str) -> Callable[[JobFn], JobFn]:
    """Register the function that runs jobs of kind ``name``; it returns a JSON-able result."""

    def deco(fn: JobFn) -> JobFn:
        JOB_KINDS[name] = fn
        return fn

    return deco


def replace_config(job: Job, **changes: Any) -> Job:
    return dataclasses.replace(job, config={**job.config, **changes})
