"""Visual comparison grids like the paper's Figs. 5-6: degraded / each loss set / ground truth, same crop.

Numbers say how much; a grid lets a person see what changed. One PNG per task: a row per
baseline, a column per trained loss set between the degraded input and the ground truth,
all cut to the same window of the same test image (the first by sorted id, so reruns agree).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from bench.io import atomic_path

CROP = 192  # pixels; the centre window shown, or the whole image when smaller
LABEL_H = 14


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _crop(img: np.ndarray, size: int = CROP) -> np.ndarray:
    h, w = img.shape[:2]
    ch, cw = min(h, size), min(w, size)
    top, left = (h - ch) // 2, (w - cw) // 2
    return img[top:top + ch, left:left + cw]


def _labelled(tile: np.ndarray, text: str) -> Image.Image:
    canvas = Image.new("RGB", (tile.shape[1], tile.shape[0] + LABEL_H), "white")
    canvas.paste(Image.fromarray(tile), (0, LABEL_H))
    ImageDraw.Draw(canvas).text((2, 1), text[: max(4, tile.shape[1] // 6)], fill="black")
    return canvas


def _grid(rows: list[list[Image.Image]], title: str, gap: int = 4) -> Image.Image:
    tw = max(t.width for r in rows for t in r)
    th = max(t.height for r in rows for t in r)
    ncol = max(len(r) for r in rows)
    img = Image.new("RGB", (ncol * (tw + gap) + gap, len(rows) * (th + gap) + gap + LABEL_H), "white")
    ImageDraw.Draw(img).text((gap, 1), title, fill="black")
    for i, r in enumerate(rows):
        for j, t in enumerate(r):
            img.paste(t, (gap + j * (tw + gap), LABEL_H + gap + i * (th + gap)))
    return img


def comparison_grids(results: pd.DataFrame, pairs: Callable[[str], Path], restored: Callable[[str, str], Path],
                     out_dir: Path, stem: str, title_prefix: str = "") -> list[Path]:
    """Write ``<stem>_visual_<task>.png`` for every task in ``results`` (one row per evaluated config).

    ``results["input"]`` names each row's evaluate job; ``pairs(name)`` is its pairs CSV (image_id,
    degraded, clear) and ``restored(name, image_id)`` its restored image. Rows selected by a rule other
    than the last iterate are skipped so each cell shows one network. Returns the files written.
    """
    frame = results
    if "select" in frame:
        frame = frame[frame["select"].astype(str) == "last"]
    written = []
    for task, part in frame.groupby("task", sort=False):
        pairs_csv = pairs(str(part["input"].iloc[0]))
        if not pairs_csv.is_file():
            continue  # evaluated before grids existed: nothing to show, the table is still complete
        rows_of = pd.read_csv(pairs_csv, dtype=str).sort_values("image_id")
        first = rows_of.iloc[0]
        degraded, clear = _crop(_load(Path(first["degraded"]))), _crop(_load(Path(first["clear"])))
        rows = []
        for baseline, runs in part.groupby("baseline", sort=False):
            row = [_labelled(degraded, f"{baseline}: degraded")]
            for _, run in runs.iterrows():
                image = _load(restored(str(run["input"]), first["image_id"]))
                row.append(_labelled(_crop(image), str(run["loss_set"])))
            row.append(_labelled(clear, "ground truth"))
            rows.append(row)
        title = f"{title_prefix}{task}: image {first['image_id']}, centre crop up to {CROP}px"
        target = out_dir / f"{stem}_visual_{task}.png"
        with atomic_path(target) as tmp:
            _grid(rows, title).save(tmp, format="PNG")
        written.append(target)
    return written
