"""``bench status``: every job of a graph as the run store sees it, for people watching a long run."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.graph.job import Job, toposort
from bench.graph.store import RunStore


@dataclass(frozen=True)
class StatusRow:
    key: str
    kind: str
    label: str
    status: str
    detail: str


def _ago(t: float) -> str:
    s = max(0.0, time.time() - t)
    return f"{s:.0f}s ago" if s < 120 else f"{s / 60:.0f} min ago"


def status_rows(roots: list[Job], store: RunStore) -> list[StatusRow]:
    """One row per job: done (wall time), running (where, step x of y, last heartbeat), pending, failed (why)."""
    rows = []
    for job in toposort(roots):
        info = store.inspect(job)
        detail = ""
        if info.status in ("done", "stale") and info.record is not None:
            detail = f"{info.record.get('wall_time_s', 0):.1f}s on {info.record.get('host', '?')}"
        elif info.status == "running" and info.lease is not None:
            lease = info.lease
            step = f", step {lease.step} of {lease.steps}" if lease.step is not None else ""
            detail = f"{lease.holder.where}{step}, heartbeat {_ago(lease.heartbeat)}"
        elif info.status == "failed":
            detail = info.error
        elif info.problem:
            detail = info.problem
        rows.append(StatusRow(job.key, job.kind, job.describe(), info.status, detail))
    return rows
