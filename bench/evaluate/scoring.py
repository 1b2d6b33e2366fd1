"""Score (restored, target) image pairs with registered metrics: one row per image, plus set-level FID.

Shared by the evaluate job and ``bench evaluate`` (users scoring their own outputs), so both
write the same columns: ``<metric>`` and ``<metric>_convention`` per image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from bench.data.base import IMAGE_SUFFIXES, read_image
from bench.errors import DataError

Item = tuple[str, torch.Tensor, torch.Tensor, float]  # id, prediction, target (1x3xHxW), seconds


Rows = list[dict[str, Any]]


def score(items: Iterable[Item], metric_names: list[str], convention: str, device: str,
          on_item: Callable[[str, torch.Tensor], None] | None = None) -> tuple[Rows, Rows]:
    """(per-image rows, summary rows). FID is set-level: it appears in the summary only."""
    from bench.evaluate.metrics import build_metric

    per_image = [m for m in metric_names if m != "fid"]
    metrics = {m: build_metric(m, convention=convention, device=device) for m in per_image}
    rows, preds, targets = [], [], []
    for image_id, pred, target, seconds in items:
        if pred.shape != target.shape:
            raise DataError(f"Image '{image_id}': restored {tuple(pred.shape[-2:])} and target "
                            f"{tuple(target.shape[-2:])} differ in size.", fix="Score images at the target's size.")
        row: dict[str, Any] = {"image_id": image_id}
        for name, metric in metrics.items():
            row[name] = float(metric(pred.to(device), target.to(device)))
            row[f"{name}_convention"] = metric.convention_string
        row["wall_time_s"] = round(seconds, 4)
        rows.append(row)
        if on_item is not None:
            on_item(image_id, pred)
        if "fid" in metric_names:
            preds.append(pred.cpu())
            targets.append(target.cpu())
    summary = [{"metric": name, "value": sum(r[name] for r in rows) / len(rows), "n": len(rows),
                "convention": metric.convention_string} for name, metric in metrics.items()]
    if "fid" in metric_names:
        fid = build_metric("fid", convention=convention, device=device)
        value, n = fid(preds, targets)
        summary.append({"metric": "fid", "value": float(value), "n": n, "convention": fid.convention_string})
    return rows, summary


def folder_items(pred_dir: Path, target_dir: Path) -> list[tuple[str, Path, Path]]:
    """Pair ``pred_dir`` and ``target_dir`` images by file stem; refuse unpaired names."""
    def index(d: Path) -> dict[str, Path]:
        if not d.is_dir():
            raise DataError(f"Folder {d} does not exist.", fix="Pass an existing folder of images.")
        return {p.stem: p for p in sorted(d.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}

    pred, target = index(pred_dir), index(target_dir)
    if not pred:
        raise DataError(f"Folder {pred_dir} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    only_pred, only_target = sorted(set(pred) - set(target)), sorted(set(target) - set(pred))
    if only_pred or only_target:
        def names(keys: list[str]) -> str:
            shown = ", ".join(f"'{k}'" for k in keys[:5])
            return shown + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

        sides = [f"only in {d}: {names(k)}" for d, k in ((pred_dir, only_pred), (target_dir, only_target)) if k]
        raise DataError(f"{len(only_pred) + len(only_target)} image(s) have no partner by file name ("
                        + "; ".join(sides) + ").",
                        fix="Restored and target folders must hold the same file names (extension aside).")
    return [(k, pred[k], target[k]) for k in sorted(pred)]


def load_items(pairs: list[tuple[str, Path, Path]]) -> Iterable[Item]:
    for image_id, p, t in pairs:
        yield image_id, read_image(p)[None], read_image(t)[None], 0.0
