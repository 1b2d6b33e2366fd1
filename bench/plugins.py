"""Code named by the user: ``package.module:Attribute`` resolved with one clear sentence when it is not there.

The lowest layer may need it (``bench.build_baseline``), so it lives here rather than beside the experiment
files that name classes this way.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from bench.errors import BenchError

DOC = "Your own network and data"


def import_class(path: str) -> Callable[..., Any]:
    """``package.module:Class`` -> the class (one sentence when the module or the class is not there)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise BenchError(f"'{path}' is not of the form package.module:Class.", fix="For example: mynets:TinyNet.",
                         doc=DOC)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise BenchError(f"Module '{module_name}' cannot be imported ({e}).",
                         fix="Put the folder holding it on PYTHONPATH (or install its package).", doc=DOC) from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = sorted(n for n in dir(module) if not n.startswith("_") and inspect.isclass(getattr(module, n)))
            raise BenchError(f"Module '{module_name}' has no '{attr}'.",
                             fix=f"Classes it defines: {', '.join(names) or 'none'}.", doc=DOC)
        obj = getattr(obj, part)
    if not callable(obj):
        raise BenchError(f"'{path}' is not a class or function that builds a network.",
                         fix="Point to an nn.Module subclass.", doc=DOC)
    return obj
