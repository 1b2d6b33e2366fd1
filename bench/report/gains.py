"""The DiffLoss gain of a table: each pair of rows that differ by DiffLoss alone, compared image by image.

A layout names the two rows of a pair by what selects them in the results (``task``, ``baseline``,
``loss_set``, ``select``, ...); :func:`diff` finds their per-image values in the render job's
per-image frame (``bench.jobs.render.gather_per_image``: one row per input and test image, the
input's row description beside its metric columns) and computes the paired statistics of
``bench.evaluate.stats``. A set-level metric (FID, KID) uses the results' per-seed set values.
"""

from __future__ import annotations

import pandas as pd

from bench.evaluate.stats import PairedGain, paired_gain, set_gain
from bench.report.common import matching, set_sizes
from bench.report.layout import Diff, GainRow, MetricCol


def per_seed(per_image: pd.DataFrame, metric: str, **match: object) -> dict[int, pd.Series]:
    """{seed: values of ``metric`` by image id} of the one input per seed that ``match`` selects."""
    if metric not in per_image:
        return {}
    mask = matching(per_image, match) & pd.to_numeric(per_image[metric], errors="coerce").notna()
    sel = per_image.loc[mask, ["input", "seed", "image_id", metric]]
    out = {}
    for seed, part in sel.groupby(sel["seed"].astype(int)):
        if part["input"].nunique() > 1:
            raise ValueError(f"{match} selects {part['input'].nunique()} inputs of seed {seed} for {metric} "
                             f"({', '.join(sorted(part['input'].unique())[:3])}): name the row fully")
        out[int(seed)] = pd.to_numeric(part[metric]).set_axis(part["image_id"].astype(str))
    return out


def _set_values(results: pd.DataFrame, metric: str, match: dict[str, object]) -> dict[int, float]:
    if metric not in results:
        return {}
    sel = results.loc[matching(results, match) & pd.to_numeric(results[metric], errors="coerce").notna()]
    return {int(s): float(v) for s, v in zip(sel["seed"], sel[metric])}


def gain(results: pd.DataFrame, per_image: pd.DataFrame | None, col: MetricCol, a: dict[str, object],
         b: dict[str, object]) -> PairedGain | None:
    """B - A of ``col`` between the rows ``a`` and ``b`` select (None without data for both)."""
    lower = not col.higher_better
    if col.set_level:
        ns = set_sizes(results, col.key, **a) + set_sizes(results, col.key, **b)
        return set_gain(_set_values(results, col.key, a), _set_values(results, col.key, b), lower, col.key, ns)
    if per_image is None:
        return None
    return paired_gain(per_seed(per_image, col.key, **a), per_seed(per_image, col.key, **b), lower, col.key)


def gain_row(versus: str, results: pd.DataFrame, per_image: pd.DataFrame | None, cols: list[MetricCol],
             a: dict[str, object], b: dict[str, object], paper: dict[str, float] | None = None) -> GainRow:
    """The sub-row "Δ vs ``versus``": per column, B - A (ours) beside the paper's own B - A."""
    paper = paper or {}
    return GainRow(versus, {c.key: Diff(gain(results, per_image, c, a, b), paper.get(c.key)) for c in cols})
