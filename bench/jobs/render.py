"""render: gather every row's summary and write the experiment's layout (tables, figures) in the job folder.

The layout is looked up by name (``bench.registry.LAYOUTS``: each paper target's, or ``experiment`` for
a user's file); the CLI then publishes the files to ``tables/`` (a copy, so a finished graph costs nothing).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.graph.job import JobContext, job_kind

#: Provenance columns a rendered row keeps from its summary (the footer and the results CSV show them).
KEPT = ("dataset", "subset", "git_sha", "git_dirty", "device", "config_hash", "profile")
#: Cost columns kept when the summary has them (evaluate and zero_shot jobs; Table 1's cost section).
COSTS = ("inference_params", "inference_s_median", "train_ms_per_step", "train_peak_memory_bytes",
         "train_peak_memory_kind", "restorer_steps")


def gather(ctx: JobContext) -> pd.DataFrame:
    """One row per input: its row description (from the config, by input name), metric values and provenance."""
    out = []
    for name, row in ctx.job.config["rows"].items():
        s = ctx.table(name, "summary")
        rec: dict[str, Any] = {"input": name, **row}
        rec.update({m: float(v) for m, v in zip(s["metric"], s["value"])})
        rec.update({f"{m}_n": int(n) for m, n in zip(s["metric"], s["n"]) if str(n) != ""})
        for col in KEPT:
            rec[col] = s[col].iloc[0]
        for col in ("train_dataset", "train_subset"):  # absent in rows that were not trained (Table 2's references)
            rec[col] = s[col].iloc[0] if col in s else ""
        rec.update({col: s[col].iloc[0] for col in COSTS if col in s})
        out.append(rec)
    return pd.DataFrame(out)


@job_kind("render")
def render_job(ctx: JobContext) -> dict[str, Any]:
    from bench.registry import LAYOUTS

    results = gather(ctx)
    files = LAYOUTS.get(ctx.job.config["layout"])(results, ctx)
    return {"files": list(files)}
