"""DiffLoss (Tan et al., ACCV 2024, Sec. 3.3): a frozen diffusion prior as a training loss.

Both the restored image z and the clear image x are mapped to [-1, 1], noised to the same
x_t / z_t with the SAME t and noise (Eq. 7), and passed once through the prior. The loss pulls
the prior's outputs for z towards those for x:

* ``eps`` (paper, final): L_nat = ||eps-hat_clr - eps-hat_rst|| (Eq. 11) + lam * L_sem on h (Eq. 14);
* ``x0`` (Table 4 a): on x0-hat (Eq. 9/10); ``xprev`` (Table 4 b): on the posterior mean x_{t-1}-hat
  (Eq. 3-5); ``arxiv_v1`` (arXiv v1 Eq. 13): on x0-hat and x0-hat-hat (arXiv Eq. 10).
  Every variant keeps the ``lam * L_sem`` term (``lam=0`` drops it).

Total (Eq. 16): ``pixel + gamma * (L_nat + lam * L_sem)``.

Two modes. ``paper``: clear branch under no_grad, restored branch WITH gradient to z.
``official-code``: what github.com/JosephTiTan/DiffLoss computes: both branches under no_grad,
so the diffusion terms give z no gradient at all; MSE with weights 1e-3 (eps) and 1e-6 (h), and
the pixel MSE taken on [-1, 1] images.

The prior is held outside the module tree: it is not in ``parameters()`` or ``state_dict()``,
stays in eval mode when ``train()`` is called, and never requires grad; ``.to()`` still moves it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.errors import DataError
from bench.losses.base import Loss, Terms
from bench.losses.pixel import NORMS, reduce_difference
from bench.prior.load import freeze, load_prior
from bench.prior.schedule import DiffusionSchedule, to_device
from bench.registry import LOSSES

VARIANTS = ("eps", "x0", "xprev", "arxiv_v1")
MODES = ("paper", "official-code")
T_WEIGHTS = ("none", "sigma")
PAPER_DEFAULTS: dict[str, Any] = {"lam": 0.01, "gamma": 0.001, "norm": "l2"}
#: released code: 1e-3 * MSE(eps) + 1e-6 * MSE(h) == gamma * (nat + lam * sem) with these values
OFFICIAL_CODE_SETTINGS: dict[str, Any] = {"lam": 1e-3, "gamma": 1e-3, "norm": "mse", "variant": "eps",
                                          "t_weight": "none"}


def _per_sample(diff: torch.Tensor, norm: str) -> torch.Tensor:
    """One number per sample, as ``reduce_difference`` defines the norms."""
    flat = diff.float().flatten(1)
    return flat.norm(dim=1) if norm == "l2" else flat.pow(2).mean(dim=1)


@LOSSES.register("diffloss", summary="DiffLoss: L2 + gamma (L_nat + lambda L_sem) on a frozen ADM prior (Eq. 16)",
                 needs=("prior",))
class DiffLoss(Loss):
    """DiffLoss on a frozen ADM prior.

    Randomness comes from a CPU ``torch.Generator`` the module owns (seeded with ``seed``), drawn
    in this order per call: crop offsets (tops, then lefts; only when an input is larger than the
    prior), t ~ U{0..T-1} per sample, then noise of shape (N, 3, S, S). Draws are made on the CPU
    and moved, so they are the same on every device; ``rng_state()`` / ``set_rng_state()`` (also
    kept in ``state_dict()``) let a resumed run repeat them.
    """

    def __init__(
        self,
        prior: nn.Module | str | Path,
        *,
        variant: str = "eps",
        mode: str = "paper",
        lam: float | None = None,
        gamma: float | None = None,
        norm: str | None = None,
        pixel: str | None = "l2",
        t_weight: str = "none",
        seed: int = 0,
        schedule: DiffusionSchedule | None = None,
        prior_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown DiffLoss mode {mode!r}; choose one of {MODES}")
        if variant not in VARIANTS:
            raise ValueError(f"unknown DiffLoss variant {variant!r}; choose one of {VARIANTS}")
        if pixel not in ("l2", None):
            raise ValueError(f"pixel must be 'l2' (Eq. 16's pixel term) or None (no pixel term), got {pixel!r}")
        if t_weight not in T_WEIGHTS:
            raise ValueError(f"unknown t_weight {t_weight!r}; choose one of {T_WEIGHTS}")
        if mode == "official-code":
            given = {"lam": lam, "gamma": gamma, "norm": norm, "variant": variant, "t_weight": t_weight}
            bad = {k: v for k, v in given.items() if v is not None and v != OFFICIAL_CODE_SETTINGS[k]}
            if bad:
                raise ValueError(f"mode 'official-code' fixes {OFFICIAL_CODE_SETTINGS}; drop or change {bad}")
            lam, gamma, norm = (OFFICIAL_CODE_SETTINGS[k] for k in ("lam", "gamma", "norm"))
        lam = PAPER_DEFAULTS["lam"] if lam is None else float(lam)
        gamma = PAPER_DEFAULTS["gamma"] if gamma is None else float(gamma)
        norm = PAPER_DEFAULTS["norm"] if norm is None else norm
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of {NORMS}")

        if isinstance(prior, str | Path):
            prior = load_prior(prior, **(prior_kwargs or {}))
        object.__setattr__(self, "_prior", freeze(prior))  # not a submodule: no parameters(), no state_dict()
        self.image_size: int = int(prior.image_size)
        self.variant, self.mode, self.lam, self.gamma, self.norm = variant, mode, lam, gamma, norm
        self.pixel, self.t_weight, self.seed = pixel, t_weight, seed
        self.schedule = schedule or DiffusionSchedule.linear(1000)
        self._gen = torch.Generator(device="cpu")
        self._gen.manual_seed(seed)

    # -- the frozen prior ----------------------------------------------------------------------
    @property
    def prior(self) -> nn.Module:
        return self._prior

    def train(self, mode: bool = True) -> DiffLoss:
        super().train(mode)
        self._prior.eval()
        return self

    def _apply(self, fn: Any, recurse: bool = True) -> DiffLoss:
        self._prior._apply(fn, recurse)
        return super()._apply(fn, recurse)

    # -- reproducible randomness ---------------------------------------------------------------
    def rng_state(self) -> torch.Tensor:
        return self._gen.get_state()

    def set_rng_state(self, state: torch.Tensor) -> None:
        self._gen.set_state(state)

    def get_extra_state(self) -> dict[str, Any]:
        return {"rng_state": self.rng_state(), "seed": self.seed}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.set_rng_state(state["rng_state"])

    # -- what a result row records -------------------------------------------------------------
    @property
    def crop_policy(self) -> str:
        s = self.image_size
        return f"one random {s}x{s} crop per sample, same for z and x (none at {s}x{s}); smaller inputs are an error"

    def describe(self) -> dict[str, Any]:
        return {
            "loss": "diffloss", "mode": self.mode, "variant": self.variant, "norm": self.norm, "lam": self.lam,
            "gamma": self.gamma, "pixel": self.pixel, "t_weight": self.t_weight, "seed": self.seed,
            "prior_image_size": self.image_size, "timesteps": self.schedule.num_timesteps,
            "crop_policy": self.crop_policy,
        }

    # -- the loss ------------------------------------------------------------------------------
    def _crop(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.image_size
        n, _, h, w = z.shape
        if h < s or w < s:
            raise DataError(
                f"DiffLoss got {h}x{w} images, smaller than its prior's {s}x{s}.",
                fix=f"Train on patches of at least {s}x{s} pixels, or use a prior built for a smaller image_size.",
            )
        if h == s and w == s:
            return z, x
        tops = torch.randint(0, h - s + 1, (n,), generator=self._gen).tolist()
        lefts = torch.randint(0, w - s + 1, (n,), generator=self._gen).tolist()
        zc = torch.stack([z[i, :, a : a + s, b : b + s] for i, (a, b) in enumerate(zip(tops, lefts))])
        xc = torch.stack([x[i, :, a : a + s, b : b + s] for i, (a, b) in enumerate(zip(tops, lefts))])
        return zc, xc

    def _targets(self, x_t: torch.Tensor, eps_hat: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> list:
        """The quantities the variant constrains, computed from one branch's prior output."""
        if self.variant == "eps":
            return [eps_hat]
        x0_hat = self.schedule.predict_x0_from_eps(x_t, t, eps_hat)
        if self.variant == "x0":
            return [x0_hat]
        x_prev = self.schedule.posterior_mean(x0_hat, x_t, t)
        if self.variant == "xprev":
            return [x_prev]
        return [x0_hat, self.schedule.predict_x0_from_prev(x_prev, t, noise)]  # arxiv_v1

    def terms(self, restored: torch.Tensor, clear: torch.Tensor) -> Terms:
        if restored.dim() != 4 or restored.shape[1] != 3:
            raise DataError(f"DiffLoss expects N x 3 x H x W images, got {tuple(restored.shape)}.")
        official = self.mode == "official-code"
        zc, xc = self._crop(restored, clear)
        n, dev = zc.shape[0], zc.device
        t_cpu = torch.randint(0, self.schedule.num_timesteps, (n,), generator=self._gen)
        noise = torch.randn((n, 3, self.image_size, self.image_size), generator=self._gen)
        t, noise = to_device(t_cpu, dev), to_device(noise.to(zc.dtype), dev)
        z0, x0 = zc * 2 - 1, xc * 2 - 1
        z_t = self.schedule.q_sample(z0, t_cpu, noise)
        x_t = self.schedule.q_sample(x0, t_cpu, noise)

        with torch.no_grad():
            out_x, h_x = self._prior(x_t, t, return_h=True)
        with torch.no_grad() if official else torch.enable_grad():
            out_z, h_z = self._prior(z_t, t, return_h=True)

        w = None
        if self.t_weight == "sigma":  # our adaptive weight: the noise std sqrt(1 - abar_t) of each sample
            w = to_device(self.schedule.sqrt_one_minus_alphas_cumprod[t_cpu].to(torch.float32), dev)

        def reduce(d: torch.Tensor) -> torch.Tensor:
            per = _per_sample(d, self.norm)
            return (per * w).mean() if w is not None else per.mean()

        tx = self._targets(x_t, out_x[:, :3].float(), t_cpu, noise)
        tz = self._targets(z_t, out_z[:, :3].float(), t_cpu, noise)
        nat = sum((reduce(a - b) for a, b in zip(tx, tz)), torch.zeros((), device=dev))
        sem = reduce(h_x.float() - h_z.float())
        diff = nat + self.lam * sem

        if self.pixel is None:
            pixel = torch.zeros((), device=dev)
        elif official:  # released code: MSE between [-1, 1] images
            pixel = ((restored * 2 - 1) - (clear * 2 - 1)).float().pow(2).mean()
        else:
            pixel = reduce_difference((restored - clear).float(), self.norm)
        total = pixel + self.gamma * diff
        if not total.requires_grad and restored.requires_grad:
            total = total + restored.sum() * 0.0  # keep backward() valid; the gradient is exactly zero
        return {"total": total, "pixel": pixel, "nat": nat.detach(), "sem": sem.detach(), "diffloss": diff.detach()}
