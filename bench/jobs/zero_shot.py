"""zero_shot: restore a test set with a zero-shot restorer on the frozen prior (GDP), then score it like ``evaluate``.

Diffusion as the restorer, beside diffusion as the loss: the same prior file (or smoke prior job),
the same test images and metric conventions as the trained rows. Each image is sampled with its own
seed (the job's seed plus its index), so the job resumes per image: a restored PNG that is already
there is kept, and a job killed mid-image redoes that image and ends with identical outputs.
Per image it records the restoration time (the table's inference-cost column).
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import torch

from bench import preempt
from bench.data.base import read_image, write_png
from bench.evaluate.scoring import score
from bench.faults import fault_point
from bench.graph.job import Artifact, JobContext, job_kind
from bench.io import write_csv
from bench.jobs.data import dataset_info, load_split
from bench.jobs.evaluate import OUTPUTS as EVALUATE_OUTPUTS
from bench.provenance import row_provenance

OUTPUTS = {**EVALUATE_OUTPUTS,
           "timings": Artifact("timings.csv", columns=("image_id", "seconds"), doc="restoration seconds per image")}


def _prior(ctx: JobContext) -> torch.nn.Module:
    from bench.jobs.train import resolve_prior

    prior = resolve_prior(ctx)
    if prior is None:
        from bench.errors import BenchError

        raise BenchError(f"Job {ctx.job.describe()} was given no prior.", fix="Rebuild the graph (bench run).")
    return prior


@job_kind("zero_shot", outputs=OUTPUTS)
def zero_shot_job(ctx: JobContext) -> dict[str, Any]:
    from bench.registry import RESTORERS

    cfg = ctx.job.config
    t_start = time.perf_counter()
    pairs = load_split(dataset_info(ctx), "test")
    prior = _prior(ctx)
    restorer = RESTORERS.get(cfg["restorer"])(prior, task=cfg["task"], steps=cfg["steps"], **cfg.get("settings", {}))
    restored_dir = ctx.output("restored")
    timings_path = ctx.output("timings")
    timings = (pd.read_csv(timings_path, dtype={"image_id": str}) if timings_path.is_file()
               else pd.DataFrame(columns=["image_id", "seconds"]))
    done = dict(zip(timings["image_id"], timings["seconds"]))
    kept = [p.id for p in pairs.pairs if p.id in done and (restored_dir / f"{p.id}.png").is_file()]
    if kept:
        ctx.log(f"[zero-shot] resuming: {len(kept)} of {len(pairs)} image(s) already restored")
    images = ctx.progress.add_task(f"{cfg['restorer']} images", total=len(pairs), completed=len(kept)) \
        if ctx.progress else None
    steps_bar = ctx.progress.add_task(f"{cfg['restorer']} steps", total=restorer.steps) if ctx.progress else None
    for index, pair in enumerate(pairs.pairs):
        if pair.id in kept:
            continue
        preempt.check()  # between images: a stopped job loses at most the image it was on
        ctx.report(step=len(done), steps=len(pairs))

        def step(k: int, total: int, mse: float) -> None:
            if steps_bar is not None:
                ctx.progress.update(steps_bar, completed=k, total=total)

        t0 = time.perf_counter()
        y = restorer.restore(read_image(pair.degraded)[None], seed=int(cfg["seed"]) + index, progress=step)
        done[pair.id] = round(time.perf_counter() - t0, 4)
        write_png(restored_dir / f"{pair.id}.png", y[0])
        write_csv(timings_path, pd.DataFrame({"image_id": list(done), "seconds": list(done.values())}))
        fault_point("image")
        if images is not None:
            ctx.progress.advance(images)
    for bar in (images, steps_bar):
        if bar is not None:
            ctx.progress.remove_task(bar)

    def items():
        for pair in pairs.pairs:
            yield (pair.id, read_image(restored_dir / f"{pair.id}.png")[None], read_image(pair.clear)[None],
                   float(done[pair.id]))

    write_csv(ctx.output("pairs"), pd.DataFrame(
        [{"image_id": p.id, "degraded": str(p.degraded), "clear": str(p.clear)} for p in pairs.pairs]))
    rows, summary = score(items(), cfg["metrics"], cfg["convention"], ctx.device)
    params = sum(p.numel() for p in prior.parameters())
    seconds = sorted(done[p.id] for p in pairs.pairs)
    prov = row_provenance(ctx.job, ctx.device, pairs.subset) | {
        "baseline": cfg["restorer"], "select": "last", "selected_step": "", "restorer_steps": restorer.steps}
    cost = {"inference_params": params, "inference_s_median": seconds[len(seconds) // 2], "train_ms_per_step": 0.0,
            "train_peak_memory_bytes": 0, "train_peak_memory_kind": "no training"}
    frame = pd.DataFrame([{**r, "dataset": pairs.name, "split": "test", **prov} for r in rows])
    write_csv(ctx.output("per_image"), frame)
    wall = round(time.perf_counter() - t_start, 3)
    write_csv(ctx.output("summary"), pd.DataFrame([{**s, "dataset": pairs.name, **prov, **cost, "wall_time_s": wall}
                                                   for s in summary]))
    ctx.log(f"[zero-shot] {cfg['restorer']} ({restorer.steps} steps): "
            + ", ".join(f"{s['metric']}={s['value']:.4f}" for s in summary))
    return {s["metric"]: s["value"] for s in summary} | {"n": len(frame), "subset": pairs.subset,
                                                          "settings": restorer.config()}
