"""What every published restoration network in ``baselines/`` shares.

Two entry points, by contract with the fixtures in ``$BENCH_SHARED/fixtures``:

* ``official_forward(x)``: the official network's forward, same input range and same
  return value as the official code (stacked with ``torch.stack`` where it returns
  several tensors). Fixture tests check this.
* ``forward(x)``: the restorer used everywhere else: degraded image in [0, 1] in,
  restored image in [0, 1]-scale out. It pads to the sizes the network can take,
  applies the official pre/post-processing (``restore``), and crops back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class TrainRecipe:
    """A training recipe: the official one per baseline, or the paper's shared one."""

    loss: str
    lr: float
    batch: int
    patch: int
    schedule: str = "constant"
    iterations: int | None = None
    optimizer: str = "adam"
    notes: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


#: The DiffLoss paper's shared recipe (Sec. 4.1): Adam, lr 1e-4, batch 4, patch 256.
PAPER_RECIPE = TrainRecipe(loss="l2", lr=1e-4, batch=4, patch=256, notes="DiffLoss paper, Sec. 4.1")


class Restorer(nn.Module):
    """Base class of a published restoration network.

    Subclasses implement ``official_forward`` and, when the official pipeline does
    anything around the network (normalisation, value scaling, output selection),
    override ``restore``. ``size_multiple`` makes ``forward`` reflect-pad inputs to a
    multiple of it and crop the result back.
    """

    size_multiple: int = 1

    def official_forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        """Map a [0, 1] image of an admissible size to the restored image."""
        return self.official_forward(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"{type(self).__name__} expects N x 3 x H x W, got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        m = self.size_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        y = self.restore(x)
        return y[..., :h, :w]
