"""restore_cub: a trained network restores the degraded CUB test images (Table 2, Figure 7's Top-1 V).

The weights are the train job's final model, or the snapshot an evaluate job picked with a
``best:<metric>`` rule (its ``selection`` input), so a Top-1 point uses the very network of the PSNR
point beside it. The images go through the one restore routine (``bench.restore``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.data.base import write_png
from bench.faults import fault_point
from bench.graph.job import JobContext, job_kind
from bench.jobs.images import IMAGE_SET, read_image_set, relative_image, write_image_set
from bench.jobs.selection import candidates, load_weights, picked_step, weights_at
from bench.restore import restore_files


def restore_weights(ctx: JobContext) -> tuple[int, Path]:
    """(step, weights file): the final model, or the snapshot the ``selection`` evaluate job picked."""
    if "selection" not in ctx.job.inputs:
        return candidates(ctx)[-1]
    return weights_at(ctx, picked_step(ctx, "selection"))


@job_kind("restore_cub", outputs=IMAGE_SET)
def restore_cub(ctx: JobContext) -> dict[str, Any]:
    from bench import build_baseline

    train = ctx.job.inputs["model"]
    frame, info = read_image_set(ctx, "images")
    step, weights = restore_weights(ctx)
    model = load_weights(build_baseline(train.config["baseline"], **train.config.get("baseline_kwargs", {})),
                         weights).to(ctx.device).eval()
    rows, t0 = [], time.perf_counter()
    task = ctx.progress.add_task("restore CUB", total=len(frame)) if ctx.progress else None
    by_id = {r.image_id: r for r in frame.itertuples(index=False)}
    for image_id, y, _ in restore_files(model, [(r.image_id, Path(r.file)) for r in by_id.values()], ctx.device):
        r = by_id[image_id]
        target, rel = relative_image(ctx, image_id)
        write_png(target, y[0].cpu())
        fault_point("image")
        rows.append({"image_id": image_id, "label": r.label, "class_name": r.class_name, "path": rel})
        if task is not None:
            ctx.progress.advance(task)
    if task is not None:
        ctx.progress.remove_task(task)
    seconds = time.perf_counter() - t0
    out = {**info, "stage": "restored", "baseline": train.config["baseline"],
           "losses": train.config["losses"], "train_config_hash": train.key,
           "select": ctx.job.config.get("select", "last"), "selected_step": step}
    write_image_set(ctx, rows, out)
    ctx.log(f"[cub] {len(rows)} images restored by {train.config['baseline']} (step {step}) in {seconds:.1f}s")
    return {"n": len(rows), "baseline": train.config["baseline"], "step": step, "seconds": round(seconds, 3)}
