"""train: one network, one loss set, one seed; resumable (see ``bench.train.loop``)."""

from __future__ import annotations

from typing import Any

import torch

from bench.graph.job import Artifact, JobContext, job_kind
from bench.jobs.data import dataset_info, load_split
from bench.losses.composite import build_loss
from bench.train.loop import TrainConfig, train

#: What bench.train.loop.train writes in the job folder (checkpoint.pt is scratch for resuming, not an output).
OUTPUTS = {
    "model": Artifact("model.pt", doc="final weights (state_dict)"),
    "log": Artifact("train_log.csv", columns=("step",), doc="logged loss terms per log step"),
    "snapshots": Artifact("snapshots/", doc="step<N>.pt weights every snapshot_every steps (best-of-K rules)"),
}


class ShapesSeen:
    """The batch source, recording the shapes of the batches training really drew (rehearsals report them)."""

    def __init__(self, source: Any):
        self.source = source
        self.shapes: set[tuple[int, ...]] = set()

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        degraded, clear = self.source.next_batch()
        self.shapes.add(tuple(degraded.shape))
        return degraded, clear

    def __getattr__(self, name: str) -> Any:  # state_dict, load_state_dict, close, __len__ ...
        return getattr(self.source, name)

    def __len__(self) -> int:
        return len(self.source)


def resolve_prior(ctx: JobContext) -> torch.nn.Module | None:
    """The frozen diffusion prior this job was given: a smoke prior job, a file, or random weights."""
    cfg = ctx.job.config
    if "prior" in ctx.input_dirs:
        from bench.jobs.prior import load_prior_file

        return load_prior_file(ctx.artifact("prior", "prior"), ctx.device)
    ref = cfg.get("prior")
    if not ref:
        return None
    from bench.prior.load import load_prior, random_prior

    if ref["kind"] == "random":
        return random_prior(ref["adm_kwargs"], ref["seed"], device=ctx.device)
    path = ctx.job.params.get("prior_path")
    return load_prior(path, device=ctx.device, expected_sha256=ref["sha256"], **ref["adm_kwargs"])


@job_kind("train", outputs=OUTPUTS)
def train_job(ctx: JobContext) -> dict[str, Any]:
    from bench import build_baseline
    from bench.data.stream import default_workers, training_batches

    cfg = ctx.job.config
    tcfg = TrainConfig(**cfg["train"])
    pairs = load_split(dataset_info(ctx), "train")
    # lazily decoded patches (workers and pinned memory on a GPU node): the same draws as PatchSampler
    workers = int(ctx.job.params.get("loader_workers", default_workers(len(pairs), ctx.device)))
    sampler = ShapesSeen(training_batches(pairs, patch=tcfg.patch, batch=tcfg.batch, seed=tcfg.seed, workers=workers,
                                          pin_memory=ctx.device.startswith("cuda")))
    torch.manual_seed(tcfg.seed)  # the network's initial weights depend on the seed only
    model = build_baseline(cfg["baseline"], **cfg.get("baseline_kwargs", {}))
    prior = resolve_prior(ctx)
    loss = build_loss(cfg["losses"], {"prior": prior} if prior is not None else {}, seed=tcfg.seed)
    from bench.train.speed import SpeedOptions

    # options that change numbers are in the key (config); the rest (prior checkpointing) only in params
    speed = SpeedOptions.from_dict({**ctx.job.params.get("speed", {}), **cfg.get("speed", {})})
    ctx.log(f"[train] {cfg['baseline']} with {'+'.join(cfg['losses'])} for {tcfg.steps} steps on {len(pairs)} pairs")
    try:
        result = train(model, loss, sampler, tcfg, ctx.out_dir, device=ctx.device, log=ctx.log,
                       progress=ctx.progress, speed=speed, report=ctx.report)
    finally:
        sampler.close()
    return {**result, "train_dataset": pairs.name, "train_subset": pairs.subset, "loader_workers": workers,
            "batch_shapes": sorted(sampler.shapes), "prior_image_size": getattr(prior, "image_size", None)}
