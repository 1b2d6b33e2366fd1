"""Table 2: Top-1 of VGG16 (V) and ResNet50 (R) on degraded CUB after restoration without / with DiffLoss.

Per degradation (fog -> MB-TaylorFormer, rain -> EfDeRain, low light -> IAT) the restoration
network is Table 1's own train job (loss sets ``l2`` and ``diffloss``), restores the degraded CUB
test images, and two classifiers fine-tuned on clean CUB train images score them (``bench.paper._cub``).
The layout: one section per degradation with the paper's two rows and its numbers beside ours, plus
reference rows the paper does not print (clean and degraded-unrestored test images), which tell
whether a smoke or truncated run measured anything at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from bench.evaluate.classify import ARCHS, describe_init
from bench.experiment.graph import GraphBuilder
from bench.experiment.losses import WITHOUT_DIFFLOSS
from bench.experiment.spec import DataRef, Experiment, RowSpec
from bench.graph.job import Job
from bench.paper import _cub, paper_numbers
from bench.paper._cub import DEGRADATION_SEED, TABLE2_TASKS
from bench.registry import LAYOUTS, PAPER
from bench.report.claims import Claim, Verdict, gain_verdict
from bench.report.common import banner, comparable, footer, subsets_of, values
from bench.report.gains import gain, gain_row
from bench.report.layout import Cell, Layout, Line, MetricCol, Section

EXPERIMENT = Experiment(
    name="table2",
    title="Top-1 accuracy (%) on degraded CUB after restoration without / with DiffLoss",
    rows=tuple(RowSpec(b, DataRef(task), ("l2", "diffloss")) for task, (b, _) in TABLE2_TASKS.items()),
    metrics=(),
    layout="table2",
)
#: Columns of a Table 2 row description (the render job's ``rows``).
ROW_KEYS = ("row", "task", "baseline", "loss_set", "seed", "classifier", "init", "degradation", "severity", "select")


def classify_jobs(g: GraphBuilder, seeds: int) -> list[Job]:
    """Every ``classify`` job of Table 2, in row order; each config holds its row description (``ROW_KEYS``)."""
    from bench.data.corruptions import DEFAULT_SEVERITY

    profile = g.profile
    data = _cub.cub_data_job(profile, g.data_root, g.problems)
    classifiers = _cub.classifier_jobs(profile, data)
    jobs: list[Job] = [_cub.classify_job(profile, classifiers[arch], data, row="clean") for arch in ARCHS]
    for row in EXPERIMENT.rows:
        task = row.data.task
        degradation = TABLE2_TASKS[task][1]
        degraded = _cub.degrade_job(data, degradation)
        common = {"task": task, "degradation": degradation, "severity": DEFAULT_SEVERITY}
        for arch in ARCHS:
            jobs.append(_cub.classify_job(profile, classifiers[arch], degraded, row="degraded", **common))
        for seed in range(seeds):
            for loss_set in row.loss_sets:
                restored = _cub.restore_job(profile, g.train_job(row, loss_set, seed), degraded)
                for arch in ARCHS:
                    jobs.append(_cub.classify_job(profile, classifiers[arch], restored, row="restored",
                                                  baseline=row.baseline, loss_set=loss_set, seed=seed, **common))
    return jobs


def _input_name(i: int, spec: dict[str, Any]) -> str:
    parts = [spec["row"], spec["task"], spec["loss_set"], spec["classifier"]]
    return f"{i:03d}." + ".".join(str(p) for p in parts if p) + f".seed{spec['seed']}"


@PAPER.register("table2", kind="table", number=2)
def graph(g: GraphBuilder, seeds: int) -> Job:
    from bench.experiment.graph import render_job

    rows = {}
    for i, job in enumerate(classify_jobs(g, seeds)):
        spec = {k: job.config[k] for k in ROW_KEYS}
        rows[_input_name(i, spec)] = (spec, job)
    return render_job(EXPERIMENT, g.profile, rows)


TOP1_V = MetricCol("top1_v", "Top-1 V (%)↑", True, "{:.2f}")
TOP1_R = MetricCol("top1_r", "Top-1 R (%)↑", True, "{:.2f}")
METRICS = [TOP1_V, TOP1_R]
COLUMN_NAMES = {"vgg16": "Top-1 V", "resnet50": "Top-1 R"}
ARCH_OF = {metric: arch for arch, metric in ARCHS.items()}

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


def _reference_section(results: pd.DataFrame) -> Section:
    clean = {m.key: Cell(values(results, m.key, row="clean")) for m in METRICS}
    lines = [Line("Clean test images", "ours-only", clean)]
    for task, (_, degradation) in TABLE2_TASKS.items():
        cells = {m.key: Cell(values(results, m.key, row="degraded", task=task)) for m in METRICS}
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


def _match(task: str, loss: str) -> dict[str, object]:
    return {"row": "restored", "task": task, "loss_set": loss}


def _pair(task: str) -> tuple[pd.Series, pd.Series]:
    """(w/o, w/) DiffLoss rows of the paper's numbers for ``task``."""
    paper = paper_numbers("table2")
    rows = paper[paper.task == task]
    w = rows[rows.loss == "diffloss"].iloc[0]
    return rows[rows.loss == WITHOUT_DIFFLOSS[w.loss]].iloc[0], w


