"""The diffusion prior of DiffLoss: guided-diffusion's ADM UNet, its noise schedule, loading and a smoke prior.

``DiffLoss`` itself lives in ``bench.losses.diffloss`` (registered as "diffloss"), a layer above;
the smoke prior's training is in ``bench.train.smoke_prior``.
"""

from __future__ import annotations

from bench.prior.adm import ADM256_UNCOND_KWARGS, ADMUNet, create_adm
from bench.prior.load import freeze, load_prior
from bench.prior.schedule import DiffusionSchedule
from bench.prior.smoke import SMOKE_PRIOR_KWARGS, smoke_prior_kwargs

__all__ = [
    "ADM256_UNCOND_KWARGS",
    "SMOKE_PRIOR_KWARGS",
    "ADMUNet",
    "DiffusionSchedule",
    "create_adm",
    "freeze",
    "load_prior",
    "smoke_prior_kwargs",
]

