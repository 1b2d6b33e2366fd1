"""The CUB graph shared by Table 2 and Figure 7's Top-1 V: data, degradations, restorations, classifiers.

The restoration networks are the experiments' own ``train`` jobs (Table 1's for Table 2, same configs
and hashes); nothing is trained on CUB. What the paper does not state is ours and is stated here:
the fine-tuning recipe per profile (``CLASSIFY``), the degradation severity
(``bench.data.corruptions.DEFAULT_SEVERITY``) and seed, and where each classifier's ImageNet weights
come from (``INIT``). One classifier per architecture (seed 0) serves every row, so seeds vary the
restoration networks only.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from bench.config import Profile
from bench.errors import BenchError
from bench.evaluate.classify import ARCHS, ClassifyRecipe
from bench.graph.job import Job

#: Table 2's restoration network per task, and the CUB degradation it faces.
TABLE2_TASKS: dict[str, tuple[str, str]] = {"dehazing": ("mb_taylorformer", "fog"),
                                            "deraining": ("efderain", "rain"),
                                            "lowlight": ("iat", "lowlight")}
CLASSIFIER_SEED = 0
DEGRADATION_SEED = 0

#: Where each classifier's weights start, per profile. ResNet50 ImageNet weights have no offline
#: source: only the paper profile asks for the user's file; the others train it from scratch.
INIT: dict[str, dict[str, str]] = {
    "smoke": {"vgg16": "imagenet", "resnet50": "scratch"},
    "truncated": {"vgg16": "imagenet", "resnet50": "scratch"},
    "paper": {"vgg16": "imagenet", "resnet50": "imagenet"},
    "rehearsal": {"vgg16": "imagenet", "resnet50": "imagenet"},
}

#: Fine-tuning recipes per profile. Paper: SGD (momentum 0.9), lr 0.01 for fresh layers and
#: 0.001 for ImageNet layers, cosine, 30 epochs, batch 32, 224 crops of 256 (random crop +
#: flip). Smoke / truncated: a few CPU steps at a small size; VGG16 trains its fresh fc
#: layers over frozen ImageNet convolutions, ResNet50 (from scratch) trains everything.
_SMALL = {"resize": 40, "input_size": 32, "batch": 12, "schedule": "constant"}
_TRUNC = {"resize": 72, "input_size": 64, "batch": 16, "schedule": "constant"}
CLASSIFY: dict[str, dict[str, ClassifyRecipe]] = {
    "smoke": {"vgg16": ClassifyRecipe(optimizer="sgd", lr=0.01, epochs=2, train_layers="head", **_SMALL),
              "resnet50": ClassifyRecipe(optimizer="adam", lr=1e-3, weight_decay=0.0, epochs=2, **_SMALL)},
    "truncated": {"vgg16": ClassifyRecipe(optimizer="sgd", lr=0.01, epochs=2, train_layers="head", **_TRUNC),
                  "resnet50": ClassifyRecipe(optimizer="adam", lr=1e-3, weight_decay=0.0, epochs=2, **_TRUNC)},
    "paper": {"vgg16": ClassifyRecipe(), "resnet50": ClassifyRecipe()},
    # the paper's shapes (224 crops of 256, batch 32), one epoch: a rehearsal cuts every training short
    "rehearsal": {"vgg16": ClassifyRecipe(epochs=1), "resnet50": ClassifyRecipe(epochs=1)},
}

#: The clean images classifiers train and test on, per profile (``prepare_cub`` config minus the root).
SMOKE_DATA: dict[str, Any] = {"source": "smoke", "per_class_train": 6, "per_class_test": 3, "size": 40, "seed": 0}
TRUNCATED_LIMIT = {"train": 4, "test": 2}  # images per class of the 100-class subset


def cub_data_job(profile: Profile, data_root: Path | None, problems: list[BenchError] | None = None) -> Job:
    """The ``prepare_cub`` job: the embedded stand-in, or CUB under ``data_root`` (keyed by its content)."""
    if profile.embedded_data:
        return Job("prepare_cub", dict(SMOKE_DATA), label="data:cub-standin")
    if data_root is None:
        raise BenchError(f"The '{profile.name}' profile needs CUB-200-2011 for Table 2.",
                         fix="Pass --data-root PATH holding CUB_200_2011/ (or set BENCH_DATA).", doc="Data")
    full = profile.name in ("paper", "rehearsal")
    cfg: dict[str, Any] = {"source": "cub", "dataset": "cub" if full else "cub_subset",
                           "limit_per_class": None if full else dict(TRUNCATED_LIMIT)}
    if profile.classes:  # only when asked, so the key (and every hash) is unchanged otherwise
        cfg["classes"] = profile.classes
    cfg["fingerprint"] = _cub_fingerprints(cfg, data_root, problems)
    return Job("prepare_cub", cfg, label=f"data:{cfg['dataset']}", params={"root": str(data_root)})


def _cub_fingerprints(cfg: dict[str, Any], data_root: Path, problems: list[BenchError] | None) -> dict[str, str]:
    """Per split, the content fingerprint of the CUB images a job reads (``unavailable`` if unreadable)."""
    from bench.data.fingerprint import DigestMemo, labelled_set_fingerprint
    from bench.jobs.cub import load_cub

    memo, out = DigestMemo(), {}
    for split in ("train", "test"):
        try:
            out[split] = labelled_set_fingerprint(load_cub(cfg, data_root, split), data_root, memo)
        except BenchError as e:
            if problems is None:
                raise
            if not any(e.message == p.message for p in problems):
                problems.append(e)
            out[split] = "unavailable"
    memo.save()
    return out


def _recipes(profile: Profile) -> dict[str, ClassifyRecipe]:
    return CLASSIFY.get(profile.name, CLASSIFY["paper" if profile.is_reproduction else "truncated"])


def _inits(profile: Profile) -> dict[str, str]:
    return INIT.get(profile.name, INIT["paper" if profile.is_reproduction else "truncated"])


def classifier_jobs(profile: Profile, data: Job) -> dict[str, Job]:
    recipes, inits = _recipes(profile), _inits(profile)
    return {arch: Job("finetune_classifier", {"profile": profile.name, "arch": arch, "init": inits[arch],
                                              "recipe": recipes[arch].as_dict(), "seed": CLASSIFIER_SEED},
                      {"data": data}, label=f"classifier:{arch}")
            for arch in ARCHS}


def degrade_job(data: Job, degradation: str) -> Job:
    """The clean CUB test images under ``degradation`` at Table 2's severity and seed."""
    from bench.data.corruptions import DEFAULT_SEVERITY

    return Job("degrade_cub", {"degradation": degradation, "severity": DEFAULT_SEVERITY, "seed": DEGRADATION_SEED},
               {"data": data}, label=f"degrade:{degradation}")


