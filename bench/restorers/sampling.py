"""Pieces every zero-shot diffusion restorer needs: a respaced DDPM step and the patch grid.

The respacing and the learned-range variance are guided-diffusion's (``respace.py``,
``gaussian_diffusion.py``: tables in float64, looked up and only then cast), so a restorer
built on them takes the official steps; the patch grid is the one GDP's any-size sampler
uses. Kept apart from GDP so DDRM- or DiffPIR-style restorers can reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bench.errors import BenchError
from bench.prior.schedule import DiffusionSchedule


def space_timesteps(num_timesteps: int, count: int) -> list[int]:
    """guided-diffusion's ``space_timesteps(T, [count])``: ``count`` steps spread evenly over 0..T-1.

    The fractional stride is accumulated and rounded (Python's round, half to even) exactly as
    the official loop does, so the same steps come out.
    """
    if not 2 <= count <= num_timesteps:
        raise BenchError(f"The number of sampling steps must be between 2 and {num_timesteps}, got {count}.",
                         fix=f"Pass steps=N with 2 <= N <= {num_timesteps} (1000 is the published setting).")
    stride = (num_timesteps - 1) / (count - 1)
    taken, cur = [], 0.0
    for _ in range(count):
        taken.append(round(cur))
        cur += stride
    return sorted(set(taken))


@dataclass
class PosteriorStep:
    """One reverse step's prediction for a batch: the mean, log-variance and x0-hat of p(x_{t-1} | x_t)."""

    mean: torch.Tensor
    log_variance: torch.Tensor
    pred_x0: torch.Tensor


class SpacedDDPM:
    """The DDPM of ``schedule`` restricted to ``steps`` of its timesteps, with learned-range variances.

    Index ``i`` runs over the kept steps (0 = the last); ``timestep_map[i]`` is the original
    timestep the prior is called with (rescale_timesteps is False for the released models).
    """

    def __init__(self, schedule: DiffusionSchedule, steps: int):
        ac = schedule.alphas_cumprod.numpy()
        keep = space_timesteps(schedule.num_timesteps, steps)
        kept, betas, last = set(keep), [], 1.0
        for i, a in enumerate(ac):
            if i in kept:
                betas.append(1 - a / last)
                last = a
        self.steps = len(keep)
        self.timestep_map = torch.tensor(keep, dtype=torch.long)
        self.base = DiffusionSchedule(np.array(betas))
        b = self.base.betas.numpy()
        ac_new, ac_prev = self.base.alphas_cumprod.numpy(), self.base.alphas_cumprod_prev.numpy()
        post_var = b * (1.0 - ac_prev) / (1.0 - ac_new)
        # the variance is 0 at the chain's end, so the official log clips it with the next one
        self.posterior_log_variance_clipped = torch.from_numpy(np.log(np.append(post_var[1], post_var[1:])))
        self.log_betas = torch.from_numpy(np.log(b))

    def model_timesteps(self, i: int, n: int, device: torch.device) -> torch.Tensor:
        return self.timestep_map[[i] * n].to(device)

    def p_mean_variance(self, model_out: torch.Tensor, x: torch.Tensor, i: int,
                        clip_x0: bool = True) -> PosteriorStep:
        """From the prior's 6-channel output at step ``i``: learned-range variance, x0-hat (clipped), mean."""
        c = x.shape[1]
        if model_out.shape[1] != 2 * c:
            raise BenchError(f"The prior returns {model_out.shape[1]} channels; a learned-variance prior returns "
                             f"{2 * c}.", fix="Use a learn_sigma=True prior such as 256x256_diffusion_uncond.pt.")
        eps, v = model_out[:, :c], model_out[:, c:]
        t = torch.full((x.shape[0],), i, dtype=torch.long)
        min_log = self.base.extract(self.posterior_log_variance_clipped, t, x)
        max_log = self.base.extract(self.log_betas, t, x)
        frac = (v + 1) / 2  # the prior's v in [-1, 1] interpolates between the two log-variances
        log_variance = frac * max_log + (1 - frac) * min_log
        x0 = self.base.predict_x0_from_eps(x, t, eps)
        if clip_x0:
            x0 = x0.clamp(-1, 1)
        return PosteriorStep(self.base.posterior_mean(x0, x, t), log_variance, x0)


def patch_grid(height: int, width: int, patch: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners of GDP's overlapping patches, row-major, in the official order.

    Positions run 0, stride, 2*stride, ... while a patch fits, and the last-aligned position
    (side - patch) is always appended, even when the stride already reached it: that patch
    then appears twice and counts twice in the overlap average, as in the official sampler.
    """
    if height < patch or width < patch:
        raise ValueError(f"a {height}x{width} canvas is smaller than the {patch}x{patch} patch")

    def positions(side: int) -> list[int]:
        return [*range(0, side - patch + 1, stride), side - patch]

    return [(a, b) for a in positions(height) for b in positions(width)]
