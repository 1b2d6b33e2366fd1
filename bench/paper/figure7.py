"""Figure 7: PSNR and Top-1 V against the DiffLoss weight gamma (lambda = 0), MSBDN on Dense-Haze.

The paper plots "PSNR and Top-1V" per gamma without saying on which images Top-1 V is measured;
we take Table 2's: the fog-degraded CUB test images, restored by each gamma's MSBDN and scored by
Table 2's VGG16, using the checkpoint each PSNR point used (last iterate, or the snapshot the
best-PSNR rule picked). gamma = 0 is the pixel loss alone (its job needs no prior).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bench.experiment.graph import GraphBuilder, TrainedRow, render_job, train_and_evaluate
from bench.experiment.losses import FIGURE7_GAMMAS
from bench.experiment.spec import DataRef, Experiment, RowSpec
from bench.graph.job import Job
from bench.paper import _cub
from bench.registry import LAYOUTS, PAPER

EXPERIMENT = Experiment(
    name="figure7",
    title="Figure 7: PSNR and Top-1 V vs gamma, MSBDN",
    rows=(RowSpec("msbdn", DataRef("dehazing"), tuple(f"diffloss_gamma{g:g}" for g in FIGURE7_GAMMAS)),),
    metrics=("psnr", "ssim"),
    select=("best:psnr", "last"),
    snapshots=4,
    layout="figure7",
)
#: The dehazing networks face Table 2's fog, and Table 2's VGG16 scores them.
DEGRADATION = _cub.TABLE2_TASKS["dehazing"][1]


def top1_jobs(g: GraphBuilder, trained: list[TrainedRow]) -> dict[str, tuple[dict[str, Any], Job]]:
    """{input name: (row description, classify job)} of Top-1 V, one per trained row and checkpoint rule."""
    from bench.data.corruptions import DEFAULT_SEVERITY

    data = _cub.cub_data_job(g.profile, g.data_root, g.problems)
    vgg = _cub.classifier_jobs(g.profile, data)["vgg16"]
    degraded = _cub.degrade_job(data, DEGRADATION)
    out = {}
    for t in trained:
        for select, ev in t.evals.items():
            restored = _cub.restore_job(g.profile, t.train, degraded, None if select == "last" else ev)
            job = _cub.classify_job(g.profile, vgg, restored, row="restored", task=t.row.data.task,
                                    baseline=t.row.baseline, loss_set=t.loss_set, seed=t.seed, degradation=DEGRADATION,
                                    severity=DEFAULT_SEVERITY, select=select)
            out[t.input_name(select) + ".top1_v"] = ({**t.spec(select), "metric": "top1_v"}, job)
    return out


@PAPER.register("figure7", kind="figure", number=7)
def graph(g: GraphBuilder, seeds: int) -> Job:
    trained = train_and_evaluate(EXPERIMENT, g, seeds)
    rows = {t.input_name(s): (t.spec(s), job) for t in trained for s, job in t.evals.items()}
    top1 = _cub.has_cub(g.profile, g.data_root)  # False: the figure says CUB was not found
    if top1:
        rows.update(top1_jobs(g, trained))
    return render_job(EXPERIMENT, g.profile, rows, top1=top1)


#: The gammas the paper calls optimal ("DiffLoss gets the optimal performance with loss weight gamma in
#: [0.0005, 0.005]"; Sec. 4.3) and the one it chose.
OPTIMAL_RANGE = (5e-4, 5e-3)
CHOSEN_GAMMA = 1e-3


def _columns() -> list[Any]:
    from dataclasses import replace

    from bench.report.common import PSNR, SSIM
    from bench.report.layout import MetricCol

    return [replace(PSNR, in_paper=False), replace(SSIM, in_paper=False),
            MetricCol("top1_v", "Top-1 V (%)↑", True, "{:.2f}", in_paper=False)]


def _gammas(results: pd.DataFrame) -> list[float]:
    return sorted(_with_gamma(results)["gamma"].unique())


def _match(gamma: float, select: str) -> dict[str, object]:
    return {"loss_set": f"diffloss_gamma{gamma:g}", "select": select}


def layout(results: pd.DataFrame, profile: str, reproduction: bool, per_image: pd.DataFrame | None = None) -> Any:
    """Figure 7's numbers as a table (``figure7.md`` / ``.tex``): a line per gamma and checkpoint rule, and with
    ``per_image`` a "Δ vs γ = 0" row under each gamma > 0 (the pixel loss alone is gamma = 0)."""
    from bench.report.common import banner, cell_of, comparable, footer, subsets_of
    from bench.report.gains import gain_row
    from bench.report.layout import Layout, Line, Section

    cols = _columns()
    gammas = _gammas(results)
    sections = []
    for select, (_, _, name) in SELECTS.items():
        lines = []
        for g in gammas:
            cells = {c.key: cell_of(results, c, **_match(g, select)) for c in cols}
            gains = []
            if g != 0 and 0.0 in gammas and per_image is not None:
                gains.append(gain_row("γ = 0", results, per_image, cols, _match(0.0, select), _match(g, select)))
            lines.append(Line(f"γ = {g:g}", "trained", cells, gains=gains))
        sections.append(Section(f"MSBDN on Dense-Haze, {name}", lines))
    subsets = subsets_of(results)
    return Layout("figure7", f"Figure 7 in numbers: {EXPERIMENT.title.removeprefix('Figure 7: ')}", cols, sections,
                  comparable(profile, reproduction, subsets), banner(profile, reproduction, subsets),
                  [*footer(results, profile), "the paper prints no numbers for Figure 7 (a plot only): nothing here "
                   "is compared with it except the best gamma (claims.md)."])


def claims(results: pd.DataFrame, per_image: pd.DataFrame | None, profile: str, reproduction: bool) -> list[Any]:
    """The paper's best gamma: optimal PSNR for gamma in [0.0005, 0.005] (the paper's rule; last iterate beside)."""
    from bench.report.claims import Claim, order_verdict
    from bench.report.common import PSNR, comparable, subsets_of
    from bench.report.gains import gain

    ok = comparable(profile, reproduction, subsets_of(results))
    frame = _with_gamma(results)
    lo, hi = OPTIMAL_RANGE
    out = []
    for select, rule in (("best:psnr", "the paper's rule: best PSNR snapshot"), ("last", "our addition: last iterate")):
        claim = Claim(f"figure7.best_gamma.{select}",
                      f"MSBDN on Dense-Haze: PSNR is best for γ in [{lo:g}, {hi:g}] ({rule})",
                      f"optimum in [{lo:g}, {hi:g}], γ = {CHOSEN_GAMMA:g} chosen (plot only, no numbers)")
        means = frame[(frame["select"] == select) & frame["psnr"].notna()].groupby("gamma")["psnr"].mean()
        in_range = (means.index >= lo) & (means.index <= hi)
        inside, outside = means[in_range], means[~in_range]
        if per_image is None or inside.empty or outside.empty:
            out.append(order_verdict(claim, [("in range vs out of range", None)], PSNR, ok,
                                     missing="no per-image values" if per_image is None else
                                     "gammas on both sides of the range are needed"))
            continue
        best_in, best_out = float(inside.idxmax()), float(outside.idxmax())
        label = f"best in range γ = {best_in:g} vs best outside γ = {best_out:g}"
        g = gain(results, per_image, PSNR, _match(best_out, select), _match(best_in, select))
        verdict = order_verdict(claim, [(label, g)], PSNR, ok)
        verdict.extra["best"] = f"{float(means.idxmax()):g}"
        verdict.ours = f"best of all: γ = {float(means.idxmax()):g}; {verdict.ours}"
        out.append(verdict)
    return out


@LAYOUTS.register("figure7")
def render(results: pd.DataFrame, ctx: Any, per_image: pd.DataFrame | None = None) -> list[str]:
    """figure7.png/.pdf, figure7.txt (every value and what data it came from), figure7.md/.tex (the numbers with the
    paired Δ vs γ = 0 rows), figure7_results.csv and claims_figure7.md."""
    from bench.io import write_csv, write_text
    from bench.report.claims import write_claims
    from bench.report.common import banner, comparable, subsets_of, title_prefix, write_outputs

    cfg = ctx.job.config
    profile, reproduction = cfg["profile"], cfg["is_reproduction"]
    write_csv(ctx.out_dir / "figure7_results.csv", results)
    missing = "" if cfg.get("top1", True) else "CUB-200-2011 was not found under the data root"
    files = figure7(results, ctx.out_dir, title_prefix(profile, reproduction), top1_note=missing)
    note = banner(profile, reproduction, sorted(set(results["subset"].astype(str))))
    write_text(ctx.out_dir / "figure7.txt", note + "\n" + figure7_caption(results, missing) + "\n")
    tables = write_outputs(layout(results, profile, reproduction, per_image), ctx.out_dir, "figure7")
    claims_file = write_claims(ctx.out_dir, "figure7", EXPERIMENT.title, claims(results, per_image, profile,
                               reproduction), profile, comparable(profile, reproduction, subsets_of(results)))
    return [f.name for f in files] + ["figure7_results.csv", "figure7.txt", *(p.name for p in tables), claims_file]


#: How each checkpoint rule is drawn and named.
SELECTS = {"best:psnr": ("o", "-", "best snapshot (paper's rule)"), "last": ("s", "--", "last iterate")}


def _with_gamma(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` with a numeric ``gamma`` column (from the loss-set name) and every metric column."""
    frame = results.copy()
    frame["gamma"] = frame["loss_set"].str.removeprefix("diffloss_gamma").astype(float)
    for col in ("psnr", "ssim", "top1_v"):
        if col not in frame:
            frame[col] = float("nan")
    return frame


