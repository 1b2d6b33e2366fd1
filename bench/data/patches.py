"""Training patches: the same random crop of degraded and clear images, random flips, seeded.

The generator's state is part of a training checkpoint, so a resumed run draws the same patches.
"""

from __future__ import annotations

from typing import Any

import torch

from bench.errors import DataError


class PatchSampler:
    """Batches of ``patch`` x ``patch`` crops (paper: 256, batch 4) with random h/v flips."""

    def __init__(self, degraded: list[torch.Tensor], clear: list[torch.Tensor], patch: int, batch: int, seed: int):
        if len(degraded) != len(clear) or not degraded:
            raise DataError(f"Need equal, non-zero numbers of degraded and clear images, got {len(degraded)} "
                            f"and {len(clear)}.")
        for i, (d, c) in enumerate(zip(degraded, clear, strict=True)):
            if d.shape != c.shape:
                raise DataError(f"Training pair {i}: degraded {tuple(d.shape)} and clear {tuple(c.shape)} differ.")
            if min(d.shape[-2:]) < patch:
                raise DataError(f"Training pair {i} is {tuple(d.shape[-2:])}, smaller than the {patch}px patch.",
                                fix="Use a smaller --patch or larger images.")
        self.degraded, self.clear = degraded, clear
        self.patch, self.batch = patch, batch
        self.gen = torch.Generator().manual_seed(seed)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        g, p = self.gen, self.patch
        degs, clrs = [], []
        for _ in range(self.batch):
            i = int(torch.randint(len(self.degraded), (1,), generator=g))
            d, c = self.degraded[i], self.clear[i]
            top = int(torch.randint(d.shape[-2] - p + 1, (1,), generator=g))
            left = int(torch.randint(d.shape[-1] - p + 1, (1,), generator=g))
            hflip, vflip = (torch.rand(2, generator=g) < 0.5).tolist()
            d, c = d[:, top:top + p, left:left + p], c[:, top:top + p, left:left + p]
            dims = [dim for dim, on in ((-1, hflip), (-2, vflip)) if on]
            if dims:
                d, c = d.flip(dims), c.flip(dims)
            degs.append(d)
            clrs.append(c)
        return torch.stack(degs), torch.stack(clrs)

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])
