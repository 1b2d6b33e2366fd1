"""EfDeRain-specific checks beyond the generic fixture tests (tests/test_baseline_fixtures.py).

Weights are the fixtures' deterministic fill (scale 0.02), so outputs are non-trivial and
reproducible without shared/ material.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from support.shared import fill_by_key, load_fixture

import bench
from baselines._base import TrainRecipe
from baselines.efderain import RATES, EfDeRain, apply_pixel_filters

SCALE = 0.02  # the fixture's fill scale


@pytest.fixture(scope="module")
def model() -> EfDeRain:
    return fill_by_key(bench.build_baseline("efderain"), SCALE).eval()


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _filter_by_shifts(image: torch.Tensor, filters: torch.Tensor, k: int, rate: int) -> torch.Tensor:
    """Reference for the official KernelConv: zero-pad, take the K x K dilated shifts, weight, sum."""
    n, c, h, w = image.shape
    pad = (k // 2) * rate
    padded = F.pad(image, (pad, pad, pad, pad))
    f = filters.reshape(n, c, k, k, h, w)
    out = torch.zeros_like(image)
    for i in range(k):
        for j in range(k):
            out += f[:, :, i, j] * padded[..., i * rate : i * rate + h, j * rate : j * rate + w]
    return out


@pytest.mark.parametrize(("k", "rate"), [(3, 1), (3, 2), (3, 4), (5, 3)])
def test_pixel_filters_match_the_shifted_sum(k: int, rate: int) -> None:
    image = _rand(2, 3, 9, 13, seed=k)
    filters = torch.randn(2, 3 * k * k, 9, 13, generator=torch.Generator().manual_seed(rate))
    got = apply_pixel_filters(image, filters, k, rate)
    assert (got - _filter_by_shifts(image, filters, k, rate)).abs().max().item() <= 1e-6


def test_centre_tap_filter_is_the_identity() -> None:
    """A filter that is 1 at the centre tap and 0 elsewhere returns the image at every rate."""
    image = _rand(1, 3, 8, 10, seed=5)
    filters = torch.zeros(1, 3, 9, 8, 10)
    filters[:, :, 4] = 1.0
    for rate in RATES:
        assert torch.equal(apply_pixel_filters(image, filters.reshape(1, 27, 8, 10), 3, rate), image)


def test_restore_resized_is_the_official_test_resize(model: EfDeRain) -> None:
    """Bilinear resize up to multiples of 16, run, resize back; the identity when already a multiple."""
    x = _rand(1, 3, 30, 45, seed=3)
    with torch.no_grad():
        y = model.restore_resized(x)
        up = F.interpolate(x, size=(32, 48), mode="bilinear", align_corners=False)
        expected = F.interpolate(model.official_forward(up), size=(30, 45), mode="bilinear", align_corners=False)
        same = model.restore_resized(x[..., :16, :32])
        direct = model.official_forward(x[..., :16, :32])
    assert y.shape == x.shape
    assert (y - expected).abs().max().item() <= 1e-6
    assert torch.equal(same, direct)


def test_gradients_reach_every_parameter() -> None:
    """One backward from forward's output at an awkward size; every parameter is used officially."""
    m = bench.build_baseline("efderain").train()
    y = m(_rand(1, 3, 17, 30, seed=4))
    y.square().mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_built_model_starts_from_the_official_xavier_init() -> None:
    """create_generator: every conv weight ~ xavier_normal(gain 0.02), std 0.02 * sqrt(2 / (fan_in + fan_out))."""
    m = bench.build_baseline("efderain")
    for name in ("conv4.conv1.2.weight", "conv1.conv1.0.weight", "outc.weight"):
        w = m.state_dict()[name]
        fan_in, fan_out = w.shape[1] * w[0, 0].numel(), w.shape[0] * w[0, 0].numel()
        expected = 0.02 * (2.0 / (fan_in + fan_out)) ** 0.5
        assert abs(w.std().item() / expected - 1) < 0.1, name  # >= 729 samples: sampling error well below 10 %
    # biases keep PyTorch's default uniform(+-1/sqrt(fan_in)), as officially
    b = m.conv1.conv1[0].bias
    assert b.abs().max().item() <= 1 / 27**0.5 and b.std().item() > 0.05


def test_attention_options_build_and_run() -> None:
    """The official keywords channel_att / spatial_att add att_c / att_s to the decoder blocks."""
    m = EfDeRain(channel_att=True, spatial_att=True, kernel_size=[5]).eval()
    keys = m.state_dict().keys()
    assert "conv6.att_c.0.weight" in keys and "conv8.att_s.0.weight" in keys
    assert "conv5.att_c.0.weight" not in keys
    assert m.outc.weight.shape == (75, 75, 1, 1)
    with torch.no_grad():
        assert m(_rand(1, 3, 16, 16)).shape == (1, 3, 16, 16)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"color": False},
        {"burst_length": 2},
        {"blind_est": False},
        {"sep_conv": True},
        {"core_bias": True},
        {"kernel_size": [3, 5]},
    ],
)
def test_constructor_rejects_configurations_the_official_code_cannot_run(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        EfDeRain(**kwargs)


def test_registration_matches_the_fixture_and_records_the_official_recipe() -> None:
    meta = bench.BASELINES.meta("efderain")
    fixture, _ = load_fixture("efderain")
    assert (meta["repo"], meta["commit"], meta["params"]) == (
        fixture["official_repo"],
        fixture["commit"],
        fixture["params"],
    )
    args = fixture["constructor_args"]
    model = bench.build_baseline("efderain")
    assert model.kernel_size == args["kernel_size"][0] and model.up_mode == args["upMode"]
    recipe = meta["recipe"]
    assert isinstance(recipe, TrainRecipe)
    assert (recipe.lr, recipe.batch, recipe.patch) == (2e-4, 16, 256)