def restore_job(profile: Profile, train: Job, degraded: Job, selection: Job | None = None) -> Job:
    """``train``'s network restores ``degraded``: its final weights, or the snapshot ``selection`` (an
    ``evaluate`` job with ``select="best:<metric>"``) picked."""
    cfg: dict[str, Any] = {"profile": profile.name}
    inputs = {"model": train, "images": degraded}
    label = f"restore:{train.label.removeprefix('train:')}/{degraded.config['degradation']}"
    if selection is not None:  # only then, so Table 2's restore jobs keep their hashes
        cfg["select"] = selection.config["select"]
        inputs["selection"] = selection
        label += f"/{cfg['select']}"
    return Job("restore_cub", cfg, inputs, label=label)


def classify_job(profile: Profile, classifier: Job, images: Job, **spec: Any) -> Job:
    """Top-1 of ``classifier`` on ``images``; ``spec`` is the row (see ``ROW_KEYS``)."""
    cfg = {"profile": profile.name, "select": "last", "classifier": classifier.config["arch"],
           "init": classifier.config["init"], "baseline": "", "loss_set": "", "task": "", "degradation": "",
           "severity": "", "seed": CLASSIFIER_SEED, **spec}
    label = f"classify:{cfg['classifier']}/{spec['row']}" + "".join(
        f"/{spec[k]}" for k in ("task", "loss_set") if spec.get(k))
    if cfg["select"] != "last":
        label += f"/{cfg['select']}"
    return Job("classify", cfg, {"classifier": classifier, "images": images}, label=label + f"/seed{cfg['seed']}")


def has_cub(profile: Profile, data_root: Path | None) -> bool:
    """Does Figure 7 draw Top-1 V? Smoke: always (its own CUB stand-in). Paper: always, so a missing CUB
    stops the run with ``prepare_cub``'s error, as for Table 2. Truncated: when CUB is under the data root.
    """
    if profile.embedded_data or profile.is_reproduction:
        return True
    from bench.errors import DataError, MissingFileError
    from bench.jobs.cub import locate_cub

    dataset = "cub" if profile.name in ("paper", "rehearsal") else "cub_subset"
    try:
        locate_cub(Path(data_root), dataset)  # type: ignore[arg-type]
    except (MissingFileError, DataError):
        return False
    return True



def recipe_table() -> pd.DataFrame:
    """The classification recipes of every profile, one row per (profile, architecture), for REPRODUCE.md."""
    return pd.DataFrame([{"profile": p, "arch": a, "init": INIT[p][a], **asdict(r)}
                         for p, by_arch in CLASSIFY.items() for a, r in by_arch.items()])