def _curve(ax, frame: pd.DataFrame, column: str, gammas: list[float], color: str, name: str) -> None:
    """One line per checkpoint rule; a band from min to max when several seeds were run."""
    xs = list(range(len(gammas)))
    for select, (marker, style, label) in SELECTS.items():
        sel = frame[(frame["select"] == select) & frame[column].notna()].groupby("gamma")[column]
        if sel.ngroups == 0:
            continue
        means = sel.mean().reindex(gammas)
        ax.plot(xs, means.values, marker=marker, linestyle=style, color=color, label=f"{name}, {label}")
        if (sel.count() > 1).any():
            ax.fill_between(xs, sel.min().reindex(gammas).values, sel.max().reindex(gammas).values,
                            color=color, alpha=0.15)


def figure7(results: pd.DataFrame, out_dir: Path, title_prefix: str, top1_note: str = "") -> list[Path]:
    """Write ``figure7.png`` and ``figure7.pdf``; x is categorical so gamma = 0 has a place.

    PSNR (Dense-Haze test pairs) is on the left axis; Top-1 V (VGG16 on fog-degraded CUB
    restored by the same networks) on the right, when ``results`` has ``top1_v`` values.
    ``top1_note`` is printed under the plot when it has none (why not).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.io import atomic_path

    frame = _with_gamma(results)
    gammas = sorted(frame["gamma"].unique())
    named = lambda col: ", ".join(sorted(set(frame.loc[frame[col].notna(), "dataset"].astype(str))))  # noqa: E731
    fig, ax = plt.subplots(figsize=(6.2, 3.9), dpi=150)
    _curve(ax, frame, "psnr", gammas, "tab:blue", "PSNR")
    handles, labels = ax.get_legend_handles_labels()
    if frame["top1_v"].notna().any():
        ax2 = ax.twinx()
        _curve(ax2, frame, "top1_v", gammas, "tab:red", "Top-1 V")
        ax2.set_ylabel(f"Top-1 V (%), VGG16 on restored foggy {named('top1_v')}", color="tab:red", fontsize=8)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    elif top1_note:
        fig.text(0.01, 0.01, f"Top-1 V not drawn: {top1_note}", fontsize=6, color="tab:red")
    ax.set_xticks(list(range(len(gammas))), [f"{g:g}" for g in gammas])
    ax.set_xlabel("DiffLoss weight γ (λ = 0)")
    ax.set_ylabel(f"PSNR (dB), {named('psnr')} test", color="tab:blue", fontsize=8)
    ax.set_title(f"{title_prefix}Figure 7: PSNR and Top-1 V vs γ, MSBDN", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(handles, labels, fontsize=6, loc="best")
    fig.tight_layout()
    out = []
    for ext in ("png", "pdf"):
        path = out_dir / f"figure7.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext)
        out.append(path)
    plt.close(fig)
    return out


def figure7_caption(results: pd.DataFrame, top1_note: str = "") -> str:
    """What the figure shows, on what data, and its numbers (``figure7.txt``, beside the PNG)."""
    frame = _with_gamma(results)
    has_top1 = frame["top1_v"].notna().any()
    psnr = frame[frame["psnr"].notna()]
    sets = lambda f: ", ".join(sorted({f"{d} ({s})" for d, s in zip(f["dataset"], f["subset"])}))  # noqa: E731
    lines = [f"PSNR: MSBDN per gamma (lambda = 0), tested on {sets(psnr)}."]
    if "train_dataset" in psnr and psnr["train_dataset"].astype(str).ne("").any():
        trained = sorted({f"{d} ({s})" for d, s in zip(psnr["train_dataset"], psnr["train_subset"]) if str(d)})
        lines.append(f"Trained on {', '.join(trained)}.")
    if has_top1:
        top = frame[frame["top1_v"].notna()]
        lines.append(f"Top-1 V: Table 2's VGG16 on {sets(top)} after fog, restored by the same networks "
                     "with the same checkpoint as the PSNR point.")
    else:
        lines.append(f"Top-1 V: not drawn ({top1_note or 'no classification rows'}).")
    lines += ["", "| gamma | checkpoint | PSNR (dB) | SSIM | Top-1 V (%) |", "|---|---|---|---|---|"]
    for (g, sel), grp in frame.groupby(["gamma", "select"], sort=True):
        vals = [grp[c].mean() if grp[c].notna().any() else None for c in ("psnr", "ssim", "top1_v")]
        cells = [f"{v:{f}}" if v is not None else "–" for v, f in zip(vals, (".2f", ".4f", ".2f"))]
        lines.append(f"| {g:g} | {SELECTS.get(sel, ('', '', sel))[2]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
