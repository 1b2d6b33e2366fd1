"""A rehearsal at the paper's shapes: patch 256, a 256x256 ADM (narrow here), full-resolution test images, on a
synthetic data root at the published layout and image sizes; every training cut to one step; titled REHEARSAL."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch
from support.e2e import bench, job_kind_of

from bench.prior import create_adm

#: The 256x256 uncond ADM's structure (6 levels, resblock up/down, scale-shift norm, learned sigma, attention at
#: 32/16/8), narrow: 2.3 M parameters instead of 552.8 M, so a CPU can run it in seconds.
NARROW_256 = dict(image_size=256, num_channels=32, num_res_blocks=1, channel_mult="1,1,1,2,2,2",
                  attention_resolutions="32,16,8", num_head_channels=32, learn_sigma=True, use_scale_shift_norm=True,
                  resblock_updown=True)


def test_table1_rehearsal_at_the_papers_shapes(tmp_path: Path) -> None:
    """Table 1's IAT rows (the cheapest network, so CI can afford full-resolution LOL at 600x400)."""
    root = tmp_path / "data"
    made = bench(tmp_path, "data", "synth", "--root", str(root), "--sets", "lol", "--count", "2", timeout=600)
    assert made.returncode == 0, made.stderr[-2000:]
    torch.manual_seed(0)
    torch.save({"adm_kwargs": NARROW_256, "state_dict": create_adm(**NARROW_256).state_dict()}, tmp_path / "p.pt")
    out = bench(tmp_path, "run", "--table", "1", "--profile", "paper", "--rehearse", "1", "--batch", "2",
                "--baseline", "iat", "--data-root", str(root), "--prior", str(tmp_path / "p.pt"), "--no-progress",
                timeout=900)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    md = (tmp_path / "tables" / "table1.md").read_text()
    tex = (tmp_path / "tables" / "table1.tex").read_text()
    assert "REHEARSAL" in md and "NOT a reproduction" in md and "n/c" in md and "REHEARSAL" in tex
    assert "profile: rehearsal" in md
    runs = tmp_path / "runs"
    trains = [d for d in runs.iterdir() if job_kind_of(d) == "train"]
    evals = [d for d in runs.iterdir() if job_kind_of(d) == "evaluate"]
    assert len(trains) == 2 and len(evals) == 2  # IAT without and with DiffLoss
    for d in trains:
        cfg = json.loads((d / "job.json").read_text())["config"]
        assert (cfg["train"]["patch"], cfg["train"]["batch"], cfg["train"]["steps"]) == (256, 2, 1)
        diffloss = "diffloss" in cfg["losses"]
        assert cfg["profile"] == "rehearsal"
        assert not diffloss or cfg["prior"]["adm_kwargs"]["image_size"] == 256
        log = pd.read_csv(d / "train_log.csv")
        assert list(log["step"]) == [1]
        result = json.loads((d / "done.json").read_text())["result"]
        assert result["batch_shapes"] == [[2, 3, 256, 256]]  # what it drew
        assert result["prior_image_size"] == (256 if diffloss else None)
    for d in evals:
        frame = pd.read_csv(d / "per_image.csv")
        assert len(frame) == 2 and (frame["height"] == 400).all() and (frame["width"] == 600).all()  # LOL eval15
        assert frame["profile"].eq("rehearsal").all() and frame["subset"].astype(str).str.contains("synthetic").all()
