"""Apply a network to images: the one restore routine of evaluation, Table 2, Figure 7 and ``bench restore``.

Any size goes in: a network that declares ``size_multiple`` (ours do it inside ``Restorer.forward``;
a user's class may set the attribute) gets its input reflect-padded to a multiple and the output
cropped back, and the result is clamped to [0, 1] as the PNG it becomes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.data.base import read_image


def restore_tensor(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` for a 1 x 3 x H x W image in [0, 1] of any size, cropped back and clamped."""
    h, w = x.shape[-2:]
    m = int(getattr(model, "size_multiple", 1) or 1)
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:  # (our Restorers would also pad inside forward: padding twice to a multiple pads once)
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
    with torch.no_grad():
        y = model(x)
    if y.shape[-2:] != (h, w):
        y = y[..., :h, :w]
    return y.clamp(0, 1)


def restore_files(model: torch.nn.Module, items: Iterable[tuple[str, Path]], device: str,
                  ) -> Iterator[tuple[str, torch.Tensor, float]]:
    """(id, restored 1 x 3 x H x W tensor on ``device``, seconds) for each (id, degraded image file)."""
    for image_id, path in items:
        t0 = time.perf_counter()
        y = restore_tensor(model, read_image(path)[None].to(device))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        yield image_id, y, time.perf_counter() - t0
