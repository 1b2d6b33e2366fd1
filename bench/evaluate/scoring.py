"""Score (restored, target) image pairs with registered metrics: one row per image, plus set-level FID/KID.

Shared by the evaluate job, ``bench evaluate`` (users scoring their own outputs) and ``bench compare``'s
folder mode, so all write the same columns: ``<metric>`` and ``<metric>_convention`` per image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from bench.data.base import IMAGE_SUFFIXES, read_image
from bench.errors import BenchError, DataError

Item = tuple[str, torch.Tensor, torch.Tensor, float]  # id, prediction, target (1x3xHxW), seconds


Rows = list[dict[str, Any]]
SHOW_UNPAIRED = 5


def dataset_convention(dataset: str, override: str | None = None) -> str:
    """The PSNR/SSIM convention ``dataset`` is scored with: its registered default, or the named ``override``."""
    from bench.evaluate.metrics import CONVENTIONS, convention_of
    from bench.registry import DATASETS

    default = DATASETS.meta(dataset).get("convention", "rgb")
    if default not in CONVENTIONS:
        raise BenchError(f"Data set '{dataset}' is scored by '{default}', not by image metrics, so its images "
                         "cannot be scored against targets.", fix="Pass a restoration data set (bench ls datasets).")
    return convention_of(override).name if override else default


def parse_metrics(metrics: str) -> list[str]:
    """``"psnr, SSIM,psnr"`` -> ``["psnr", "ssim"]`` (order kept, duplicates dropped); refuses an empty list."""
    names = list(dict.fromkeys(m.strip().lower() for m in metrics.split(",") if m.strip()))
    if not names:
        raise BenchError("No metric given.", fix="For example: --metrics psnr,ssim,lpips,fid,kid.")
    return names


def score(items: Iterable[Item], metric_names: list[str], convention: str, device: str,
          on_item: Callable[[str, torch.Tensor], None] | None = None) -> tuple[Rows, Rows]:
    """(per-image rows, summary rows). Set-level metrics (FID, KID) appear in the summary only, with their N.

    FID and KID use the same Inception features: they are extracted once per set and shared.
    """
    from bench.evaluate.metrics import build_metric, metric_level

    levels = {m: metric_level(m) for m in metric_names}
    metrics = {m: build_metric(m, convention=convention, device=device) for m in metric_names if levels[m] == "image"}
    set_metrics = {m: build_metric(m, convention=convention, device=device) for m in metric_names
                   if levels[m] == "set"}
    rows, preds, targets = [], [], []
    for image_id, pred, target, seconds in items:
        if pred.shape != target.shape:
            raise DataError(f"Image '{image_id}': restored {tuple(pred.shape[-2:])} and target "
                            f"{tuple(target.shape[-2:])} differ in size.", fix="Score images at the target's size.")
        row: dict[str, Any] = {"image_id": image_id, "height": int(pred.shape[-2]), "width": int(pred.shape[-1])}
        for name, metric in metrics.items():
            row[name] = float(metric(pred.to(device), target.to(device)))
            row[f"{name}_convention"] = metric.convention_string
        row["wall_time_s"] = round(seconds, 4)
        rows.append(row)
        if on_item is not None:
            on_item(image_id, pred)
        if set_metrics:
            preds.append(pred.cpu())
            targets.append(target.cpu())
    summary = [{"metric": name, "value": sum(r[name] for r in rows) / len(rows), "n": len(rows),
                "convention": metric.convention_string} for name, metric in metrics.items()]
    features: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name, metric in set_metrics.items():
        metric.check_sets(len(preds), len(targets))
        if metric.feature_key not in features:
            features[metric.feature_key] = (metric.features(preds), metric.features(targets))
        value, n = metric.from_features(*features[metric.feature_key])
        summary.append({"metric": name, "value": float(value), "n": n, "convention": metric.convention_string})
    return rows, summary


def _image_index(d: Path) -> dict[str, Path]:
    """Image stem -> file; one sentence for a missing, non-folder or unreadable folder, or a stem under two
    extensions (which of the two is meant cannot be guessed)."""
    if not d.is_dir():
        what = "is a file, not a folder" if d.exists() else "does not exist"
        raise DataError(f"Folder {d} {what}.", fix="Pass an existing folder of images.")
    try:
        files = [p for p in sorted(d.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    except PermissionError:
        raise DataError(f"Folder {d} cannot be read (permission denied).",
                        fix="Fix its permissions, or pass a copy you can read.") from None
    out: dict[str, Path] = {}
    for p in files:
        if p.stem in out:
            raise DataError(f"{d} holds '{p.stem}' under two extensions ({out[p.stem].name} and {p.name}).",
                            fix="Keep one file per image name.")
        out[p.stem] = p
    return out


def check_same_names(a: Path, names_a: Iterable[str], b: Path, names_b: Iterable[str], fix: str) -> None:
    """Refuse two image sets that do not pair one to one, naming what each side lacks."""
    sa, sb = set(names_a), set(names_b)
    only_a, only_b = sorted(sa - sb), sorted(sb - sa)
    if not only_a and not only_b:
        return

    def names(keys: list[str]) -> str:
        shown = ", ".join(f"'{k}'" for k in keys[:SHOW_UNPAIRED])
        return shown + (f" and {len(keys) - SHOW_UNPAIRED} more" if len(keys) > SHOW_UNPAIRED else "")

    sides = [f"only in {d}: {names(k)}" for d, k in ((a, only_a), (b, only_b)) if k]
    raise DataError(f"{a} and {b} do not pair: {len(only_a) + len(only_b)} image(s) have no partner by file name ("
                    + "; ".join(sides) + ").", fix=fix)


def folder_items(pred_dir: Path, target_dir: Path) -> list[tuple[str, Path, Path]]:
    """Pair ``pred_dir`` and ``target_dir`` images by file stem; refuse unpaired names."""
    pred, target = _image_index(pred_dir), _image_index(target_dir)
    if not pred:
        raise DataError(f"Folder {pred_dir} holds no images ({', '.join(IMAGE_SUFFIXES)}).",
                        fix="Pass the folder the restored images were written to.")
    check_same_names(pred_dir, pred, target_dir, target,
                     fix="Restored and target folders must hold the same file names (extension aside).")
    return [(k, pred[k], target[k]) for k in sorted(pred)]


def folder_names(folder: Path) -> list[str]:
    """The image stems of ``folder`` (what :func:`folder_items` pairs by)."""
    return sorted(_image_index(folder))


def load_items(pairs: list[tuple[str, Path, Path]]) -> Iterable[Item]:
    for image_id, p, t in pairs:
        yield image_id, read_image(p)[None], read_image(t)[None], 0.0
