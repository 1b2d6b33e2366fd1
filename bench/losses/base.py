"""The loss interface every entry of ``bench.LOSSES`` follows.

A loss is an ``nn.Module`` called as ``loss(restored, clear)`` with both images in
[0, 1] (N x 3 x H x W); it returns a dict of named scalar terms that always holds
``"total"`` (what is back-propagated) so training can log each term.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

Terms = dict[str, torch.Tensor]


class Loss(nn.Module):
    """Base class: subclasses implement ``terms``."""

    def terms(self, restored: torch.Tensor, clear: torch.Tensor) -> Terms:  # pragma: no cover
        raise NotImplementedError

    def after_step(self, restored: torch.Tensor, clear: torch.Tensor) -> dict[str, torch.Tensor | float]:
        """Called once per training step after the network's update, with ``restored`` detached.

        Losses with a part trained alongside the network (a GAN discriminator) update it here
        and return what they want logged (tensors stay on the device until a log step reads them).
        """
        return {}

    def trainable_state(self) -> dict[str, Any] | None:
        """State a checkpoint must hold to resume this loss exactly (None: nothing trainable)."""
        return None

    def load_trainable_state(self, state: dict[str, Any]) -> None:
        if state is not None:
            raise ValueError(f"{type(self).__name__} has no trainable state to load")

    def forward(self, restored: torch.Tensor, clear: torch.Tensor) -> Terms:
        if restored.shape != clear.shape:
            raise ValueError(f"restored {tuple(restored.shape)} and clear {tuple(clear.shape)} differ in shape")
        out = self.terms(restored, clear)
        if "total" not in out:
            raise KeyError(f"{type(self).__name__} returned no 'total' term")
        return out
