"""Adversarial loss (Table 3): a PatchGAN discriminator trained alongside the restorer.

Architecture (pix2pix's 70x70 PatchGAN, Isola et al. 2017, ``n_layers=3``): 4x4 convolutions
C64 (no norm) - C128 - C256 (stride 2) - C512 (stride 1) - 1-channel logits, LeakyReLU 0.2,
InstanceNorm (BatchNorm is unreliable at the batch sizes of restoration training). Loss:
the non-saturating GAN loss with logits; the restorer minimises BCE(D(z), real), the
discriminator 0.5 (BCE(D(x), real) + BCE(D(z), fake)), Adam lr 2e-4, betas (0.5, 0.999).
Inputs are mapped to [-1, 1] for the discriminator.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.losses.base import Loss, Terms
from bench.registry import LOSSES


def patchgan(in_channels: int = 3, width: int = 64, n_layers: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    ch = width
    for i in range(1, n_layers + 1):
        out = width * min(2 ** i, 8)
        stride = 2 if i < n_layers else 1
        layers += [nn.Conv2d(ch, out, 4, stride, 1, bias=False), nn.InstanceNorm2d(out), nn.LeakyReLU(0.2, True)]
        ch = out
    layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
    return nn.Sequential(*layers)


@LOSSES.register("adversarial", summary="PatchGAN (pix2pix 70x70) non-saturating GAN loss (Table 3)")
class AdversarialLoss(Loss):
    def __init__(self, width: int = 64, n_layers: int = 3, lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999)):
        super().__init__()
        self.disc = patchgan(3, width, n_layers)
        self.opt = torch.optim.Adam(self.disc.parameters(), lr=lr, betas=tuple(betas))

    @staticmethod
    def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)

    def terms(self, restored: torch.Tensor, clear: torch.Tensor) -> Terms:
        g = self._bce(self.disc(restored * 2 - 1), real=True)
        return {"total": g, "generator": g}

    def after_step(self, restored: torch.Tensor, clear: torch.Tensor) -> dict[str, torch.Tensor | float]:
        self.opt.zero_grad(set_to_none=True)
        d = 0.5 * (self._bce(self.disc(clear * 2 - 1), True) + self._bce(self.disc(restored.detach() * 2 - 1), False))
        d.backward()
        self.opt.step()
        self.disc.zero_grad(set_to_none=True)
        return {"discriminator": d.detach()}  # read by the training engine at log steps, not here

    def trainable_state(self) -> dict[str, Any]:
        return {"disc": self.disc.state_dict(), "opt": self.opt.state_dict()}

    def load_trainable_state(self, state: dict[str, Any]) -> None:
        self.disc.load_state_dict(state["disc"])
        self.opt.load_state_dict(state["opt"])
