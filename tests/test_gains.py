"""The paired gain statistics (``bench.evaluate.stats``) and how the tables show them.

Constructed per-image differences with a known effect: the interval holds the truth and excludes 0,
with no effect it holds 0 and the table says "n.s." (never bold); with K = 3 seeds the two-level
(crossed) bootstrap keeps its coverage where resampling images inside each seed (nested) does not;
the seeds-needed arithmetic on a table small enough to do by hand; every FID shows its N and is
neither compared with the paper's nor bold below N = 10,000.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from support.constructed import constructed

from bench.evaluate.compare import bootstrap_ci
from bench.evaluate.stats import (
    Z95,
    crossed_bootstrap_ci,
    paired_gain,
    seeds_needed,
    seeds_needed_files,
    seeds_needed_frames,
)
from bench.paper import table1, table4
from bench.report.formats import to_latex, to_markdown


def _series(values: np.ndarray) -> pd.Series:
    return pd.Series(values, index=[f"i{j:03d}" for j in range(len(values))])


def _pair(effect: float, n: int = 40, sd: float = 0.3, seed: int = 0) -> tuple[dict, dict, np.ndarray]:
    """A and B on ``n`` images, B - A = ``effect`` + noise whose sample mean is exactly 0 (so the truth is known)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(20.0, 2.0, n)
    noise = rng.normal(0.0, sd, n)
    noise -= noise.mean()
    return {0: _series(base)}, {0: _series(base + effect + noise)}, noise


def test_known_effect_interval_holds_the_truth_and_excludes_zero() -> None:
    a, b, noise = _pair(0.5)
    g = paired_gain(a, b, lower_better=False, metric="psnr")
    assert g.mean == pytest.approx(0.5, abs=1e-12)
    assert g.low < 0.5 < g.high and g.low > 0 and g.direction == "better" and g.significant_gain
    # the percentile interval's half-width is the normal one, 1.96 sd / sqrt(n), within bootstrap noise
    half = Z95 * noise.std(ddof=0) / math.sqrt(len(noise))
    assert (g.high - g.low) / 2 == pytest.approx(half, rel=0.06)
    up = int((0.5 + noise > 0).sum())
    assert (g.wins, g.ties, g.losses) == (up, 0, 40 - up) and up >= 35 and g.p_value < 1e-6
    # lower-better metrics: the same numbers are a loss
    worse = paired_gain(a, b, lower_better=True)
    assert worse.direction == "worse" and (worse.wins, worse.losses) == (40 - up, up)


def test_no_effect_interval_holds_zero_and_is_never_a_gain() -> None:
    a, b, _ = _pair(0.0)
    g = paired_gain(a, b, lower_better=False)
    assert g.mean == pytest.approx(0.0, abs=1e-12) and g.low < 0 < g.high
    assert g.direction == "n.s." and not g.significant_gain and g.p_value > 0.05


def test_table_rows_say_better_only_with_an_interval_excluding_zero() -> None:
    for effect, word in ((1.0, "better"), (0.0, "n.s.")):
        results, per_image = constructed("table1", effect=effect)
        md = to_markdown(table1.layout(results, "paper", True, per_image))
        rows = [ln for ln in md.splitlines() if ln.startswith("| ↳ Δ vs")]
        assert len(rows) == 6  # one under each w/ DiffLoss line
        psnr = [r.split(" | ")[1] for r in rows]  # the PSNR (ours) cell of each Δ row
        assert all(word in c for c in psnr), psnr
        assert not any("**" in r for r in rows)  # a Δ row is never bold
        if effect == 0.0:
            assert not any("better" in c for c in psnr)
    # the Δ row's paper column is the paper's own difference: FSDGN 14.66 - 14.34
    assert "| ↳ Δ vs FSDGN [67] | " in md and " | +0.32 | " in md.split("| ↳ Δ vs FSDGN [67] | ")[1]


def test_constructed_table1_gain_interval_holds_the_built_in_effect() -> None:
    """The layout's own Δ cells, from per-image files with a +1 dB effect: every interval holds 1 and excludes 0."""
    results, per_image = constructed("table1", effect=1.0, n_images=30)
    lay = table1.layout(results, "paper", True, per_image)
    gains = [g.diffs["psnr"].ours for sec in lay.sections for ln in sec.lines for g in ln.gains]
    assert len(gains) == 6
    for g in gains:
        assert g.low > 0 and g.low <= 1.0 <= g.high and g.n_images == 30 and g.n_seeds == 1


