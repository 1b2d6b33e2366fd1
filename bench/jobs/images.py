"""The labelled image sets Table 2's jobs pass along: clean, degraded and restored CUB test images.

Every kind that yields test images (prepare_cub, degrade_cub, restore_cub) declares the same two
artifacts, so ``classify`` reads them alike: ``images`` (image_id, label, class_name, path relative
to the job folder, or absolute for images read in place from a data root) and ``image_set`` (the
data set's name, subset, classes, and what was done to the images).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from bench.graph.job import Artifact, JobContext
from bench.io import write_csv, write_json

COLUMNS = ("image_id", "label", "class_name", "path")
IMAGE_SET = {
    "images": Artifact("images.csv", columns=COLUMNS, doc="the test images: id, label, class name, path"),
    "image_set": Artifact("image_set.json", doc="dataset, subset, num_classes, class_names, counts, stage, ..."),
    "files": Artifact("images/", doc="the image files this job wrote (none when read in place)"),
}


def read_image_set(ctx: JobContext, input_name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(rows with an absolute ``file`` column, image_set.json) of an image-producing input."""
    frame = ctx.table(input_name, "images", dtype={"image_id": str})
    base = ctx.input(input_name)
    frame["file"] = [str(base / p) for p in frame["path"]]  # an absolute path stays absolute
    return frame, json.loads(ctx.artifact(input_name, "image_set").read_text())


def read_image_set_at(job_dir: Path, kind: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The same from a job folder of ``kind`` (for tools and tests that hold a folder, not a context)."""
    from bench.graph.job import artifact_of

    frame = pd.read_csv(job_dir / artifact_of(kind, "images").path, keep_default_na=False, dtype={"image_id": str})
    frame["file"] = [str(job_dir / p) for p in frame["path"]]
    return frame, json.loads((job_dir / artifact_of(kind, "image_set").path).read_text())


def write_image_set(ctx: JobContext, rows: list[dict[str, Any]], info: dict[str, Any]) -> None:
    write_csv(ctx.output("images"), pd.DataFrame(rows, columns=list(COLUMNS)))
    write_json(ctx.output("image_set"), info)


def relative_image(ctx: JobContext, image_id: str, split: str = "") -> tuple[Path, str]:
    """(file to write, path as images.csv records it) of an image this job writes into its ``files`` folder."""
    folder = ctx.output("files")
    rel = Path(folder.name) / split / f"{image_id}.png" if split else Path(folder.name) / f"{image_id}.png"
    return ctx.out_dir / rel, rel.as_posix()
