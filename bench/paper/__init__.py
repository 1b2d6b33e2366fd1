"""The paper's tables and figures, one module each, registered in ``bench.registry.PAPER`` and ``LAYOUTS``.

Each module owns everything about its target: the experiment it declares (rows, metrics,
checkpoint rules), any jobs beyond train + evaluate (Table 2's classification, Figure 7's Top-1 V),
the join with the paper's own numbers (``numbers/*.csv``) and its layout. Adding a table is adding
one module here. Importing this package registers them all.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pandas as pd

NUMBERS_DIR = Path(__file__).resolve().parent / "numbers"


def paper_numbers(name: str) -> pd.DataFrame:
    """The paper's own numbers of ``name`` ("table1" ... "table4"), transcribed in ``numbers/<name>.csv``."""
    return pd.read_csv(NUMBERS_DIR / f"{name}.csv", keep_default_na=False)


def build_target(name: str | int, profile: Any, seeds: int = 1, data_root: Path | None = None, prior: Any = None,
                 problems: list | None = None) -> Any:
    """The render job of paper target ``name`` ("table1" ... "figure7", or a table number) for ``profile``."""
    from bench.experiment.graph import GraphBuilder
    from bench.registry import PAPER

    target = f"table{name}" if isinstance(name, int) else name
    return PAPER.get(target)(GraphBuilder(profile, data_root, prior, problems), seeds)


for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")
