"""Every paper target's layout rendered from a constructed results frame and per-image frame (no jobs run), and
the render job itself (gather, gather_per_image, the layout, the claims file) on constructed job folders.

The 20-minute smoke run renders the same path on real jobs (tests/test_e2e_smoke.py); this covers it in seconds.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from support.constructed import constructed, target_rows

from bench.paper import figure7, table1, table2, table3, table4
from bench.report.formats import to_latex, to_markdown

MODULES = {"table1": table1, "table2": table2, "table3": table3, "table4": table4, "figure7": figure7}
#: Δ rows per target: Table 1 one per network; Table 2 one per degradation; Table 3 three (vs each other loss)
#: per checkpoint rule; Table 4 two ((c) vs (a), (b)); Figure 7 four (each gamma > 0 vs 0) per checkpoint rule.
GAIN_ROWS = {"table1": 6, "table2": 3, "table3": 6, "table4": 2, "figure7": 8}


@pytest.mark.parametrize("target", list(MODULES))
def test_every_target_renders_with_gain_rows_in_markdown_and_latex(target: str) -> None:
    results, per_image = constructed(target)
    lay = MODULES[target].layout(results, "paper", True, per_image)
    md, tex = to_markdown(lay), to_latex(lay)
    rows = [ln for ln in md.splitlines() if ln.startswith("| ↳ Δ vs")]
    assert len(rows) == GAIN_ROWS[target]
    assert tex.count(r"$\hookrightarrow$ $\Delta$ vs") == GAIN_ROWS[target]
    assert tex.count(r"\toprule") == 1 + len(lay.appendices)
    header = next(ln for ln in md.splitlines() if ln.startswith("| Method"))
    assert all(r.count(" | ") == header.count(" | ") for r in rows)  # a Δ row fills every column
    assert "percentile bootstrap interval, 10,000 resamples, seed 0" in md  # the method, in the footer
    assert all(("[" in r and "W/T/L" in r) for r in rows)
    if any(c.key == "fid" for c in lay.metrics):  # every FID value carries its N
        assert "250.00 (N=16)" in md and "240.00 (N=16)" in md and "FID↓ (ours)" in md
        assert "(N=16, set-level: no interval)" in md
    # without per-image values the same layout has no Δ rows (and the paper's structure is unchanged)
    plain = to_markdown(MODULES[target].layout(results, "paper", True))
    assert "↳ Δ vs" not in plain
    strip = [ln for ln in md.splitlines() if not ln.startswith("| ↳ Δ vs") and not ln.startswith("- ")]
    assert strip == [ln for ln in plain.splitlines() if not ln.startswith("- ")]


def _job_dirs(target: str, tmp_path: Path):
    """The target's render job with every input a done job of its kind in a run store, its files constructed."""
    import bench.jobs  # noqa: F401  (registers the job kinds)
    from bench.config import get_profile
    from bench.graph.job import Job
    from bench.graph.store import RunStore
    from bench.paper import build_target

    results, per_image = constructed(target)
    render = build_target(target, get_profile("smoke"))
    store = RunStore(tmp_path / "runs")
    inputs = {}
    for name in render.config["rows"]:
        kind = render.inputs[name].kind
        fake = Job(kind, {"constructed": name})
        d = store.prepare(fake, fresh=True)
        rec = results[results["input"] == name].iloc[0]
        metrics = [m for m in ("psnr", "ssim", "lpips", "fid", "kid", "top1_v", "top1_r") if pd.notna(rec.get(m))]
        kept = {c: rec[c] for c in ("dataset", "subset", "git_sha", "git_dirty", "device", "config_hash", "profile")}
        pd.DataFrame([{"metric": m, "value": rec[m], "n": rec[f"{m}_n"], "convention": "c", "selected_step": 40,
                       **kept} for m in metrics]).to_csv(d / "summary.csv", index=False)
        images = per_image[per_image["input"] == name]
        frame = images[["image_id", *[m for m in metrics if m in images and images[m].notna().any()]]].copy()
        for col in ("label", "predicted", "correct"):
            frame[col] = 0
        frame.to_csv(d / "per_image.csv", index=False)
        store.mark_done(fake, {}, 0.0)
        inputs[name] = fake
    return Job("render", render.config, inputs), store


