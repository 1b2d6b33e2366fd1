"""Streamed training batches: the same patches as PatchSampler, bit for bit, and exact resume with any workers."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from bench.data.base import Pair, PairedSet, pixels_to_tensor, read_image, read_pixels
from bench.data.patches import PatchSampler, draw_crops
from bench.data.stream import BatchSource, PatchDataset, PixelCache, default_workers, training_batches
from bench.errors import DataError
from bench.losses.composite import build_loss
from bench.train.loop import TrainConfig, train

SIZES = ((40, 52), (33, 61), (70, 45), (36, 36))


def write_pairs(root: Path) -> list[Pair]:
    """Pairs in the formats training meets: RGB PNG, JPEG, palette PNG, 16-bit grayscale PNG."""
    rng = np.random.default_rng(0)
    pairs = []
    for k, (h, w) in enumerate(SIZES):
        a = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        d, c = root / f"rain-{k}", root / f"norain-{k}"
        if k == 0:
            Image.fromarray(a).save(d.with_suffix(".png"))
            Image.fromarray(a // 3).save(c.with_suffix(".png"))
        elif k == 1:
            Image.fromarray(a).save(d.with_suffix(".jpg"), quality=80)
            Image.fromarray(255 - a).save(c.with_suffix(".jpg"), quality=95)
        elif k == 2:
            Image.fromarray(a).convert("P").save(d.with_suffix(".png"))
            Image.fromarray(a).convert("L").save(c.with_suffix(".png"))
        else:
            g = rng.integers(0, 65536, (h, w)).astype(np.uint16)
            Image.fromarray(g).save(d.with_suffix(".png"))
            Image.fromarray(65535 - g).save(c.with_suffix(".png"))
        suffix = ".jpg" if k == 1 else ".png"
        pairs.append(Pair(str(k), d.with_suffix(suffix), c.with_suffix(suffix)))
    return pairs


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> list[Pair]:
    return write_pairs(tmp_path_factory.mktemp("stream"))


def reference(pairs: list[Pair], seed: int, patch: int = 16, batch: int = 3) -> PatchSampler:
    """Today's training path: every image decoded by read_image, then PatchSampler."""
    return PatchSampler([read_image(p.degraded) for p in pairs], [read_image(p.clear) for p in pairs], patch, batch,
                        seed)


