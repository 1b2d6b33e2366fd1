"""DiffLoss: frozen prior, gradients per mode, and each variant's value against a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from support.shared import fill_by_key
from torch import nn

from bench import LOSSES
from bench.errors import DataError
from bench.losses.diffloss import DiffLoss
from bench.prior import create_adm

S = 16
TINY = dict(image_size=S, num_channels=32, num_res_blocks=1, channel_mult="1,2", learn_sigma=True,
            attention_resolutions="8", num_head_channels=16, use_scale_shift_norm=True, resblock_updown=True)
RTOL = 1e-4  # hand computation (float64 schedule, float32 network) vs ours (float32)


def tiny_prior() -> nn.Module:
    return fill_by_key(create_adm(**TINY), 0.05)


def images(n=2, h=S, w=S, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, h, w, generator=g)
    z = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    return z, x


def _abar() -> np.ndarray:
    return np.cumprod(1.0 - np.linspace(1e-4, 0.02, 1000, dtype=np.float64))


def hand(prior, z, x, *, variant="eps", lam=0.01, gamma=0.001, norm="l2", seed=0, t_weight="none",
         official=False, pixel=True):
    """DiffLoss written out from the paper's equations, with the documented draw order."""
    g = torch.Generator().manual_seed(seed)
    n, _, h, w = z.shape
    if (h, w) != (S, S):
        tops = torch.randint(0, h - S + 1, (n,), generator=g).tolist()
        lefts = torch.randint(0, w - S + 1, (n,), generator=g).tolist()
        zc = torch.stack([z[i, :, a : a + S, b : b + S] for i, (a, b) in enumerate(zip(tops, lefts))])
        xc = torch.stack([x[i, :, a : a + S, b : b + S] for i, (a, b) in enumerate(zip(tops, lefts))])
    else:
        zc, xc = z, x
    t = torch.randint(0, 1000, (n,), generator=g)
    noise = torch.randn((n, 3, S, S), generator=g).double()
    ab = _abar()
    ab_prev = np.append(1.0, ab[:-1])
    col = lambda a: torch.tensor(a[t.numpy()], dtype=torch.float64).view(-1, 1, 1, 1)  # noqa: E731
    A, Ap = col(ab), col(ab_prev)
    alpha = A / Ap

    def branch(img):
        x0 = img.double() * 2 - 1
        xt = A.sqrt() * x0 + (1 - A).sqrt() * noise  # Eq. 7
        with torch.no_grad():
            out, hh = prior(xt.float(), t, return_h=True)
        eps = out[:, :3].double()
        x0h = xt / A.sqrt() - (1 / A - 1).sqrt() * eps  # Eq. 9
        xprev = (Ap.sqrt() * (1 - alpha) / (1 - A)) * x0h + (alpha.sqrt() * (1 - Ap) / (1 - A)) * xt  # Eq. 3
        x0hh = xprev / Ap.sqrt() - (1 / Ap - 1).sqrt() * noise  # arXiv Eq. 10
        return {"eps": [eps], "x0": [x0h], "xprev": [xprev], "arxiv_v1": [x0h, x0hh]}[variant], hh.double()

    wt = (1 - A).sqrt().flatten() if t_weight == "sigma" else torch.ones(n, dtype=torch.float64)

    def red(d):
        per = d.flatten(1).norm(dim=1) if norm == "l2" else d.flatten(1).pow(2).mean(1)
        return (per * wt).mean()

    (tx, hx), (tz, hz) = branch(xc), branch(zc)
    nat = sum(red(a - b) for a, b in zip(tx, tz))
    sem = red(hx - hz)
    if not pixel:
        pix = 0.0
    elif official:
        pix = ((z.double() * 2 - 1) - (x.double() * 2 - 1)).pow(2).mean()
    else:
        d = (z - x).double()
        pix = d.flatten(1).norm(dim=1).mean() if norm == "l2" else d.pow(2).mean()
    return {"total": pix + gamma * (nat + lam * sem), "nat": nat, "sem": sem, "pixel": pix}


def _close(got, want, what):
    got, want = float(torch.as_tensor(got).detach()), float(torch.as_tensor(want).detach())
    assert math.isclose(got, want, rel_tol=RTOL, abs_tol=1e-9), f"{what}: ours {got} vs hand {want}"


@pytest.mark.parametrize("variant", ["eps", "x0", "xprev", "arxiv_v1"])
def test_variant_value_equals_hand_computation(variant):
    prior = tiny_prior()
    z, x = images()
    got = DiffLoss(prior, variant=variant, seed=3)(z, x)
    want = hand(prior, z, x, variant=variant, seed=3)
    for k in ("total", "nat", "sem", "pixel"):
        _close(got[k], want[k], f"{variant}/{k}")
    assert float(got["nat"]) > 0 and float(got["sem"]) > 0


@pytest.mark.parametrize("opts", [
    {"norm": "mse"},
    {"t_weight": "sigma"},
    {"lam": 0.5, "gamma": 0.1, "variant": "x0"},
])
def test_options_equal_hand_computation(opts):
    prior = tiny_prior()
    z, x = images(seed=1)
    got = DiffLoss(prior, seed=5, **opts)(z, x)
    want = hand(prior, z, x, seed=5, **opts)
    for k in ("total", "nat", "sem", "pixel"):
        _close(got[k], want[k], f"{opts}/{k}")


