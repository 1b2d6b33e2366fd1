"""Figure 7: PSNR and Top-1 V against the DiffLoss weight gamma (lambda = 0), MSBDN on Dense-Haze."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

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