def same(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> bool:
    return a[0].dtype == b[0].dtype == torch.float32 and torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_a_converted_crop_of_the_integer_pixels_is_the_crop_of_read_image(pairs: list[Pair]) -> None:
    modes = set()
    for p in pairs:
        for f in (p.degraded, p.clear):
            full = read_image(f)
            px, scale = read_pixels(f)
            modes.add((Image.open(f).mode, px.dtype.name))
            assert torch.equal(pixels_to_tensor(px, scale), full)
            for top, left in ((0, 0), (3, 7), (full.shape[1] - 16, full.shape[2] - 16)):
                crop = pixels_to_tensor(px[top:top + 16, left:left + 16], scale)
                assert torch.equal(crop, full[:, top:top + 16, left:left + 16])
    assert modes == {("RGB", "uint8"), ("P", "uint8"), ("L", "uint8"), ("I;16", "uint16")}


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_same_patches_as_patch_sampler_bit_for_bit(pairs: list[Pair], workers: int) -> None:
    ref = reference(pairs, seed=5)
    lazy = PatchSampler.from_pairs(pairs, patch=16, batch=3, seed=5)
    with training_batches(PairedSet("t", pairs), 16, 3, 5, workers=workers) as src:
        assert len(src) == len(pairs) == 4
        for _ in range(10):
            got = src.next_batch()
            assert got[0].shape == (3, 3, 16, 16)
            assert same(got, ref.next_batch()) and same(got, lazy.next_batch())


def test_every_image_and_both_flips_are_drawn() -> None:
    """The comparison above is only worth something if the draws cover all images and flips."""
    gen = torch.Generator().manual_seed(5)
    crops = [c for _ in range(10) for c in draw_crops(gen, list(SIZES), 16, 3)]
    assert {c.index for c in crops} == {0, 1, 2, 3}
    assert {c.hflip for c in crops} == {c.vflip for c in crops} == {True, False}


def test_state_is_as_of_the_last_consumed_batch_while_prefetch_runs_ahead(pairs: list[Pair]) -> None:
    ref = reference(pairs, seed=2)
    src = training_batches(pairs, 16, 3, 2, workers=2, prefetch=3)
    try:
        for _ in range(2):
            assert same(src.next_batch(), ref.next_batch())
        state = src.state_dict()
        assert torch.equal(state["gen"], ref.state_dict()["gen"])
        assert not torch.equal(src.gen.get_state(), state["gen"])  # the sampler has drawn ahead of the loop
    finally:
        src.close()


def test_resume_with_0_1_2_workers_continues_the_same_sequence(pairs: list[Pair]) -> None:
    ref = reference(pairs, seed=9)
    want = [ref.next_batch() for _ in range(9)]
    for first, then in ((0, 2), (1, 0), (2, 1), (2, 2)):
        src = training_batches(pairs, 16, 3, 9, workers=first)
        got = [src.next_batch() for _ in range(4)]
        state = src.state_dict()
        src.close()
        resumed = training_batches(pairs, 16, 3, 1234, workers=then)  # another seed: the state must override it
        resumed.load_state_dict(state)
        got += [resumed.next_batch() for _ in range(5)]
        resumed.close()
        assert all(same(a, b) for a, b in zip(got, want, strict=True)), (first, then)


def test_state_dicts_interchange_with_patch_sampler_and_close_continues(pairs: list[Pair]) -> None:
    ref = reference(pairs, seed=4)
    for _ in range(3):
        ref.next_batch()
    src = training_batches(pairs, 16, 3, 0, workers=1)
    src.load_state_dict(ref.state_dict())  # a checkpoint written before the switch resumes exactly
    assert same(src.next_batch(), ref.next_batch())
    src.close()  # stops the worker; the next call restarts after the last consumed batch
    assert same(src.next_batch(), ref.next_batch())
    back = reference(pairs, seed=0)
    back.load_state_dict(src.state_dict())
    src.close()
    assert same(back.next_batch(), ref.next_batch())


def test_torch_global_rng_is_not_touched(pairs: list[Pair]) -> None:
    """Dropout draws from torch's global generator; the loader must not (DataLoader would, for its base seed)."""
    torch.manual_seed(0)
    before = torch.get_rng_state()
    with training_batches(pairs, 16, 3, 1, workers=1) as src:
        src.next_batch()
        src.load_state_dict(src.state_dict())
        src.next_batch()
    assert torch.equal(before, torch.get_rng_state())


def test_pin_memory_only_with_cuda(pairs: list[Pair]) -> None:
    with training_batches(pairs, 16, 2, 0, pin_memory=True) as src:
        deg, clr = src.next_batch()
    assert deg.is_pinned() == clr.is_pinned() == torch.cuda.is_available()
    assert deg.device.type == "cpu"


def test_pixel_cache_is_lru_within_its_byte_budget(tmp_path: Path) -> None:
    files = []
    for k in range(3):
        files.append(str(tmp_path / f"{k}.png"))
        Image.fromarray(np.full((10, 10, 3), k, np.uint8)).save(files[-1])
    cache = PixelCache(600)  # two 10 x 10 x 3 uint8 images
    for f in (files[0], files[1], files[0], files[2], files[1]):
        px, scale = cache.get(f)
        assert np.array_equal(px, read_pixels(Path(f))[0]) and scale == 255.0
        assert cache.used <= cache.budget
    # 0 and 1 miss, 0 hits, 2 evicts 1 (least recently used), 1 misses again and evicts 0
    assert (cache.hits, cache.misses, list(cache._items), cache.used) == (1, 4, [files[2], files[1]], 600)
    small = PixelCache(299)  # an image larger than the budget is never kept
    small.get(files[0])
    small.get(files[0])
    assert (small.hits, small.misses, small.used) == (0, 2, 0)


def test_dataset_survives_pickling_for_spawn(pairs: list[Pair]) -> None:
    src = training_batches(pairs, 16, 3, 3)
    plan = (1, tuple(draw_crops(torch.Generator().manual_seed(3), src.sizes, 16, 3)))
    copy = pickle.loads(pickle.dumps(src.dataset))
    assert isinstance(copy, PatchDataset)
    a, b = src.dataset[plan], copy[plan]
    assert a[0] == b[0] == 1 and torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])


