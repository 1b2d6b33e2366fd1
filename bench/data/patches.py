"""Training patches: the same random crop of degraded and clear images, random flips, seeded.

The generator's state is part of a training checkpoint, so a resumed run draws the same patches.
Images are given either as tensors (small sets) or as files read on demand (Rain13K's 13,712
pairs would not fit in memory as float tensors); both draw the same patches for the same seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch

from bench.data.base import Pair, read_image
from bench.errors import DataError

PAPER_PATCH = 256
PAPER_BATCH = 4


def _wh(h: Any) -> str:
    return f"{h.size[0]}x{h.size[1]}" if h.size else f"unreadable ({h.error})"


class Crop(NamedTuple):
    """Where one training patch comes from: image index, top-left corner, and the two flips."""

    index: int
    top: int
    left: int
    hflip: bool
    vflip: bool


def draw_crops(gen: torch.Generator, sizes: Sequence[tuple[int, int]], patch: int, batch: int) -> list[Crop]:
    """One batch's crops. Per sample, in order: image index, top, left, two flip coins (h, v).

    The only place training patches are drawn, so every batch source draws the same patches
    from the same generator state.
    """
    crops = []
    for _ in range(batch):
        i = int(torch.randint(len(sizes), (1,), generator=gen))
        h, w = sizes[i]
        top = int(torch.randint(h - patch + 1, (1,), generator=gen))
        left = int(torch.randint(w - patch + 1, (1,), generator=gen))
        hflip, vflip = (torch.rand(2, generator=gen) < 0.5).tolist()
        crops.append(Crop(i, top, left, bool(hflip), bool(vflip)))
    return crops


def flip(img: torch.Tensor, c: Crop) -> torch.Tensor:
    """Apply ``c``'s flips to a ... x H x W tensor."""
    dims = [dim for dim, on in ((-1, c.hflip), (-2, c.vflip)) if on]
    return img.flip(dims) if dims else img


def cut(img: torch.Tensor, c: Crop, patch: int) -> torch.Tensor:
    """The flipped ``patch`` x ``patch`` crop ``c`` of a 3 x H x W tensor."""
    return flip(img[:, c.top:c.top + patch, c.left:c.left + patch], c)


def check_patch(sizes: Sequence[tuple[int, int]], patch: int, batch: int) -> None:
    if patch < 1 or batch < 1:
        raise DataError(f"Patch size and batch must be positive, got patch={patch}, batch={batch}.")
    for i, (h, w) in enumerate(sizes):
        if min(h, w) < patch:
            raise DataError(f"Training pair {i} is {(h, w)}, smaller than the {patch}px patch.",
                            fix="Use a smaller --patch or larger images.")


def pair_sizes(pairs: Sequence[Pair]) -> list[tuple[int, int]]:
    """(height, width) of every pair from image headers (no decoding); both sides must agree."""
    from bench.data.verify import probe

    if not pairs:
        raise DataError("Need at least one training pair, got none.", fix="Check the data set's root and --limit.")
    missing = [p.id for p in pairs if p.clear is None]
    if missing:
        raise DataError(f"{len(missing)} training pair(s) have no clear image, first '{missing[0]}'.",
                        fix="Training needs ground truth; load the data set with require_clear=True.")
    sizes = []
    for p in pairs:
        hd, hc = probe(p.degraded), probe(p.clear or p.degraded)
        if hd.size is None or hd.size != hc.size:
            raise DataError(f"Training pair '{p.id}': degraded {_wh(hd)} and clear {_wh(hc)} differ.",
                            fix="Run 'bench data verify' on the data set.")
        sizes.append((hd.size[1], hd.size[0]))
    return sizes


class PatchSampler:
    """Batches of ``patch`` x ``patch`` crops (paper: 256, batch 4) with random h/v flips.

    Per sample the generator draws, in order: the image index, the crop's top, its left, and
    two flip coins (horizontal, vertical). Degraded and clear get the same crop and flips.
    """

    def __init__(self, degraded: Sequence[torch.Tensor], clear: Sequence[torch.Tensor], patch: int, batch: int,
                 seed: int):
        if len(degraded) != len(clear) or not degraded:
            raise DataError(f"Need equal, non-zero numbers of degraded and clear images, got {len(degraded)} "
                            f"and {len(clear)}.")
        for i, (d, c) in enumerate(zip(degraded, clear, strict=True)):
            if d.shape != c.shape:
                raise DataError(f"Training pair {i}: degraded {tuple(d.shape)} and clear {tuple(c.shape)} differ.")
        self._init(list(degraded), list(clear), [tuple(d.shape[-2:]) for d in degraded], patch, batch, seed)

    def _init(self, degraded: list[Any], clear: list[Any], sizes: list[tuple[int, int]], patch: int, batch: int,
              seed: int) -> None:
        check_patch(sizes, patch, batch)
        self.degraded, self.clear, self.sizes = degraded, clear, sizes
        self.patch, self.batch = patch, batch
        self.gen = torch.Generator().manual_seed(seed)

    @classmethod
    def from_pairs(cls, pairs: Sequence[Pair], patch: int = PAPER_PATCH, batch: int = PAPER_BATCH, seed: int = 0,
                   preload: bool = False) -> PatchSampler:
        """A sampler over files: sizes come from headers now, pixels from ``read_image`` when drawn.

        ``preload=True`` decodes every image once up front (fast steps, memory-hungry).
        For training jobs use ``bench.data.stream.training_batches`` (workers, bounded memory).
        """
        sizes = pair_sizes(pairs)
        if preload:
            clear = [read_image(p.clear) for p in pairs if p.clear is not None]
            return cls([read_image(p.degraded) for p in pairs], clear, patch, batch, seed)
        sampler = cls.__new__(cls)
        sampler._init([p.degraded for p in pairs], [p.clear for p in pairs], sizes, patch, batch, seed)
        return sampler

    def __len__(self) -> int:
        return len(self.sizes)

    def _pair(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        d, c = self.degraded[i], self.clear[i]
        if isinstance(d, Path):
            d, c = read_image(d), read_image(c)
            if d.shape != c.shape:
                raise DataError(f"Training pair {i}: {self.degraded[i]} decodes to {tuple(d.shape)} but "
                                f"{self.clear[i]} to {tuple(c.shape)}.")
        return d, c

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        degs, clrs = [], []
        for c in draw_crops(self.gen, self.sizes, self.patch, self.batch):
            d, cl = self._pair(c.index)
            degs.append(cut(d, c, self.patch))
            clrs.append(cut(cl, c, self.patch))
        return torch.stack(degs), torch.stack(clrs)

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])
