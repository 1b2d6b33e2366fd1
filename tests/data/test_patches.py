"""Patch sampler: same crop and flips for degraded and clear, seeded, resumable, lazy == preloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data.base import Pair, read_image
from bench.data.patches import PAPER_BATCH, PAPER_PATCH, PatchSampler
from bench.errors import DataError


def coords(h: int, w: int, tag: float) -> torch.Tensor:
    """Channel 0 = row, 1 = column (both / 255), 2 = a per-image tag: every patch says where it came from."""
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w) / 255.0
    cols = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w) / 255.0
    return torch.stack([rows, cols, torch.full((h, w), tag)])


def sampler(seed: int = 3, patch: int = 8, batch: int = 4) -> PatchSampler:
    clear = [coords(20, 30, 0.1), coords(25, 17, 0.2), coords(16, 40, 0.3)]
    degraded = [c * 0.5 for c in clear]
    return PatchSampler(degraded, clear, patch=patch, batch=batch, seed=seed)


def test_paper_defaults() -> None:
    assert (PAPER_PATCH, PAPER_BATCH) == (256, 4)


def test_same_crop_and_flips_for_degraded_and_clear() -> None:
    s = sampler()
    seen_h, seen_v = set(), set()
    for _ in range(20):
        d, c = s.next_batch()
        assert d.shape == c.shape == (4, 3, 8, 8)
        assert torch.equal(d, c * 0.5)  # identical crop and flip
        for patch in c:
            rows, cols = patch[0] * 255, patch[1] * 255
            dr, dc = rows[1, 0] - rows[0, 0], cols[0, 1] - cols[0, 0]  # +-1: flipped or not
            assert abs(float(dr)) == 1 and abs(float(dc)) == 1
            assert torch.allclose(rows, rows[:, :1].expand(8, 8)) and torch.allclose(cols, cols[:1].expand(8, 8))
            seen_v.add(float(dr) < 0)
            seen_h.add(float(dc) < 0)
            tag = round(float(patch[2, 0, 0]), 1)
            h, w = {0.1: (20, 30), 0.2: (25, 17), 0.3: (16, 40)}[tag]
            assert rows.min() >= 0 and rows.max() < h and cols.min() >= 0 and cols.max() < w  # inside its image
    assert seen_h == {True, False} and seen_v == {True, False}  # both flips happen


def test_seeded_and_resumable() -> None:
    a, b = sampler(seed=5), sampler(seed=5)
    for _ in range(3):
        assert all(torch.equal(x, y) for x, y in zip(a.next_batch(), b.next_batch()))
    state = a.state_dict()
    expected = a.next_batch()
    fresh = sampler(seed=999)
    fresh.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(fresh.next_batch(), expected))
    assert not torch.equal(sampler(seed=6).next_batch()[0], sampler(seed=5).next_batch()[0])


def _write(tmp_path: Path) -> list[Pair]:
    pairs = []
    for k, (h, w) in enumerate(((20, 30), (25, 17))):
        arr = np.random.default_rng(k).integers(0, 255, (h, w, 3)).astype(np.uint8)
        d, c = tmp_path / f"d{k}.png", tmp_path / f"c{k}.png"
        Image.fromarray(arr // 2).save(d)
        Image.fromarray(arr).save(c)
        pairs.append(Pair(str(k), d, c))
    return pairs


def test_files_lazy_preloaded_and_tensors_draw_the_same_patches(tmp_path: Path) -> None:
    pairs = _write(tmp_path)
    lazy = PatchSampler.from_pairs(pairs, patch=8, batch=3, seed=1)
    eager = PatchSampler.from_pairs(pairs, patch=8, batch=3, seed=1, preload=True)
    tensors = PatchSampler([read_image(p.degraded) for p in pairs], [read_image(p.clear) for p in pairs], 8, 3, 1)
    assert isinstance(lazy.degraded[0], Path) and len(lazy) == 2
    for _ in range(4):
        a, b, c = lazy.next_batch(), eager.next_batch(), tensors.next_batch()
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(a[0], c[0])


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"Training pair 1 is \(25, 17\), smaller than the 18px patch"):
        sampler(patch=18)
    with pytest.raises(DataError, match=r"Training pair 0: degraded \(3, 4, 4\) and clear \(3, 5, 4\) differ"):
        PatchSampler([torch.zeros(3, 4, 4)], [torch.zeros(3, 5, 4)], 2, 1, 0)
    with pytest.raises(DataError, match="Need equal, non-zero numbers"):
        PatchSampler([], [], 2, 1, 0)
    pairs = _write(tmp_path)
    Image.new("RGB", (30, 21)).save(pairs[0].clear)
    with pytest.raises(DataError, match=r"Training pair '0': degraded 30x20 and clear 30x21 differ"):
        PatchSampler.from_pairs(pairs, patch=8)
    with pytest.raises(DataError, match=r"1 training pair\(s\) have no clear image, first 'x'"):
        PatchSampler.from_pairs([Pair("x", pairs[1].degraded, None)], patch=8)
