"""Job kinds of the classification check (Table 2): data, degradation, restoration, fine-tuning, Top-1.

Every job that yields test images writes the same two files, so ``classify`` reads clean,
degraded and restored images alike:

* ``images.csv``: image_id, label, class_name, path (relative to the job folder, or absolute
  for images read in place from a data root);
* ``data.json``: the data set's name, subset, classes, and what was done to the images.

Kinds: ``prepare_cub`` (the smoke stand-in, or CUB checked and listed), ``degrade_cub``
(``bench.data.corruptions``), ``restore_cub`` (a trained ``train`` job's network),
``finetune_classifier`` (writes ``classifier.pt``) and ``classify`` (``per_image.csv``,
``summary.csv``).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from bench.graph.job import Job, JobContext, job_kind
from bench.io import write_csv, write_json
from bench.provenance import environment

IMAGES_CSV = "images.csv"
DATA_JSON = "data.json"
CLASSIFIER_FILE = "classifier.pt"
#: Folder names tried under a data root after the loader's own aliases (the 100-class subset in shared/).
CUB_SUBSET_FOLDERS = ("cub100_subset_227",)


# --------------------------------------------------------------------------------------------- helpers


def read_images_csv(job_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(rows with an absolute ``file`` column, data.json) of an image-producing job's folder."""
    frame = pd.read_csv(job_dir / IMAGES_CSV, keep_default_na=False, dtype={"image_id": str})
    frame["file"] = [str(job_dir / p) for p in frame["path"]]  # an absolute path stays absolute
    return frame, json.loads((job_dir / DATA_JSON).read_text())


def _write_images(out_dir: Path, rows: list[dict[str, Any]], info: dict[str, Any], name: str = IMAGES_CSV) -> None:
    write_csv(out_dir / name, pd.DataFrame(rows, columns=["image_id", "label", "class_name", "path"]))
    write_json(out_dir / DATA_JSON, info)


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


def _provenance(ctx: JobContext, subset: str) -> dict[str, Any]:
    """Columns every classify row carries: profile, row identity, both upstream config hashes, environment."""
    cfg = ctx.job.config
    clf = ctx.job.inputs["classifier"]
    train = _restoration_train_job(ctx.job)
    return {
        "profile": cfg["profile"],
        "row": cfg["row"],
        "task": cfg.get("task", ""),
        "baseline": cfg.get("baseline", ""),
        "loss_set": cfg.get("loss_set", ""),
        "losses": json.dumps(train.config["losses"], sort_keys=True) if train is not None else "",
        "degradation": cfg.get("degradation", ""),
        "severity": cfg.get("severity", ""),
        "seed": cfg["seed"],
        "subset": subset,
        "classifier": clf.config["arch"],
        "classifier_init": clf.config["init"],
        "classifier_seed": clf.config["seed"],
        "config_hash": ctx.job.key,
        "classifier_config_hash": clf.key,
        "train_config_hash": train.key if train is not None else "",
        **environment(ctx.device),
    }


def _restoration_train_job(job: Job) -> Job | None:
    """The ``train`` job behind a classify job's images, if they were restored."""
    images = job.inputs.get("images")
    if images is not None and images.kind == "restore_cub":
        return images.inputs["model"]
    return None


# --------------------------------------------------------------------------------------------- kinds


@job_kind("prepare_cub")
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
                rel = f"images/{split}/{image_id}.png"
                write_png(ctx.out_dir / rel, arr)
                rows.append({"image_id": image_id, "label": label, "class_name": STANDIN_PHOTOS[label], "path": rel})
            write_csv(ctx.out_dir / f"{split}.csv", pd.DataFrame(rows))
        classes, subset, dataset = list(STANDIN_PHOTOS), "full", "smoke_cub_standin"
        counts = {s: len(v) for s, v in parts.items()}
    else:
        counts, truncated = {}, False
        for split in ("train", "test"):
            ls = load_cub(cfg, Path(ctx.job.params["root"]), split)
            rows = [{"image_id": it.id, "label": it.label, "class_name": ls.class_names[it.label],
                     "path": str(it.path.resolve())} for it in ls.items]
            write_csv(ctx.out_dir / f"{split}.csv", pd.DataFrame(rows))
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
    shutil.copyfile(ctx.out_dir / "test.csv", ctx.out_dir / IMAGES_CSV)  # the clean test set, for classify
    write_json(ctx.out_dir / DATA_JSON, info)
    ctx.log(f"[cub] {dataset}: {counts['train']} train / {counts['test']} test images, {len(classes)} classes "
            f"({subset})")
    return {k: info[k] for k in ("dataset", "subset", "num_classes", "counts")}


