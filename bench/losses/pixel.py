"""Pixel losses: the paper's L2 term (Eq. 16) and L1 (Table 3).

``norm`` says how a difference tensor becomes a number, and is stated in every result row:
``"l2"`` is the Euclidean norm per sample, averaged over the batch (the paper writes
``||x - z||_2``); ``"mse"`` is the mean of squares (what most released code computes).
"""

from __future__ import annotations

import torch

from bench.losses.base import Loss, Terms
from bench.registry import LOSSES

NORMS = ("l2", "mse")


def reduce_difference(diff: torch.Tensor, norm: str) -> torch.Tensor:
    """Reduce ``a - b`` (N x ...) to a scalar by the named norm."""
    if norm == "l2":
        return diff.flatten(1).norm(dim=1).mean()
    if norm == "mse":
        return diff.pow(2).mean()
    raise ValueError(f"unknown norm '{norm}'; choose one of {NORMS}")


@LOSSES.register("l2", summary="pixel L2 between restored and clear (paper Eq. 16, first term)")
class L2Loss(Loss):
    def __init__(self, norm: str = "mse"):
        super().__init__()
        reduce_difference(torch.zeros(1, 1), norm)
        self.norm = norm

    def terms(self, restored: torch.Tensor, clear: torch.Tensor) -> Terms:
        pixel = reduce_difference(restored - clear, self.norm)
        return {"total": pixel, "pixel": pixel}


@LOSSES.register("l1", summary="mean absolute error (Table 3, 'L1 Loss')")
class L1Loss(Loss):
    def terms(self, restored: torch.Tensor, clear: torch.Tensor) -> Terms:
        pixel = (restored - clear).abs().mean()
        return {"total": pixel, "pixel": pixel}
