"""Perceptual loss (Table 3): L1 between VGG16 feature maps of restored and clear images.

Network: torchvision's VGG16 architecture (``features`` only), ImageNet weights from the local
file of the weights manifest entry ``vgg16_features`` (built from a registry package by
``bench weights build``; never downloaded). Layers: relu1_2, relu2_2, relu3_3 (indices 3, 8, 15
of ``features``), equal weights, inputs normalised with ImageNet mean/std. The network is frozen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.losses.base import Loss, Terms
from bench.registry import LOSSES

WEIGHTS = "vgg16_features"
LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15}
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def vgg16_features(weights: str | None = WEIGHTS, upto: int = max(LAYERS.values())) -> nn.Sequential:
    """torchvision VGG16 ``features[: upto + 1]`` with the manifest's ImageNet weights (None: random)."""
    from torchvision.models import vgg16

    feats = vgg16(weights=None).features[: upto + 1]
    if weights is not None:
        from bench.weights import locate

        state = torch.load(locate(weights), map_location="cpu", weights_only=True)
        state = {k.removeprefix("features."): v for k, v in state.items()}
        state = {k: v for k, v in state.items() if int(k.split(".")[0]) <= upto}
        feats.load_state_dict(state, strict=True)
    feats.eval()
    for p in feats.parameters():
        p.requires_grad_(False)
    return feats


@LOSSES.register("perceptual", summary="L1 on VGG16 relu1_2/relu2_2/relu3_3 features, ImageNet weights (Table 3)")
class PerceptualLoss(Loss):
    def __init__(self, weights: str | None = WEIGHTS, layers: tuple[str, ...] = tuple(LAYERS)):
        super().__init__()
        self.idx = sorted(LAYERS[name] for name in layers)
        self.net = vgg16_features(weights, upto=self.idx[-1])
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.net.eval()  # frozen: never in training mode
        return self

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        out, h = [], (x - self.mean) / self.std
        for i, layer in enumerate(self.net):
            h = layer(h)
            if i in self.idx:
                out.append(h)
        return out

    def terms(self, restored: torch.Tensor, clear: torch.Tensor) -> Terms:
        with torch.no_grad():
            target = self._features(clear)
        pred = self._features(restored)
        per_layer = [F.l1_loss(p, t) for p, t in zip(pred, target, strict=True)]
        total = torch.stack(per_layer).mean()
        return {"total": total, **{f"l1_{name}": v for name, v in zip(LAYERS, per_layer, strict=False)}}
