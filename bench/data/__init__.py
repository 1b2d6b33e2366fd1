"""Data sets, registered in ``bench.DATASETS``; importing this package registers them."""

from __future__ import annotations

import importlib
import pkgutil

from bench.data.base import Pair, PairedSet, read_image, write_png

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name not in ("base",) and not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["Pair", "PairedSet", "read_image", "write_png"]