def layout(results: pd.DataFrame, profile: str, reproduction: bool, per_image: pd.DataFrame | None = None) -> Layout:
    """Rows per degradation in the paper's order, our Top-1 V / Top-1 R beside the paper's; with ``per_image``, the
    paired w/ - w/o difference over the restored test images (each one correct or not) under the w/ line."""
    paper = paper_numbers("table2")
    sections = [_reference_section(results)]
    for task in TABLE2_TASKS:
        lines = []
        wo, w = _pair(task)
        for _, p in paper[paper.task == task].sort_values("row").iterrows():
            cells = {m.key: Cell(values(results, m.key, **_match(task, p.loss)), float(p[m.key])) for m in METRICS}
            gains = []
            if p.loss == w.loss and per_image is not None:
                gains.append(gain_row(wo.config, results, per_image, METRICS, _match(task, wo.loss),
                                      _match(task, w.loss), {m.key: float(w[m.key]) - float(wo[m.key])
                                                             for m in METRICS}))
            lines.append(Line(p.config, "trained", cells, gains=gains))
        sections.append(Section(TASK_HEADINGS[task], lines))
    subsets = subsets_of(results)
    return Table2Layout(2, EXPERIMENT.title, METRICS,
                        sections, comparable(profile, reproduction, subsets), banner(profile, reproduction, subsets),
                        [*footer(results, profile), *_notes(results, profile)])


def claims(results: pd.DataFrame, per_image: pd.DataFrame | None, profile: str, reproduction: bool
           ) -> list[Verdict]:
    """Table 2's Top-1 gains: per degradation and classifier, DiffLoss's restorations classified better."""
    ok = comparable(profile, reproduction, subsets_of(results))
    out = []
    for task, (baseline, degradation) in TABLE2_TASKS.items():
        wo, w = _pair(task)
        for col in METRICS:
            d = float(w[col.key]) - float(wo[col.key])
            name = COLUMN_NAMES[ARCH_OF[col.key]]
            claim = Claim(f"table2.{task}.{col.key}",
                          f"{DEGRADATION_NAMES[degradation]} CUB, {baseline}: DiffLoss raises {name}",
                          f"{d:+.2f} ({float(wo[col.key]):.2f} → {float(w[col.key]):.2f})")
            g = gain(results, per_image, col, _match(task, wo.loss), _match(task, w.loss))
            out.append(gain_verdict(claim, g, col, ok, d, missing="no per-image values" if per_image is None else
                                    f"{baseline}'s restorations were not classified in this run"))
    return out


@LAYOUTS.register("table2")
def render(results: pd.DataFrame, ctx: Any, per_image: pd.DataFrame | None = None) -> list[str]:
    from bench.report.tables import render_table

    return render_table("table2", f"Table 2: {EXPERIMENT.title}", layout, claims, results, ctx, per_image, grids=False)
