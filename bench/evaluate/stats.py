"""Paired gains over images and seeds: the statistics behind every table's "Δ vs" rows and ``claims.md``.

Two rows that differ by one thing (DiffLoss on or off) are scored on the same test images, and a
training seed ``k`` of one is paired with seed ``k`` of the other. Per metric we report the paired
difference B - A:

* the point estimate: the mean over seeds of each seed's mean over images;
* a 95% percentile bootstrap interval (10,000 resamples, numpy PCG64 seed 0). One seed: the
  images are resampled (:func:`bench.evaluate.compare.bootstrap_ci`, the same code as ``bench
  compare``). K > 1 seeds: two levels, *crossed*: each resample draws K seeds and n images with
  replacement, and the one image draw serves every drawn seed. The test images are the same for
  every seed, so an image that DiffLoss helps helps it under every seed; drawing images afresh
  inside each seed (nested) would treat K seeds as K independent test sets and shrink that term
  by K, which overstates significance (``tests/test_gains.py`` measures the coverage of both);
* the two-sided Wilcoxon signed-rank p over the per-image differences, each image's difference
  first averaged over the seeds (so an image counts once), and wins / ties / losses of B over the
  same per-image differences in the metric's better direction.

Set-level metrics (FID, KID) have one value per test set: their difference has no per-image
interval, test or wins, only the mean over seeds of B - A and the sets' N.

:func:`seeds_needed` turns the measured spread into the number of seeds at which a gain of a given
size would be resolved (its formula is in its docstring).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.evaluate.compare import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CI_LEVEL, bootstrap_ci, wilcoxon_p, win_tie_loss

#: z of the two-sided 95% normal interval (the planning arithmetic of :func:`seeds_needed`).
Z95 = 1.959963984540054
#: z of 80% power (one-sided): a gain of size g is found 80% of the time when the half-width is below
#: g * Z95 / (Z95 + Z80).
Z80 = 0.8416212335729143
#: The two-sided level both the interval (95%) and the Wilcoxon p must reach for "better" / "worse".
SIGNIFICANCE = 1 - CI_LEVEL
#: Seeds beyond which :func:`seeds_needed` stops counting (a gain needing more is "not resolvable").
MAX_SEEDS = 1000

METHOD = (f"Δ rows: paired difference B − A on the same test images (seed k of B with seed k of A); mean over "
          f"seeds of the per-seed mean over images; {CI_LEVEL:.0%} percentile bootstrap interval, "
          f"{BOOTSTRAP_RESAMPLES:,} resamples, seed {BOOTSTRAP_SEED} (one seed: images resampled; K > 1 seeds: "
          "seeds and images resampled, crossed: one image draw serves every drawn seed, since every seed is "
          "tested on the same images); Wilcoxon signed-rank p (two-sided, zero differences dropped) and W/T/L "
          "(images where B is better / equal / worse) on each image's difference averaged over seeds, so they "
          "see the images only: with K > 1 a tiny p beside an interval holding 0 means the seeds disagree. "
          "\"better\" / \"worse\": the interval excludes 0 in that direction and p < 0.05 (on few images the "
          "percentile interval alone is too narrow: 5 images can never show a gain); \"n.s.\": otherwise. Set-level "
          "metrics (FID, KID): the difference of the set values only, no interval (one value per test set).")


@dataclass
class PairedGain:
    """The paired difference B - A of one metric (``level`` "image": with interval and test; "set": without)."""

    metric: str
    lower_better: bool
    level: str
    mean: float
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    wins: int | None = None
    ties: int | None = None
    losses: int | None = None
    n_images: int = 0
    n_seeds: int = 0
    set_n: list[int] = field(default_factory=list)  # set-level: each set's N (both rows, every seed)
    notes: list[str] = field(default_factory=list)

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def direction(self) -> str:
        """"better" / "worse" (B than A) when the interval excludes 0 that way *and* the Wilcoxon p is below
        :data:`SIGNIFICANCE`; "n.s." otherwise; "no interval" for set-level metrics and single images.

        Why both: on few images the percentile interval is too narrow (measured under no effect, normal
        differences, ``tests/test_gains.py``: it excludes 0 in 16% of data sets at n = 5, 8.5% at n = 15,
        7% at n = 100, against a nominal 5%), while the signed-rank test is exact there (at n = 5 its
        smallest two-sided p is 0.0625: five images alone can never show a gain). With K > 1 seeds the
        test sees the images only and the interval the seeds too, so each guards what the other misses.
        """
        if not self.has_interval:
            return "no interval"
        if (self.low > 0 or self.high < 0) and (self.p_value is None or self.p_value < SIGNIFICANCE):  # type: ignore
            up = self.low > 0  # type: ignore[operator]
            return "better" if up != self.lower_better else "worse"
        return "n.s."

    @property
    def significant_gain(self) -> bool:
        return self.direction == "better"

    def holds(self, value: float) -> bool | None:
        """Is ``value`` inside the interval (None without one)?"""
        if not self.has_interval:
            return None
        return self.low <= value <= self.high  # type: ignore[operator]


def diff_matrix(a: Mapping[int, pd.Series], b: Mapping[int, pd.Series]) -> tuple[np.ndarray, list[str], list[int],
                                                                                   list[str]]:
    """(D, image ids, seeds, notes): D[k, i] = B - A of seed k on image i, over the seeds and images both have.

    ``a`` and ``b`` map a seed to that seed's values indexed by image id. An image left out of any
    seed is left out of all (the crossed bootstrap needs one image set), and the notes say how many.
    """
    notes: list[str] = []
    seeds = sorted(set(a) & set(b))
    if len(seeds) < len(set(a) | set(b)):
        notes.append(f"seeds {sorted(set(a) ^ set(b))} are in one row only and were left out")
    if not seeds:
        return np.empty((0, 0)), [], [], notes
    per_seed = []
    for k in seeds:
        sa = pd.to_numeric(a[k], errors="coerce").dropna()
        sb = pd.to_numeric(b[k], errors="coerce").dropna()
        for label, s in (("A", sa), ("B", sb)):
            if s.index.duplicated().any():
                raise ValueError(f"{label} seed {k} lists image {s.index[s.index.duplicated()][0]!r} twice")
        per_seed.append((sa, sb))
    common = set.intersection(*[set(sa.index) & set(sb.index) for sa, sb in per_seed])
    every = set.union(*[set(sa.index) | set(sb.index) for sa, sb in per_seed])
    if len(common) < len(every):
        notes.append(f"{len(every) - len(common)} image(s) without a value in both rows under every seed were "
                     f"left out ({len(common)} paired)")
    ids = sorted(common)
    d = np.array([sb.loc[ids].to_numpy(float) - sa.loc[ids].to_numpy(float) for sa, sb in per_seed])
    return d.reshape(len(seeds), len(ids)), ids, seeds, notes


def _counts(draws: np.ndarray, size: int) -> np.ndarray:
    """How often each of ``size`` indices occurs in each row of ``draws`` (rows x size)."""
    rows = draws.shape[0]
    flat = (np.arange(rows)[:, None] * size + draws).ravel()
    return np.bincount(flat, minlength=rows * size).reshape(rows, size).astype(float)


def crossed_bootstrap_ci(d: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                         level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile interval of the grand mean of ``d`` (K seeds x n images), seeds and images resampled, crossed.

    Each resample draws K seed indices and n image indices with replacement; its statistic is the
    mean of ``d`` over the drawn rows and columns, i.e. ``c_s @ d @ c_i / (K n)`` with the draw counts.
    One seed: exactly :func:`bench.evaluate.compare.bootstrap_ci` over the images.
    """
    k, n = d.shape
    if k == 1:
        return bootstrap_ci(d[0], resamples, seed, level)
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples)
    chunk = max(1, min(resamples, 4_000_000 // max(k * n, 1)))
    for start in range(0, resamples, chunk):
        m = min(resamples, start + chunk) - start
        cs = _counts(rng.integers(0, k, size=(m, k)), k)
        ci = _counts(rng.integers(0, n, size=(m, n)), n)
        stats[start:start + m] = ((cs @ d) * ci).sum(axis=1) / (k * n)
    alpha = (1 - level) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return float(low), float(high)


def paired_gain(a: Mapping[int, pd.Series], b: Mapping[int, pd.Series], lower_better: bool, metric: str = "",
                resamples: int = BOOTSTRAP_RESAMPLES) -> PairedGain | None:
    """The per-image paired gain B - A (None when no image is paired under any common seed)."""
    d, ids, seeds, notes = diff_matrix(a, b)
    if d.size == 0:
        return None
    per_image = d.mean(axis=0)  # each image once: its difference averaged over the seeds
    if len(ids) > 1:
        low, high = crossed_bootstrap_ci(d, resamples)
    else:
        low = high = None
        notes.append("one paired image: no interval")
    w, t, lo = win_tie_loss(per_image, lower_better)
    return PairedGain(metric, lower_better, "image", float(d.mean(axis=1).mean()), low, high,
                      wilcoxon_p(per_image) if len(ids) > 1 else None, w, t, lo, len(ids), len(seeds), notes=notes)


def set_gain(a: Mapping[int, float], b: Mapping[int, float], lower_better: bool, metric: str = "",
             set_n: list[int] | None = None) -> PairedGain | None:
    """A set-level metric's B - A: the mean over common seeds of each seed's difference; no interval."""
    seeds = sorted(k for k in set(a) & set(b) if math.isfinite(a[k]) and math.isfinite(b[k]))
    if not seeds:
        return None
    mean = sum(b[k] - a[k] for k in seeds) / len(seeds)
    return PairedGain(metric, lower_better, "set", mean, n_seeds=len(seeds), set_n=sorted(set(set_n or [])),
                      notes=["set-level: one value per test set, so no per-image interval, test or wins"])


# --------------------------------------------------------------------------- how many seeds


@dataclass
class SeedPlan:
    """What the measured spread says about resolving a gain of size ``gain`` (see :func:`seeds_needed`)."""

    gain: float
    n_images: int
    n_seeds: int
    s_d: float  # sd of the per-image paired differences within a seed (pooled over the seeds)
    v_image: float | None  # variance of the image effect shared by every seed (None: one seed cannot tell)
    v_seed: float | None  # variance of the per-seed mean difference beyond image noise (None: one seed)
    v_resid: float | None  # image x seed interaction variance (None: one seed)
    seeds: int | None  # seeds for a 95% interval narrower than the gain (None: none suffices on this test set)
    seeds_80: int | None  # ... narrower than gain * Z95 / (Z95 + Z80): 80% power at the 5% level
    lower_bound: bool  # True with one seed: ``seeds`` is a lower bound (between-seed spread unmeasured)
    half_width_now: float  # the formula's half-width at the seeds measured

    def half_width(self, k: int) -> float:
        return half_width(self, k)

    @property
    def testable(self) -> bool:
        """Can the signed-rank test reach the 5% level on n images at all (smallest two-sided p: 2 / 2^n)?"""
        return 2.0 / 2.0**self.n_images < SIGNIFICANCE

    @property
    def floor(self) -> float:
        """The half-width no number of seeds goes below: 1.96 * sqrt(v_image / n) (0 when one seed was measured)."""
        return 0.0 if self.v_image is None else Z95 * math.sqrt(self.v_image / self.n_images)


def _variance_components(d: np.ndarray) -> tuple[float, float, float]:
    """Method-of-moments (v_image, v_seed, v_resid) of d[k, i] = mu + a_i + b_k + e_ki (K > 1 seeds, n > 1)."""
    k, n = d.shape
    image_means, seed_means, grand = d.mean(axis=0), d.mean(axis=1), d.mean()
    resid = d - image_means[None, :] - seed_means[:, None] + grand
    v_resid = float((resid**2).sum() / ((k - 1) * (n - 1)))
    v_image = max(0.0, float(image_means.var(ddof=1)) - v_resid / k)
    v_seed = max(0.0, float(seed_means.var(ddof=1)) - v_resid / n)
    return v_image, v_seed, v_resid


def half_width(plan: SeedPlan, k: int) -> float:
    """1.96 * sqrt(v_image / n + v_seed / K + v_resid / (n K)); one seed measured: sqrt(s_d^2 / (n K))."""
    n = plan.n_images
    if plan.v_resid is None:
        return Z95 * plan.s_d / math.sqrt(n * k)
    return Z95 * math.sqrt(plan.v_image / n + plan.v_seed / k + plan.v_resid / (n * k))  # type: ignore[operator]


def _smallest_k(plan: SeedPlan, target: float) -> int | None:
    if target <= 0:
        return None
    for k in range(1, MAX_SEEDS + 1):
        if half_width(plan, k) < target:
            return k
    return None


def seeds_needed(d: np.ndarray, gain: float) -> SeedPlan:
    """The number of seeds at which a paired gain of size ``gain`` would be resolved at 95%.

    ``d`` is the K x n matrix of paired differences B - A (seed k, image i) on one test set of n
    images. Model: d_ki = mu + a_i + b_k + e_ki, with image effects a_i (shared by every seed:
    the test set is fixed), seed effects b_k and an interaction e_ki. The mean over K seeds and
    the n images has variance v_image / n + v_seed / K + v_resid / (n K), so the interval's
    half-width is

        h(K) = 1.96 * sqrt(v_image / n + v_seed / K + v_resid / (n K)),

    and the answer is the smallest K with h(K) < |gain| (an observed gain that large excludes 0),
    and for 80% power h(K) < |gain| * 1.96 / (1.96 + 0.84). The components come from the measured
    K > 1 seeds by the method of moments (residual of the two-way layout, then the image and seed
    means' variances less their share of it). v_image / n does not shrink with K: if it alone is
    wider than the gain, no number of seeds resolves it on this test set (``seeds`` is None).

    With one seed measured only s_d^2 = v_image + v_resid is known: then h(K) = 1.96 * s_d /
    sqrt(n K) (all of it taken as interaction, no seed effect), which is the *fewest* seeds that
    could do (``lower_bound``): a between-seed spread can only add to it.

    A gain also needs the signed-rank p below 0.05 (:meth:`PairedGain.direction`), which n <= 5 images
    can never give (smallest two-sided p 2 / 2^n): there ``seeds`` is None whatever the spread.
    """
    k, n = d.shape
    if n < 2:
        raise ValueError("seeds_needed needs at least two paired images")
    s_d = float(np.sqrt(np.mean(d.var(axis=1, ddof=1))))
    comps: tuple[float | None, float | None, float | None] = (None, None, None)
    if k > 1:
        comps = _variance_components(d)
    plan = SeedPlan(abs(gain), n, k, s_d, *comps, seeds=None, seeds_80=None, lower_bound=k == 1,
                    half_width_now=0.0)
    plan.half_width_now = half_width(plan, k)
    if plan.testable:  # else no number of seeds makes "better" (see PairedGain.direction): None
        plan.seeds = _smallest_k(plan, abs(gain))
        plan.seeds_80 = _smallest_k(plan, abs(gain) * Z95 / (Z95 + Z80))
    return plan


def seeds_needed_frames(a: pd.DataFrame, b: pd.DataFrame, metric: str, gain: float) -> SeedPlan:
    """:func:`seeds_needed` from two per-image tables (``image_id``, ``seed``, ``metric``; one or several seeds)."""
    def by_seed(frame: pd.DataFrame) -> dict[int, pd.Series]:
        seeds = frame["seed"] if "seed" in frame else pd.Series(0, index=frame.index)
        return {int(s): part.set_index(part["image_id"].astype(str))[metric] for s, part in frame.groupby(seeds)}

    d, _, _, _ = diff_matrix(by_seed(a), by_seed(b))
    return seeds_needed(d, gain)


def seeds_needed_files(a: list[Path], b: list[Path], metric: str, gain: float) -> SeedPlan:
    """:func:`seeds_needed` from per-image CSVs (``per_image.csv`` of each seed's evaluation, A's and B's).

    Each file's rows carry their ``seed`` (bench's provenance columns); several files per side are
    the seeds of one row. Rows are paired by image id and seed.
    """
    from bench.evaluate.compare import read_results

    def frame(paths: list[Path]) -> pd.DataFrame:
        return pd.concat([read_results(p) for p in paths], ignore_index=True)

    return seeds_needed_frames(frame(a), frame(b), metric, gain)
