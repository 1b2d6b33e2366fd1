"""MSBDN-specific checks beyond the generic fixture tests (tests/test_baseline_fixtures.py) and the
generic forward/padding tests (tests/test_baseline_generic.py)."""

from __future__ import annotations

import torch

import bench
from baselines._base import TrainRecipe
from baselines.msbdn import DecoderFusion, EncoderFusion


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


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
