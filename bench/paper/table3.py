"""Table 3: MSBDN on Dense-Haze with four losses, each an L1 base term plus its own (LPIPS, PSNR, SSIM).

The paper reports "the best performance in the first 40K iterations": the best PSNR over training
snapshots, chosen on the test set. We render that rule and, beside it, the last iterate, since
choosing on the test set flatters every row.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.experiment.graph import GraphBuilder, build_experiment
from bench.experiment.spec import DataRef, Experiment, RowSpec
from bench.graph.job import Job
from bench.paper import paper_numbers
from bench.registry import LAYOUTS, PAPER
from bench.report.claims import Claim, Verdict, order_verdict
from bench.report.common import LPIPS, PSNR, SSIM, banner, cell_of, comparable, footer, subsets_of
from bench.report.gains import gain, gain_row
from bench.report.layout import Layout, Line, Section

#: The paper's loss names -> our loss sets (every row: L1 weight 1 plus its own term).
LOSS_SETS = {"l1": "l1", "perceptual": "l1+perceptual", "adversarial": "l1+adversarial", "diffloss": "l1+diffloss"}
EXPERIMENT = Experiment(
    name="table3",
    title="Loss functions on Dense-Haze with MSBDN as the baseline (LPIPS, PSNR, SSIM)",
    rows=(RowSpec("msbdn", DataRef("dehazing"), tuple(LOSS_SETS.values())),),
    metrics=("lpips", "psnr", "ssim"),
    select=("best:psnr", "last"),
    snapshots=4,
    layout="table3",
)
SELECT_TITLES = (("best:psnr", "Best PSNR over training snapshots (the paper's rule: chosen on the test set)"),
                 ("last", "Last iterate (no selection on the test set)"))


@PAPER.register("table3", kind="table", number=3)
def graph(g: GraphBuilder, seeds: int) -> Job:
    return build_experiment(EXPERIMENT, g, seeds)[0]


#: The paper's row whose loss is DiffLoss: every other row is compared with it.
DIFFLOSS = "diffloss"
METRICS = [LPIPS, PSNR, SSIM]


def _match(loss: str, select: str) -> dict[str, object]:
    return {"loss_set": LOSS_SETS[loss], "select": select}


def layout(results: pd.DataFrame, profile: str, reproduction: bool, per_image: pd.DataFrame | None = None) -> Layout:
    """The four losses per checkpoint rule; with ``per_image``, "Δ vs" rows of L1 + DiffLoss against each other row."""
    paper = paper_numbers("table3")
    final = paper[paper.loss == DIFFLOSS].iloc[0]
    sections = []
    for select, title in SELECT_TITLES:
        lines = []
        for _, p in paper.iterrows():
            cells = {c.key: cell_of(results, c, float(p[c.key]), loss_set=LOSS_SETS[p.loss], select=select)
                     for c in METRICS}
            gains = []
            if p.loss == DIFFLOSS and per_image is not None:
                gains = [gain_row(o.label, results, per_image, METRICS, _match(o.loss, select), _match(p.loss, select),
                                  {c.key: float(p[c.key]) - float(o[c.key]) for c in METRICS})
                         for _, o in paper.iterrows() if o.loss != final.loss]
            lines.append(Line(p.label, "trained", cells, gains=gains))
        sections.append(Section(title, lines))
    subsets = subsets_of(results)
    return Layout(3, EXPERIMENT.title, METRICS, sections, comparable(profile, reproduction, subsets),
                  banner(profile, reproduction, subsets),
                  [*footer(results, profile), "every row trains MSBDN with an L1 term plus its own term "
                   "(perceptual 0.04, adversarial 1e-3, DiffLoss gamma 1e-3 / lambda 1e-2); see REPRODUCE.md.",
                   "Δ rows compare L1 + DiffLoss (B) with each other loss (A) under the same checkpoint rule; the best "
                   "snapshot is chosen on the test set, so its intervals ignore that choice."])


def claims(results: pd.DataFrame, per_image: pd.DataFrame | None, profile: str, reproduction: bool
           ) -> list[Verdict]:
    """Table 3's ordering: DiffLoss best of the four losses on each metric (the paper's rule; last iterate beside)."""
    paper = paper_numbers("table3")
    final = paper[paper.loss == DIFFLOSS].iloc[0]
    others = [o for _, o in paper.iterrows() if o.loss != final.loss]
    ok = comparable(profile, reproduction, subsets_of(results))
    out = []
    for select, rule in (("best:psnr", "the paper's rule: best PSNR snapshot"), ("last", "our addition: last iterate")):
        for col in METRICS:
            text = f"MSBDN on Dense-Haze: {final.label} best of the four losses on {col.key.upper()} ({rule})"
            values_ = ", ".join(f"{o.label} {float(o[col.key]):.4g}" for o in [final, *others])
            pairs = [(f"vs {o.label}", gain(results, per_image, col, _match(o.loss, select),
                                            _match(final.loss, select)) if per_image is not None else None)
                     for o in others]
            out.append(order_verdict(Claim(f"table3.{col.key}.{select}", text, values_), pairs, col, ok,
                                     missing="no per-image values" if per_image is None else
                                     "rows not in this run"))
    return out


@LAYOUTS.register("table3")
def render(results: pd.DataFrame, ctx: Any, per_image: pd.DataFrame | None = None) -> list[str]:
    from bench.report.tables import render_table

    return render_table("table3", f"Table 3: {EXPERIMENT.title}", layout, claims, results, ctx, per_image)
