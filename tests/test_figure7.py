"""Figure 7: PSNR and Top-1 V against gamma; the Top-1 V path shares Table 2's classifier and fog.

Graph and drawing tests only; the end-to-end smoke run of Figure 7 is in tests/test_e2e_smoke.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from support.shared import jobs_by_kind

from bench.config import get_profile
from bench.errors import BenchError
from bench.experiment.losses import FIGURE7_GAMMAS
from bench.paper import build_target as build_table
from bench.paper.figure7 import figure7, figure7_caption


def test_top1_rows_share_table2_classifier_and_fog() -> None:
    smoke = get_profile("smoke")
    fig = build_table("figure7", smoke)
    rows = pd.DataFrame(list(fig.config["rows"].values()))
    top = rows[rows.get("metric", pd.Series(dtype=str)).eq("top1_v")]
    assert fig.config["top1"] is True and len(rows) == len(fig.inputs) == 2 * 2 * len(FIGURE7_GAMMAS)
    assert sorted(zip(top["loss_set"], top["select"])) == sorted(
        (f"diffloss_gamma{g:g}", s) for g in FIGURE7_GAMMAS for s in ("best:psnr", "last"))
    kinds, t2 = jobs_by_kind(fig), jobs_by_kind(build_table(2, smoke))
    vgg = {j.key for j in t2["finetune_classifier"] if j.config["arch"] == "vgg16"}
    assert {j.key for j in kinds["finetune_classifier"]} == vgg  # VGG16 only, Table 2's own
    fog = {j.key for j in t2["degrade_cub"] if j.config["degradation"] == "fog"}
    assert {j.key for j in kinds["degrade_cub"]} == fog
    # every restoration of a "best" row takes its checkpoint from that row's PSNR evaluation
    for job in fig.inputs.values():
        if job.kind != "classify":
            continue
        restore = job.inputs["images"]
        sel = restore.inputs.get("selection")
        if job.config["select"] == "last":
            assert sel is None and "select" not in restore.config
        else:
            assert sel.kind == "evaluate" and sel.config["select"] == "best:psnr"
            assert sel.inputs["model"].key == restore.inputs["model"].key


def test_without_cub_the_figure_keeps_psnr_and_says_why(tmp_path: Path) -> None:
    fig = build_table("figure7", get_profile("truncated"), data_root=tmp_path)
    assert fig.config["top1"] is False
    assert {j.kind for j in fig.inputs.values()} == {"evaluate"} and len(fig.inputs) == 2 * len(FIGURE7_GAMMAS)


def test_paper_profile_never_drops_top1(tmp_path: Path) -> None:
    """Without CUB the paper profile keeps its Top-1 V jobs, so prepare_cub stops the run (as for Table 2)."""
    fig = build_table("figure7", get_profile("paper"), data_root=tmp_path)
    assert fig.config["top1"] is True
    (data,) = jobs_by_kind(fig)["prepare_cub"]
    assert data.config["dataset"] == "cub" and data.config["limit_per_class"] is None


def test_cub_subset_in_shared_data_is_found() -> None:
    from support.shared import shared_path

    root = shared_path("data", "cub100_subset_227").parent
    fig = build_table("figure7", get_profile("truncated", classes=5), data_root=root)
    assert fig.config["top1"] is True
    (data,) = jobs_by_kind(fig)["prepare_cub"]
    assert data.config["classes"] == 5 and data.config["dataset"] == "cub_subset"


def _results(with_top1: bool) -> pd.DataFrame:
    rows = []
    for i, g in enumerate(FIGURE7_GAMMAS):
        for select in ("best:psnr", "last"):
            common = {"task": "dehazing", "baseline": "msbdn", "loss_set": f"diffloss_gamma{g:g}", "seed": 0,
                      "select": select, "subset": "full", "git_sha": "abc1234"}
            rows.append({**common, "psnr": 15.0 + i, "ssim": 0.5, "dataset": "smoke_dehazing"})
            if with_top1:
                rows.append({**common, "metric": "top1_v", "top1_v": 40.0 + 2 * i, "dataset": "smoke_cub_standin"})
    return pd.DataFrame(rows)


def test_caption_lists_both_metrics_per_gamma_and_checkpoint() -> None:
    text = figure7_caption(_results(True))
    assert "| 0.001 | best snapshot (paper's rule) | 17.00 | 0.5000 | 44.00 |" in text
    assert "| 0.01 | last iterate | 19.00 | 0.5000 | 48.00 |" in text
    assert "smoke_cub_standin (full) after fog" in text
    none = figure7_caption(_results(False), "CUB-200-2011 was not found under the data root")
    assert "| 0 | last iterate | 15.00 | 0.5000 | – |" in none and "not drawn (CUB-200-2011 was not found" in none


def test_figure_draws_a_second_axis_only_with_top1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.axes

    twins: list[int] = []
    real = matplotlib.axes.Axes.twinx
    monkeypatch.setattr(matplotlib.axes.Axes, "twinx", lambda self: twins.append(1) or real(self))
    for with_top1, want in ((True, 1), (False, 0)):
        twins.clear()
        out = tmp_path / str(with_top1)
        out.mkdir()
        files = figure7(_results(with_top1), out, "[SMOKE] ", top1_note="" if with_top1 else "no CUB")
        assert [f.name for f in files] == ["figure7.png", "figure7.pdf"] and len(twins) == want
        assert all(f.stat().st_size > 1000 for f in files)


def _train_dir(tmp_path: Path) -> Path:
    d = tmp_path / "train"
    (d / "snapshots").mkdir(parents=True)
    for step in (10, 20):
        torch.save({"w": torch.full((1,), float(step))}, d / "snapshots" / f"step{step:07d}.pt")
    torch.save({"w": torch.full((1,), 40.0)}, d / "model.pt")
    (d / "done.json").write_text(json.dumps({"result": {"steps": 40}}))
    return d


def test_restore_uses_the_snapshot_the_psnr_evaluation_picked(tmp_path: Path) -> None:
    from bench.graph.job import Job, JobContext
    from bench.jobs.restore_cub import restore_weights

    train = _train_dir(tmp_path)
    sel = tmp_path / "eval"
    sel.mkdir()
    pd.DataFrame([{"metric": "psnr", "value": 20.0, "n": 5, "convention": "rgb", "selected_step": 20}]).to_csv(
        sel / "summary.csv", index=False)

    def ctx(with_selection: bool) -> JobContext:
        inputs = {"model": Job("train", {}), **({"selection": Job("evaluate", {})} if with_selection else {})}
        dirs = {"model": train, "selection": sel}
        return JobContext(Job("restore_cub", {}, inputs), tmp_path / "out", {n: dirs[n] for n in inputs}, "cpu",
                          input_results={"model": {"steps": 40}})

    assert restore_weights(ctx(False)) == (40, train / "model.pt")
    step, path = restore_weights(ctx(True))
    assert step == 20 and torch.load(path, weights_only=True)["w"].item() == 20.0
    pd.DataFrame([{"metric": "psnr", "value": 20.0, "n": 5, "convention": "rgb", "selected_step": 30}]).to_csv(
        sel / "summary.csv", index=False)
    with pytest.raises(BenchError, match="step 30"):
        restore_weights(ctx(True))
