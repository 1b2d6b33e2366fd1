"""Table 2's layout: Top-1 on degraded CUB after restoration without / with DiffLoss.

Same pattern as Tables 1, 3 and 4 (``bench.report.tables``): one section per degradation
with the paper's two rows ("w/o DiffLoss", "w/ DiffLoss") and its numbers beside ours, plus
a section of reference rows the paper does not print (clean and degraded-unrestored test
images), which tell whether a smoke or truncated run measured anything at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from bench.evaluate.classify import ARCHS, describe_init
from bench.experiments_table2 import DEGRADATION_SEED, TABLE2_TASKS
from bench.report.layout import Cell, Layout, Line, MetricCol, Section
from bench.report.tables import banner, footer, paper_table

TOP1_V = MetricCol("top1_v", "Top-1 V (%)↑", True, "{:.2f}")
TOP1_R = MetricCol("top1_r", "Top-1 R (%)↑", True, "{:.2f}")
METRICS = [TOP1_V, TOP1_R]
COLUMN_NAMES = {"vgg16": "Top-1 V", "resnet50": "Top-1 R"}

REFERENCE_TITLE = "Reference rows (not in the paper): no restoration"
TASK_HEADINGS = {"dehazing": "Dehazing: fog (haze), restored by MB-TaylorFormer",
                 "deraining": "Deraining: rain streaks, restored by EfDeRain",
                 "lowlight": "Low-light enhancement: darkening + sensor noise, restored by IAT"}
DEGRADATION_NAMES = {"fog": "Fog (haze)", "rain": "Rain", "lowlight": "Low light"}
RESTORER_NOTE = ("restoration networks: this profile's Table 1 train jobs (trained on the task's low-level data set, "
                 "as the paper describes), applied unchanged to the degraded CUB test images.")
STANDIN_NOTE = "CUB stand-in: crops of six scikit-image photographs, one class each (the smoke profile has no CUB)."


@dataclass
class Table2Layout(Layout):
    """A layout whose reference section is never bolded: bold marks the best restored row only."""

    def best(self, section: Section, key: str) -> float | None:
        return None if section.title == REFERENCE_TITLE else super().best(section, key)


def _ours(results: pd.DataFrame, key: str, **match: Any) -> list[float]:
    """Our values of ``key`` (one per seed) in the rows matching ``match`` (compared as text)."""
    if key not in results:
        return []
    sel = results
    for k, v in match.items():
        sel = sel[sel[k].astype(str) == str(v)]
    return [float(x) for x in sel[key].dropna().tolist()]


def _reference_section(results: pd.DataFrame) -> Section:
    lines = [Line("Clean test images", "ours-only", {m.key: Cell(_ours(results, m.key, row="clean")) for m in METRICS})]
    for task, (_, degradation) in TABLE2_TASKS.items():
        cells = {m.key: Cell(_ours(results, m.key, row="degraded", task=task)) for m in METRICS}
        lines.append(Line(f"{DEGRADATION_NAMES[degradation]}, not restored", "ours-only", cells))
    return Section(REFERENCE_TITLE, lines)


def _notes(results: pd.DataFrame, profile: str) -> list[str]:
    notes = [RESTORER_NOTE]
    for arch in ARCHS:
        inits = sorted(set(results.loc[results["classifier"] == arch, "init"].astype(str)))
        notes += [f"{COLUMN_NAMES[arch]}: {describe_init(arch, i)}" for i in inits]
    sev = sorted(set(results.loc[results["row"] != "clean", "severity"].astype(str)))
    notes.append(f"degradations: bench.data.corruptions at severity {', '.join(sev)}, seed {DEGRADATION_SEED} "
                 "(the paper states neither); classifiers fine-tuned with our recipe (the paper states none), "
                 "see REPRODUCE.md.")
    if profile == "smoke":
        notes.append(STANDIN_NOTE)
    return notes


def table2(results: pd.DataFrame, profile: str, reproduction: bool) -> Layout:
    """Rows per degradation in the paper's order, our Top-1 V / Top-1 R beside the paper's."""
    paper = paper_table(2)
    sections = [_reference_section(results)]
    for task in TABLE2_TASKS:
        lines = []
        for _, p in paper[paper.task == task].sort_values("row").iterrows():
            cells = {m.key: Cell(_ours(results, m.key, row="restored", task=task, loss_set=p.loss), float(p[m.key]))
                     for m in METRICS}
            lines.append(Line(p.config, "trained", cells))
        sections.append(Section(TASK_HEADINGS[task], lines))
    subsets = sorted(set(results["subset"].astype(str)))
    comparable = reproduction and profile == "paper" and all(s == "full" for s in subsets)
    return Table2Layout(2, "Top-1 accuracy (%) on degraded CUB after restoration without / with DiffLoss", METRICS,
                        sections, comparable, banner(profile, reproduction, subsets),
                        [*footer(results, profile), *_notes(results, profile)])