def test_larger_inputs_are_cropped_like_the_hand_computation():
    prior = tiny_prior()
    z, x = images(n=3, h=21, w=18, seed=2)
    loss = DiffLoss(prior, variant="xprev", seed=7)
    got = loss(z, x)
    want = hand(prior, z, x, variant="xprev", seed=7)
    _close(got["total"], want["total"], "crop/total")
    _close(got["nat"], want["nat"], "crop/nat")
    assert "16x16" in loss.crop_policy and loss.describe()["crop_policy"] == loss.crop_policy


def test_official_code_mode_equals_released_formula():
    prior = tiny_prior()
    z, x = images(seed=4)
    got = DiffLoss(prior, mode="official-code", seed=9)(z, x)
    want = hand(prior, z, x, seed=9, norm="mse", lam=1e-3, gamma=1e-3, official=True)
    _close(got["total"], want["total"], "official/total")
    # 1e-3 * MSE(eps) + 1e-6 * MSE(h): the released code's weights
    _close(got["total"] - got["pixel"], 1e-3 * want["nat"] + 1e-6 * want["sem"], "official/weights")


def test_smaller_inputs_are_a_clear_error():
    loss = DiffLoss(tiny_prior())
    z, x = images(h=12, w=20)
    with pytest.raises(DataError, match="smaller than its prior's 16x16") as e:
        loss(z, x)
    assert isinstance(e.value, ValueError) and e.value.fix


@pytest.mark.parametrize(("mode", "variant"), [("paper", v) for v in ("eps", "x0", "xprev", "arxiv_v1")]
                         + [("official-code", "eps")])
def test_identical_images_give_zero(mode, variant):
    _, x = images()
    z = x.clone().requires_grad_(True)
    out = DiffLoss(tiny_prior(), mode=mode, variant=variant)(z, x)
    for k in ("total", "pixel", "nat", "sem", "diffloss"):
        assert float(out[k].detach()) == 0.0, k
    out["total"].backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().max() == 0


def test_paper_mode_gradient_reaches_z():
    z, x = images()
    z = z.requires_grad_(True)
    DiffLoss(tiny_prior(), pixel=None)(z, x)["total"].backward()
    assert z.grad is not None and z.grad.abs().max() > 0


def test_official_code_mode_diffusion_terms_give_exactly_zero_gradient():
    z, x = images()
    prior = tiny_prior()
    z1 = z.clone().requires_grad_(True)
    DiffLoss(prior, mode="official-code", pixel=None)(z1, x)["total"].backward()
    assert torch.equal(z1.grad, torch.zeros_like(z1.grad))
    z2, z3 = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    DiffLoss(prior, mode="official-code")(z2, x)["total"].backward()
    ((z3 * 2 - 1) - (x * 2 - 1)).pow(2).mean().backward()  # the released code's pixel MSE alone
    assert torch.equal(z2.grad, z3.grad)


def test_official_code_mode_rejects_other_settings():
    with pytest.raises(ValueError, match="official-code"):
        DiffLoss(tiny_prior(), mode="official-code", variant="x0")
    with pytest.raises(ValueError, match="official-code"):
        DiffLoss(tiny_prior(), mode="official-code", lam=0.01)


def test_prior_is_frozen_through_a_training_step():
    prior = tiny_prior()
    before = {k: v.clone() for k, v in prior.state_dict().items()}
    loss = DiffLoss(prior, seed=1)
    net = nn.Conv2d(3, 3, 3, padding=1)
    opt = torch.optim.Adam(list(net.parameters()) + list(loss.parameters()), lr=1e-2)
    assert list(loss.parameters()) == [] and all(not k.startswith("prior") for k in loss.state_dict())
    loss.train()
    assert loss.training and not prior.training
    z, x = images()
    w0 = net.weight.detach().clone()
    for _ in range(2):
        opt.zero_grad()
        loss(net(z), x)["total"].backward()
        opt.step()
    assert not torch.equal(net.weight, w0)  # the restorer did train
    assert all(p.grad is None and not p.requires_grad for p in prior.parameters())
    after = prior.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not prior.training


def test_same_seed_same_loss_and_rng_state_replays():
    prior = tiny_prior()
    z, x = images()
    a, b, c = DiffLoss(prior, seed=11), DiffLoss(prior, seed=11), DiffLoss(prior, seed=12)
    va, vb, vc = a(z, x)["total"], b(z, x)["total"], c(z, x)["total"]
    assert torch.equal(va, vb) and not torch.equal(va, vc)
    state = a.rng_state()
    second = a(z, x)["total"]
    a.set_rng_state(state)
    assert torch.equal(a(z, x)["total"], second)
    d = DiffLoss(prior, seed=0)
    d.load_state_dict(b.state_dict())  # the generator state travels in state_dict()
    assert torch.equal(d(z, x)["total"], b(z, x)["total"])


def test_registered_and_moves_prior_with_to():
    import bench.prior

    assert LOSSES.get("diffloss") is DiffLoss is bench.DiffLoss
    prior = tiny_prior()
    loss = LOSSES.get("diffloss")(prior).double()
    assert all(p.dtype == torch.float64 for p in prior.parameters())
    row = loss.describe()
    assert row["norm"] == "l2" and row["mode"] == "paper" and row["variant"] == "eps"