@job_kind("degrade_cub")
def degrade_cub(ctx: JobContext) -> dict[str, Any]:
    """The clean test images degraded by ``bench.data.corruptions`` (cached by content), copied here as PNG."""
    from bench.data.corruptions import CorruptionCache, params

    cfg = ctx.job.config
    frame, info = read_images_csv(ctx.input("data"))
    cache = CorruptionCache()
    rows = []
    for r in frame.itertuples(index=False):
        src = cache.get(Path(r.file), cfg["degradation"], cfg["severity"], cfg["seed"])
        rel = f"images/{r.image_id}.png"
        (ctx.out_dir / "images").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, ctx.out_dir / rel)
        rows.append({"image_id": r.image_id, "label": r.label, "class_name": r.class_name, "path": rel})
    out = {**info, "stage": "degraded", "degradation": cfg["degradation"], "severity": cfg["severity"],
           "degradation_seed": cfg["seed"], "degradation_params": params(cfg["degradation"], cfg["severity"])}
    _write_images(ctx.out_dir, rows, out)
    ctx.log(f"[cub] {len(rows)} test images degraded by {cfg['degradation']} (severity {cfg['severity']})")
    return {"n": len(rows), "degradation": cfg["degradation"], "severity": cfg["severity"]}


@job_kind("restore_cub")
def restore_cub(ctx: JobContext) -> dict[str, Any]:
    """Restore the degraded test images with a trained network (a ``train`` job's final ``model.pt``)."""
    from bench import build_baseline
    from bench.data.base import read_image, write_png

    train = ctx.job.inputs["model"]
    frame, info = read_images_csv(ctx.input("images"))
    model = build_baseline(train.config["baseline"], **train.config.get("baseline_kwargs", {}))
    step, weights = _restore_weights(ctx)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model = model.to(ctx.device).eval()
    rows, t0 = [], time.perf_counter()
    task = ctx.progress.add_task("restore CUB", total=len(frame)) if ctx.progress else None
    for r in frame.itertuples(index=False):
        with torch.no_grad():
            y = model(read_image(Path(r.file))[None].to(ctx.device)).clamp(0, 1)
        rel = f"images/{r.image_id}.png"
        write_png(ctx.out_dir / rel, y[0].cpu())
        rows.append({"image_id": r.image_id, "label": r.label, "class_name": r.class_name, "path": rel})
        if task is not None:
            ctx.progress.advance(task)
    if task is not None:
        ctx.progress.remove_task(task)
    seconds = time.perf_counter() - t0
    out = {**info, "stage": "restored", "baseline": train.config["baseline"],
           "losses": train.config["losses"], "train_config_hash": train.key,
           "select": ctx.job.config.get("select", "last"), "selected_step": step}
    _write_images(ctx.out_dir, rows, out)
    ctx.log(f"[cub] {len(rows)} images restored by {train.config['baseline']} (step {step}) in {seconds:.1f}s")
    return {"n": len(rows), "baseline": train.config["baseline"], "step": step, "seconds": round(seconds, 3)}


def _restore_weights(ctx: JobContext) -> tuple[int, Path]:
    """(step, weights file): the final model, or the snapshot the ``selection`` evaluate job picked."""
    from bench.errors import BenchError
    from bench.jobs.evaluate import candidates

    options = candidates(ctx.input("model"))
    if "selection" not in ctx.job.inputs:
        return options[-1][0], ctx.input("model") / "model.pt"
    picked = pd.read_csv(ctx.input("selection") / "summary.csv")["selected_step"].iloc[0]
    found = [o for o in options if o[0] == int(picked)]
    if not found:
        raise BenchError(f"The selected checkpoint (step {picked}) is not among the train job's files "
                         f"({', '.join(str(s) for s, _ in options)}).", fix="Rerun the train job with --force.")
    return found[0]


