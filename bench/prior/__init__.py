"""The diffusion prior of DiffLoss: guided-diffusion's ADM UNet, its noise schedule, loading and a smoke prior.

``DiffLoss`` itself lives in ``bench.losses.diffloss`` (registered as "diffloss"); it is
re-exported here lazily so that importing the prior does not import every loss.
"""

from __future__ import annotations

from typing import Any

from bench.prior.adm import ADM256_UNCOND_KWARGS, ADMUNet, create_adm
from bench.prior.load import freeze, load_prior
from bench.prior.schedule import DiffusionSchedule
from bench.prior.smoke import SMOKE_PRIOR_KWARGS, smoke_prior_kwargs, train_smoke_prior

__all__ = [
    "ADM256_UNCOND_KWARGS",
    "SMOKE_PRIOR_KWARGS",
    "ADMUNet",
    "DiffLoss",
    "DiffusionSchedule",
    "create_adm",
    "freeze",
    "load_prior",
    "smoke_prior_kwargs",
    "train_smoke_prior",
]


def __getattr__(name: str) -> Any:
    if name == "DiffLoss":
        from bench.losses.diffloss import DiffLoss

        return DiffLoss
    raise AttributeError(f"module 'bench.prior' has no attribute {name!r}")
