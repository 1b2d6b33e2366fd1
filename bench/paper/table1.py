"""Table 1: six networks on three tasks, each trained without and with DiffLoss (PSNR, SSIM; LPIPS, FID, KID beyond).

Rows: FSDGN and MB-TaylorFormer on Dense-Haze, RCDNet and EfDeRain on Rain13K -> Rain100H, DeepLPF
and IAT on LOL; loss sets ``l2`` (the paper's ``||x - z||_2``) and ``diffloss`` (eps + h-space,
gamma 1e-3, lambda 1e-2). The paper's reference rows (methods it reports but does not retrain) are
shown with its numbers only. Beside them, diffusion as the restorer instead of the loss: GDP-x0
zero-shot on the very prior DiffLoss uses, the same test images and conventions (on LOL also the GDP
paper's own numbers), and a cost section: parameters at inference, seconds per image, and each
training's measured ms per step and peak memory.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from bench.experiment.graph import GraphBuilder, render_job, train_and_evaluate, zero_shot_job
from bench.experiment.losses import WITHOUT_DIFFLOSS
from bench.experiment.spec import TASK_TITLES, DataRef, Experiment, RowSpec
from bench.graph.job import Job
from bench.paper import paper_numbers
from bench.registry import LAYOUTS, PAPER
from bench.report.claims import Claim, Verdict, gain_verdict
from bench.report.common import (
    FID,
    KID,
    LPIPS,
    PSNR,
    SSIM,
    banner,
    cell_of,
    comparable,
    footer,
    subsets_of,
    values,
)
from bench.report.gains import gain, gain_row, per_seed
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


#: Diffusion as the restorer: GDP-x0 on every task, on the run's own prior (``bench.restorers``).
ZERO_SHOT = ("gdp_x0",)
ZERO_SHOT_LABELS = {"gdp_x0": "GDP-x0 (zero-shot, same prior)", "gdp_xt": "GDP-xt (zero-shot, same prior)"}


@PAPER.register("table1", kind="table", number=1)
def graph(g: GraphBuilder, seeds: int) -> Job:
    trained = train_and_evaluate(EXPERIMENT, g, seeds)
    rows = {t.input_name(s): (t.spec(s), job) for t in trained for s, job in t.evals.items()}
    for task in BASELINES:
        for restorer in ZERO_SHOT:
            spec = {"index": len(EXPERIMENT.rows), "task": task, "data": TASK_TITLES[task], "baseline": restorer,
                    "label": ZERO_SHOT_LABELS[restorer], "loss_set": "zero-shot", "seed": 0, "select": "last"}
            rows[f"zs.{restorer}.{task}"] = (spec, zero_shot_job(g, DataRef(task), restorer, EXPERIMENT.metrics))
    return render_job(EXPERIMENT, g.profile, rows)


def _pairs(task: str) -> list[tuple[pd.Series, pd.Series]]:
    """(w/o row, w/ row) of the paper's numbers per network of ``task``: rows that differ by DiffLoss alone."""
    paper = paper_numbers("table1")
    rows = paper[(paper.task == task) & (paper.kind == "trained")]
    out = []
    for _, w in rows.iterrows():
        if w.loss in WITHOUT_DIFFLOSS:
            wo = rows[(rows.baseline == w.baseline) & (rows.loss == WITHOUT_DIFFLOSS[w.loss])].iloc[0]
            out.append((wo, w))
    return out


def _match(task: str, p: pd.Series) -> dict[str, object]:
    return {"task": task, "baseline": p.baseline, "loss_set": p.loss}


def layout(results: pd.DataFrame, profile: str, reproduction: bool, per_image: pd.DataFrame | None = None) -> Layout:
    """The paper's rows per task; with ``per_image``, a "Δ vs w/o" row under each w/ DiffLoss line."""
    paper = paper_numbers("table1")
    extra = [c for c in (LPIPS, FID, KID) if c.key in results.columns]
    metrics = [PSNR, SSIM] + [replace(c, in_paper=False) for c in extra]
    sections = []
    for task in BASELINES:
        lines = []
        partners = {(w.baseline, w.loss): wo for wo, w in _pairs(task)}
        for _, p in paper[paper.task == task].iterrows():
            cells = {"psnr": Cell(paper=float(p.psnr)), "ssim": Cell(paper=float(p.ssim))}
            gains = []
            if p.kind == "trained":
                for col in metrics:
                    cells[col.key] = cell_of(results, col, cells.get(col.key, Cell()).paper, **_match(task, p))
                wo = partners.get((p.baseline, p.loss))
                if wo is not None and per_image is not None:
                    gains.append(gain_row(wo.method, results, per_image, metrics, _match(task, wo), _match(task, p),
                                          {m: float(p[m]) - float(wo[m]) for m in ("psnr", "ssim")}))
            note = "paper's number, not trained here" if p.kind == "reference" else ""
            lines.append(Line(p.method, p.kind, cells, note, gains))
        lines += _zero_shot_lines(results, task, metrics)
        sections.append(Section(TASK_TITLES[task], lines))
    subsets = subsets_of(results)
    return Layout(1, EXPERIMENT.title, metrics, sections, comparable(profile, reproduction, subsets),
                  banner(profile, reproduction, subsets),
                  [*footer(results, profile), "zero-shot rows: diffusion as the restorer (no training), on the "
                   "run's own prior; they are never bold (bold marks the best trained row)."],
                  appendices=[cost_layout(results)])


