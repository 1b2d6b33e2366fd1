"""FSDGN-specific checks beyond the generic fixture tests (tests/test_baseline_fixtures.py).

Weights are the fixtures' deterministic fill (scale 0.05), which gives outputs that are
mostly inside (0, 1), so range, padding and output-selection checks are not vacuous.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from support.shared import fill_by_key

import bench
from baselines._base import TrainRecipe
from baselines.fsdgn import FSDGN, DecoderFusion, EncoderFusion, FourierBlock, _resize_to

SCALE = 0.05  # the fixture's fill scale


@pytest.fixture(scope="module")
def model() -> FSDGN:
    return fill_by_key(bench.build_baseline("fsdgn"), SCALE).eval()


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_forward_range_shape_and_output_selection(model: FSDGN) -> None:
    """At an admissible size forward() is the official first output, no normalisation around it."""
    x = _rand(2, 3, 32, 48)
    with torch.no_grad():
        y = model(x)
        official = model.official_forward(x)
    assert y.shape == x.shape
    assert y.min() >= 0 and y.max() <= 1
    assert ((y > 0) & (y < 1)).float().mean() > 0.3  # not a saturated, constant image
    assert torch.equal(y, official[0])
    assert not torch.equal(official[0], official[1])  # the two outputs are different images


def test_stage_outputs_match_forward_and_official(model: FSDGN) -> None:
    x = _rand(1, 3, 27, 35, seed=2)
    with torch.no_grad():
        final, stage1 = model.stage_outputs(x)
        official = model.official_forward(F.pad(x, (0, 13, 0, 5), mode="reflect"))
        y = model(x)
    assert final.shape == stage1.shape == x.shape
    assert torch.equal(final, y)
    assert torch.equal(stage1, official[1][..., :27, :35])


def test_same_size_resize_skip_is_exact() -> None:
    """We skip the official same-size bilinear interpolations: they are exact copies."""
    x = torch.randn(2, 5, 13, 22, dtype=torch.float64)
    assert _resize_to(x, x.shape[-2:]) is x
    assert torch.equal(F.interpolate(x, size=(13, 22), mode="bilinear", align_corners=False), x)
    y = _resize_to(x, (7, 9))
    assert torch.equal(y, F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=False))


def test_fusion_blocks_resize_at_odd_sizes() -> None:
    """Dense fusion resizes when strided convs do not halve exactly (odd sizes), like the official."""
    torch.manual_seed(0)
    enc = EncoderFusion(28, 3)  # third scale: sees scales 1 (16 ch) and 2 (20 ch)
    coarse = torch.randn(1, 28, 5, 7)
    out = enc(coarse, [torch.randn(1, 16, 21, 29), torch.randn(1, 20, 11, 15)])
    assert out.shape[1] == 28 and torch.isfinite(out).all()
    dec = DecoderFusion(20, 4, 3)  # second scale on the way up: sees 76, 44, 28 channels
    fine = torch.randn(1, 20, 23, 31)
    out = dec(fine, [torch.randn(1, 76, 3, 4), torch.randn(1, 44, 6, 8), torch.randn(1, 28, 12, 16)])
    assert out.shape[1] == 20 and torch.isfinite(out).all()


def test_fourier_block_identity_branch_reconstructs_input() -> None:
    """With mag = identity and a zero phase MLP, irfft2(amp, phase) must give x back (atol 1e-5)."""
    blk = FourierBlock(4)
    with torch.no_grad():
        blk.mag.weight.copy_(torch.eye(4).view(4, 4, 1, 1))
        blk.mag.bias.zero_()
        blk.pha[2].weight.zero_()
        blk.pha[2].bias.zero_()
    x = torch.randn(2, 4, 9, 14)  # odd height and even width: irfft2 must be told the size
    with torch.no_grad():
        got = blk(x) - blk.main(x)
    assert torch.allclose(got, x, atol=1e-5)


def test_gradients_reach_every_parameter() -> None:
    """One backward from forward()'s output (default init, padded 24x40) reaches all 2.73M parameters."""
    torch.manual_seed(0)
    net = bench.build_baseline("fsdgn")
    x = _rand(1, 3, 24, 40, seed=3)
    net(x).mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient for {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


def test_registry_metadata_and_recipe() -> None:
    meta = bench.BASELINES.meta("fsdgn")
    n = sum(p.numel() for p in bench.build_baseline("fsdgn").parameters())
    assert meta["params"] == n == 2_731_283
    assert meta["repo"] == "yuhuUSTC/FSDGN" and meta["task"] == "dehazing"
    r = meta["recipe"]
    assert isinstance(r, TrainRecipe)
    assert (r.lr, r.batch, r.patch, r.iterations) == (1e-4, 2, 256, 400_000)


def test_unsupported_configuration_fails_clearly() -> None:
    with pytest.raises(ValueError, match="upconv"):
        FSDGN(up_mode="upsample")
    with pytest.raises(ValueError, match="base_channel"):
        FSDGN(base_channel=32)
