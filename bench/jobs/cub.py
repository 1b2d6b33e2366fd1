"""prepare_cub (the smoke stand-in, or CUB checked and listed) and degrade_cub (``bench.data.corruptions``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from bench.faults import fault_point
from bench.graph.job import Artifact, JobContext, job_kind
from bench.io import write_csv
from bench.jobs.images import COLUMNS, IMAGE_SET, read_image_set, relative_image, write_image_set

#: Folder names tried under a data root after the loader's own aliases (the 100-class subset in shared/).
CUB_SUBSET_FOLDERS = ("cub100_subset_227",)
PREPARE_OUTPUTS = {**IMAGE_SET,
                   "train_images": Artifact("train.csv", columns=COLUMNS, doc="the classifiers' training images"),
                   "test_images": Artifact("test.csv", columns=COLUMNS, doc="the clean test images")}


def locate_cub(root: Path, dataset: str) -> tuple[Path, int]:
    """(folder holding CUB's text files, number of classes) under a data root.

    ``root`` itself, or, for the subset loader (``cub_subset``), one of ``CUB_SUBSET_FOLDERS`` below
    it. Raises the loader's own missing-file or data error when neither holds CUB.
    """
    from bench.data.cub import read_tables
    from bench.data.verify import child_dir
    from bench.errors import DataError, MissingFileError

    try:
        return root, len(read_tables(root).classes)
    except (MissingFileError, DataError):
        alt = next((d for d in (child_dir(root, n) for n in CUB_SUBSET_FOLDERS) if d is not None), None)
        if alt is None or dataset == "cub":
            raise
        return alt, len(read_tables(alt).classes)


def load_cub(cfg: dict[str, Any], data_root: Path, split: str):
    """The CUB LabelledSet of ``split``, limited to ``limit_per_class`` images per class (balanced)."""
    from bench.registry import DATASETS

    root, num_classes = locate_cub(Path(data_root), cfg["dataset"])
    loader = DATASETS.get(cfg["dataset"])
    classes = cfg.get("classes")
    num_classes = min(num_classes, classes or num_classes)
    k = (cfg.get("limit_per_class") or {}).get(split)
    return loader(root, split=split, limit=None if k is None else k * num_classes, classes=classes)


@job_kind("prepare_cub", outputs=PREPARE_OUTPUTS)
def prepare_cub(ctx: JobContext) -> dict[str, Any]:
    """List (and for the smoke stand-in, write) the train and test images with labels."""
    from bench.data.base import write_png

    cfg = ctx.job.config
    if cfg["source"] == "smoke":
        from bench.evaluate.classify import STANDIN_PHOTOS, smoke_standin

        parts = smoke_standin(cfg["per_class_train"], cfg["per_class_test"], cfg["size"], cfg["seed"])
        for split, items in parts.items():
            rows = []
            for image_id, label, arr in items:
                target, rel = relative_image(ctx, image_id, split)
                write_png(target, arr)
                fault_point("image")
                rows.append({"image_id": image_id, "label": label, "class_name": STANDIN_PHOTOS[label], "path": rel})
            write_csv(ctx.output(f"{split}_images"), pd.DataFrame(rows, columns=list(COLUMNS)))
        classes, subset, dataset = list(STANDIN_PHOTOS), "full", "smoke_cub_standin"
        counts = {s: len(v) for s, v in parts.items()}
    else:
        counts, truncated = {}, False
        for split in ("train", "test"):
            ls = load_cub(cfg, Path(ctx.job.params["root"]), split)
            rows = [{"image_id": it.id, "label": it.label, "class_name": ls.class_names[it.label],
                     "path": str(it.path.resolve())} for it in ls.items]
            write_csv(ctx.output(f"{split}_images"), pd.DataFrame(rows, columns=list(COLUMNS)))
            counts[split] = len(rows)
            classes = ls.class_names
            truncated = truncated or ls.subset != "full"
        lim = cfg.get("limit_per_class") or {}
        # "truncated:<train>+<test>/class[,<k> classes]": test-set results of a classifier trained on a cut
        # train set (and, with --classes, on the first k classes only).
        cut = ([f"{lim.get('train')}+{lim.get('test')}/class"] if lim else []) + (
            [f"{len(classes)} classes"] if cfg.get("classes") else [])
        subset = "truncated:" + ",".join(cut) if truncated else "full"
        dataset = cfg["dataset"]
    info = {"source": cfg["source"], "dataset": dataset, "subset": subset, "num_classes": len(classes),
            "class_names": classes, "counts": counts, "stage": "clean"}
    shutil.copyfile(ctx.output("test_images"), ctx.output("images"))  # the clean test set, for classify
    from bench.io import write_json

    write_json(ctx.output("image_set"), info)
    ctx.log(f"[cub] {dataset}: {counts['train']} train / {counts['test']} test images, {len(classes)} classes "
            f"({subset})")
    return {k: info[k] for k in ("dataset", "subset", "num_classes", "counts")}


@job_kind("degrade_cub", outputs=IMAGE_SET)
def degrade_cub(ctx: JobContext) -> dict[str, Any]:
    """The clean test images degraded by ``bench.data.corruptions`` (cached by content), copied here as PNG."""
    from bench.data.corruptions import CorruptionCache, params

    cfg = ctx.job.config
    frame, info = read_image_set(ctx, "data")
    cache = CorruptionCache()
    rows = []
    for r in frame.itertuples(index=False):
        src = cache.get(Path(r.file), cfg["degradation"], cfg["severity"], cfg["seed"])
        target, rel = relative_image(ctx, r.image_id)
        shutil.copyfile(src, target)
        fault_point("image")
        rows.append({"image_id": r.image_id, "label": r.label, "class_name": r.class_name, "path": rel})
    out = {**info, "stage": "degraded", "degradation": cfg["degradation"], "severity": cfg["severity"],
           "degradation_seed": cfg["seed"], "degradation_params": params(cfg["degradation"], cfg["severity"])}
    write_image_set(ctx, rows, out)
    ctx.log(f"[cub] {len(rows)} test images degraded by {cfg['degradation']} (severity {cfg['severity']})")
    return {"n": len(rows), "degradation": cfg["degradation"], "severity": cfg["severity"]}
