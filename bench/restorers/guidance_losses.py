"""GDP's guidance losses, each returned per sample (shape ``(B,)``) so a batch of patches sums them.

The official code (``scripts/MyLoss.py`` of Fayeben/GenerativeDiffusionPrior) evaluates these on
one patch at a time and takes a mean over the batch; summing per-patch values gives every patch
exactly the gradient it gets alone. The exposure and colour terms come from Zero-DCE (Guo et al.,
CVPR 2020), which GDP cites for its low-light quality-enhancement loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def blind_degradation(x: torch.Tensor, factor: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """GDP's blind model D(x) = f x + M, on x in [-1, 1] mapped to [0, 1]; f per sample, M per pixel."""
    return (x + 1) / 2 * factor + mask


def degradation_mse(x: torch.Tensor, factor: torch.Tensor, mask: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error between D(x) and the degraded image y (both in [-1, 1] in, compared in [0, 1])."""
    return (blind_degradation(x, factor, mask) - (y + 1) / 2).pow(2).mean(dim=(1, 2, 3))


def exposure_control(x: torch.Tensor, patch: int = 8, level: float = 0.3) -> torch.Tensor:
    """Zero-DCE's L_exp: squared distance of local mean intensity (``patch`` x ``patch`` blocks) to ``level``.

    GDP applies it to x0-hat in [-1, 1] with patch 8 and level 0.3 (Zero-DCE: 16 and 0.6 on [0, 1]).
    """
    local = F.avg_pool2d(x.mean(dim=1, keepdim=True), patch)
    return (local - level).pow(2).mean(dim=(1, 2, 3))


def colour_constancy(x: torch.Tensor) -> torch.Tensor:
    """Zero-DCE's L_col: sqrt of the summed squares of the squared channel-mean differences (grey world)."""
    mr, mg, mb = x.mean(dim=(2, 3)).unbind(dim=1)
    d_rg, d_rb, d_gb = (mr - mg).pow(2), (mr - mb).pow(2), (mb - mg).pow(2)
    return (d_rg.pow(2) + d_rb.pow(2) + d_gb.pow(2)).pow(0.5)


def illumination_smoothness(mask: torch.Tensor) -> torch.Tensor:
    """The official L_TV on the light mask M (B x 1 x H x W): 2 (mean squared vertical + horizontal step)."""
    h, w = mask.shape[-2:]
    dh = (mask[..., 1:, :] - mask[..., :-1, :]).pow(2).sum(dim=(1, 2, 3)) / ((h - 1) * w)
    dw = (mask[..., :, 1:] - mask[..., :, :-1]).pow(2).sum(dim=(1, 2, 3)) / (h * (w - 1))
    return 2 * (dh + dw)


QUALITY_LOSSES = {"exposure": exposure_control, "colour": colour_constancy}
