"""Comparison grids: the same crop of the same image in every cell, one row per baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from bench.report.visual import CROP, LABEL_H, comparison_grids

PAIRS_FILE = "pairs.csv"


def _png(path: Path, value: int, size: tuple[int, int] = (300, 260)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)


def _eval_dir(root: Path, name: str, value: int, data: Path) -> Path:
    d = root / name
    _png(d / "restored" / "a.png", value)
    _png(d / "restored" / "b.png", 255)  # not the first id: must not be shown
    pd.DataFrame([{"image_id": i, "degraded": str(data / f"{i}_in.png"), "clear": str(data / f"{i}_gt.png")}
                  for i in ("b", "a")]).to_csv(d / PAIRS_FILE, index=False)
    return d


def test_grid_has_one_row_per_baseline_and_same_crop(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for i in ("a", "b"):
        _png(data / f"{i}_in.png", 10)
        _png(data / f"{i}_gt.png", 200)
    results = pd.DataFrame([
        {"task": "dehazing", "baseline": "fsdgn", "loss_set": "l2", "select": "last"},
        {"task": "dehazing", "baseline": "fsdgn", "loss_set": "diffloss", "select": "last"},
        {"task": "dehazing", "baseline": "msbdn", "loss_set": "l2", "select": "last"},
        {"task": "dehazing", "baseline": "msbdn", "loss_set": "diffloss", "select": "best:psnr"},
        {"task": "dehazing", "baseline": "msbdn", "loss_set": "diffloss", "select": "last"},
    ])
    dirs = {f"e{i}": _eval_dir(tmp_path, f"e{i}", 50 + 10 * i, data) for i in range(len(results))}
    results["input"] = list(dirs)
    (tmp_path / "out").mkdir()
    files = comparison_grids(results, pairs=lambda name: dirs[name] / PAIRS_FILE,
                             restored=lambda name, i: dirs[name] / "restored" / f"{i}.png", out_dir=tmp_path / "out",
                             stem="table1", title_prefix="[SMOKE RUN] ")
    assert [f.name for f in files] == ["table1_visual_dehazing.png"]
    grid = np.asarray(Image.open(files[0]).convert("RGB"))
    gap, tile_h = 4, CROP + LABEL_H
    assert grid.shape[0] == LABEL_H + 2 * (tile_h + gap) + gap  # two baselines
    assert grid.shape[1] == 4 * (CROP + gap) + gap  # degraded, l2, diffloss, ground truth

    def cell(r: int, c: int) -> int:
        y = LABEL_H + gap + r * (tile_h + gap) + LABEL_H + CROP // 2
        return int(grid[y, gap + c * (CROP + gap) + CROP // 2, 0])

    assert [cell(0, c) for c in range(4)] == [10, 50, 60, 200]
    assert [cell(1, c) for c in range(4)] == [10, 70, 90, 200]  # the best:psnr row (80) is not shown