@pytest.mark.parametrize("target", ["table1", "table4", "figure7"])
def test_render_job_gathers_per_image_values_and_writes_claims(target: str, tmp_path: Path) -> None:
    from bench.graph.executor import LocalExecutor
    from bench.pipeline import publish

    render, store = _job_dirs(target, tmp_path)
    LocalExecutor(log=lambda _: None).run([render], store)
    rec = store.done_record(render)
    assert rec is not None, (store.dir(render) / "error.json").read_text() if (
        store.dir(render) / "error.json").exists() else "render not done"
    assert f"claims_{target}.md" in rec["result"]["files"]
    md_name = f"{target}.md"
    md = (store.dir(render) / md_name).read_text()
    assert md.count("| ↳ Δ vs") == GAIN_ROWS[target]
    published = publish(render, store, tmp_path / "tables")
    assert published[-1].name == "claims.md" and (tmp_path / "tables" / md_name).is_file()
    assert "| **" in published[-1].read_text()


def test_gather_per_image_keeps_each_inputs_rows_and_metrics(tmp_path: Path) -> None:
    from bench.graph.job import JobContext
    from bench.jobs.render import gather, gather_per_image

    render, store = _job_dirs("table4", tmp_path)
    ctx = JobContext(render, tmp_path / "out", {n: store.dir(j) for n, j in render.inputs.items()}, "cpu")
    frame, results = gather_per_image(ctx), gather(ctx)
    rows = target_rows("table4")
    assert len(frame) == 16 * len(rows) and set(frame["input"]) == {n for n, _, _ in rows}
    assert {"psnr", "ssim", "image_id", "loss_set", "seed"} <= set(frame.columns)
    assert "fid" not in frame.columns  # set-level: in the results only, with its N
    assert results["fid_n"].eq(16).all()
    assert frame["image_id"].map(type).eq(str).all()


def test_experiment_file_rows_are_compared_with_their_without_diffloss_partner() -> None:
    """A user's rows: diffloss against l2, l1+diffloss against l1 (bench.experiment.losses.WITHOUT_DIFFLOSS), any
    other loss set against l2 when the row has it, else the row's first loss set; the reference gets no Δ row."""
    import numpy as np

    from bench.report.experiment import layout

    rows = {"TinyNet": ["l2", "l1", "l1+diffloss", "diffloss", "strong"], "Other": ["mine", "theirs"]}
    effect = {"l2": 0.0, "l1": 0.2, "l1+diffloss": 1.2, "diffloss": 1.0, "strong": 0.5, "mine": 0.0, "theirs": 2.0}
    results, frames = [], []
    base = np.linspace(14.0, 18.0, 10)
    noise = np.tile([0.1, -0.1], 5)
    for label, sets in rows.items():
        for i, ls in enumerate(sets):
            name = f"{label}.{ls}"
            spec = {"data": "Own data", "label": label, "loss_set": ls, "select": "last", "seed": 0}
            vals = base + effect[ls] + (noise if i % 2 else -noise)
            frames.append(pd.DataFrame({"input": name, "image_id": [f"{j}" for j in range(10)], "psnr": vals, **spec}))
            results.append({"input": name, **spec, "psnr": vals.mean(), "psnr_n": 10, "subset": "full",
                            "dataset": "own", "git_sha": "abc1234", "git_dirty": False, "device": "cpu:x"})
    cfg = {"experiment": "exp", "title": "Mine", "profile": "paper", "metrics": ["psnr"]}
    md = to_markdown(layout(pd.DataFrame(results), cfg, pd.concat(frames, ignore_index=True)))
    lines = md.splitlines()

    def delta_after(row: str) -> str:
        i = lines.index(next(ln for ln in lines if ln.startswith(f"| {row} |")))
        return lines[i + 1] if lines[i + 1].startswith("| ↳") else ""

    assert delta_after("TinyNet / l2") == "" and delta_after("Other / mine") == ""
    assert delta_after("TinyNet / diffloss").startswith("| ↳ Δ vs TinyNet / l2 | +1.00 [")
    assert delta_after("TinyNet / l1+diffloss").startswith("| ↳ Δ vs TinyNet / l1 | +1.00 [")
    assert delta_after("TinyNet / strong").startswith("| ↳ Δ vs TinyNet / l2 | +0.50 [")
    assert delta_after("TinyNet / l1").startswith("| ↳ Δ vs TinyNet / l2 | +0.20 [")
    assert delta_after("Other / theirs").startswith("| ↳ Δ vs Other / mine | +2.00 [")
