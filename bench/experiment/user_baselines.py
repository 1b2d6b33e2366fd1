"""A user's own network, named ``package.module:Class`` (on their Python path) or registered by an installed package.

Installed packages register networks through the entry point group ``diffloss_bench.baselines``
(``name = "package.module:Class"``); ``bench ls baselines`` then lists them. A class named by path
enters job keys with the SHA-256 of its module's source, so editing the network gives new jobs.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

from bench.errors import BenchError
from bench.plugins import import_class

ENTRY_POINT_GROUP = "diffloss_bench.baselines"
DOC = "Your own network and data"


def is_import_path(name: str) -> bool:
    return ":" in name


def source_sha256(path: str) -> str:
    """SHA-256 of the source file that defines ``package.module:Class`` (edits give new job keys)."""
    obj = import_class(path)
    try:
        source = inspect.getsourcefile(obj) or inspect.getfile(obj)
        with open(source, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except (OSError, TypeError):
        return ""


def check_baseline(name: str, kwargs: dict[str, Any]) -> None:
    """Raise one sentence if ``name`` with ``kwargs`` does not build an nn.Module (built on the meta device)."""
    import torch

    from bench.registry import BASELINES

    builder = import_class(name) if is_import_path(name) else BASELINES.get(name)
    try:
        with torch.device("meta"):
            model = builder(**kwargs)
    except TypeError as e:
        raise BenchError(f"{name} does not take these arguments ({e}).",
                         fix="Check baseline_kwargs against its constructor.", doc=DOC) from None
    if not isinstance(model, torch.nn.Module):
        raise BenchError(f"{name} built a {type(model).__name__}, not a torch.nn.Module.",
                         fix="Point to the network class (an nn.Module that maps N x 3 x H x W images in [0, 1] to "
                             "restored images of the same size).", doc=DOC)
    if not any(True for _ in model.parameters()):
        raise BenchError(f"{name} has no parameters to train.", fix="Point to a trainable network.", doc=DOC)


def load_entry_points() -> list[str]:
    """Register every network installed packages declare in ``diffloss_bench.baselines``; returns their names."""
    from importlib.metadata import entry_points

    from bench.registry import BASELINES

    names = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if BASELINES.known(ep.name):  # one of ours, or loaded already
            continue
        try:
            obj = ep.load()
        except Exception as e:  # a broken plugin must not break bench
            import warnings

            warnings.warn(f"entry point {ep.name} = {ep.value} failed to load: {e}", stacklevel=2)
            continue
        BASELINES.register(ep.name, task=getattr(obj, "task", ""), repo=ep.value, plugin=True)(obj)
        names.append(ep.name)
    return names
