"""The loss zoo: each loss's value on a hand-made case, and the composite's bookkeeping."""

from __future__ import annotations

import math

import pytest
import torch

from bench.losses.adversarial import AdversarialLoss
from bench.losses.composite import build_loss
from bench.losses.perceptual import LAYERS, PerceptualLoss
from bench.losses.pixel import L1Loss, L2Loss


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    return x + 0.1, x


def test_l2_norms_by_hand() -> None:
    z, x = _pair()
    assert L2Loss("mse")(z, x)["total"].item() == pytest.approx(0.01, abs=1e-7)
    # Euclidean norm per sample of a constant 0.1 over 3*4*4 values, batch mean
    assert L2Loss("l2")(z, x)["total"].item() == pytest.approx(0.1 * math.sqrt(48), abs=1e-6)
    with pytest.raises(ValueError, match="unknown norm"):
        L2Loss("l3")


def test_l1_by_hand() -> None:
    z, x = _pair()
    assert L1Loss()(z, x)["total"].item() == pytest.approx(0.1, abs=1e-7)


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        L1Loss()(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))


def test_perceptual_matches_independent_vgg_computation() -> None:
    from torchvision.models import vgg16

    torch.manual_seed(0)
    loss = PerceptualLoss(weights=None)
    ref = vgg16(weights=None).features[:16].eval()
    ref.load_state_dict(loss.net.state_dict())
    z, x = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = []
    hz, hx = (z - mean) / std, (x - mean) / std
    for i, layer in enumerate(ref):
        hz, hx = layer(hz), layer(hx)
        if i in LAYERS.values():
            expected.append((hz - hx).abs().mean())
    got = loss(z, x)
    assert got["total"].item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-5)
    assert loss(x, x)["total"].item() == 0.0
    assert not any(p.requires_grad for p in loss.net.parameters())


def test_perceptual_without_weight_file_names_it(monkeypatch, tmp_path) -> None:
    import bench.weights
    from bench.errors import MissingFileError

    monkeypatch.setattr(bench.weights, "weights_search_path", lambda: [tmp_path])
    with pytest.raises(MissingFileError, match="vgg16"):
        PerceptualLoss()


def test_adversarial_generator_term_by_hand() -> None:
    torch.manual_seed(0)
    adv = AdversarialLoss(width=8)
    last = adv.disc[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(0.7)  # every patch logit is 0.7
    z, x = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    # BCE(logit, 1) = softplus(-logit)
    assert adv(z, x)["total"].item() == pytest.approx(math.log1p(math.exp(-0.7)), abs=1e-6)


def test_adversarial_discriminator_trains_and_state_round_trips() -> None:
    torch.manual_seed(0)
    adv = AdversarialLoss(width=8)
    z, x = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    before = [p.clone() for p in adv.disc.parameters()]
    logged = adv.after_step(z, x)
    assert "discriminator" in logged
    assert any(not torch.equal(a, b) for a, b in zip(before, adv.disc.parameters()))
    state = adv.trainable_state()
    other = AdversarialLoss(width=8)
    other.load_trainable_state(state)
    assert adv(z, x)["total"].item() == other(z, x)["total"].item()


def test_composite_weights_and_names() -> None:
    z, x = _pair()
    loss = build_loss({"l1": {"weight": 2.0}, "l2": {"weight": 0.5, "norm": "mse"}})
    out = loss(z, x)
    assert out["total"].item() == pytest.approx(2 * 0.1 + 0.5 * 0.01, abs=1e-6)
    assert {"l1.total", "l1.pixel", "l2.total", "l2.pixel"} <= set(out)


def test_composite_refuses_missing_resource() -> None:
    with pytest.raises(ValueError, match="needs 'prior'"):
        build_loss({"diffloss": {}})
