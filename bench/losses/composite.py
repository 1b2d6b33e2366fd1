"""A weighted sum of registered losses, built from a config such as ``{"l2": {"weight": 1.0}}``.

Losses that need a shared resource (DiffLoss needs the frozen prior) declare it in their
registry metadata (``needs=("prior",)``) and receive it by keyword.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from bench.losses.base import Loss, Terms
from bench.registry import LOSSES


class CompositeLoss(Loss):
    """``total = sum_i w_i * loss_i.total``; every term is logged as ``<loss>.<term>``."""

    def __init__(self, parts: dict[str, tuple[float, Loss]]):
        super().__init__()
        if not parts:
            raise ValueError("a training config needs at least one loss")
        self.weights = {name: float(w) for name, (w, _) in parts.items()}
        self.parts = nn.ModuleDict({name: loss for name, (_, loss) in parts.items()})

    def terms(self, restored: torch.Tensor, clear: torch.Tensor) -> Terms:
        out: Terms = {}
        total = restored.new_zeros(())
        for name, loss in self.parts.items():
            t = loss(restored, clear)
            total = total + self.weights[name] * t["total"]
            out.update({f"{name}.{k}": v for k, v in t.items()})
        out["total"] = total
        return out

    def after_step(self, restored: torch.Tensor, clear: torch.Tensor) -> dict[str, torch.Tensor | float]:
        out: dict[str, torch.Tensor | float] = {}
        for name, loss in self.parts.items():
            out.update({f"{name}.{k}": v for k, v in loss.after_step(restored, clear).items()})
        return out

    def trainable_state(self) -> dict[str, Any]:
        return {n: s for n, p in self.parts.items() if (s := p.trainable_state()) is not None}

    def load_trainable_state(self, state: dict[str, Any]) -> None:
        for n, s in state.items():
            self.parts[n].load_trainable_state(s)

    def rng_state(self) -> dict[str, Any]:
        return {n: p.rng_state() for n, p in self.parts.items() if hasattr(p, "rng_state")}

    def set_rng_state(self, state: dict[str, Any]) -> None:
        for n, s in state.items():
            self.parts[n].set_rng_state(s)


def build_loss(spec: dict[str, dict[str, Any]], resources: dict[str, Any] | None = None,
               seed: int | None = None) -> CompositeLoss:
    """Build a :class:`CompositeLoss` from ``{name: {"weight": w, **kwargs}}``.

    ``seed`` (the run's seed) seeds every loss that draws random numbers of its own and was
    not given a seed, so runs with different seeds draw different diffusion steps and noise.
    """
    resources = resources or {}
    parts = {}
    for name, cfg in spec.items():
        cfg = dict(cfg)
        weight = cfg.pop("weight", 1.0)
        builder = LOSSES.get(name)
        for need in LOSSES.meta(name).get("needs", ()):
            if need not in resources:
                raise ValueError(f"loss '{name}' needs '{need}', which this run does not provide")
            cfg[need] = resources[need]
        if seed is not None and "seed" not in cfg and "seed" in inspect.signature(builder).parameters:
            cfg["seed"] = seed
        parts[name] = (weight, builder(**cfg))
    return CompositeLoss(parts)
