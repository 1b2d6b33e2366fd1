"""DiffLoss Bench: reproduce and measure DiffLoss (Tan et al., ACCV 2024, pp. 1566-1584; arXiv 2406.19030).

The public API is re-exported here. Heavy parts (torch models) load on first attribute
access, so ``import bench`` and ``bench --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from bench.errors import BenchError, DataError, MissingFileError, TrainingDiverged, UnknownNameError
from bench.registry import BASELINES, DATASETS, LOSSES, METRICS, Registry

__version__ = "0.1.0"

_LAZY = {
    "create_adm": "bench.prior",
    "ADMUNet": "bench.prior",
    "ADM256_UNCOND_KWARGS": "bench.prior",
    "SMOKE_PRIOR_KWARGS": "bench.prior",
    "DiffusionSchedule": "bench.prior",
    "load_prior": "bench.prior",
    "train_smoke_prior": "bench.train.smoke_prior",
    "DiffLoss": "bench.losses.diffloss",
    "build_loss": "bench.losses.composite",
    "TrainConfig": "bench.train.loop",
    "train": "bench.train.loop",
    "PairedSet": "bench.data.base",
    "read_image": "bench.data.base",
    "get_profile": "bench.config",
    "build_target": "bench.paper",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bench' has no attribute '{name}'")


def build_baseline(name: str, **kwargs: Any):
    """Build a registered baseline at the configuration its paper used (overridable), or a user's
    ``package.module:Class`` with ``kwargs``."""
    if ":" in name:
        from bench.plugins import import_class

        return import_class(name)(**kwargs)
    return BASELINES.get(name)(**kwargs)


__all__ = [
    "BASELINES",
    "DATASETS",
    "LOSSES",
    "METRICS",
    "BenchError",
    "DataError",
    "MissingFileError",
    "Registry",
    "TrainingDiverged",
    "UnknownNameError",
    "build_baseline",
    *_LAZY,
]
