"""DeepLPF-specific checks beyond the generic fixture tests (tests/test_baseline_fixtures.py).

Weights are the fixtures' deterministic fill (scale 0.05). Every forward costs at least
three 64-channel CNNs at 300x300 (the official heads resize to that size), about 0.5 s on
CPU, so inputs here are small and few.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from support.shared import fill_by_key

import bench
from baselines.deeplpf import (
    CUBIC_TERMS,
    MIN_SIDE,
    CubicFilter,
    DeepLPF,
    GraduatedFilter,
    _split_powers,
    pixel_grid,
)

SCALE = 0.05  # the fixture's fill scale

#: Built by the official class but never used by its forward (kept for strict loading).
UNUSED = {"conv1", "conv2", "conv3", "local_net"}


@pytest.fixture(scope="module")
def model() -> DeepLPF:
    return fill_by_key(bench.build_baseline("deeplpf"), SCALE).eval()


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_forward_range_shape_batch_and_output_selection(model: DeepLPF) -> None:
    """Batch of 2: per-sample filters (the official code is batch-1 only) give each sample's own result."""
    x = _rand(2, 3, 40, 48)
    with torch.no_grad():
        y = model(x)
        first = model.official_forward(x[:1])
    assert y.shape == x.shape
    assert y.min() >= 0 and y.max() <= 1
    assert y.std() > 0.01  # not a constant image
    # same function per sample; only float reordering of batched convolutions differs
    assert torch.allclose(y[:1], first, atol=1e-5, rtol=0)
    assert not torch.allclose(y[0], y[1], atol=1e-3)


def test_forward_at_awkward_size_hits_every_official_pad_case(model: DeepLPF) -> None:
    """75 x 92 instead of 401 x 599 (about 20 s on a busy 2-core CPU): its pooling sizes
    (75, 37, 18, 9) x (92, 46, 23, 11) need the official U-Net's bottom-row-only, left-column-only
    and both fix-ups after upsampling (checked against the official code outside this repo: max |diff| 0)."""
    x = _rand(1, 3, 75, 92, seed=1)
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    assert DeepLPF.size_multiple == 1


def test_inputs_below_min_side_are_padded_and_cropped(model: DeepLPF) -> None:
    """The official network cannot take < 32 px (reflection pad on a 1-px map); forward pads to 32."""
    x = _rand(1, 3, 20, 45, seed=2)
    with pytest.raises(RuntimeError):
        model.official_forward(x)
    with torch.no_grad():
        y = model(x)
        want = model.official_forward(F.pad(x, (0, 0, 0, MIN_SIDE - 20), mode="reflect"))[..., :20, :45]
    assert y.shape == x.shape
    assert torch.equal(y, want)


def test_forward_clamps_the_input_like_the_official_evaluator(model: DeepLPF) -> None:
    x = _rand(1, 3, 32, 32, seed=3) * 1.4 - 0.2
    with torch.no_grad():
        assert torch.equal(model(x), model.official_forward(x.clamp(0, 1)))


def test_filter_stages_match_forward(model: DeepLPF) -> None:
    x = _rand(1, 3, 32, 36, seed=4)
    with torch.no_grad():
        st = model.filter_stages(x)
        y = model(x)
    assert torch.equal(st["output"], y)
    assert st["backbone_image"].shape == st["cubic"].shape == st["scale"].shape == x.shape
    assert st["cubic"].min() >= 0 and st["cubic"].max() <= 1
    assert st["scale"].min() >= 0 and st["scale"].max() <= 2


# ----------------------------------------------------------------------------- filter formulas


def test_cubic_terms_are_the_20_monomials_of_degree_at_most_3() -> None:
    want = {"".join(c) for d in range(4) for c in itertools.combinations_with_replacement("xyi", d)}
    assert len(CUBIC_TERMS) == 20 and set(CUBIC_TERMS) == want
    assert _split_powers("xxi") == ["xx", "i"] and _split_powers("xyy") == ["x", "yy"]
    assert _split_powers("iii") == ["iii"] and _split_powers("") == []


