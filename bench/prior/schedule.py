"""The DDPM noise schedule of guided-diffusion: linear betas, 1000 steps, float64 tables.

Tables are built in float64 with numpy exactly as ``gaussian_diffusion.py`` does, and a
per-sample coefficient is looked up in float64 and only then cast to the tensor's dtype,
so our q(x_t | x_0), x0-from-eps and posterior mean round like the official ones.
"""

from __future__ import annotations

import numpy as np
import torch


def linear_betas(num_steps: int = 1000) -> np.ndarray:
    """guided-diffusion's ``linear`` schedule, rescaled so any step count spans the same range."""
    scale = 1000 / num_steps
    return np.linspace(scale * 0.0001, scale * 0.02, num_steps, dtype=np.float64)


def to_device(x: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """A CPU tensor on ``device`` without making the host wait: pinned and copied asynchronously on CUDA.

    A plain ``.to("cuda")`` of pageable memory synchronises with the device each training step; the
    values are the same either way (the draws stay on the CPU generator).
    """
    device = torch.device(device)
    if device.type != "cuda":
        return x.to(device)
    return x.pin_memory().to(device, non_blocking=True)


class DiffusionSchedule:
    """q(x_t | x_0), eps -> x0 and the posterior mean of q(x_{t-1} | x_t, x_0) (paper Eq. 2-5, 7-10)."""

    def __init__(self, betas: np.ndarray):
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or not ((betas > 0) & (betas <= 1)).all():
            raise ValueError("betas must be a 1-D array in (0, 1]")
        alphas = 1.0 - betas
        ac = np.cumprod(alphas)
        ac_prev = np.append(1.0, ac[:-1])
        self.num_timesteps = len(betas)
        as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
        self.betas = as_t(betas)
        self.alphas_cumprod = as_t(ac)
        self.alphas_cumprod_prev = as_t(ac_prev)
        self.sqrt_alphas_cumprod = as_t(np.sqrt(ac))
        self.sqrt_one_minus_alphas_cumprod = as_t(np.sqrt(1.0 - ac))
        self.sqrt_recip_alphas_cumprod = as_t(np.sqrt(1.0 / ac))
        self.sqrt_recipm1_alphas_cumprod = as_t(np.sqrt(1.0 / ac - 1))
        self.sqrt_recip_alphas_cumprod_prev = as_t(np.sqrt(1.0 / ac_prev))
        self.sqrt_recipm1_alphas_cumprod_prev = as_t(np.sqrt(1.0 / ac_prev - 1))
        self.posterior_mean_coef1 = as_t(betas * np.sqrt(ac_prev) / (1.0 - ac))
        self.posterior_mean_coef2 = as_t((1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac))

    @classmethod
    def linear(cls, num_steps: int = 1000) -> DiffusionSchedule:
        return cls(linear_betas(num_steps))

    @staticmethod
    def extract(table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``table[t]`` (looked up in float64) as ``like``'s dtype/device, shaped to broadcast over it."""
        v = to_device(table[t.detach().cpu().long()].to(like.dtype), like.device)
        return v.reshape(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps (Eq. 7)."""
        return (
            self.extract(self.sqrt_alphas_cumprod, t, x0) * x0
            + self.extract(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise
        )

    def predict_x0_from_eps(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x0-hat = x_t / sqrt(abar_t) - sqrt(1/abar_t - 1) eps-hat (Eq. 9/10); no clipping."""
        return (
            self.extract(self.sqrt_recip_alphas_cumprod, t, x_t) * x_t
            - self.extract(self.sqrt_recipm1_alphas_cumprod, t, x_t) * eps
        )

    def posterior_mean(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Mean of q(x_{t-1} | x_t, x0) (Eq. 3); at t = 0 it is x0."""
        return (
            self.extract(self.posterior_mean_coef1, t, x_t) * x0
            + self.extract(self.posterior_mean_coef2, t, x_t) * x_t
        )

    def predict_x0_from_prev(self, x_prev: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """arXiv v1 Eq. 10: x0-hat-hat = x_{t-1} / sqrt(abar_{t-1}) - sqrt(1/abar_{t-1} - 1) eps (abar_{-1} = 1)."""
        return (
            self.extract(self.sqrt_recip_alphas_cumprod_prev, t, x_prev) * x_prev
            - self.extract(self.sqrt_recipm1_alphas_cumprod_prev, t, x_prev) * eps
        )