def claims(results: pd.DataFrame, per_image: pd.DataFrame | None, profile: str, reproduction: bool
           ) -> list[Verdict]:
    """Each Table 1 gain (PSNR and SSIM of every network with vs without DiffLoss), with how many seeds it needs."""
    from bench.evaluate.stats import diff_matrix, seeds_needed

    ok = comparable(profile, reproduction, subsets_of(results))
    out = []
    for task in BASELINES:
        for wo, w in _pairs(task):
            for col in (PSNR, SSIM):
                d = float(w[col.key]) - float(wo[col.key])
                claim = Claim(f"table1.{task}.{w.baseline}.{col.key}",
                              f"{TASK_TITLES[task]}: DiffLoss raises {wo.method}'s {col.key.upper()}",
                              f"{col.fmt.format(d) if d < 0 else '+' + col.fmt.format(d)} "
                              f"({col.fmt.format(float(wo[col.key]))} → {col.fmt.format(float(w[col.key]))})")
                g = gain(results, per_image, col, _match(task, wo), _match(task, w))
                plan = None
                if per_image is not None and g is not None and g.n_images > 1:
                    m, _, _, _ = diff_matrix(per_seed(per_image, col.key, **_match(task, wo)),
                                             per_seed(per_image, col.key, **_match(task, w)))
                    plan = seeds_needed(m, d)
                out.append(gain_verdict(claim, g, col, ok, d, plan=plan,
                                        missing="no per-image values" if per_image is None else
                                        f"{w.baseline} was not trained in this run"))
    return out


def _zero_shot_lines(results: pd.DataFrame, task: str, metrics: list[MetricCol]) -> list[Line]:
    out = []
    if "loss_set" in results and (results["loss_set"] == "zero-shot").any():
        for restorer in ZERO_SHOT:
            cells = {c.key: cell_of(results, c, task=task, baseline=restorer, loss_set="zero-shot") for c in metrics}
            steps = values(results, "restorer_steps", task=task, baseline=restorer)
            note = f"ours, {int(steps[0])} sampling steps" if steps else "ours"
            out.append(Line(ZERO_SHOT_LABELS[restorer], "zero-shot", cells, note))
    gdp = paper_numbers("gdp")
    for _, p in gdp[gdp.task == task].iterrows():
        cells = {"psnr": Cell(paper=float(p.psnr)), "ssim": Cell(paper=float(p.ssim))}
        out.append(Line(p.method, "reference", cells, "the GDP paper's number"))
    return out


#: The cost section: what each row costs to use and to train (measured by its own jobs).
COST_COLUMNS = [MetricCol("inference_params_m", "params at inference (M)", False, "{:.3f}", in_paper=False),
                MetricCol("inference_s_median", "s / test image", False, "{:.3f}", in_paper=False),
                MetricCol("train_ms_per_step", "train ms / step", False, "{:.1f}", in_paper=False),
                MetricCol("train_peak_memory_mib", "train peak memory (MiB)", False, "{:.0f}", in_paper=False)]


def cost_layout(results: pd.DataFrame) -> Layout:
    """Parameters and seconds per image at inference, training ms/step and peak memory: numbers, not claims."""
    frame = results[results["select"].astype(str) == "last"].copy() if "select" in results else results.copy()
    if "label" not in frame:
        frame["label"] = frame["baseline"]
    for src, dst, scale in (("inference_params", "inference_params_m", 1e-6),
                            ("train_peak_memory_bytes", "train_peak_memory_mib", 1 / 2**20)):
        frame[dst] = pd.to_numeric(frame.get(src, pd.Series(dtype=float)), errors="coerce") * scale
    for col in ("inference_s_median", "train_ms_per_step"):
        frame[col] = pd.to_numeric(frame.get(col, pd.Series(dtype=float)), errors="coerce")
    sections, gains = [], []
    for task in BASELINES:
        part = frame[frame["task"] == task]
        lines = []
        for (label, loss_set), _ in part.groupby(["label", "loss_set"], sort=False):
            cells = {c.key: Cell(values(part, c.key, label=label, loss_set=loss_set)) for c in COST_COLUMNS}
            lines.append(Line(f"{label} / {loss_set}", "ours-only", cells))
        for baseline in BASELINES[task]:
            w, wo = (values(part, "train_ms_per_step", baseline=baseline, loss_set=ls) for ls in ("diffloss", "l2"))
            if w and wo and min(wo) > 0:
                gains.append((baseline, 100 * (sum(w) / len(w) / (sum(wo) / len(wo)) - 1)))
        sections.append(Section(TASK_TITLES[task], lines))
    notes = []
    if gains:
        median = sorted(g for _, g in gains)[len(gains) // 2]
        each = ", ".join(f"{b} {g:+.0f}%" for b, g in gains)
        notes.append(f"DiffLoss adds {median:+.0f}% (median over the networks) to a training step ({each}) and "
                     "nothing to inference: the same network restores the test images.")
    zs = frame[frame.get("loss_set", pd.Series(dtype=str)) == "zero-shot"]
    if len(zs) and zs["inference_s_median"].notna().any():
        notes.append(f"GDP-x0 costs {zs['inference_s_median'].median():.2f} s per test image here (median over the "
                     "tasks' medians), with no training.")
    devices = ", ".join(sorted(set(frame["device"].astype(str)))) if "device" in frame else "?"
    notes.append(f"measured on {devices} by the jobs themselves (train: median ms/step over log intervals, first "
                 "excluded; peak memory: CUDA allocator peak, or the process's peak RSS on CPU).")
    return Layout("cost", "Cost of each row", COST_COLUMNS, sections, False, "", notes)


@LAYOUTS.register("table1")
def render(results: pd.DataFrame, ctx: Any, per_image: pd.DataFrame | None = None) -> list[str]:
    from bench.report.tables import render_table

    return render_table("table1", f"Table 1: {EXPERIMENT.title}", layout, claims, results, ctx, per_image)
