"""render: gather every row's evaluation summary and write the table (md + tex) in the job folder.

The CLI then publishes the files to ``tables/`` (a copy, so a finished graph costs nothing).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.graph.job import JobContext, job_kind
from bench.io import write_csv, write_text
from bench.report.tables import BUILDERS, write_outputs


def gather(ctx: JobContext) -> pd.DataFrame:
    """One row per trained configuration: its row spec, metric means and provenance."""
    out = []
    for i, row in enumerate(ctx.job.config["rows"]):
        s = pd.read_csv(ctx.input(f"row{i:03d}") / "summary.csv", keep_default_na=False)
        rec: dict[str, Any] = dict(row)
        rec.update({m: float(v) for m, v in zip(s["metric"], s["value"])})
        for col in ("dataset", "subset", "git_sha", "git_dirty", "device", "config_hash", "profile"):
            rec[col] = s[col].iloc[0]
        for col in ("train_dataset", "train_subset"):  # absent in runs evaluated before they were recorded
            rec[col] = s[col].iloc[0] if col in s else ""
        out.append(rec)
    return pd.DataFrame(out)


@job_kind("render")
def render_job(ctx: JobContext) -> dict[str, Any]:
    cfg = ctx.job.config
    results = gather(ctx)
    if cfg["table"] == "figure7":
        from bench.report.figures import figure7, figure7_caption
        from bench.report.tables import banner

        write_csv(ctx.out_dir / "figure7_results.csv", results)
        prefix = "" if cfg["is_reproduction"] else f"[{cfg['profile'].upper()} RUN, not a reproduction] "
        missing = "" if cfg.get("top1", True) else "CUB-200-2011 was not found under the data root"
        files = figure7(results, ctx.out_dir, prefix, top1_note=missing)
        note = banner(cfg["profile"], cfg["is_reproduction"], sorted(set(results["subset"].astype(str))))
        write_text(ctx.out_dir / "figure7.txt", note + "\n" + figure7_caption(results, missing) + "\n")
        return {"files": [f.name for f in files] + ["figure7_results.csv", "figure7.txt"]}
    write_csv(ctx.out_dir / f"table{cfg['table']}_results.csv", results)
    layout = BUILDERS[cfg["table"]](results, cfg["profile"], cfg["is_reproduction"])
    files = write_outputs(layout, ctx.out_dir, f"table{cfg['table']}")
    if {"task", "baseline", "loss_set"} <= set(results.columns):
        from bench.report.visual import comparison_grids

        dirs = [ctx.input(f"row{i:03d}") for i in range(len(results))]
        prefix = "" if cfg["is_reproduction"] else f"[{cfg['profile'].upper()} RUN] "
        files += comparison_grids(results, dirs, ctx.out_dir, f"table{cfg['table']}", prefix)
    return {"files": [f.name for f in files] + [f"table{cfg['table']}_results.csv"]}
