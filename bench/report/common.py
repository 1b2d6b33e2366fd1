"""What every table shares: metric columns, the banner saying what kind of run made it, the provenance footer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from bench.evaluate.metrics import FID_PAPER_MIN_N
from bench.report.layout import Cell, Layout, MetricCol

#: The paper every table reproduces (CITATION.cff holds the full record).
PAPER_CITATION = ("Tan, Yu, Huang, Yang and Zhao, \"DiffLoss: Unleashing Diffusion Model as Constraint for Training "
                  "Image Restoration Network\", ACCV 2024, pp. 1566-1584 (arXiv:2406.19030)")

PSNR = MetricCol("psnr", "PSNR↑", True, "{:.2f}")
SSIM = MetricCol("ssim", "SSIM↑", True, "{:.4f}")
LPIPS = MetricCol("lpips", "LPIPS↓", False, "{:.4f}")
FID = MetricCol("fid", "FID↓", False, "{:.2f}", set_level=True, min_n=FID_PAPER_MIN_N)
KID = MetricCol("kid", "KID↓", False, "{:.4f}", set_level=True)
METRIC_COLUMNS = {c.key: c for c in (PSNR, SSIM, LPIPS, FID, KID)}

#: What each kind of run that is not a reproduction calls itself in every output.
NOT_REPRODUCTIONS = {
    "smoke": "SMOKE RUN on embedded synthetic data with a small smoke prior",
    "truncated": "TRUNCATED RUN on a subset of the real data",
    "rehearsal": "REHEARSAL at the paper's shapes with every training cut to a few steps",
}


def run_kind(profile: str) -> str:
    """``SMOKE``, ``TRUNCATED``, ``REHEARSAL``: the word every title of such a run starts with."""
    return profile.upper() if profile in NOT_REPRODUCTIONS else profile


def title_prefix(profile: str, reproduction: bool) -> str:
    return "" if reproduction else f"[{run_kind(profile)} RUN, not a reproduction] "


def comparable(profile: str, reproduction: bool, subsets: list[str]) -> bool:
    """Is this run compared with the paper (Δ columns, claims verdicts)? The paper profile on full data only."""
    return reproduction and profile == "paper" and all(s == "full" for s in subsets)


def banner(profile: str, reproduction: bool, subsets: list[str]) -> str:
    if reproduction and all(s == "full" for s in subsets):
        return "Paper profile: full data sets, official prior, paper recipe. Δ = ours − paper."
    what = NOT_REPRODUCTIONS.get(profile, f"'{profile}' run")
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
        f"paper: {PAPER_CITATION}",
    ]


def matching(frame: pd.DataFrame, match: dict[str, object]) -> pd.Series:
    """The rows of ``frame`` whose columns equal ``match`` (compared as text; a missing column matches nothing)."""
    mask = pd.Series(True, index=frame.index)
    for k, v in match.items():
        if k not in frame:
            return pd.Series(False, index=frame.index)
        mask &= frame[k].astype(str).to_numpy() == str(v)
    return mask


def values(results: pd.DataFrame, metric: str, **match: object) -> list[float]:
    """Our values of ``metric`` (one per seed) in the rows matching ``match`` (compared as text)."""
    if metric not in results:
        return []
    return [float(x) for x in results.loc[matching(results, match), metric].dropna().tolist()]


def set_sizes(results: pd.DataFrame, metric: str, **match: object) -> list[int]:
    """The N of each of our values of a set-level ``metric`` (the ``<metric>_n`` column gather keeps)."""
    col = f"{metric}_n"
    if col not in results or metric not in results:
        return []
    sel = results.loc[matching(results, match) & results[metric].notna(), col]
    return [int(x) for x in pd.to_numeric(sel, errors="coerce").dropna().tolist()]


def cell_of(results: pd.DataFrame, col: MetricCol, paper: float | None = None, **match: object) -> Cell:
    """Our values of ``col`` in the rows matching ``match`` (with their N for a set-level metric) and the paper's."""
    return Cell(values(results, col.key, **match), paper,
                set_sizes(results, col.key, **match) if col.set_level else [])


def subsets_of(results: pd.DataFrame) -> list[str]:
    return sorted(set(results["subset"].astype(str)))


def write_outputs(layout: Layout, out_dir: Path, stem: str) -> list[Path]:
    from bench.io import write_text
    from bench.report.formats import to_latex, to_markdown

    md, tex = out_dir / f"{stem}.md", out_dir / f"{stem}.tex"
    write_text(md, to_markdown(layout))
    write_text(tex, to_latex(layout))
    return [md, tex]
