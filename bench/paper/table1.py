"""Table 1: six networks on three tasks, each trained without and with DiffLoss (PSNR, SSIM; LPIPS, FID, KID beyond).

Rows: FSDGN and MB-TaylorFormer on Dense-Haze, RCDNet and EfDeRain on Rain13K -> Rain100H, DeepLPF
and IAT on LOL; loss sets ``l2`` (the paper's ``||x - z||_2``) and ``diffloss`` (eps + h-space,
gamma 1e-3, lambda 1e-2). The paper's reference rows (methods it reports but does not retrain) are
shown with its numbers only.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.experiment.graph import GraphBuilder, build_experiment
from bench.experiment.spec import TASK_TITLES, DataRef, Experiment, RowSpec
from bench.graph.job import Job
from bench.paper import paper_numbers
from bench.registry import LAYOUTS, PAPER
from bench.report.common import FID, KID, LPIPS, PSNR, SSIM, banner, footer, subsets_of, values
from bench.report.layout import Cell, Layout, Line, MetricCol, Section

BASELINES = {"dehazing": ("fsdgn", "mb_taylorformer"), "deraining": ("rcdnet", "efderain"),
             "lowlight": ("deeplpf", "iat")}
EXPERIMENT = Experiment(
    name="table1",
    title="Quantitative comparison on three data sets (PSNR, SSIM; LPIPS, FID and KID beyond the paper)",
    rows=tuple(RowSpec(b, DataRef(task), ("l2", "diffloss")) for task, bs in BASELINES.items() for b in bs),
    metrics=("psnr", "ssim", "lpips", "fid", "kid"),
    layout="table1",
)


@PAPER.register("table1", kind="table", number=1)
def graph(g: GraphBuilder, seeds: int) -> Job:
    return build_experiment(EXPERIMENT, g, seeds)[0]


def layout(results: pd.DataFrame, profile: str, reproduction: bool) -> Layout:
    paper = paper_numbers("table1")
    extra = [c for c in (LPIPS, FID, KID) if c.key in results.columns]
    metrics = [PSNR, SSIM] + [MetricCol(c.key, c.header, c.higher_better, c.fmt, in_paper=False) for c in extra]
    sections = []
    for task in BASELINES:
        lines = []
        for _, p in paper[paper.task == task].iterrows():
            cells = {"psnr": Cell(paper=float(p.psnr)), "ssim": Cell(paper=float(p.ssim))}
            if p.kind == "trained":
                for col in metrics:
                    cells.setdefault(col.key, Cell()).ours = values(results, col.key, task=task, baseline=p.baseline,
                                                                    loss_set=p.loss)
            note = "paper's number, not trained here" if p.kind == "reference" else ""
            lines.append(Line(p.method, p.kind, cells, note))
        sections.append(Section(TASK_TITLES[task], lines))
    return Layout(1, EXPERIMENT.title, metrics, sections, reproduction and profile == "paper",
                  banner(profile, reproduction, subsets_of(results)), footer(results, profile))


@LAYOUTS.register("table1")
def render(results: pd.DataFrame, ctx: Any) -> list[str]:
    from bench.report.tables import table_files

    cfg = ctx.job.config
    return table_files(layout(results, cfg["profile"], cfg["is_reproduction"]), results, ctx, "table1")
