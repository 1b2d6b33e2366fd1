"""Constructed results and per-image frames for every paper target, with a known DiffLoss effect.

The row descriptions are the real ones (each target's smoke render job's ``rows``: its graph is built,
nothing is run); the values are drawn so that the DiffLoss rows (and Figure 7's gamma = 1e-3) are
better than their partners by a known amount, image by image, plus noise whose mean over the images
is 0 (so the mean paired difference of any two rows is exactly the built-in effect). What ``bench.jobs.render``'s
``gather`` and ``gather_per_image`` would hand to the layouts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bench.config import get_profile
from bench.evaluate.classify import ARCHS
from bench.paper import build_target

#: Per-image metrics each input kind has (set-level FID and KID are in the results only).
IMAGE_METRICS = ("psnr", "ssim", "lpips")
#: The effect built into every "better" row, per metric, and the per-image noise sd.
EFFECT = {"psnr": 1.0, "ssim": 0.02, "lpips": -0.02, "top1": 30.0}
NOISE = {"psnr": 0.3, "ssim": 0.005, "lpips": 0.005}
BETTER = {"diffloss", "l1+diffloss", "diffloss_gamma0.001"}
PROVENANCE = {"dataset": "d", "git_sha": "abc1234", "git_dirty": False, "device": "cpu:x", "config_hash": "h",
              "train_dataset": "", "train_subset": ""}


def target_rows(target: str, seeds: int = 1) -> list[tuple[str, dict[str, Any], str]]:
    """(input name, row description, job kind) of ``target``'s smoke render job (graph built, not run)."""
    render = build_target(target, get_profile("smoke"), seeds=seeds)
    return [(name, spec, render.inputs[name].kind) for name, spec in render.config["rows"].items()]


def constructed(target: str, seeds: int = 1, n_images: int = 16, profile: str = "paper", subset: str = "full",
                effect: float = 1.0, fid_n: int | None = None, rng_seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(results, per_image) of ``target`` with ``effect`` times :data:`EFFECT` on the better rows (FID and KID on
    ``fid_n`` images, by default the ``n_images`` test images)."""
    rng = np.random.default_rng(rng_seed)
    fid_n = n_images if fid_n is None else fid_n
    image_base = {m: rng.normal(0, 1, n_images) for m in IMAGE_METRICS}
    results, per_image = [], []
    for name, spec, kind in target_rows(target, seeds):
        better = spec.get("loss_set") in BETTER
        ids = [f"img{i:03d}" for i in range(n_images)]
        frame = pd.DataFrame({"input": name, "image_id": ids})
        rec: dict[str, Any] = {"input": name, **spec, **PROVENANCE, "subset": subset, "profile": profile}
        if kind == "classify":
            metric = spec.get("metric") or ARCHS[spec["classifier"]]
            p = 0.4 + (0.3 * effect if better else 0.0)
            correct = rng.random(n_images) < p
            frame[metric] = np.where(correct, 100.0, 0.0)
            rec[metric], rec[f"{metric}_n"] = float(frame[metric].mean()), n_images
        else:
            centre = {"psnr": 15.0, "ssim": 0.5, "lpips": 0.4}
            scale = {"psnr": 1.0, "ssim": 0.05, "lpips": 0.05}
            for m in IMAGE_METRICS:
                noise = rng.normal(0, NOISE[m], n_images)
                vals = (centre[m] + scale[m] * image_base[m] + (EFFECT[m] * effect if better else 0.0)
                        + noise - noise.mean())  # mean 0 over the images: every pair's mean difference is exact
                frame[m] = vals
                rec[m], rec[f"{m}_n"] = float(vals.mean()), n_images
            rec["fid"], rec["fid_n"] = 250.0 - (10.0 * effect if better else 0.0), fid_n
            rec["kid"], rec["kid_n"] = 0.05 - (0.01 * effect if better else 0.0), fid_n
        for k, v in spec.items():
            frame[k] = v
        results.append(rec)
        per_image.append(frame)
    return pd.DataFrame(results), pd.concat(per_image, ignore_index=True)