def test_pixel_grid_is_row_over_h_and_column_over_w() -> None:
    rows, cols = pixel_grid(4, 5, torch.zeros(1))
    assert torch.equal(rows[:, 0], torch.arange(4) / 4) and torch.equal(rows[0], torch.zeros(5))
    assert torch.equal(cols[0], torch.arange(5) / 5) and torch.equal(cols[:, 0], torch.zeros(4))


@pytest.mark.parametrize(("term", "channel"), [("xyi", 0), ("yy", 1), ("xii", 2), ("", 0)])
def test_cubic_filter_coefficient_k_scales_monomial_k(term: str, channel: int) -> None:
    """Zero the head's weights and set one bias: the mask is exactly that coefficient times that monomial."""
    head = CubicFilter()
    k = 20 * channel + CUBIC_TERMS.index(term)
    with torch.no_grad():
        head.fc_cubic.weight.zero_()
        head.fc_cubic.bias.zero_()
        head.fc_cubic.bias[k] = 0.25
    img = _rand(1, 3, 6, 8, seed=5) * 0.5
    with torch.no_grad():
        out = head.eval().get_cubic_mask(torch.zeros(1, 61, 6, 8), img)
    x, y = pixel_grid(6, 8, img)
    value = {"x": x, "y": y, "i": img[0, channel]}
    mono = torch.ones(6, 8)
    for v in term:
        mono = mono * value[v]
    want = img.clone()
    want[0, channel] = (img[0, channel] + 0.25 * mono).clamp(0, 1)
    assert torch.allclose(out, want, atol=1e-6)


def _official_inverted_mask(factor: float, invert: float, d1: float, d2: float, top: torch.Tensor) -> torch.Tensor:
    """The official get_inverted_mask branches, written out as plain Python for scalars (the spec)."""
    if invert == 1:
        diff = (factor - 1) / 2 + 1 if factor >= 1 else (1 - factor) / 2 + factor
        v = factor + (diff - factor) / d1 * top + (1 - diff) / d2 * top
    elif factor >= 1:
        diff = (factor - 1) / 2 + 1
        v = 1 + (diff - factor) / d1 * top + (factor - diff) / d2 * top
    else:
        diff = (1 - factor) / 2 + factor
        v = 1 + (diff - 1) / d1 * top + (factor - diff) / d2 * top
    return v.clamp(1, 2) if factor >= 1 else v.clamp(0, 1)


def test_graduated_inverted_mask_takes_each_official_branch_per_sample() -> None:
    top = _rand(4, 5, 6, seed=6)
    cases = [(1.6, 1.0), (0.4, 1.0), (1.6, 0.0), (0.4, 0.0)]  # (factor, invert): all four branches
    factor = torch.tensor([c[0] for c in cases]).view(4, 1, 1)
    invert = torch.tensor([c[1] for c in cases]).view(4, 1, 1)
    d1, d2 = torch.full((4, 1, 1), 0.7), torch.full((4, 1, 1), 0.6)
    got = GraduatedFilter.inverted_mask(factor, invert, d1, d2, top)
    for b, (f, inv) in enumerate(cases):
        want = _official_inverted_mask(f, inv, 0.7, 0.6, top[b])
        assert torch.allclose(got[b], want, atol=1e-6), (f, inv)


def test_dropout_only_in_training(model: DeepLPF) -> None:
    x = _rand(1, 3, 32, 32, seed=7)
    with torch.no_grad():
        model.train()
        try:
            torch.manual_seed(0)
            a = model(x)
            torch.manual_seed(1)
            b = model(x)
        finally:
            model.eval()
    assert not torch.equal(a, b)  # dropout 0.5 before each head's linear layer, as in the official heads
    with torch.no_grad():
        assert torch.equal(model(x), model.official_forward(x))  # eval: deterministic, no dropout


def test_gradients_flow_from_forward_to_the_used_parameters() -> None:
    """One backward (train mode, 32 x 32): every parameter the forward uses gets a finite, non-zero
    gradient; the four unused official U-Net layers get none."""
    net = fill_by_key(bench.build_baseline("deeplpf"), SCALE).train()
    torch.manual_seed(0)
    net(_rand(1, 3, 32, 32, seed=8)).mean().backward()
    for name, p in net.named_parameters():
        if name.split(".")[2] in UNUSED and name.startswith("backbonenet.unet."):
            assert p.grad is None, name
            continue
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().max() > 0, name
