"""Train a restoration network with a composite loss; resumable to the same final weights.

A checkpoint holds the model, the optimiser, every random generator the run draws from
(torch's global one for dropout, the patch sampler's, the losses' own) and the step, so
a run killed at any point and restarted ends bit-identical to an uninterrupted one on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from bench.errors import TrainingDiverged
from bench.io import torch_save, write_csv
from bench.losses.composite import CompositeLoss


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights (so it all enters the job hash)."""

    steps: int
    batch: int
    patch: int
    lr: float
    seed: int
    ckpt_every: int = 50
    log_every: int = 10
    snapshot_every: int = 0  # >0 keeps weights every N steps (Table 3's "best in the first K iterations")
    optimizer: str = "adam"
    grad_clip: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _optimizer(cfg: TrainConfig, params: Any) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr)
    raise ValueError(f"unknown optimizer '{cfg.optimizer}'")


def train(
    model: nn.Module,
    loss_fn: CompositeLoss,
    sampler: Any,
    cfg: TrainConfig,
    out_dir: Path,
    device: str = "cpu",
    log: Callable[[str], None] = print,
    progress: Any = None,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Run ``cfg.steps`` optimisation steps; resume from ``out_dir/checkpoint.pt`` if present.

    ``sampler`` yields (degraded, clear) batches and exposes ``state_dict`` /
    ``load_state_dict``. ``stop_after`` stops early (tests use it to simulate a kill).
    Returns the final logged terms; writes ``model.pt`` and ``train_log.csv``.
    """
    out_dir = Path(out_dir)
    ckpt_path = out_dir / "checkpoint.pt"
    model.to(device).train()
    loss_fn.to(device)
    opt = _optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
    torch.manual_seed(cfg.seed)
    step, rows = 0, []
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sampler.load_state_dict(ck["sampler"])
        loss_fn.set_rng_state(ck["loss_rng"])
        loss_fn.load_trainable_state(ck["loss_state"])
        torch.set_rng_state(ck["torch_rng"])
        step, rows = ck["step"], ck["log"]
        log(f"[train] resuming from step {step} of {cfg.steps} ({ckpt_path})")

    task = progress.add_task("train steps", total=cfg.steps, completed=step) if progress else None
    last: dict[str, float] = {}
    while step < cfg.steps:
        deg, clr = sampler.next_batch()
        deg, clr = deg.to(device), clr.to(device)
        restored = model(deg)
        terms = loss_fn(restored, clr)
        total = terms["total"]
        if not math.isfinite(total.item()):
            raise TrainingDiverged(
                f"Loss became {total.item()} at step {step + 1}; the last good checkpoint is kept at {ckpt_path}.",
                fix="Lower the learning rate or check the inputs; rerun resumes from the checkpoint.",
            )
        opt.zero_grad(set_to_none=True)
        total.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        aux = loss_fn.after_step(restored.detach(), clr)
        step += 1
        last = {k: float(v.detach()) for k, v in terms.items()} | aux
        if step % cfg.log_every == 0 or step == cfg.steps:
            rows.append({"step": step, **last})
        if cfg.snapshot_every and step % cfg.snapshot_every == 0:
            torch_save(out_dir / "snapshots" / f"step{step:07d}.pt", model.state_dict())
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            torch_save(ckpt_path, {
                "model": model.state_dict(), "optimizer": opt.state_dict(), "sampler": sampler.state_dict(),
                "loss_rng": loss_fn.rng_state(), "loss_state": loss_fn.trainable_state(),
                "torch_rng": torch.get_rng_state(), "step": step, "log": rows,
            })
        if task is not None:
            progress.update(task, completed=step, description=f"train steps (loss {last['total']:.4g})")
        if stop_after is not None and step >= stop_after:
            return {"stopped_at": step, **last}
    torch_save(out_dir / "model.pt", model.state_dict())
    write_csv(out_dir / "train_log.csv", pd.DataFrame(rows))
    if task is not None:
        progress.remove_task(task)
    return {"steps": step, **{f"final_{k}": v for k, v in last.items()}}
