"""The layout of a user's experiment (``bench run --experiment FILE``): one section per data set, a line per
network and loss set, every metric the file asked for. There are no paper numbers to compare with."""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.registry import LAYOUTS
from bench.report.common import METRIC_COLUMNS, NOT_REPRODUCTIONS, footer, values
from bench.report.layout import Cell, Layout, Line, MetricCol, Section


def experiment_banner(profile: str, subsets: list[str]) -> str:
    if profile in NOT_REPRODUCTIONS:
        return (f"{NOT_REPRODUCTIONS[profile]}: the numbers check the path, not your network; run the paper "
                "profile (or your own data) for numbers that mean something.")
    cut = [s for s in subsets if s != "full"]
    return f"'{profile}' profile" + (f"; data subsets: {', '.join(cut)}" if cut else "") + "."


def layout(results: pd.DataFrame, cfg: dict[str, Any]) -> Layout:
    metrics = [m for m in cfg.get("metrics") or [] if m in results.columns] or [
        m for m in METRIC_COLUMNS if m in results.columns]
    cols = [METRIC_COLUMNS.get(m) or MetricCol(m, m, True, "{:.4f}") for m in metrics]
    cols = [MetricCol(c.key, c.header, c.higher_better, c.fmt, in_paper=False) for c in cols]
    sections = []
    for data, part in results.groupby("data", sort=False):
        lines = []
        seen: list[tuple[str, str]] = []
        for label, loss_set in zip(part["label"], part["loss_set"]):
            if (label, loss_set) not in seen:
                seen.append((label, loss_set))
        for label, loss_set in seen:
            cells = {c.key: Cell(values(part, c.key, label=label, loss_set=loss_set, select="last")) for c in cols}
            lines.append(Line(f"{label} / {loss_set}", "trained", cells))
        sections.append(Section(str(data), lines))
    extra = [f"experiment file: {cfg['source']}"] if cfg.get("source") else []
    return Layout(cfg["experiment"], cfg["title"], cols, sections, False,
                  experiment_banner(cfg["profile"], sorted(set(results["subset"].astype(str)))),
                  [*footer(results, cfg["profile"]), *extra])


@LAYOUTS.register("experiment")
def render(results: pd.DataFrame, ctx: Any) -> list[str]:
    from bench.report.tables import table_files

    cfg = ctx.job.config
    return table_files(layout(results, cfg), results, ctx, str(cfg["experiment"]))
