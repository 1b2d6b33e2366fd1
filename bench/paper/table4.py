"""Table 4: what DiffLoss constrains, on GridDehazeNet and Dense-Haze: (a) x0-hat, (b) x_{t-1}-hat, (c) eps-hat + h."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pandas as pd

from bench.experiment.graph import GraphBuilder, build_experiment
from bench.experiment.spec import DataRef, Experiment, RowSpec
from bench.graph.job import Job
from bench.paper import paper_numbers
from bench.registry import LAYOUTS, PAPER
from bench.report.claims import Claim, Verdict, order_verdict
from bench.report.common import FID, KID, PSNR, SSIM, banner, cell_of, comparable, footer, subsets_of
from bench.report.gains import gain, gain_row
from bench.report.layout import Layout, Line, Section

#: The paper's variant names -> our loss sets.
LOSS_SETS = {"x0": "diffloss_x0", "xprev": "diffloss_xprev", "eps": "diffloss"}
EXPERIMENT = Experiment(
    name="table4",
    title="Ablation of what DiffLoss constrains (FID, PSNR, SSIM)",
    rows=(RowSpec("griddehazenet", DataRef("dehazing"), tuple(LOSS_SETS.values())),),
    metrics=("fid", "kid", "psnr", "ssim"),
    layout="table4",
)


@PAPER.register("table4", kind="table", number=4)
def graph(g: GraphBuilder, seeds: int) -> Job:
    return build_experiment(EXPERIMENT, g, seeds)[0]


#: The paper's final variant, (c): the others are compared with it.
FINAL = "eps"
#: FID with KID (ours only) beside it, then the paper's PSNR and SSIM.
METRICS = [FID, replace(KID, in_paper=False), PSNR, SSIM]
#: The claimed order of the variants, best first: (c) > (b) > (a).
ORDER = ("eps", "xprev", "x0")
FID_NOTE = ("the paper's FID is on Dense-Haze's 5 test images: no FID on so few images can be compared with it "
            "(N < 10,000), so its Δ column never holds a number; KID beside it is ours only.")


def _match(variant: str) -> dict[str, object]:
    return {"loss_set": LOSS_SETS[variant]}


def layout(results: pd.DataFrame, profile: str, reproduction: bool, per_image: pd.DataFrame | None = None) -> Layout:
    """(a), (b), (c) with the paper's numbers; with ``per_image``, "Δ vs" rows of (c) against (a) and (b)."""
    paper = paper_numbers("table4")
    final = paper[paper.variant == FINAL].iloc[0]
    lines = []
    for _, p in paper.iterrows():
        cells = {c.key: cell_of(results, c, float(p[c.key]) if c.in_paper else None, **_match(p.variant))
                 for c in METRICS}
        gains = []
        if p.variant == FINAL and per_image is not None:
            gains = [gain_row(f"{o.label}: {o.description}", results, per_image, METRICS, _match(o.variant),
                              _match(p.variant), {c.key: float(p[c.key]) - float(o[c.key]) for c in METRICS
                                                  if c.in_paper})
                     for _, o in paper.iterrows() if o.variant != final.variant]
        lines.append(Line(f"{p.label}: {p.description}", "trained", cells, gains=gains))
    subsets = subsets_of(results)
    return Layout(4, EXPERIMENT.title, METRICS, [Section("Dense-Haze, GridDehazeNet", lines)],
                  comparable(profile, reproduction, subsets), banner(profile, reproduction, subsets),
                  [*footer(results, profile), FID_NOTE])


def claims(results: pd.DataFrame, per_image: pd.DataFrame | None, profile: str, reproduction: bool
           ) -> list[Verdict]:
    """Table 4's ordering (c) > (b) > (a) on each of the paper's metrics (FID: not testable, set-level on 5 images)."""
    paper = paper_numbers("table4").set_index("variant")
    ok = comparable(profile, reproduction, subsets_of(results))
    out = []
    for col in (c for c in METRICS if c.in_paper):
        order = " > ".join(f"({paper.loc[v, 'label'].split()[0]})" for v in ORDER)
        values_ = ", ".join(f"({paper.loc[v, 'label'].split()[0]}) {float(paper.loc[v, col.key]):.4g}" for v in ORDER)
        pairs = []
        for better, worse in itertools.pairwise(ORDER):
            label = f"({paper.loc[better, 'label'].split()[0]}) vs ({paper.loc[worse, 'label'].split()[0]})"
            g = gain(results, per_image, col, _match(worse), _match(better)) if (
                per_image is not None or col.set_level) else None
            pairs.append((label, g))
        text = f"GridDehazeNet on Dense-Haze: {order} on {col.key.upper()} (better first)"
        out.append(order_verdict(Claim(f"table4.{col.key}", text, values_), pairs, col, ok,
                                 missing="no per-image values" if per_image is None else "rows not in this run"))
    return out


@LAYOUTS.register("table4")
def render(results: pd.DataFrame, ctx: Any, per_image: pd.DataFrame | None = None) -> list[str]:
    from bench.report.tables import render_table

    return render_table("table4", f"Table 4: {EXPERIMENT.title}", layout, claims, results, ctx, per_image)
