"""How long a graph takes on G GPUs: list scheduling by critical path over per-job time estimates.

Jobs are independent units of one GPU each (a paper training is batch 4 on one GPU; jobs, not
batches, fill the GPUs), so the wall time on G GPUs is the makespan of scheduling the graph's jobs
on G machines, each job starting once its inputs are done. Priority goes to the job with the
longest remaining path to the end (the classic critical-path rule, within 2x of optimal), and the
critical path itself is the lower bound no number of GPUs can beat.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass

from bench.graph.job import Job, toposort


@dataclass(frozen=True)
class Schedule:
    gpus: int
    hours: float  # makespan
    busy_hours: float  # the sum of all jobs' hours
    critical_path_hours: float
    critical_path: list[str]  # labels, first to last


def critical_path(jobs: list[Job], hours: dict[str, float]) -> tuple[float, list[Job]]:
    """(length, jobs) of the longest chain of dependent jobs."""
    best: dict[str, tuple[float, list[Job]]] = {}
    for j in jobs:  # dependencies first
        before = max((best[d.key] for d in j.inputs.values()), key=lambda b: b[0], default=(0.0, []))
        best[j.key] = (before[0] + hours[j.key], [*before[1], j])
    return max(best.values(), key=lambda b: b[0], default=(0.0, []))


def schedule(roots: list[Job], hours_of: Callable[[Job], float], gpus: int) -> Schedule:
    """Makespan of the graph of ``roots`` on ``gpus`` identical GPUs (jobs of zero hours take no GPU time)."""
    jobs = toposort(roots)
    hours = {j.key: hours_of(j) for j in jobs}
    users: dict[str, list[Job]] = {j.key: [] for j in jobs}
    for j in jobs:
        for d in j.inputs.values():
            users[d.key].append(j)
    tail: dict[str, float] = {}  # longest path from a job's start to the end
    for j in reversed(jobs):
        tail[j.key] = hours[j.key] + max((tail[u.key] for u in users[j.key]), default=0.0)
    waiting = {j.key: len({d.key for d in j.inputs.values()}) for j in jobs}
    ready = [(-tail[j.key], j.key) for j in jobs if waiting[j.key] == 0]
    heapq.heapify(ready)
    by_key = {j.key: j for j in jobs}
    free = [0.0] * gpus  # when each GPU is next free
    running: list[tuple[float, str]] = []  # (end time, key)
    now, makespan = 0.0, 0.0
    while ready or running:
        while ready and min(free) <= now:
            _, key = heapq.heappop(ready)
            g = free.index(min(free))
            end = now + hours[key]
            free[g] = end
            heapq.heappush(running, (end, key))
            makespan = max(makespan, end)
        if not running:
            break
        now, key = heapq.heappop(running)
        for u in users[key]:
            waiting[u.key] -= 1
            if waiting[u.key] == 0:
                heapq.heappush(ready, (-tail[u.key], u.key))
    length, path = critical_path(jobs, hours)
    return Schedule(gpus, makespan, sum(hours.values()), length, [by_key[j.key].describe() for j in path])
