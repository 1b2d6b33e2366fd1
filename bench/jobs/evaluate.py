"""evaluate: restore a test set with a trained network, score it, write per-image and summary CSVs.

Every row carries the metric's convention and the run's provenance (git SHA, config hashes, seed,
profile, data subset, package versions, device); the restored images are kept for visual grids and
for ``bench compare --pred-a/--pred-b``. Per image it also records the restoration time (the table's
inference-cost column).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import torch

from bench.data.base import PairedSet, read_image, write_png
from bench.faults import fault_point
from bench.graph.job import Artifact, JobContext, job_kind
from bench.io import write_csv
from bench.jobs.data import dataset_info, load_split
from bench.jobs.selection import best_of, candidates, load_weights, selection_frame
from bench.provenance import row_provenance
from bench.restore import restore_files

OUTPUTS = {
    "per_image": Artifact("per_image.csv", columns=("image_id",), doc="one row per test image: metrics, "
                                                                      "conventions, provenance, restore seconds"),
    "summary": Artifact("summary.csv", columns=("metric", "value", "n", "convention", "selected_step"),
                        doc="one row per metric (set-level FID/KID with their N)"),
    "restored": Artifact("restored/", doc="<image_id>.png, 8-bit, as scored"),
    "pairs": Artifact("pairs.csv", columns=("image_id", "degraded", "clear"), doc="the test pairs' files"),
    "selection": Artifact("selection.csv", doc="best:<metric> rules: each candidate step's score"),
}


def _restored(model: torch.nn.Module, pairs: PairedSet, device: str) -> Iterator[tuple[str, torch.Tensor, float]]:
    return restore_files(model, [(p.id, p.degraded) for p in pairs.pairs], device)


def select_weights(ctx: JobContext, model: torch.nn.Module, pairs: PairedSet, select: str) -> tuple[int, Any]:
    """The checkpoint ``select`` names: "last", or "best:<metric>" over snapshots (the paper's Table 3 rule)."""
    from bench.evaluate.metrics import build_metric

    options = candidates(ctx)
    if select == "last":
        return options[-1]
    metric_name = select.removeprefix("best:")
    metric = build_metric(metric_name, convention=ctx.job.config["convention"], device=ctx.device)
    clear = {p.id: p.clear for p in pairs.pairs}

    def score(path: Any) -> float:
        load_weights(model, path)
        vals = [float(metric(y, read_image(clear[i])[None].to(ctx.device))) for i, y, _ in
                _restored(model, pairs, ctx.device)]
        return sum(vals) / len(vals)

    picked, scores = best_of(options, score, metric.lower_better)
    write_csv(ctx.output("selection"), selection_frame(scores, metric_name))
    return picked


def cost_columns(model: torch.nn.Module, rows: list[dict[str, Any]], trained: dict[str, Any]) -> dict[str, Any]:
    """What the network costs: parameters used at inference, median seconds per test image (as restored
    here), and its training's measured ms per step and peak memory (from the train job's own log)."""
    seconds = sorted(float(r["wall_time_s"]) for r in rows)
    return {"inference_params": sum(p.numel() for p in model.parameters()),
            "inference_s_median": seconds[len(seconds) // 2] if seconds else float("nan"),
            "train_ms_per_step": trained.get("ms_per_step_median", ""),
            "train_peak_memory_bytes": trained.get("peak_memory_bytes", ""),
            "train_peak_memory_kind": trained.get("peak_memory_kind", "")}


@job_kind("evaluate", outputs=OUTPUTS)
def evaluate_job(ctx: JobContext) -> dict[str, Any]:
    from bench import build_baseline
    from bench.evaluate.scoring import Item, score

    cfg = ctx.job.config
    t_start = time.perf_counter()
    pairs = load_split(dataset_info(ctx), cfg["split"])
    model = build_baseline(cfg["baseline"], **cfg.get("baseline_kwargs", {})).to(ctx.device).eval()
    step, weights = select_weights(ctx, model, pairs, cfg.get("select", "last"))
    load_weights(model, weights)
    train = ctx.job.inputs.get("model")
    prov = row_provenance(ctx.job, ctx.device, pairs.subset, train, ctx.result("model")) | {
        "select": cfg.get("select", "last"), "selected_step": step}
    task = ctx.progress.add_task("evaluate images", total=len(pairs)) if ctx.progress else None
    clear = {p.id: p.clear for p in pairs.pairs}
    restored_dir = ctx.output("restored")

    def items() -> Iterator[Item]:
        for image_id, y, seconds in _restored(model, pairs, ctx.device):
            yield image_id, y, read_image(clear[image_id])[None].to(ctx.device), seconds

    def saved(image_id: str, y: torch.Tensor) -> None:
        write_png(restored_dir / f"{image_id}.png", y[0].cpu())
        fault_point("image")
        if task is not None:
            ctx.progress.advance(task)

    write_csv(ctx.output("pairs"), pd.DataFrame(
        [{"image_id": p.id, "degraded": str(p.degraded), "clear": str(p.clear)} for p in pairs.pairs]))
    rows, summary = score(items(), cfg["metrics"], cfg["convention"], ctx.device, on_item=saved)
    if task is not None:
        ctx.progress.remove_task(task)
    frame = pd.DataFrame([{**r, "dataset": pairs.name, "split": cfg["split"], **prov} for r in rows])
    write_csv(ctx.output("per_image"), frame)
    wall = round(time.perf_counter() - t_start, 3)
    sframe = pd.DataFrame([{**s, "dataset": pairs.name, **prov, **cost_columns(model, rows, ctx.result("model")),
                            "wall_time_s": wall} for s in summary])
    write_csv(ctx.output("summary"), sframe)
    ctx.log(f"[eval] {cfg['baseline']} (step {step}): " + ", ".join(f"{s['metric']}={s['value']:.4f}" for s in summary))
    return {s["metric"]: s["value"] for s in summary} | {"n": len(frame), "subset": pairs.subset, "step": step}
