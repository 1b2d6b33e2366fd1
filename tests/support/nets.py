"""Small modules the training tests need."""

from __future__ import annotations

import torch
from torch import nn


class Poison(nn.Module):
    """Identity times one weight, until its ``bad_from``-th call: from then on every output is infinite."""

    def __init__(self, bad_from: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.calls, self.bad_from = 0, bad_from

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x * self.w * (float("inf") if self.calls >= self.bad_from else 1.0)
