"""train_prior: the smoke profile's small ADM, trained here on the clean training images.

The paper profile never runs this job: it uses the official 256x256 unconditional
checkpoint (``--prior`` or the weights manifest; see ``bench.prior.ref``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench.data.base import read_image
from bench.graph.job import Artifact, JobContext, job_kind
from bench.jobs.data import dataset_info, load_split
from bench.ui import step_callback
from bench.weights import sha256_of

OUTPUTS = {"prior": Artifact("prior.pt", doc="{'adm_kwargs': ..., 'state_dict': ...} of the frozen smoke prior")}


@job_kind("train_prior", outputs=OUTPUTS)
def train_prior_job(ctx: JobContext) -> dict[str, Any]:
    from bench.train.smoke_prior import train_smoke_prior

    cfg = ctx.job.config
    pairs = load_split(dataset_info(ctx), "train")
    size = cfg["adm_kwargs"]["image_size"]
    images = torch.stack([_center_resize(read_image(p.clear), size * 2) for p in pairs.pairs])
    model = train_smoke_prior(images, steps=cfg["steps"], seed=cfg["seed"], image_size=size, device=ctx.device,
                              checkpoint_path=ctx.out_dir / "checkpoint.pt",
                              progress=step_callback(ctx.progress, "smoke prior steps", cfg["steps"]), log=ctx.log)
    from bench.io import torch_save

    path = ctx.output("prior")
    torch_save(path, {"adm_kwargs": cfg["adm_kwargs"], "state_dict": model.state_dict()})
    digest = sha256_of(path)
    ctx.log(f"[prior] smoke prior saved to {path} (sha256 {digest[:16]}...)")
    return {"path": str(path), "sha256": digest}


def _center_resize(img: torch.Tensor, short: int) -> torch.Tensor:
    """Resize so the short side is ``short`` and centre-crop a square: the prior sees whole scenes."""
    import torch.nn.functional as F

    h, w = img.shape[-2:]
    s = short / min(h, w)
    img = F.interpolate(img[None], size=(max(short, round(h * s)), max(short, round(w * s))), mode="bilinear",
                        antialias=True, align_corners=False)[0]
    h, w = img.shape[-2:]
    top, left = (h - short) // 2, (w - short) // 2
    return img[:, top:top + short, left:left + short].clamp(0, 1)


def load_prior_file(path: Path, device: str) -> torch.nn.Module:
    """The frozen smoke prior a train_prior job wrote (its ``prior`` artifact)."""
    from bench.prior import create_adm, freeze

    ck = torch.load(path, map_location="cpu", weights_only=True)
    model = create_adm(**ck["adm_kwargs"])
    model.load_state_dict(ck["state_dict"], strict=True)
    return freeze(model.to(device))
