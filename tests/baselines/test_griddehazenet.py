"""GridDehazeNet-specific checks beyond the generic fixture tests (tests/test_baseline_fixtures.py).

Weights are the fixtures' deterministic fill (scale 0.1), so outputs are non-trivial and
reproducible without shared/ material.
"""

from __future__ import annotations

import pytest
import torch
from support.shared import fill_by_key
from torchvision.transforms import Normalize

import bench
from baselines._base import TrainRecipe
from baselines.griddehazenet import GridDehazeNet, UpSample

SCALE = 0.1  # the fixture's fill scale


@pytest.fixture(scope="module")
def model() -> GridDehazeNet:
    return fill_by_key(bench.build_baseline("griddehazenet"), SCALE).eval()


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_normalise_is_the_official_loader_transform() -> None:
    """Hazy inputs go through torchvision Normalize((0.5,)*3, (0.5,)*3) in train_data.py / val_data.py."""
    x = _rand(2, 3, 8, 8)
    official = torch.stack([Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))(img) for img in x])
    assert torch.equal(GridDehazeNet.normalise(x), official)
    assert GridDehazeNet.normalise(torch.tensor([0.0, 0.5, 1.0])).tolist() == [-1.0, 0.0, 1.0]


def test_forward_normalises_input_and_keeps_the_relu_output(model: GridDehazeNet) -> None:
    x = _rand(2, 3, 24, 40)
    with torch.no_grad():
        y = model(x)
        official = model.official_forward(x * 2 - 1)
        unnormalised = model.official_forward(x)
    assert y.shape == x.shape
    assert torch.equal(y, official)
    assert not torch.allclose(y, unnormalised)  # the normalisation really happens
    assert y.min() >= 0  # final ReLU; no clamp above (the official save_image clamps on writing)
    assert (y > 0).float().mean() > 0.3  # not a dead, all-zero output


def test_coefficient_constant_is_ones_and_frozen_without_attention() -> None:
    """The official attention weights start as np.ones((height, width, 2, depth_rate * stride**(height-1)))."""
    net = GridDehazeNet()
    assert net.coefficient.shape == (3, 6, 2, 64)
    assert torch.equal(net.coefficient.detach(), torch.ones(3, 6, 2, 64))
    assert net.coefficient.requires_grad
    frozen = GridDehazeNet(attention=False)
    assert not frozen.coefficient.requires_grad
    assert sum(p.numel() for p in frozen.parameters()) == 958_051  # still counted, still in the state_dict


def test_any_size_without_padding(model: GridDehazeNet) -> None:
    """size_multiple is 1: the transposed convs are told the finer row's exact size, so odd sizes run as-is."""
    assert model.size_multiple == 1
    x = _rand(1, 3, 23, 37, seed=1)
    with torch.no_grad():
        assert model.official_forward(x * 2 - 1).shape == x.shape
    up = UpSample(32)
    for h, w in ((12, 19), (11, 18)):
        assert up(torch.zeros(1, 32, (h + 1) // 2, (w + 1) // 2), (1, 16, h, w)).shape == (1, 16, h, w)


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    net = bench.build_baseline("griddehazenet").train()
    x = _rand(1, 3, 24, 24, seed=3)
    net(x).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no or non-finite gradient for {missing[:5]}"
    assert net.conv_in.weight.grad.abs().sum() > 0
    # Attention weights: row 1 mixes 32 channels, so channels beyond 32 get no gradient there.
    g = net.coefficient.grad
    assert g[1, 1, :, :32].abs().sum() > 0 and g[1, 1, :, 32:].abs().sum() == 0


def test_unsupported_configurations_fail_clearly() -> None:
    with pytest.raises(ValueError, match="stride=2"):
        GridDehazeNet(stride=3)


def test_registration_metadata() -> None:
    meta = bench.BASELINES.meta("griddehazenet")
    assert meta["params"] == 958_051
    assert meta["repo"] == "proteus1991/GridDehazeNet"
    assert meta["commit"] == "6f0cdf48203a2f41f15b7abc8da6ec3203668c8c"
    recipe = meta["recipe"]
    assert isinstance(recipe, TrainRecipe)
    assert (recipe.lr, recipe.batch, recipe.patch) == (1e-3, 18, 240)
    assert recipe.loss.startswith("smooth_l1 + 0.04 * perceptual")
