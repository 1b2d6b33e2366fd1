"""The job graph: skip done jobs, force, stale detection, resume after a failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.graph.executor import LocalExecutor, plan
from bench.graph.job import JOB_KINDS, Job, JobContext, job_kind
from bench.graph.store import RunStore

CALLS: list[str] = []


@pytest.fixture(autouse=True)
def _kinds():
    @job_kind("t_make")
    def make(ctx: JobContext) -> dict:
        CALLS.append(ctx.job.config["name"])
        (ctx.out_dir / "value.txt").write_text(str(ctx.job.config["value"]))
        return {"value": ctx.job.config["value"]}

    @job_kind("t_sum")
    def add(ctx: JobContext) -> dict:
        CALLS.append("sum")
        if ctx.job.config.get("fail_once") and not (ctx.out_dir / "attempted").exists():
            (ctx.out_dir / "attempted").write_text("1")
            raise RuntimeError("simulated crash")
        total = sum(int((ctx.input(n) / "value.txt").read_text()) for n in ctx.input_dirs)
        return {"total": total}

    CALLS.clear()
    yield
    for k in ("t_make", "t_sum"):
        JOB_KINDS.pop(k, None)


def _graph(fail_once: bool = False) -> Job:
    a = Job("t_make", {"name": "a", "value": 2})
    b = Job("t_make", {"name": "b", "value": 3})
    return Job("t_sum", {"fail_once": fail_once}, {"a": a, "b": b})


def test_runs_once_then_skips(tmp_path: Path) -> None:
    store, g = RunStore(tmp_path), _graph()
    assert [s for _, s in plan([g], store)] == ["pending"] * 3
    LocalExecutor(log=lambda m: None).run([g], store)
    assert sorted(CALLS) == ["a", "b", "sum"]
    assert json.loads((store.dir(g) / "done.json").read_text())["result"] == {"total": 5}
    CALLS.clear()
    LocalExecutor(log=lambda m: None).run([g], store)
    assert CALLS == []
    assert [s for _, s in plan([g], store)] == ["done"] * 3


def test_force_reruns_everything(tmp_path: Path) -> None:
    store, g = RunStore(tmp_path), _graph()
    LocalExecutor(log=lambda m: None).run([g], store)
    CALLS.clear()
    LocalExecutor(log=lambda m: None).run([g], store, force=True)
    assert sorted(CALLS) == ["a", "b", "sum"]


def test_rerun_input_makes_dependant_stale(tmp_path: Path) -> None:
    store, g = RunStore(tmp_path), _graph()
    LocalExecutor(log=lambda m: None).run([g], store)
    a = g.inputs["a"]
    LocalExecutor(log=lambda m: None).run([a], store, force=True)
    status = {j.key: s for j, s in plan([g], store)}
    assert status[a.key] == "done" and status[g.key] == "stale"
    CALLS.clear()
    LocalExecutor(log=lambda m: None).run([g], store)
    assert CALLS == ["sum"]


def test_crashed_job_is_pending_and_rerun_completes(tmp_path: Path) -> None:
    store, g = RunStore(tmp_path), _graph(fail_once=True)
    with pytest.raises(RuntimeError, match="simulated crash"):
        LocalExecutor(log=lambda m: None).run([g], store)
    assert not (store.dir(g) / "done.json").exists()
    assert {s for j, s in plan([g], store) if j.key == g.key} == {"failed"}
    assert "simulated crash" in json.loads((store.dir(g) / "error.json").read_text())["message"]
    CALLS.clear()
    LocalExecutor(log=lambda m: None).run([g], store)
    assert CALLS == ["sum"]  # the inputs were not redone


def test_unwritable_store_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(BenchError, match="is not writable"):
        LocalExecutor(log=lambda m: None).run([_graph()], RunStore(blocker / "runs"))
