"""A rendered table's files: Markdown, LaTeX, the results CSV and, for restoration tables, visual grids."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from bench.io import write_csv
from bench.report.common import write_outputs
from bench.report.layout import Layout


def render_table(stem: str, title: str, layout_of: Callable[..., Layout], claims_of: Callable[..., list[Any]],
                 results: pd.DataFrame, ctx: Any, per_image: pd.DataFrame | None, grids: bool = True) -> list[str]:
    """A paper table's files: ``table_files`` of its layout, then its claims checked against the paper.

    ``layout_of`` and ``claims_of`` take ``(results, profile, is_reproduction, per_image)`` and
    ``(results, per_image, profile, is_reproduction)``, as each table module defines them.
    """
    from bench.report.claims import write_claims
    from bench.report.common import comparable, subsets_of

    cfg = ctx.job.config
    profile, reproduction = cfg["profile"], cfg["is_reproduction"]
    files = table_files(layout_of(results, profile, reproduction, per_image), results, ctx, stem, grids=grids)
    return [*files, write_claims(ctx.out_dir, stem, title, claims_of(results, per_image, profile, reproduction),
                                 profile, comparable(profile, reproduction, subsets_of(results)))]


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
