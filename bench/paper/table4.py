"""Table 4: what DiffLoss constrains, on GridDehazeNet and Dense-Haze: (a) x0-hat, (b) x_{t-1}-hat, (c) eps-hat + h."""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.experiment.graph import GraphBuilder, build_experiment
from bench.experiment.spec import DataRef, Experiment, RowSpec
from bench.graph.job import Job
from bench.paper import paper_numbers
from bench.registry import LAYOUTS, PAPER
from bench.report.common import FID, PSNR, SSIM, banner, footer, subsets_of, values
from bench.report.layout import Cell, Layout, Line, Section

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


def layout(results: pd.DataFrame, profile: str, reproduction: bool) -> Layout:
    paper = paper_numbers("table4")
    metrics = [FID, PSNR, SSIM]
    lines = []
    for _, p in paper.iterrows():
        cells = {c.key: Cell(ours=values(results, c.key, loss_set=LOSS_SETS[p.variant]), paper=float(p[c.key]))
                 for c in metrics}
        lines.append(Line(f"{p.label}: {p.description}", "trained", cells))
    return Layout(4, EXPERIMENT.title, metrics, [Section("Dense-Haze, GridDehazeNet", lines)],
                  reproduction and profile == "paper", banner(profile, reproduction, subsets_of(results)),
                  footer(results, profile))


@LAYOUTS.register("table4")
def render(results: pd.DataFrame, ctx: Any) -> list[str]:
    from bench.report.tables import table_files

    cfg = ctx.job.config
    return table_files(layout(results, cfg["profile"], cfg["is_reproduction"]), results, ctx, "table4")