@job_kind("finetune_classifier")
def finetune_classifier(ctx: JobContext) -> dict[str, Any]:
    """Fine-tune timm ``vgg16`` / ``resnet50`` on the clean train images; write ``classifier.pt``."""
    from bench.evaluate.classify import (
        ClassifyRecipe,
        build_classifier,
        count_parameters,
        describe_init,
        finetune,
        load_images,
        predict,
        save_classifier,
        top1,
    )
    from bench.ui import step_callback

    cfg = ctx.job.config
    recipe = ClassifyRecipe(**cfg["recipe"])
    data_dir = ctx.input("data")
    info = json.loads((data_dir / DATA_JSON).read_text())
    train_rows = pd.read_csv(data_dir / "train.csv", keep_default_na=False, dtype={"image_id": str})
    files = [data_dir / p for p in train_rows["path"]]
    train_set = load_images(files, list(train_rows["image_id"]), list(train_rows["label"]), recipe.resize)
    model, loaded = build_classifier(cfg["arch"], info["num_classes"], cfg["init"], cfg["seed"])
    note = describe_init(cfg["arch"], cfg["init"])
    ctx.log(f"[classifier] {note}; {len(train_set)} images, {recipe.epochs} epochs, {recipe.optimizer} "
            f"lr {recipe.lr} (loaded layers {recipe.backbone_lr if recipe.train_layers == 'all' else 'frozen'})")
    steps = (len(train_set) // min(recipe.batch, len(train_set))) * recipe.epochs
    t0 = time.perf_counter()
    history = finetune(model, train_set, recipe, cfg["seed"], ctx.device, loaded,
                       on_step=step_callback(ctx.progress, f"fine-tune {cfg['arch']}", steps))
    seconds = time.perf_counter() - t0
    train_top1 = top1(predict(model, train_set.images, recipe.input_size, ctx.device), train_set.labels)
    write_csv(ctx.out_dir / "history.csv", pd.DataFrame(history))
    meta = {"init": cfg["init"], "init_note": note, "recipe": recipe.as_dict(), "seed": cfg["seed"],
            "class_names": info["class_names"], "dataset": info["dataset"], "subset": info["subset"],
            "loaded_tensors": len(loaded)}
    save_classifier(ctx.out_dir / CLASSIFIER_FILE, model, meta)
    result = {"arch": cfg["arch"], "init": cfg["init"], "init_note": note, "n_train": len(train_set),
              "num_classes": info["num_classes"], "parameters": count_parameters(model), "loaded_tensors": len(loaded),
              "steps": history[-1]["steps"] if history else 0, "final_loss": history[-1]["loss"] if history else None,
              "train_top1_eval": train_top1, "seconds": round(seconds, 3)}
    ctx.log(f"[classifier] {cfg['arch']}: train Top-1 {train_top1:.1f}% after {result['steps']} steps "
            f"({seconds:.1f}s)")
    return result


@job_kind("classify")
def classify_job(ctx: JobContext) -> dict[str, Any]:
    """Top-1 of a fine-tuned classifier on a test set (clean, degraded or restored); one row per image."""
    from bench.evaluate.classify import ARCHS, load_classifier, load_images, predict, top1

    cfg = ctx.job.config
    t0 = time.perf_counter()
    model, meta = load_classifier(ctx.input("classifier") / CLASSIFIER_FILE, ctx.device)
    frame, info = read_images_csv(ctx.input("images"))
    recipe = meta["recipe"]
    test = load_images(list(frame["file"]), list(frame["image_id"]), list(frame["label"]), recipe["resize"])
    pred = predict(model, test.images, recipe["input_size"], ctx.device)
    metric = ARCHS[model.arch]
    prov = _provenance(ctx, info["subset"])
    convention = (f"top1|{model.arch}|init={meta['init']}|input={recipe['input_size']}|resize={recipe['resize']}"
                  "|centre-crop")
    correct = (pred == test.labels).tolist()
    rows = pd.DataFrame({
        "image_id": test.ids, "dataset": info["dataset"], "stage": info["stage"], "label": test.labels.tolist(),
        "predicted": pred.tolist(), "correct": correct, metric: [100.0 if c else 0.0 for c in correct],
        f"{metric}_convention": convention,
    })
    for k, v in prov.items():
        rows[k] = v
    write_csv(ctx.out_dir / "per_image.csv", rows)
    value = top1(pred, test.labels)
    wall = round(time.perf_counter() - t0, 3)
    summary = pd.DataFrame([{"metric": metric, "value": value, "n": len(test), "convention": convention,
                             "dataset": info["dataset"], "stage": info["stage"], **prov,
                             "select": cfg.get("select", "last"), "selected_step": info.get("selected_step", ""),
                             "wall_time_s": wall}])
    write_csv(ctx.out_dir / "summary.csv", summary)
    ctx.log(f"[classify] {cfg['row']} {cfg.get('task', '')} {cfg.get('loss_set', '')} {model.arch}: "
            f"{metric} = {value:.2f}% on {len(test)} images")
    return {metric: value, "n": len(test), "subset": info["subset"], "classifier_init": meta["init"]}
