"""Rows for ``bench ls <kind>``: what is registered, with the facts a user chooses by."""

from __future__ import annotations

from typing import Any

from bench.errors import UnknownNameError


def _baselines() -> tuple[str, list[str], list[list[Any]]]:
    import torch

    from bench.registry import BASELINES

    rows = []
    for name in BASELINES.names():
        meta = BASELINES.meta(name)
        model = BASELINES.get(name)()
        params = sum(p.numel() for p in model.parameters())
        flops = _flops(model, torch.zeros(1, 3, 256, 256))
        verified = "fixture-verified" if meta.get("fixture") and params == meta.get("params") else "not verified"
        rows.append([name, meta.get("task", ""), f"{params / 1e6:.3f}", flops, meta.get("repo", ""), verified])
    return "baselines", ["name", "task", "params (M)", "GFLOPs @256", "official repo", "fidelity"], rows


def _flops(model: Any, x: Any) -> str:
    """Forward FLOPs at 256x256 counted by torch's FlopCounterMode (matmul/conv only)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model.eval()(x)
        return f"{counter.get_total_flops() / 1e9:.1f}"
    except Exception as e:  # a network that cannot run at 256 on CPU still gets listed
        return f"n/a ({type(e).__name__})"


def _registry(kind: str) -> tuple[str, list[str], list[list[Any]]]:
    from bench import registry

    reg = {"datasets": registry.DATASETS, "metrics": registry.METRICS, "losses": registry.LOSSES}[kind]
    rows = []
    for name in reg.names():
        meta = reg.meta(name)
        rows.append([name, ", ".join(f"{k}={v}" for k, v in meta.items() if k != "summary"), meta.get("summary", "")])
    return kind, ["name", "metadata", "summary"], rows


def _jobs() -> tuple[str, list[str], list[list[Any]]]:
    import bench.jobs  # noqa: F401
    from bench.graph.job import JOB_KINDS

    return "job kinds", ["kind", "runner"], [[k, f"{fn.__module__}.{fn.__name__}"] for k, fn in JOB_KINDS.items()]


def _profiles() -> tuple[str, list[str], list[list[Any]]]:
    from bench.config import PROFILES

    rows = [[p.name, p.prior, p.steps, p.batch, p.patch, p.lr, p.limit, p.is_reproduction] for p in PROFILES.values()]
    return "profiles", ["name", "prior", "steps", "batch", "patch", "lr", "limit", "reproduction"], rows


def table(kind: str) -> tuple[str, list[str], list[list[Any]]]:
    if kind == "baselines":
        return _baselines()
    if kind in ("datasets", "metrics", "losses"):
        return _registry(kind)
    if kind == "jobs":
        return _jobs()
    if kind == "profiles":
        return _profiles()
    raise UnknownNameError(f"Nothing to list under '{kind}'.")
