"""A small ADM prior trained on CPU in minutes, so the smoke profile can run DiffLoss end to end.

Same architecture family as ``256x256_diffusion_uncond`` (resblock up/down, scale-shift norm,
learned sigma, attention at the two deepest levels), only narrower and smaller. Training is the
standard eps-prediction MSE of DDPM (the learned-variance channels get no loss: DiffLoss never
reads them). Every draw comes from one seeded generator whose state is checkpointed with the
weights and the optimizer, so an interrupted run resumed from its checkpoint ends with exactly
the weights of an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.errors import BenchError
from bench.io import torch_save
from bench.prior.adm import ADMUNet, create_adm
from bench.prior.load import freeze
from bench.prior.schedule import DiffusionSchedule

CHECKPOINT_FORMAT = "bench-smoke-prior/1"


def smoke_prior_kwargs(image_size: int = 32) -> dict[str, Any]:
    """``create_adm`` kwargs of the smoke prior at ``image_size`` (a multiple of 8)."""
    if image_size % 8:
        raise ValueError(f"the smoke prior's image_size must be a multiple of 8, got {image_size}")
    return dict(
        image_size=image_size,
        num_channels=32,
        num_res_blocks=2,
        channel_mult="1,2,2,2",
        learn_sigma=True,
        class_cond=False,
        use_checkpoint=False,
        attention_resolutions=f"{image_size // 4},{image_size // 8}",
        num_heads=1,
        num_head_channels=32,
        num_heads_upsample=-1,
        use_scale_shift_norm=True,
        dropout=0.0,
        resblock_updown=True,
        use_fp16=False,
        use_new_attention_order=False,
    )


#: The smoke prior: 32x32, widths 32/64, 2,777,574 parameters.
SMOKE_PRIOR_KWARGS: dict[str, Any] = smoke_prior_kwargs(32)


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
    return (model(x_t, t.to(x0.device))[:, :3] - noise).pow(2).mean()


def _new_model(kwargs: dict[str, Any], seed: int) -> ADMUNet:
    with torch.random.fork_rng(devices=[]):  # a seeded init that leaves the global RNG untouched
        torch.manual_seed(seed)
        return create_adm(**kwargs)


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
) -> nn.Module:
    """Train (or resume, or just load) the smoke prior on ``images`` (N x 3 x S x S in [0, 1], S >= image_size).

    Saves ``{"model", "optimizer", "step", "rng", ...}`` atomically to ``checkpoint_path`` every
    ``save_every`` steps and at the end; ``bench.prior.load_prior(path, **smoke_prior_kwargs(size))``
    reads it. ``progress(step, steps, loss)`` is called after every step. Returns the frozen model.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be N x 3 x S x S, got {tuple(images.shape)}")
    if min(images.shape[-2:]) < image_size:
        raise ValueError(f"images of {tuple(images.shape[-2:])} are smaller than the prior's {image_size}")
    path = Path(checkpoint_path)
    device = torch.device(device)
    kwargs = smoke_prior_kwargs(image_size)
    schedule = DiffusionSchedule.linear(1000)

    model = _new_model(kwargs, seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    step, losses = 0, []
    if resume and path.is_file():
        ck = torch.load(path, map_location=device, weights_only=False)
        if ck.get("format") != CHECKPOINT_FORMAT or ck.get("kwargs") != kwargs or ck.get("seed") != seed:
            raise BenchError(
                f"Checkpoint {path} belongs to a different smoke-prior run (format, architecture or seed differ).",
                fix="Delete it, pass resume=False, or pass the seed and image_size it was trained with.",
            )
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["rng"])
        step, losses = int(ck["step"]), list(ck["losses"])

    def save() -> None:
        torch_save(path, {
            "format": CHECKPOINT_FORMAT, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "rng": gen.get_state(), "step": step, "steps": steps, "seed": seed, "kwargs": kwargs,
            "lr": lr, "batch_size": batch_size, "losses": losses,
        })

    images = images.detach().cpu()
    model.train()
    while step < steps:
        x0 = _batch(images, image_size, batch_size, gen).to(device)
        t = torch.randint(0, schedule.num_timesteps, (batch_size,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen).to(device)
        loss = eps_mse(model, x0, t, noise, schedule)
        if not torch.isfinite(loss):
            from bench.errors import TrainingDiverged

            raise TrainingDiverged(f"Smoke-prior training diverged at step {step + 1} (loss {loss.item()}).",
                                   fix="Lower lr or check the images are finite and in [0, 1].")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        losses.append(float(loss.detach()))
        if step % save_every == 0 or step == steps:
            save()
        if progress is not None:
            progress(step, steps, losses[-1])
    if not path.is_file():  # resumed a finished run with a larger step count than asked: nothing to save
        save()
    return freeze(model)
