"""Jobs: a kind, a resolved config and named input jobs; identity = content hash of all three.

A job never knows where it runs: executors hand it a :class:`JobContext` with its
output folder and its inputs' output folders, so a cluster executor can run the same
job code on another machine.
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
    """One unit of work. ``label`` is for people and never enters the hash."""

    kind: str
    config: dict[str, Any]
    inputs: dict[str, Job] = field(default_factory=dict)
    label: str = ""

    @property
    def key(self) -> str:
        return content_hash(
            {"schema": SCHEMA, "kind": self.kind, "config": self.config,
             "inputs": {name: dep.key for name, dep in self.inputs.items()}}
        )

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

    def input(self, name: str) -> Path:
        return self.input_dirs[name]


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
