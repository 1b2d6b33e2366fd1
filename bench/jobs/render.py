"""render: gather every row's summary and per-image values and write the experiment's layout in the job folder.

The layout is looked up by name (``bench.registry.LAYOUTS``: each paper target's, or ``experiment`` for
a user's file) and called as ``layout(results, ctx, per_image)``; the CLI then publishes the files to
``tables/`` (a copy, so a finished graph costs nothing). The per-image values feed the paired gain
rows and the claims (``bench.report.gains``, ``bench.report.claims``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.graph.job import JobContext, artifact_of, job_kind

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


def _declares_per_image(ctx: JobContext, name: str) -> bool:
    from bench.errors import BenchError

    try:
        artifact_of(ctx.job.inputs[name].kind, "per_image")
    except BenchError:
        return False
    return True


def gather_per_image(ctx: JobContext) -> pd.DataFrame:
    """One row per (input, test image): the input's row description, ``image_id`` and its per-image metrics.

    The metrics are those the input's summary names that its ``per_image`` table has as columns
    (FID and KID are set-level: they are in ``gather``'s rows only). An input whose kind declares
    no per-image table contributes nothing.
    """
    parts = []
    for name, row in ctx.job.config["rows"].items():
        if not _declares_per_image(ctx, name):
            continue
        metrics = [str(m) for m in ctx.table(name, "summary")["metric"]]
        frame = ctx.table(name, "per_image", dtype={"image_id": str})
        cols = [m for m in metrics if m in frame.columns]
        part = pd.DataFrame({"image_id": frame["image_id"].astype(str),
                             **{m: pd.to_numeric(frame[m], errors="coerce") for m in cols}})
        part.insert(0, "input", name)
        for k, v in row.items():
            if k not in part.columns:
                part[k] = v
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["input", "image_id"])


@job_kind("render")
def render_job(ctx: JobContext) -> dict[str, Any]:
    from bench.registry import LAYOUTS

    results = gather(ctx)
    files = LAYOUTS.get(ctx.job.config["layout"])(results, ctx, gather_per_image(ctx))
    return {"files": list(files)}
