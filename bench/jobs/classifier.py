"""finetune_classifier (timm VGG16 / ResNet50 on the clean CUB train images) and classify (Top-1 of a test set).

``classify`` reads any image set (clean, degraded or restored, ``bench.jobs.images``) and writes one
row per image and a summary, each with its provenance and the classifier's convention.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd

from bench.graph.job import Artifact, Job, JobContext, job_kind
from bench.io import write_csv
from bench.jobs.images import read_image_set
from bench.provenance import row_provenance

FINETUNE_OUTPUTS = {"classifier": Artifact("classifier.pt", doc="weights and metadata (recipe, init, classes)"),
                    "history": Artifact("history.csv", doc="fine-tuning loss per epoch")}
CLASSIFY_OUTPUTS = {
    "per_image": Artifact("per_image.csv", columns=("image_id", "label", "predicted", "correct"),
                          doc="one row per test image with provenance"),
    "summary": Artifact("summary.csv", columns=("metric", "value", "n", "convention"), doc="Top-1 of the set"),
}


def _restoration_train_job(job: Job) -> Job | None:
    """The ``train`` job behind a classify job's images, if they were restored."""
    images = job.inputs.get("images")
    if images is not None and images.kind == "restore_cub":
        return images.inputs["model"]
    return None


def _provenance(ctx: JobContext, subset: str) -> dict[str, Any]:
    """Columns every classify row carries: the row, both upstream config hashes, the environment."""
    cfg = ctx.job.config
    clf = ctx.job.inputs["classifier"]
    return row_provenance(ctx.job, ctx.device, subset, _restoration_train_job(ctx.job), row=cfg["row"],
                          task=cfg.get("task", ""), loss_set=cfg.get("loss_set", ""),
                          degradation=cfg.get("degradation", ""), severity=cfg.get("severity", ""),
                          classifier=clf.config["arch"], classifier_init=clf.config["init"],
                          classifier_seed=clf.config["seed"], classifier_config_hash=clf.key)


@job_kind("finetune_classifier", outputs=FINETUNE_OUTPUTS)
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
    info = json.loads(ctx.artifact("data", "image_set").read_text())
    train_rows = ctx.table("data", "train_images", dtype={"image_id": str})
    files = [data_dir / p for p in train_rows["path"]]
    train_set = load_images(files, list(train_rows["image_id"]), list(train_rows["label"]), recipe.resize)
    model, loaded = build_classifier(cfg["arch"], info["num_classes"], cfg["init"], cfg["seed"])
    note = describe_init(cfg["arch"], cfg["init"])
    ctx.log(f"[classifier] {note}; {len(train_set)} images, {recipe.epochs} epochs, {recipe.optimizer} "
            f"lr {recipe.lr} (loaded layers {recipe.backbone_lr if recipe.train_layers == 'all' else 'frozen'})")
    steps = (len(train_set) // min(recipe.batch, len(train_set))) * recipe.epochs
    t0 = time.perf_counter()
    history = finetune(model, train_set, recipe, cfg["seed"], ctx.device, loaded,
                       on_step=step_callback(ctx.progress, f"fine-tune {cfg['arch']}", steps),
                       checkpoint_path=ctx.out_dir / "checkpoint.pt", log=ctx.log)
    seconds = time.perf_counter() - t0
    train_top1 = top1(predict(model, train_set.images, recipe.input_size, ctx.device), train_set.labels)
    write_csv(ctx.output("history"), pd.DataFrame(history))
    meta = {"init": cfg["init"], "init_note": note, "recipe": recipe.as_dict(), "seed": cfg["seed"],
            "class_names": info["class_names"], "dataset": info["dataset"], "subset": info["subset"],
            "loaded_tensors": len(loaded)}
    save_classifier(ctx.output("classifier"), model, meta)
    result = {"arch": cfg["arch"], "init": cfg["init"], "init_note": note, "n_train": len(train_set),
              "num_classes": info["num_classes"], "parameters": count_parameters(model), "loaded_tensors": len(loaded),
              "steps": history[-1]["steps"] if history else 0, "final_loss": history[-1]["loss"] if history else None,
              "train_top1_eval": train_top1, "seconds": round(seconds, 3)}
    ctx.log(f"[classifier] {cfg['arch']}: train Top-1 {train_top1:.1f}% after {result['steps']} steps "
            f"({seconds:.1f}s)")
    return result


@job_kind("classify", outputs=CLASSIFY_OUTPUTS)
def classify_job(ctx: JobContext) -> dict[str, Any]:
    """Top-1 of a fine-tuned classifier on a test set (clean, degraded or restored); one row per image."""
    from bench.evaluate.classify import ARCHS, load_classifier, load_images, predict, top1

    cfg = ctx.job.config
    t0 = time.perf_counter()
    model, meta = load_classifier(ctx.artifact("classifier", "classifier"), ctx.device)
    frame, info = read_image_set(ctx, "images")
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
    write_csv(ctx.output("per_image"), rows)
    value = top1(pred, test.labels)
    wall = round(time.perf_counter() - t0, 3)
    summary = pd.DataFrame([{"metric": metric, "value": value, "n": len(test), "convention": convention,
                             "dataset": info["dataset"], "stage": info["stage"], **prov,
                             "select": cfg.get("select", "last"), "selected_step": info.get("selected_step", ""),
                             "wall_time_s": wall}])
    write_csv(ctx.output("summary"), summary)
    ctx.log(f"[classify] {cfg['row']} {cfg.get('task', '')} {cfg.get('loss_set', '')} {model.arch}: "
            f"{metric} = {value:.2f}% on {len(test)} images")
    return {metric: value, "n": len(test), "subset": info["subset"], "classifier_init": meta["init"]}
