"""Training the smoke prior: a small ADM trained on CPU in minutes, so the smoke profile can run DiffLoss end to end.

Same architecture family as ``256x256_diffusion_uncond`` (resblock up/down, scale-shift norm,
learned sigma, attention at the two deepest levels), only narrower and smaller. Training is the
standard eps-prediction MSE of DDPM (the learned-variance channels get no loss: DiffLoss never
reads them). Every draw comes from one seeded generator whose state is checkpointed with the
weights and the optimizer, so an interrupted run resumed from its checkpoint ends with exactly
the weights of an uninterrupted one. The steps run in the shared engine (``bench.train.engine``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.errors import BenchError
from bench.prior.adm import ADMUNet
from bench.prior.load import freeze
from bench.prior.schedule import DiffusionSchedule
from bench.prior.smoke import new_smoke_prior, smoke_prior_kwargs
from bench.train.checkpoint import CheckpointFiles
from bench.train.engine import TrainEngine, TrainTask, to_device

CHECKPOINT_FORMAT = "bench-smoke-prior/1"


def _batch(images: torch.Tensor, size: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    """Random images, random ``size`` crops and random horizontal flips, mapped to [-1, 1]."""
    n, _, h, w = images.shape
    idx = torch.randint(0, n, (batch,), generator=gen).tolist()
    tops = torch.randint(0, h - size + 1, (batch,), generator=gen).tolist()
    lefts = torch.randint(0, w - size + 1, (batch,), generator=gen).tolist()
    flips = (torch.rand(batch, generator=gen) < 0.5).tolist()
    crops = []
    for i, a, b, f in zip(idx, tops, lefts, flips):
        c = images[i, :, a : a + size, b : b + size]
        crops.append(c.flip(-1) if f else c)
    return torch.stack(crops).float() * 2 - 1


def eps_mse(model: nn.Module, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
            schedule: DiffusionSchedule) -> torch.Tensor:
    """The DDPM "simple" objective: MSE between the true noise and the predicted eps channels."""
    x_t = schedule.q_sample(x0, t, noise)
    return (model(x_t, to_device(t, x0.device))[:, :3] - noise).pow(2).mean()


class SmokePriorTask(TrainTask):
    """One step of DDPM's eps-MSE: a crop batch, t and noise, all drawn from the run's one generator."""

    def __init__(self, model: ADMUNet, opt: torch.optim.Optimizer, images: torch.Tensor, gen: torch.Generator, *,
                 schedule: DiffusionSchedule, image_size: int, batch_size: int, device: torch.device,
                 identity: dict[str, Any]):
        self.model, self.opt, self.images, self.gen = model, opt, images, gen
        self.schedule, self.image_size, self.batch_size, self.device = schedule, image_size, batch_size, device
        self.identity = identity  # what a checkpoint of this run must match
        self.losses: list[float] = []
        self._pending: list[torch.Tensor] = []  # per-step losses still on the device

    def compute(self, done: int) -> dict[str, torch.Tensor]:
        x0 = to_device(_batch(self.images, self.image_size, self.batch_size, self.gen), self.device)
        t = torch.randint(0, self.schedule.num_timesteps, (self.batch_size,), generator=self.gen)
        noise = to_device(torch.randn(x0.shape, generator=self.gen), self.device)
        loss = eps_mse(self.model, x0, t, noise, self.schedule)
        self._pending.append(loss.detach())
        return {"total": loss}

    def _flush(self) -> None:
        if self._pending:
            self.losses.extend(torch.stack(self._pending).tolist())
            self._pending = []

    def on_log(self, done: int, values: dict[str, float], cost: dict[str, Any]) -> None:
        self._flush()

    def state_dict(self) -> dict[str, Any]:
        self._flush()
        return {**self.identity, "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "rng": self.gen.get_state(), "losses": list(self.losses)}

    def check(self, state: dict[str, Any], path: Path) -> None:
        ident = self.identity
        if (state.get("format") != ident["format"] or state.get("kwargs") != ident["kwargs"]
                or state.get("seed") != ident["seed"]):
            raise BenchError(
                f"Checkpoint {path} belongs to a different smoke-prior run (format, architecture or seed differ).",
                fix="Delete it, pass resume=False, or pass the seed and image_size it was trained with.",
            )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.gen.set_state(state["rng"])
        self.losses, self._pending = list(state["losses"]), []


def train_smoke_prior(
    images: torch.Tensor,
    *,
    steps: int,
    seed: int,
    image_size: int = 32,
    device: str | torch.device = "cpu",
    checkpoint_path: str | Path,
    resume: bool = True,
    progress: Callable[[int, int, float], None] | None = None,
    batch_size: int = 8,
    lr: float = 3e-4,
    save_every: int = 50,
    log_every: int = 10,
    log: Callable[[str], None] = print,
) -> nn.Module:
    """Train (or resume, or just load) the smoke prior on ``images`` (N x 3 x S x S in [0, 1], S >= image_size).

    Saves ``{"model", "optimizer", "step", "rng", ...}`` atomically to ``checkpoint_path`` every
    ``save_every`` steps and at the end (the one before is kept as ``<name>.prev.pt``);
    ``bench.prior.load_prior(path, **smoke_prior_kwargs(size))`` reads it. ``progress(step, steps,
    loss)`` is called every ``log_every`` steps and at the end. Steps run in
    :class:`bench.train.engine.TrainEngine`; a stop request (``bench.preempt``) checkpoints
    and raises ``Preempted``. The global random generator is neither drawn from (dropout 0) nor
    touched. Returns the frozen model.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be N x 3 x S x S, got {tuple(images.shape)}")
    if min(images.shape[-2:]) < image_size:
        raise ValueError(f"images of {tuple(images.shape[-2:])} are smaller than the prior's {image_size}")
    path = Path(checkpoint_path)
    device = torch.device(device)
    kwargs = smoke_prior_kwargs(image_size)
    schedule = DiffusionSchedule.linear(1000)

    model = new_smoke_prior(kwargs, seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    identity = {"format": CHECKPOINT_FORMAT, "steps": steps, "seed": seed, "kwargs": kwargs, "lr": lr,
                "batch_size": batch_size}
    task = SmokePriorTask(model, opt, images.detach().cpu(), gen, schedule=schedule, image_size=image_size,
                          batch_size=batch_size, device=device, identity=identity)
    files = CheckpointFiles(path, log=log, weights_only=True)
    engine = TrainEngine(opt, steps=steps, device=device, log_every=log_every, checkpoints=files,
                         checkpoint_every=save_every, global_rng=False, log=log, name="smoke prior",
                         what="Smoke-prior training loss",
                         diverged_fix="Lower lr or check the images are finite and in [0, 1].",
                         progress=(lambda s, n, v: progress(s, n, v["total"])) if progress is not None else None)
    start = engine.resume(task) if resume else 0
    model.train()
    engine.run(task)
    if engine.step == start and (not path.is_file() or files.loaded_from not in (None, path)):
        engine.save(task)  # nothing ran (steps=0, or a finished run resumed from the previous file): leave a newest
    return freeze(model)