def _crossed_data(rng: np.random.Generator, k: int, n: int, sa: float, sb: float, se: float, mu: float) -> np.ndarray:
    return (mu + rng.normal(0, sa, n)[None, :] + rng.normal(0, sb, k)[:, None] + rng.normal(0, se, (k, n)))


def _nested_ci(d: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """The alternative we rejected: draw seeds, then images afresh inside each drawn seed."""
    rng = np.random.default_rng(seed)
    k, n = d.shape
    s = rng.integers(0, k, (resamples, k))
    i = rng.integers(0, n, (resamples, k, n))
    stats = d[s[:, :, None], i].mean(axis=(1, 2))
    lo, hi = np.quantile(stats, [0.025, 0.975])
    return float(lo), float(hi)


def test_two_level_bootstrap_with_three_seeds() -> None:
    rng = np.random.default_rng(3)
    d = _crossed_data(rng, 3, 20, 1.0, 0.3, 0.3, 0.5)
    a = {k: _series(np.zeros(20)) for k in range(3)}
    b = {k: _series(d[k]) for k in range(3)}
    g = paired_gain(a, b, lower_better=False)
    assert g.n_seeds == 3 and g.n_images == 20 and g.mean == pytest.approx(d.mean(), abs=1e-12)
    assert (g.low, g.high) == crossed_bootstrap_ci(d)  # the table's interval is the crossed bootstrap
    # seed clustering widens it beyond pooling all 60 differences as if independent
    pooled = bootstrap_ci(d.ravel())
    assert g.high - g.low > 1.2 * (pooled[1] - pooled[0])
    # one seed: exactly bench compare's bootstrap over images
    assert crossed_bootstrap_ci(d[:1]) == bootstrap_ci(d[0])
    # Wilcoxon and W/T/L are on each image's difference averaged over the seeds
    assert g.wins + g.ties + g.losses == 20 and g.wins == int((d.mean(axis=0) > 0).sum())


def test_crossed_bootstrap_keeps_its_coverage_where_nested_does_not() -> None:
    """200 data sets, K = 3 seeds x n = 20 images, the image effect dominating (the same images under each seed):
    the crossed interval covers the true mean about 93% of the time, the nested one about 76%."""
    rng = np.random.default_rng(1)
    crossed = nested = 0
    reps = 200
    for rep in range(reps):
        d = _crossed_data(rng, 3, 20, 1.0, 0.1, 0.3, 0.5)
        lo, hi = crossed_bootstrap_ci(d, resamples=500, seed=rep)
        crossed += lo <= 0.5 <= hi
        lo, hi = _nested_ci(d, 500, rep)
        nested += lo <= 0.5 <= hi
    assert crossed / reps >= 0.88
    assert nested / reps <= 0.85


def test_seeds_needed_by_hand() -> None:
    # K = 2 seeds x n = 6 images, no interaction: image means 2, 3, 4, 2, 3, 4 (variance 0.8), seed means 2, 4 (2)
    d = np.array([[1.0, 2.0, 3.0, 1.0, 2.0, 3.0], [3.0, 4.0, 5.0, 3.0, 4.0, 5.0]])
    plan = seeds_needed(d, 1.5)
    assert plan.v_resid == pytest.approx(0.0, abs=1e-12)
    assert plan.v_image == pytest.approx(0.8) and plan.v_seed == pytest.approx(2.0)
    # h(K) = 1.96 sqrt(0.8/6 + 2/K) < 1.5  <=>  K > 2 / ((1.5/1.96)^2 - 0.8/6) = 4.42
    assert plan.seeds == 5 and not plan.lower_bound and plan.testable
    assert plan.half_width(5) < 1.5 < plan.half_width(4)
    # the image term alone, 1.96 sqrt(0.8/6) = 0.716, is wider than a gain of 0.7: no number of seeds resolves it
    assert seeds_needed(d, 0.7).seeds is None and plan.floor == pytest.approx(Z95 * math.sqrt(0.8 / 6))
    # five images can never give a gain (the signed-rank test's smallest p is 0.0625), whatever the spread
    five = seeds_needed(d[:, :5], 1.5)
    assert not five.testable and five.seeds is None and five.seeds_80 is None


def test_few_images_never_show_a_gain_on_the_interval_alone() -> None:
    """Under no effect the percentile interval of n = 5 normal differences excludes 0 far more often than 5% of
    the time; requiring the signed-rank p < 0.05 as well brings "better" / "worse" back below 5%."""
    rng = np.random.default_rng(0)
    for n, interval_rate in ((5, 0.12), (15, 0.065)):
        interval_only = both = 0
        reps = 400
        for _ in range(reps):
            a, b = {0: _series(np.zeros(n))}, {0: _series(rng.normal(0, 1, n))}
            g = paired_gain(a, b, lower_better=False, resamples=2000)
            interval_only += g.low > 0 or g.high < 0
            both += g.direction != "n.s."
        assert interval_only / reps > interval_rate, (n, interval_only / reps)
        assert both / reps <= 0.06, (n, both / reps)
    # five images all better by a clear margin: the interval excludes 0, the test cannot, so "n.s."
    a, b = {0: _series(np.zeros(5))}, {0: _series(np.array([0.3, 0.4, 0.5, 0.6, 0.7]))}
    g = paired_gain(a, b, lower_better=False)
    assert g.low > 0 and g.p_value == pytest.approx(0.0625) and g.direction == "n.s."


def test_seeds_needed_from_one_seed_is_a_lower_bound(tmp_path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 16)
    x = (x - x.mean()) / x.std(ddof=1)  # s_d = 1 exactly
    plan = seeds_needed(x[None, :], 0.25)
    # 1.96 / sqrt(16 K) < 0.25  <=>  K > (1.96 / (0.25 * 4))^2 = 3.84
    assert plan.s_d == pytest.approx(1.0) and plan.seeds == 4 and plan.lower_bound
    # 80% power: 1.96 / sqrt(16 K) < 0.25 * 1.96 / 2.80  <=>  K > 7.84
    assert plan.seeds_80 == 8
    a = pd.DataFrame({"image_id": [str(i) for i in range(16)], "seed": 0, "psnr": 20.0})
    b = a.assign(psnr=20.0 + x)
    assert seeds_needed_frames(a, b, "psnr", 0.25).seeds == 4
    # from per-image CSVs, one per seed and row (seed 1 repeats seed 0 shifted: a pure seed effect of +-0.1)
    paths = {}
    for side, frame in (("a", a), ("b", b)):
        for k, shift in ((0, -0.05), (1, 0.05)):
            paths.setdefault(side, []).append(tmp_path / f"{side}{k}.csv")
            frame.assign(seed=k, psnr=frame["psnr"] + (shift if side == "b" else 0.0)).to_csv(paths[side][-1])
    plan = seeds_needed_files(paths["a"], paths["b"], "psnr", 0.25)
    assert plan.n_seeds == 2 and plan.v_resid == pytest.approx(0.0, abs=1e-12)
    assert plan.v_seed == pytest.approx(0.005) and plan.v_image == pytest.approx(1.0)  # var(+-0.05) = 0.005


@pytest.mark.parametrize("fid_n, compared", [(16, False), (10_000, True)])
def test_fid_shows_its_n_and_no_difference_below_the_threshold(fid_n: int, compared: bool) -> None:
    results, per_image = constructed("table4", fid_n=fid_n)
    lay = table4.layout(results, "paper", True, per_image)
    md, tex = to_markdown(lay), to_latex(lay)
    assert f"240.00 (N={fid_n})" in md and f"(N={fid_n})" in tex  # every FID with its N
    assert "| KID↓ (ours) |" in md  # KID beside FID
    final = next(ln for ln in md.splitlines() if ln.startswith("| c (Ours)"))
    fid_delta = final.split(" | ")[3]
    if compared:
        assert fid_delta == "-53.01" and "**240.00 (N=10000)**" in final
    else:
        assert fid_delta == "N<10000" and "**240.00" not in md and "N<10000" in tex
        assert "no difference to the paper's is printed" in md
    assert "Dense-Haze's 5 test images" in md  # the paper's FID can never be compared: said in the footer


def test_smoke_tables_show_statistics_but_never_compare_with_the_paper() -> None:
    results, per_image = constructed("table1", profile="smoke")
    md = to_markdown(table1.layout(results, "smoke", False, per_image))
    rows = [ln for ln in md.splitlines() if ln.startswith("| ↳ Δ vs")]
    assert len(rows) == 6 and all("better" in r.split(" | ")[1] for r in rows)
    assert all(r.split(" | ")[3] == "n/c" for r in rows)  # the Δ-to-paper column of a Δ row
    truncated, per_image = constructed("table1", subset="truncated:8")
    md = to_markdown(table1.layout(truncated, "paper", True, per_image))
    fsdgn = next(ln for ln in md.splitlines() if ln.startswith("| FSDGN [67] |")).split(" | ")
    assert "NOT a reproduction" in md and fsdgn[3] == "n/c" and fsdgn[6] == "n/c"  # a subset is never compared