def test_spawned_worker_draws_the_same(pairs: list[Pair]) -> None:
    ref = reference(pairs, seed=6)
    src = BatchSource(pairs, 16, 3, 6, workers=1, context="spawn")
    try:
        assert all(same(src.next_batch(), ref.next_batch()) for _ in range(3))
    finally:
        src.close()


def test_a_file_broken_after_the_header_check_raises_its_data_error(tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path)
    src = training_batches(pairs, 16, 3, 0, workers=1)
    for p in pairs:
        p.clear.write_bytes(p.clear.read_bytes()[:40])  # header kept, pixels gone
    with pytest.raises(DataError, match="cannot be decoded as an image") as e:
        src.next_batch()
    assert e.value.fix == "Replace the file with an intact copy."
    src.close()


def test_refusals(pairs: list[Pair]) -> None:
    with pytest.raises(DataError, match=r"Training pair 1 is \(33, 61\), smaller than the 34px patch"):
        training_batches(pairs, 34, 2, 0)
    with pytest.raises(DataError, match=r"1 training pair\(s\) have no clear image"):
        training_batches([Pair("x", pairs[0].degraded, None)], 8, 2, 0)
    with pytest.raises(DataError, match="Workers must be >= 0"):
        training_batches(pairs, 8, 2, 0, workers=-1)
    assert default_workers(10_000, "cpu") == 0 and default_workers(10, "cuda") == 0
    assert default_workers(10_000, "cuda") >= 1


class TinyNet(nn.Module):
    """Conv + dropout: the loop's global RNG must be untouched by the loader for weights to match."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Dropout(0.2),
                                  nn.Conv2d(6, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _train(out: Path, source: object, stop_after: int | None = None) -> dict:
    torch.manual_seed(0)
    model = TinyNet()
    cfg = TrainConfig(steps=10, batch=3, patch=16, lr=1e-3, seed=7, ckpt_every=3, log_every=1)
    try:
        return train(model, build_loss({"l2": {"norm": "l2"}}), source, cfg, out, log=lambda m: None,
                     stop_after=stop_after)
    finally:
        close = getattr(source, "close", None)
        if close:
            close()


def test_killed_and_resumed_training_with_workers_ends_bit_identical(pairs: list[Pair], tmp_path: Path) -> None:
    _train(tmp_path / "sampler", reference(pairs, seed=7))  # today's way
    _train(tmp_path / "straight", training_batches(pairs, 16, 3, 7, workers=0))
    assert _train(tmp_path / "resumed", training_batches(pairs, 16, 3, 7, workers=2), stop_after=8)["stopped_at"] == 8
    torch.manual_seed(999)  # a new process starts with an unrelated global RNG
    _train(tmp_path / "resumed", training_batches(pairs, 16, 3, 7, workers=1, prefetch=4))  # resumes at step 6
    weights = {k: torch.load(tmp_path / k / "model.pt", weights_only=True) for k in ("sampler", "straight", "resumed")}
    for name in ("straight", "resumed"):
        assert weights[name].keys() == weights["sampler"].keys()
        for k, v in weights["sampler"].items():
            assert torch.equal(weights[name][k], v), (name, k)
    measured = ["ms_per_step", "peak_memory_bytes"]  # wall time and memory: the columns that may differ
    logs = [pd.read_csv(tmp_path / k / "train_log.csv").drop(columns=measured, errors="ignore")
            for k in ("sampler", "straight", "resumed")]
    assert len(logs[0]) == 10 and "total" in logs[0].columns
    pd.testing.assert_frame_equal(logs[0], logs[1], check_exact=True)
    pd.testing.assert_frame_equal(logs[0], logs[2], check_exact=True)
