"""The run store: ``runs/<key>/`` per job, done only when ``done.json`` exists.

``done.json`` records the run id of every input the job consumed, so a job whose
input was re-run since (``--force``) is reported and treated as stale.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.graph.job import Job
from bench.io import write_json


class RunStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def ensure_writable(self) -> None:
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

    def dir(self, job: Job) -> Path:
        return self.root / job.key

    def done_record(self, job: Job) -> dict[str, Any] | None:
        p = self.dir(job) / "done.json"
        if not p.exists():
            return None
        try:
            return json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def status(self, job: Job) -> str:
        """'done', 'stale' (done, but an input was re-run since) or 'pending'."""
        rec = self.done_record(job)
        if rec is None:
            return "pending"
        for name, dep in job.inputs.items():
            dep_rec = self.done_record(dep)
            if dep_rec is None or dep_rec.get("run_id") != rec.get("input_run_ids", {}).get(name):
                return "stale"
        return "done"

    def prepare(self, job: Job, fresh: bool) -> Path:
        d = self.dir(job)
        if fresh and d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True, exist_ok=True)
        write_json(d / "job.json", {"kind": job.kind, "key": job.key, "label": job.label, "config": job.config,
                                    "inputs": {n: dep.key for n, dep in job.inputs.items()}})
        return d

    def mark_done(self, job: Job, result: dict[str, Any], wall_time_s: float) -> dict[str, Any]:
        rec = {
            "key": job.key,
            "kind": job.kind,
            "label": job.label,
            "run_id": uuid.uuid4().hex,
            "input_run_ids": {n: (self.done_record(dep) or {}).get("run_id") for n, dep in job.inputs.items()},
            "wall_time_s": round(wall_time_s, 3),
            "result": result,
        }
        write_json(self.dir(job) / "done.json", rec)
        return rec

    def invalidate(self, job: Job) -> None:
        p = self.dir(job) / "done.json"
        if p.exists():
            p.unlink()
