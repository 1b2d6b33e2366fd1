"""A rendered table's files: Markdown, LaTeX, the results CSV and, for restoration tables, visual grids."""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.io import write_csv
from bench.report.common import write_outputs
from bench.report.layout import Layout


def table_files(layout: Layout, results: pd.DataFrame, ctx: Any, stem: str, grids: bool = True) -> list[str]:
    """Write ``<stem>.md``, ``<stem>.tex``, ``<stem>_results.csv`` and the visual grids in ``ctx.out_dir``."""
    files = [p.name for p in write_outputs(layout, ctx.out_dir, stem)]
    write_csv(ctx.out_dir / f"{stem}_results.csv", results)
    if grids and {"task", "baseline", "loss_set"} <= set(results.columns):
        from bench.report.common import run_kind
        from bench.report.visual import comparison_grids

        cfg = ctx.job.config
        prefix = "" if cfg["is_reproduction"] else f"[{run_kind(cfg['profile'])} RUN] "
        files += [p.name for p in comparison_grids(
            results, pairs=lambda name: ctx.artifact(name, "pairs"),
            restored=lambda name, image_id: ctx.artifact(name, "restored") / f"{image_id}.png",
            out_dir=ctx.out_dir, stem=stem, title_prefix=prefix)]
    return [*files, f"{stem}_results.csv"]
