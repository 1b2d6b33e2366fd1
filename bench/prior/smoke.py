"""The smoke prior's architecture: a small ADM trained on CPU in minutes (``bench.train.smoke_prior`` trains it).

Same architecture family as ``256x256_diffusion_uncond`` (resblock up/down, scale-shift norm,
learned sigma, attention at the two deepest levels), only narrower and smaller.
"""

from __future__ import annotations

from typing import Any

import torch

from bench.prior.adm import ADM256_UNCOND_KWARGS, ADMUNet, create_adm


def smoke_prior_kwargs(image_size: int = 32) -> dict[str, Any]:
    """``create_adm`` kwargs of the smoke prior at ``image_size`` (a multiple of 8)."""
    if image_size % 8:
        raise ValueError(f"the smoke prior's image_size must be a multiple of 8, got {image_size}")
    return {**ADM256_UNCOND_KWARGS, "image_size": image_size, "num_channels": 32, "num_res_blocks": 2,
            "channel_mult": "1,2,2,2", "attention_resolutions": f"{image_size // 4},{image_size // 8}",
            "num_heads": 1, "num_head_channels": 32, "use_checkpoint": False}


#: The smoke prior: 32x32, widths 32/64, 2,777,574 parameters.
SMOKE_PRIOR_KWARGS: dict[str, Any] = smoke_prior_kwargs(32)


def new_smoke_prior(kwargs: dict[str, Any], seed: int) -> ADMUNet:
    with torch.random.fork_rng(devices=[]):  # a seeded init that leaves the global RNG untouched
        torch.manual_seed(seed)
        return create_adm(**kwargs)
