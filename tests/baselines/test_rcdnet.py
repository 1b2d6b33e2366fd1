"""RCDNet-specific checks beyond the generic fixture tests (tests/test_baseline_fixtures.py).

RCDNet's 17 stages cost ~3 M multiply-adds per pixel, so most checks run a 3-stage model
(same modules and update rules, fewer repeats) filled by key at the fixture's scale; the
17-stage default is exercised by the fixture tests.
"""

from __future__ import annotations

import pytest
import torch
from support.shared import fill_by_key, load_fixture, shared_path

import bench
from baselines._base import TrainRecipe
from baselines.rcdnet import RGB_RANGE, RCDNet, initial_rain_kernels

SCALE = 0.1  # the fixture's fill scale


@pytest.fixture(scope="module")
def small() -> RCDNet:
    return fill_by_key(RCDNet(stage=3), SCALE).eval()


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_rain_kernel_constant_is_the_official_init_kernel_mat() -> None:
    """Bit-exact against init_kernel.mat['C9'] as the official code loads it (torch.FloatTensor)."""
    expected = torch.load(shared_path("fixtures", "rcdnet", "init_kernel_C9.pt"), weights_only=True)
    got = initial_rain_kernels()
    assert got.dtype == torch.float32 and got.shape == (3, 32, 9, 9)
    assert torch.equal(got, expected)


def test_rain_kernel_constant_structure() -> None:
    """Holds without shared/: identical for R, G, B, mirror-symmetric, non-negative, not all alike."""
    k = initial_rain_kernels()
    assert torch.equal(k[0], k[1]) and torch.equal(k[0], k[2])
    assert torch.equal(k, k.flip(-1)) and torch.equal(k, k.flip(-2))
    assert (k >= 0).all() and (k.flatten(2).amax(-1) > 0).all()
    assert not torch.equal(k[0, 0], k[0, 1])


def test_fresh_model_starts_from_the_official_initial_values() -> None:
    m = RCDNet(stage=4)
    kernels = initial_rain_kernels()
    assert torch.equal(m.weight0.data, kernels)
    assert m.conv.shape == (3, 3, 32, 9, 9)
    for copy in m.conv.data:
        assert torch.equal(copy, kernels)
    assert m.weight0.data_ptr() != m.conv.data_ptr()  # independent tensors, not views of one storage
    assert m.eta1.item() == 1.0 and m.eta2.item() == 5.0
    assert torch.equal(m.eta11.data, torch.ones(3, 1)) and torch.equal(m.eta12.data, torch.full((3, 1), 5.0))
    assert torch.equal(m.w_z_f.data, torch.full((32, 3, 3, 3), 1.0 / 9.0))
    assert m.tau.item() == 1.0
    assert torch.equal(m.m_stage[2].tau.data, torch.full((1, 32, 1, 1), 0.5))


def test_forward_scales_to_0_255_and_returns_the_last_background(small: RCDNet) -> None:
    """The official pipeline feeds 0-255 images and evaluates ListB[-1]; forward does that on [0, 1]."""
    x = _rand(1, 3, 20, 28)
    with torch.no_grad():
        y = small(x)
        b0, backgrounds, rain = small.unfold(x * RGB_RANGE)
        stacked = small.official_forward(x * RGB_RANGE)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert len(backgrounds) == small.S + 1 and len(rain) == small.S
    assert (y - backgrounds[-1] / RGB_RANGE).abs().max().item() <= 1e-6
    assert torch.equal(stacked, torch.stack([b0, backgrounds[-1]]))
    assert y.std() > 1e-3  # not a constant image


def test_stage_outputs_are_the_official_lists_on_the_unit_scale(small: RCDNet) -> None:
    x = _rand(2, 3, 16, 12, seed=1)
    with torch.no_grad():
        stages = small.stage_outputs(x)
        y = small(x)
    assert len(stages["backgrounds"]) == small.S + 1 and len(stages["rain_layers"]) == small.S
    assert torch.equal(stages["backgrounds"][-1], y)
    assert stages["b0"].shape == x.shape
    assert all(r.shape == x.shape for r in stages["rain_layers"])


def test_gradients_flow_to_the_parameters_the_official_forward_uses() -> None:
    """One backward in training mode (batch-norm statistics from the batch).

    The official forward never uses ``mnet``, ``eta1`` nor the rain-kernel copies other than
    ``conv[1]``: they get no gradient, everything else does.
    """
    m = fill_by_key(RCDNet(stage=3), SCALE).train()
    y = m(_rand(2, 3, 12, 12, seed=3))
    y.square().mean().backward()
    for name, p in m.named_parameters():
        if name.startswith("mnet.") or name == "eta1":
            assert p.grad is None, name
        elif name == "conv":
            assert p.grad[1].abs().sum() > 0
            assert p.grad[0].abs().sum() == 0 and p.grad[2:].abs().sum() == 0
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


def test_constructor_rejects_configurations_the_official_code_cannot_run() -> None:
    with pytest.raises(ValueError, match="num_M"):
        RCDNet(num_M=16)
    with pytest.raises(ValueError, match="stage"):
        RCDNet(stage=2)


def test_registration_matches_the_fixture_and_records_the_official_recipe() -> None:
    meta = bench.BASELINES.meta("rcdnet")
    fixture, _ = load_fixture("rcdnet")
    assert (meta["repo"], meta["commit"], meta["params"]) == (
        fixture["official_repo"],
        fixture["commit"],
        fixture["params"],
    )
    model = bench.build_baseline("rcdnet")
    assert (model.S, model.num_M, model.num_Z) == (
        fixture["constructor_args"]["stage"],
        fixture["constructor_args"]["num_M"],
        fixture["constructor_args"]["num_Z"],
    )
    recipe = meta["recipe"]
    assert isinstance(recipe, TrainRecipe)
    assert (recipe.lr, recipe.batch, recipe.patch) == (1e-3, 16, 64)
