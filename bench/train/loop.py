"""Train a restoration network with a composite loss; resumable to the same final weights.

The step itself runs in :class:`bench.train.engine.TrainEngine`; this module says what a
restoration step is. A checkpoint holds the model, the optimiser, every random generator the
run draws from (torch's CPU and CUDA generators for dropout and drop path, the patch sampler's,
the losses' own) and the step, so a run killed or preempted at any point and restarted ends
bit-identical to an uninterrupted one on CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from bench.io import torch_save, write_csv
from bench.losses.composite import CompositeLoss
from bench.train.checkpoint import CheckpointFiles
from bench.train.engine import TrainEngine, TrainTask, to_device
from bench.train.speed import SpeedOptions


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


def priors_of(loss_fn: nn.Module) -> list[nn.Module]:
    """The frozen diffusion priors inside a loss (DiffLoss keeps its prior outside the module tree)."""
    from bench.losses.diffloss import DiffLoss

    return [m.prior for m in loss_fn.modules() if isinstance(m, DiffLoss)]


class RestorationTask(TrainTask):
    """One step: a patch batch, the network's restoration, the composite loss; rows at log steps."""

    def __init__(self, model: nn.Module, loss_fn: CompositeLoss, sampler: Any, opt: torch.optim.Optimizer,
                 cfg: TrainConfig, out_dir: Path, device: torch.device):
        self.model, self.loss_fn, self.sampler, self.opt = model, loss_fn, sampler, opt
        self.cfg, self.out_dir, self.device = cfg, out_dir, device
        self.rows: list[dict[str, Any]] = []
        self._pair: tuple[torch.Tensor, torch.Tensor] | None = None

    def compute(self, done: int) -> dict[str, torch.Tensor]:
        deg, clr = self.sampler.next_batch()
        deg, clr = to_device(deg, self.device), to_device(clr, self.device)
        restored = self.model(deg)
        self._pair = (restored, clr)
        return self.loss_fn(restored, clr)

    def after_step(self, done: int) -> dict[str, torch.Tensor | float]:
        restored, clr = self._pair  # type: ignore[misc]
        self._pair = None
        return self.loss_fn.after_step(restored.detach(), clr)

    def on_log(self, done: int, values: dict[str, float], cost: dict[str, Any]) -> None:
        self.rows.append({"step": done, **values, "ms_per_step": cost["ms_per_step"],
                          "peak_memory_bytes": cost["peak_memory_bytes"]})

    def on_step_end(self, done: int, engine: TrainEngine) -> None:
        if self.cfg.snapshot_every and done % self.cfg.snapshot_every == 0:
            engine.ensure_finite()
            torch_save(self.out_dir / "snapshots" / f"step{done:07d}.pt", self.model.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "sampler": self.sampler.state_dict(), "loss_rng": self.loss_fn.rng_state(),
                "loss_state": self.loss_fn.trainable_state(), "log": self.rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sampler.load_state_dict(state["sampler"])
        self.loss_fn.set_rng_state(state["loss_rng"])
        self.loss_fn.load_trainable_state(state["loss_state"])
        self.rows = list(state["log"])


def _progress_callback(progress: Any, steps: int, done: int, report: Callable[..., None] | None = None,
                       ) -> tuple[Any, Callable | None]:
    """The engine's log-step callback: a progress bar and/or ``report(step=, steps=)`` (``bench status``)."""
    if progress is None and report is None:
        return None, None
    task = progress.add_task("train steps", total=steps, completed=done) if progress is not None else None
    if report is not None:
        report(step=done, steps=steps)

    def update(step: int, total: int, values: dict[str, float]) -> None:
        if task is not None:
            progress.update(task, completed=step, description=f"train steps (loss {values['total']:.4g})")
        if report is not None:
            report(step=step, steps=total)

    return task, update


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
    *,
    speed: SpeedOptions | None = None,
    tensorboard: bool = True,
    report: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Run ``cfg.steps`` optimisation steps; resume from ``out_dir/checkpoint.pt`` (or the one before) if present.

    ``sampler`` yields (degraded, clear) batches and exposes ``state_dict`` / ``load_state_dict``.
    ``report(step=, steps=)`` is called at every log step (the job's lease shows it in ``bench status``).
    ``speed`` configures the network and DiffLoss's prior (:class:`SpeedOptions`) and the CUDA
    backend for the run. ``stop_after`` stops early (tests use it to simulate a kill). Writes
    ``model.pt``, ``train_log.csv`` (one row per log step: the terms, ms per step, peak memory)
    and TensorBoard events under ``tensorboard/``. Returns the final terms and the run's cost;
    raises ``bench.preempt.Preempted`` after checkpointing when a stop was requested.
    """
    out_dir = Path(out_dir)
    dev = torch.device(device)
    model.to(device).train()
    loss_fn.to(device)
    speed = speed or SpeedOptions()
    priors = priors_of(loss_fn)
    notes = speed.apply(model, priors[0] if priors else None, device=dev, log=log)[2]
    for prior in priors[1:]:
        notes += speed.configure_prior(prior, device=dev, log=log)
    opt = _optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
    torch.manual_seed(cfg.seed)
    files = CheckpointFiles(out_dir / "checkpoint.pt", log=log)
    task = RestorationTask(model, loss_fn, sampler, opt, cfg, out_dir, dev)
    engine = TrainEngine(opt, steps=cfg.steps, device=dev, log_every=cfg.log_every, checkpoints=files,
                         checkpoint_every=cfg.ckpt_every, grad_clip=cfg.grad_clip, clip_params=model.parameters(),
                         log=log, tensorboard_dir=out_dir / "tensorboard" if tensorboard else None)
    done = engine.resume(task)
    bar, engine.progress = _progress_callback(progress, cfg.steps, done, report)
    with speed.backend(dev) as backend_notes:
        notes += backend_notes
        for note in notes:
            log(f"[speed] {note}")
        result = engine.run(task, stop_after=stop_after)
    if result.stopped:
        return {"stopped_at": result.steps, **result.values}
    torch_save(out_dir / "model.pt", model.state_dict())
    write_csv(out_dir / "train_log.csv", pd.DataFrame(task.rows))
    if bar is not None:
        progress.remove_task(bar)
    return {"steps": result.steps, **{f"final_{k}": v for k, v in result.values.items()}, **result.cost,
            "speed_notes": notes}
