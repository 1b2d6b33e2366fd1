"""evaluate: restore a test set with a trained network, score it, write per-image and summary CSVs.

Every row carries the metric's convention and the run's provenance (git SHA, config
hashes, seed, profile, data subset, package versions, device, wall time).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from bench.data.base import Pair, PairedSet, read_image, write_png
from bench.evaluate.scoring import Item, score
from bench.graph.job import JobContext, job_kind
from bench.hashing import canonical_json
from bench.io import write_csv
from bench.jobs.data import data_info, load_split
from bench.provenance import environment
from bench.report.visual import PAIRS_FILE

RESTORED = "restored"


def provenance_columns(ctx: JobContext, subset: str) -> dict[str, Any]:
    cfg = ctx.job.config
    train = ctx.job.inputs.get("model")
    trained_on: dict[str, Any] = {}
    if "model" in ctx.input_dirs:  # what the network was trained on (a stand-in set says so here)
        result = json.loads((ctx.input("model") / "done.json").read_text()).get("result", {})
        trained_on = {"train_dataset": result.get("train_dataset", ""), "train_subset": result.get("train_subset", "")}
    return {
        "profile": cfg["profile"],
        "baseline": cfg["baseline"],
        "losses": canonical_json(train.config["losses"]) if train is not None else "",
        "seed": cfg["seed"],
        "subset": subset,
        "config_hash": ctx.job.key,
        "train_config_hash": train.key if train is not None else "",
        **trained_on,
        **environment(ctx.device),
    }


def candidates(train_dir: Path) -> list[tuple[int, Path]]:
    """(step, weights file) for every snapshot and the final model, in training order."""
    snaps = sorted((train_dir / "snapshots").glob("step*.pt"))
    out = [(int(p.stem.removeprefix("step")), p) for p in snaps]
    final = train_dir / "model.pt"
    steps = json.loads((train_dir / "done.json").read_text())["result"].get("steps", -1)
    if not out or out[-1][0] != steps:
        out.append((steps, final))
    return out


def restore_all(model: torch.nn.Module, pairs: PairedSet, device: str) -> Iterator[tuple[Pair, torch.Tensor, float]]:
    for pair in pairs.pairs:
        t0 = time.perf_counter()
        x = read_image(pair.degraded)[None].to(device)
        with torch.no_grad():
            y = model(x).clamp(0, 1)
        yield pair, y, time.perf_counter() - t0


def select_weights(ctx: JobContext, model: torch.nn.Module, pairs: PairedSet, select: str) -> tuple[int, Path]:
    """The checkpoint ``select`` names: "last", or "best:<metric>" over snapshots (the paper's Table 3 rule)."""
    from bench.evaluate.metrics import build_metric

    options = candidates(ctx.input("model"))
    if select == "last":
        return options[-1]
    metric_name = select.removeprefix("best:")
    metric = build_metric(metric_name, convention=ctx.job.config["convention"], device=ctx.device)
    scores = []
    for step, path in options:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        vals = [float(metric(y, read_image(p.clear)[None].to(ctx.device))) for p, y, _ in
                restore_all(model, pairs, ctx.device)]
        scores.append({"step": step, metric_name: sum(vals) / len(vals)})
    write_csv(ctx.out_dir / "selection.csv", pd.DataFrame(scores))
    values = [s[metric_name] for s in scores]
    best = min(values) if metric.lower_better else max(values)
    return options[values.index(best)]


@job_kind("evaluate")
def evaluate_job(ctx: JobContext) -> dict[str, Any]:
    from bench import build_baseline

    cfg = ctx.job.config
    t_start = time.perf_counter()
    pairs = load_split(data_info(ctx.input("data")), cfg["split"])
    model = build_baseline(cfg["baseline"], **cfg.get("baseline_kwargs", {})).to(ctx.device).eval()
    step, weights = select_weights(ctx, model, pairs, cfg.get("select", "last"))
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    prov = provenance_columns(ctx, pairs.subset) | {"select": cfg.get("select", "last"), "selected_step": step}
    task = ctx.progress.add_task("evaluate images", total=len(pairs)) if ctx.progress else None

    def items() -> Iterator[Item]:
        for pair, y, seconds in restore_all(model, pairs, ctx.device):
            yield pair.id, y, read_image(pair.clear)[None].to(ctx.device), seconds

    def saved(image_id: str, y: torch.Tensor) -> None:
        write_png(ctx.out_dir / RESTORED / f"{image_id}.png", y[0].cpu())
        if task is not None:
            ctx.progress.advance(task)

    write_csv(ctx.out_dir / PAIRS_FILE, pd.DataFrame(
        [{"image_id": p.id, "degraded": str(p.degraded), "clear": str(p.clear)} for p in pairs.pairs]))
    rows, summary = score(items(), cfg["metrics"], cfg["convention"], ctx.device, on_item=saved)
    if task is not None:
        ctx.progress.remove_task(task)
    frame = pd.DataFrame([{**r, "dataset": pairs.name, "split": cfg["split"], **prov} for r in rows])
    write_csv(ctx.out_dir / "per_image.csv", frame)
    wall = round(time.perf_counter() - t_start, 3)
    sframe = pd.DataFrame([{**s, "dataset": pairs.name, **prov, "wall_time_s": wall} for s in summary])
    write_csv(ctx.out_dir / "summary.csv", sframe)
    ctx.log(f"[eval] {cfg['baseline']} (step {step}): " + ", ".join(f"{s['metric']}={s['value']:.4f}" for s in summary))
    return {s["metric"]: s["value"] for s in summary} | {"n": len(frame), "subset": pairs.subset, "step": step}
