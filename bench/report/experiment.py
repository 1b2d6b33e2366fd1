"""The layout of a user's experiment (``bench run --experiment FILE``): one section per data set, a line per
network and loss set, every metric the file asked for. There are no paper numbers to compare with.

With per-image values, every loss set of a network but its reference gets a "Δ vs" row: the paired
difference to the reference, which is the loss set's own "without DiffLoss" partner when the row has it
(``bench.experiment.losses.WITHOUT_DIFFLOSS``: ``diffloss`` against ``l2``, ``l1+diffloss`` against
``l1``), else ``l2`` or ``l1`` when the row has one, else the row's first loss set.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import Any

import pandas as pd

from bench.registry import LAYOUTS
from bench.report.common import METRIC_COLUMNS, NOT_REPRODUCTIONS, cell_of, footer
from bench.report.gains import gain_row
from bench.report.layout import Layout, Line, MetricCol, Section

#: Plain pixel losses a row's loss sets are compared with when it has one (in this order).
PLAIN = ("l2", "l1")


def without_diffloss() -> dict[str, str]:
    """``bench.experiment.losses.WITHOUT_DIFFLOSS``, looked up by name: the experiment layer is above this one."""
    return dict(importlib.import_module("bench.experiment.losses").WITHOUT_DIFFLOSS)


def reference_of(loss_set: str, loss_sets: list[str], partners: dict[str, str]) -> str:
    """The loss set ``loss_set`` is compared with in its row (itself when it is the row's reference)."""
    if partners.get(loss_set) in loss_sets:
        return partners[loss_set]
    return next((p for p in PLAIN if p in loss_sets), loss_sets[0])


def experiment_banner(profile: str, subsets: list[str]) -> str:
    if profile in NOT_REPRODUCTIONS:
        return (f"{NOT_REPRODUCTIONS[profile]}: the numbers check the path, not your network; run the paper "
                "profile (or your own data) for numbers that mean something.")
    cut = [s for s in subsets if s != "full"]
    return f"'{profile}' profile" + (f"; data subsets: {', '.join(cut)}" if cut else "") + "."


def layout(results: pd.DataFrame, cfg: dict[str, Any], per_image: pd.DataFrame | None = None) -> Layout:
    metrics = [m for m in cfg.get("metrics") or [] if m in results.columns] or [
        m for m in METRIC_COLUMNS if m in results.columns]
    cols = [METRIC_COLUMNS.get(m) or MetricCol(m, m, True, "{:.4f}") for m in metrics]
    cols = [replace(c, in_paper=False) for c in cols]
    partners = without_diffloss()
    sections = []
    for data, part in results.groupby("data", sort=False):
        lines = []
        seen: list[tuple[str, str]] = []
        for label, loss_set in zip(part["label"], part["loss_set"]):
            if (label, loss_set) not in seen:
                seen.append((label, loss_set))
        for label, loss_set in seen:
            match = {"data": data, "label": label, "loss_set": loss_set, "select": "last"}
            cells = {c.key: cell_of(part, c, **match) for c in cols}
            row_sets = [ls for lb, ls in seen if lb == label]
            ref = reference_of(loss_set, row_sets, partners)
            gains = []
            if ref != loss_set and per_image is not None:
                gains.append(gain_row(f"{label} / {ref}", part, per_image, cols, {**match, "loss_set": ref}, match))
            lines.append(Line(f"{label} / {loss_set}", "trained", cells, gains=gains))
        sections.append(Section(str(data), lines))
    extra = [f"experiment file: {cfg['source']}"] if cfg.get("source") else []
    return Layout(cfg["experiment"], cfg["title"], cols, sections, False,
                  experiment_banner(cfg["profile"], sorted(set(results["subset"].astype(str)))),
                  [*footer(results, cfg["profile"]), *extra])


@LAYOUTS.register("experiment")
def render(results: pd.DataFrame, ctx: Any, per_image: pd.DataFrame | None = None) -> list[str]:
    from bench.report.tables import table_files

    cfg = ctx.job.config
    return table_files(layout(results, cfg, per_image), results, ctx, str(cfg["experiment"]))
