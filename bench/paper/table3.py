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
from bench.report.common import LPIPS, PSNR, SSIM, banner, footer, subsets_of, values
from bench.report.layout import Cell, Layout, Line, Section

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


def layout(results: pd.DataFrame, profile: str, reproduction: bool) -> Layout:
    paper = paper_numbers("table3")
    metrics = [LPIPS, PSNR, SSIM]
    sections = []
    for select, title in SELECT_TITLES:
        lines = []
        for _, p in paper.iterrows():
            cells = {c.key: Cell(ours=values(results, c.key, loss_set=LOSS_SETS[p.loss], select=select),
                                 paper=float(p[c.key])) for c in metrics}
            lines.append(Line(p.label, "trained", cells))
        sections.append(Section(title, lines))
    return Layout(3, EXPERIMENT.title, metrics, sections, reproduction and profile == "paper",
                  banner(profile, reproduction, subsets_of(results)),
                  [*footer(results, profile), "every row trains MSBDN with an L1 term plus its own term "
                   "(perceptual 0.04, adversarial 1e-3, DiffLoss gamma 1e-3 / lambda 1e-2); see REPRODUCE.md."])


@LAYOUTS.register("table3")
def render(results: pd.DataFrame, ctx: Any) -> list[str]:
    from bench.report.tables import table_files

    cfg = ctx.job.config
    return table_files(layout(results, cfg["profile"], cfg["is_reproduction"]), results, ctx, "table3")
