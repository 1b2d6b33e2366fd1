"""Build each paper table's :class:`Layout` from our results and ``tables/paper/*.csv``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from bench.experiments import TASK_TITLES
from bench.paths import REPO_ROOT
from bench.report.layout import Cell, Layout, Line, MetricCol, Section

PAPER_DIR = REPO_ROOT / "tables" / "paper"

PSNR = MetricCol("psnr", "PSNR↑", True, "{:.2f}")
SSIM = MetricCol("ssim", "SSIM↑", True, "{:.4f}")
LPIPS = MetricCol("lpips", "LPIPS↓", False, "{:.4f}")
FID = MetricCol("fid", "FID↓", False, "{:.2f}")


def paper_table(n: int) -> pd.DataFrame:
    return pd.read_csv(PAPER_DIR / f"table{n}.csv", keep_default_na=False)


def banner(profile: str, reproduction: bool, subsets: list[str]) -> str:
    if reproduction and all(s == "full" for s in subsets):
        return "Paper profile: full data sets, official prior, paper recipe. Δ = ours − paper."
    what = {"smoke": "SMOKE RUN on embedded synthetic data with a small smoke prior",
            "truncated": "TRUNCATED RUN on a subset of the real data"}.get(profile, f"'{profile}' run")
    return (f"{what}. NOT a reproduction of the paper: the paper's numbers are shown for structure only and "
            "differences are not computed (n/c).")


def footer(results: pd.DataFrame, profile: str) -> list[str]:
    sha = ",".join(sorted(set(results["git_sha"].astype(str))))
    dirty = " (uncommitted changes)" if results["git_dirty"].astype(str).str.lower().eq("true").any() else ""
    subsets = ", ".join(f"{d}: {s}" for d, s in sorted(set(zip(results["dataset"], results["subset"]))))
    seeds = sorted(set(results["seed"]))
    trained = ""
    if "train_dataset" in results:
        pairs = sorted({(str(d), str(s)) for d, s in zip(results["train_dataset"], results["train_subset"]) if d})
        trained = "; trained on " + ", ".join(f"{d}: {s}" for d, s in pairs) if pairs else ""
    return [
        f"profile: {profile}",
        f"data: {subsets}{trained}",
        f"seeds: {seeds} ({'mean ± 95% t-interval' if len(seeds) > 1 else 'single seed'})",
        f"git: {sha}{dirty}",
        f"device: {', '.join(sorted(set(results['device'].astype(str))))}",
        f"rendered: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "bold: best of our trained rows per section and column.",
    ]


def _ours(results: pd.DataFrame, metric: str, **match: object) -> list[float]:
    sel = results
    for k, v in match.items():
        sel = sel[sel[k] == v]
    return [float(x) for x in sel[metric].tolist()] if metric in sel else []


def table1(results: pd.DataFrame, profile: str, reproduction: bool) -> Layout:
    paper = paper_table(1)
    extra = [c for c in (LPIPS, FID) if c.key in results.columns]
    metrics = [PSNR, SSIM] + [MetricCol(c.key, c.header, c.higher_better, c.fmt, in_paper=False) for c in extra]
    sections = []
    for task in ("dehazing", "deraining", "lowlight"):
        lines = []
        for _, p in paper[paper.task == task].iterrows():
            cells = {"psnr": Cell(paper=float(p.psnr)), "ssim": Cell(paper=float(p.ssim))}
            if p.kind == "trained":
                for col in metrics:
                    cells.setdefault(col.key, Cell()).ours = _ours(results, col.key, task=task, baseline=p.baseline,
                                                                   loss_set=p.loss)
            note = "paper's number, not trained here" if p.kind == "reference" else ""
            lines.append(Line(p.method, p.kind, cells, note))
        sections.append(Section(TASK_TITLES[task], lines))
    subsets = sorted(set(results["subset"].astype(str)))
    return Layout(1, "Quantitative comparison on three data sets (PSNR, SSIM; LPIPS and FID beyond the paper)",
                  metrics, sections, reproduction and profile == "paper", banner(profile, reproduction, subsets),
                  footer(results, profile))


def _subsets(results: pd.DataFrame) -> list[str]:
    return sorted(set(results["subset"].astype(str)))


def table3(results: pd.DataFrame, profile: str, reproduction: bool) -> Layout:
    """MSBDN with four losses; the paper's "best in the first K iterations" and, beside it, the last iterate."""
    paper = paper_table(3)
    metrics = [LPIPS, PSNR, SSIM]
    sections = []
    for select, title in (("best:psnr", "Best PSNR over training snapshots (the paper's rule: chosen on the test set)"),
                          ("last", "Last iterate (no selection on the test set)")):
        lines = []
        for _, p in paper.iterrows():
            loss_set = TABLE3_LOSS_SETS[p.loss]
            cells = {c.key: Cell(ours=_ours(results, c.key, loss_set=loss_set, select=select),
                                 paper=float(p[c.key])) for c in metrics}
            lines.append(Line(p.label, "trained", cells))
        sections.append(Section(title, lines))
    return Layout(3, "Loss functions on Dense-Haze with MSBDN as the baseline (LPIPS, PSNR, SSIM)", metrics, sections,
                  reproduction and profile == "paper", banner(profile, reproduction, _subsets(results)),
                  [*footer(results, profile), "every row trains MSBDN with an L1 term plus its own term "
                   "(perceptual 0.04, adversarial 1e-3, DiffLoss gamma 1e-3 / lambda 1e-2); see REPRODUCE.md."])


TABLE3_LOSS_SETS = {"l1": "l1", "perceptual": "l1+perceptual", "adversarial": "l1+adversarial",
                    "diffloss": "l1+diffloss"}
TABLE4_LOSS_SETS = {"x0": "diffloss_x0", "xprev": "diffloss_xprev", "eps": "diffloss"}


def table4(results: pd.DataFrame, profile: str, reproduction: bool) -> Layout:
    """GridDehazeNet ablation: (a) x0-hat, (b) x_{t-1}-hat, (c) eps-hat + h-space."""
    paper = paper_table(4)
    metrics = [FID, PSNR, SSIM]
    lines = []
    for _, p in paper.iterrows():
        loss_set = TABLE4_LOSS_SETS[p.variant]
        cells = {c.key: Cell(ours=_ours(results, c.key, loss_set=loss_set), paper=float(p[c.key])) for c in metrics}
        lines.append(Line(f"{p.label}: {p.description}", "trained", cells))
    section = Section("Dense-Haze, GridDehazeNet", lines)
    return Layout(4, "Ablation of what DiffLoss constrains (FID, PSNR, SSIM)", metrics, [section],
                  reproduction and profile == "paper", banner(profile, reproduction, _subsets(results)),
                  footer(results, profile))


def table2(results: pd.DataFrame, profile: str, reproduction: bool) -> Layout:
    """Classification on degraded CUB; built in ``bench.report.table2`` (imported here lazily: it imports us)."""
    from bench.report.table2 import table2 as build

    return build(results, profile, reproduction)


BUILDERS = {1: table1, 2: table2, 3: table3, 4: table4}


def write_outputs(layout: Layout, out_dir: Path, stem: str) -> list[Path]:
    from bench.io import write_text
    from bench.report.render import to_latex, to_markdown

    md, tex = out_dir / f"{stem}.md", out_dir / f"{stem}.tex"
    write_text(md, to_markdown(layout))
    write_text(tex, to_latex(layout))
    return [md, tex]
