"""Figure 7: PSNR against the DiffLoss weight gamma (lambda = 0), MSBDN on Dense-Haze."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def figure7(results: pd.DataFrame, out_dir: Path, title_prefix: str) -> list[Path]:
    """Write ``figure7.png`` and ``figure7.pdf``; x is categorical so gamma = 0 has a place."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.io import atomic_path

    frame = results.copy()
    frame["gamma"] = frame["loss_set"].str.removeprefix("diffloss_gamma").astype(float)
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=150)
    gammas = sorted(frame["gamma"].unique())
    xs = range(len(gammas))
    for select, style in (("best:psnr", "o-"), ("last", "s--")):
        sel = frame[frame["select"] == select].groupby("gamma")["psnr"]
        means = sel.mean().reindex(gammas)
        ax.plot(xs, means.values, style, label={"best:psnr": "best snapshot (paper's rule)",
                                                "last": "last iterate"}[select])
        if (sel.count() > 1).any():
            ax.fill_between(xs, sel.min().reindex(gammas).values, sel.max().reindex(gammas).values, alpha=0.2)
    ax.set_xticks(list(xs), [f"{g:g}" for g in gammas])
    ax.set_xlabel("DiffLoss weight γ (λ = 0)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"{title_prefix}Figure 7: PSNR vs γ, MSBDN", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = []
    for ext in ("png", "pdf"):
        path = out_dir / f"figure7.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext)
        out.append(path)
    plt.close(fig)
    return out
