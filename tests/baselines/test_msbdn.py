"""MSBDN-specific checks beyond the generic fixture tests (tests/test_baseline_fixtures.py).

Weights are the fixtures' deterministic fill (scale 0.02), so outputs are non-trivial
and reproducible without shared/ material.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import bench
from baselines._base import TrainRecipe
from baselines.msbdn import MSBDN, DecoderFusion, EncoderFusion
from bench.testing import fill_by_key

SCALE = 0.02  # the fixture's fill scale


@pytest.fixture(scope="module")
def model() -> MSBDN:
    return fill_by_key(bench.build_baseline("msbdn"), SCALE).eval()


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_forward_is_the_raw_official_output_at_admissible_sizes(model: MSBDN) -> None:
    """The official pipeline feeds [0, 1] RGB unnormalised and keeps the raw output: no scaling around it."""
    x = _rand(2, 3, 32, 48)
    with torch.no_grad():
        y = model(x)
        official = model.official_forward(x)
    assert y.shape == x.shape
    assert torch.equal(y, official)
    assert torch.isfinite(y).all()
    assert y.std() > 1e-3  # not a constant image


def test_forward_reflect_pads_to_16_and_crops(model: MSBDN) -> None:
    """41x59 is reflect-padded to 48x64 (bottom/right), run officially, and cropped back exactly."""
    x = _rand(1, 3, 41, 59, seed=1)
    with torch.no_grad():
        y = model(x)
        expected = model.official_forward(F.pad(x, (0, 5, 0, 7), mode="reflect"))[..., :41, :59]
    assert y.shape == x.shape
    assert (y - expected).abs().max().item() <= 1e-6


def test_official_forward_rejects_sizes_not_multiple_of_16(model: MSBDN) -> None:
    """Why size_multiple is 16: the dense feature fusion cannot align the scales otherwise."""
    assert model.size_multiple == 16
    with torch.no_grad(), pytest.raises(RuntimeError):
        model.official_forward(_rand(1, 3, 40, 40))


def test_forward_at_awkward_size(model: MSBDN) -> None:
    # 201x299 (padded to 208x304) rather than 401x599: the full size costs ~7 s single-threaded on the
    # shared 2-core CI CPU (measured), over this file's budget; the padding path exercised is the same.
    x = _rand(1, 3, 201, 299, seed=2)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_fusion_blocks_step_between_the_right_scales() -> None:
    """Encoder DFF at 1/8 sees 1/1, 1/2, 1/4 features; decoder DFF at 1/1 sees 1/16 ... 1/2 ones."""
    enc = EncoderFusion(128, 4)
    finer = [torch.zeros(1, 16, 32, 32), torch.zeros(1, 32, 16, 16), torch.zeros(1, 64, 8, 8)]
    assert enc(torch.zeros(1, 128, 4, 4), finer).shape == (1, 128, 4, 4)
    dec = DecoderFusion(16, 5)
    coarser = [
        torch.zeros(1, 256, 2, 2),
        torch.zeros(1, 128, 4, 4),
        torch.zeros(1, 64, 8, 8),
        torch.zeros(1, 32, 16, 16),
    ]
    assert dec(torch.zeros(1, 16, 32, 32), coarser).shape == (1, 16, 32, 32)


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    net = bench.build_baseline("msbdn").train()
    x = _rand(1, 3, 32, 32, seed=3)
    net(x).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no or non-finite gradient for {missing[:5]}"
    assert net.conv_input.conv2d.weight.grad.abs().sum() > 0
    assert net.dehaze.res0.conv1.conv2d.weight.grad.abs().sum() > 0


def test_registration_metadata() -> None:
    meta = bench.BASELINES.meta("msbdn")
    assert meta["params"] == 31_353_061
    assert meta["repo"] == "BookerDeWitt/MSBDN-DFF"
    assert meta["commit"] == "ab515e2530caafbd5d054e5da1f7a854f2e9a03d"
    recipe = meta["recipe"]
    assert isinstance(recipe, TrainRecipe)
    assert (recipe.loss, recipe.lr, recipe.batch, recipe.patch) == ("mse", 1e-4, 16, 256)
