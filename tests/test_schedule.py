"""The linear 1000-step schedule equals guided-diffusion's, and its formulas are the paper's."""

from __future__ import annotations

import math

import torch
from support.shared import shared_path

from bench.prior import DiffusionSchedule


def _hand_alphas_cumprod() -> list[float]:
    """Plain-Python float64: betas linear from 1e-4 to 0.02 in 1000 steps (DDPM)."""
    betas = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]
    out, acc = [], 1.0
    for b in betas:
        acc *= 1.0 - b
        out.append(acc)
    return out


def test_alphas_cumprod_matches_fixture():
    s = DiffusionSchedule.linear(1000)
    ref = torch.load(shared_path("fixtures", "alphas_cumprod_linear1000.pt"), weights_only=True)
    assert s.num_timesteps == 1000 and s.alphas_cumprod.dtype == torch.float64
    torch.testing.assert_close(s.alphas_cumprod, ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(s.alphas_cumprod, torch.tensor(_hand_alphas_cumprod(), dtype=torch.float64),
                               atol=1e-12, rtol=0)


def test_q_sample_and_x0_from_true_eps_round_trip():
    s = DiffusionSchedule.linear()
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 5, 5, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 1, 500, 999])
    x_t = s.q_sample(x0, t, eps)
    ab = torch.tensor(_hand_alphas_cumprod(), dtype=torch.float64)[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(x_t, ab.sqrt() * x0 + (1 - ab).sqrt() * eps, atol=1e-12, rtol=0)  # Eq. 7
    torch.testing.assert_close(s.predict_x0_from_eps(x_t, t, eps), x0, atol=1e-9, rtol=0)  # Eq. 8


def test_posterior_mean_is_eq3():
    s = DiffusionSchedule.linear()
    ab = _hand_alphas_cumprod()
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(4, 3, 2, 2, generator=g, dtype=torch.float64)
    x_t = torch.randn(4, 3, 2, 2, generator=g, dtype=torch.float64)
    ts = [0, 1, 500, 999]
    got = s.posterior_mean(x0, x_t, torch.tensor(ts))
    for i, t in enumerate(ts):
        a_t = ab[t] / (ab[t - 1] if t else 1.0)
        ab_prev = ab[t - 1] if t else 1.0
        c0 = math.sqrt(ab_prev) * (1 - a_t) / (1 - ab[t])
        ct = math.sqrt(a_t) * (1 - ab_prev) / (1 - ab[t])
        torch.testing.assert_close(got[i], c0 * x0[i] + ct * x_t[i], atol=1e-12, rtol=0)
    torch.testing.assert_close(got[0], x0[0], atol=1e-12, rtol=0)  # t = 0: the mean is x0


def test_x0_from_prev_uses_previous_step():
    s = DiffusionSchedule.linear()
    ab = _hand_alphas_cumprod()
    x_prev = torch.randn(2, 3, 2, 2, dtype=torch.float64)
    eps = torch.randn(2, 3, 2, 2, dtype=torch.float64)
    got = s.predict_x0_from_prev(x_prev, torch.tensor([0, 10]), eps)
    torch.testing.assert_close(got[0], x_prev[0], atol=1e-12, rtol=0)  # abar_{-1} = 1
    want = x_prev[1] / math.sqrt(ab[9]) - math.sqrt(1 / ab[9] - 1) * eps[1]
    torch.testing.assert_close(got[1], want, atol=1e-12, rtol=0)


def test_coefficients_are_looked_up_in_float64_then_cast():
    s = DiffusionSchedule.linear()
    x = torch.ones(1, 1, dtype=torch.float32)
    v = s.extract(s.sqrt_recipm1_alphas_cumprod, torch.tensor([999]), x)
    assert v.dtype == torch.float32 and v.shape == (1, 1)
    assert v.item() == torch.tensor(s.sqrt_recipm1_alphas_cumprod[999].item(), dtype=torch.float32).item()
