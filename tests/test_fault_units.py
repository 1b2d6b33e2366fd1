"""The pieces behind the kill matrix, in process: fault actions, temporary files that name their writer, the
disk-full sentence, the divergence sentence, and the run options that cut graphs (--lr, --prior-steps,
--zero-shot-steps, --baseline <restorer>)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from support.nets import Poison

from bench import faults
from bench.errors import DiskFull, TrainingDiverged
from bench.io import atomic_path, disk_full, name_location, remove_stale_temps, stale_temps, write_text


@pytest.fixture(autouse=True)
def _fresh_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults, "_hits", {})


def test_enospc_action_fails_the_nth_write_and_every_later_one(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(faults.ENV, "main:before_rename:2:enospc")
    write_text(tmp_path / "a.txt", "1")  # the first write passes
    for name in ("b.txt", "c.txt"):  # a full disk stays full
        with pytest.raises(DiskFull, match=rf"The disk is full: writing {tmp_path}/{name} failed with .* free"):
            write_text(tmp_path / name, "2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]  # no temporary file left


def test_a_fault_only_acts_in_its_scope_and_a_bad_action_is_refused(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(faults.ENV, "train:before_rename:1:enospc")
    write_text(tmp_path / "main.txt", "ok")  # scope "main": untouched
    with faults.scope("train"), pytest.raises(DiskFull):
        write_text(tmp_path / "train.txt", "x")
    monkeypatch.setenv(faults.ENV, "train:before_rename:1:explode")
    with pytest.raises(ValueError, match="unknown action 'explode'"):
        faults.fault_point("before_rename")


def test_a_kill_is_a_real_sigkill_with_the_temporary_file_left_behind(tmp_path: Path) -> None:
    code = ("from pathlib import Path; from bench.io import write_text; "
            f"write_text(Path({str(tmp_path)!r}) / 'x.txt', 'data')")
    env = {**os.environ, faults.ENV: "main:before_rename"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == -9
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".x.txt.") and left[0].endswith(".tmp")
    assert [p.name for p in stale_temps(tmp_path)] == left  # its writer is gone: stale
    assert remove_stale_temps(tmp_path) and not list(tmp_path.iterdir())


def test_a_live_writers_temporary_file_is_kept_unless_the_folder_is_leased(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "y.txt") as tmp:
        tmp.write_text("mine")
        assert stale_temps(tmp_path) == []  # this process is alive: another writer's file, not stale
        assert stale_temps(tmp_path, any_owner=True) == [tmp]  # a lease holder may remove any
    foreign = tmp_path / ".z.txt.deadbeef-1.abc.tmp"  # another host's writer: never judged from here
    foreign.write_text("")
    assert stale_temps(tmp_path) == []


def test_disk_full_names_the_folder_and_the_option_that_moves_it(tmp_path: Path, monkeypatch) -> None:
    name_location(tmp_path / "runs", "job outputs", "--runs-dir (or BENCH_RUNS)")
    err = disk_full(tmp_path / "runs" / "abc" / "checkpoint.pt")
    assert err.message.startswith(f"The disk is full: writing {tmp_path}/runs/abc/checkpoint.pt failed with ")
    assert err.message.endswith(f"free on the file system of {tmp_path}/runs.")
    assert "--runs-dir (or BENCH_RUNS)" in (err.fix or "") and "finished jobs are kept" in (err.fix or "")
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    assert "BENCH_CACHE" in (disk_full(tmp_path / "cache" / "smoke-data" / "x.png").fix or "")


def test_torch_save_on_a_full_disk_is_recognised_though_torch_raises_runtimeerror(tmp_path: Path, monkeypatch) -> None:
    import bench.io as bio

    def fails(obj, f, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")

    monkeypatch.setattr(torch, "save", fails)
    monkeypatch.setattr(bio, "_no_room_left", lambda folder: True)  # as a probe write on a full disk finds
    with pytest.raises(DiskFull):
        bio.torch_save(tmp_path / "c.pt", {"w": torch.zeros(3)})
    monkeypatch.setattr(bio, "_no_room_left", lambda folder: False)  # room left: the error is torch's own
    with pytest.raises(RuntimeError, match="unexpected pos"):
        bio.torch_save(tmp_path / "c.pt", {"w": torch.zeros(3)})
    assert not list(tmp_path.iterdir())


def test_a_full_disk_is_told_once_by_the_scheduler_for_a_pool_worker(tmp_path: Path) -> None:
    from bench.graph.scheduler import RunReport, raise_for
    from bench.graph.store import RunStore

    report = RunReport(nospace=["abc"], labels={"abc": "train:x"})
    with pytest.raises(DiskFull, match=r"^Job train:x stopped because the disk is full \(.* free on the file system"):
        raise_for(report, RunStore(tmp_path))


@pytest.mark.parametrize(("bad_from", "says"), [
    (2, "no checkpoint had been written yet (the first was due at step 3)"),
    (5, "the last good checkpoint (step 3) is kept at "),
])
def test_the_divergence_sentence_says_which_checkpoint_is_left(tmp_path: Path, bad_from: int, says: str) -> None:
    from bench.data.patches import PatchSampler
    from bench.losses.composite import build_loss
    from bench.train.loop import TrainConfig, train

    g = torch.Generator().manual_seed(0)
    clear = [torch.rand(3, 24, 24, generator=g) for _ in range(2)]
    sampler = PatchSampler([c * 0.5 for c in clear], clear, patch=16, batch=2, seed=1)
    cfg = TrainConfig(steps=8, batch=2, patch=16, lr=1e-3, seed=1, ckpt_every=3, log_every=1)
    with pytest.raises(TrainingDiverged, match=rf"became inf at step {bad_from}; ") as info:
        train(Poison(bad_from), build_loss({"l2": {}}), sampler, cfg, tmp_path / "out", log=lambda m: None)
    assert says in info.value.message


# --------------------------------------------------------------------------------------------- run options


def _plan(**spec):
    from bench import pipeline

    return pipeline.build_plan(pipeline.RunSpec(**spec))


def _kinds(job) -> dict[str, list]:
    out: dict[str, list] = {}
    for j in job.walk():
        out.setdefault(j.kind, []).append(j)
    return out


def test_baseline_names_a_zero_shot_restorer_and_cuts_table1_to_its_rows() -> None:
    kinds = _kinds(_plan(table=1, baselines=["gdp_x0"]).graph)
    assert set(kinds) == {"prepare_data", "train_prior", "zero_shot", "render"} and len(kinds["zero_shot"]) == 3


def test_lr_prior_steps_and_zero_shot_steps_enter_the_keys_they_change() -> None:
    base = _kinds(_plan(table=1, baselines=["gdp_x0", "iat"]).graph)
    cut = _kinds(_plan(table=1, baselines=["gdp_x0", "iat"], lr=1e-3, prior_steps=3, zero_shot_steps=2).graph)
    assert cut["train"][0].config["train"]["lr"] == 1e-3 and cut["train_prior"][0].config["steps"] == 3
    assert {j.config["steps"] for j in cut["zero_shot"]} == {2}
    for kind in ("train", "train_prior", "zero_shot"):
        assert {j.key for j in cut[kind]}.isdisjoint({j.key for j in base[kind]}), kind
    assert {j.key for j in cut["prepare_data"]} == {j.key for j in base["prepare_data"]}  # data is unchanged
