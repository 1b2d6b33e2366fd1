"""Published restoration networks, one module each, registered in ``bench.BASELINES``.

Importing this package registers every network; ``bench.build_baseline(name)`` builds one.
"""

from __future__ import annotations

import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")
