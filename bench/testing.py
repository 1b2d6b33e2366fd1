"""Helpers for conformance tests: find shared/ fixtures and fill weights by key.

The fill rule is the one the fixtures in ``$BENCH_SHARED/fixtures`` were made with, so
any implementation with the official state_dict keys computes the same numbers.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_root() -> Path:
    """``$BENCH_SHARED`` or ``../shared`` beside the repository."""
    env = os.environ.get("BENCH_SHARED")
    return Path(env) if env else (REPO_ROOT.parent / "shared")


def shared_path(*parts: str) -> Path:
    """Path under shared/; in a test, fail under CI=true and skip loudly otherwise."""
    p = shared_root().joinpath(*parts)
    if not p.exists():
        import pytest

        msg = f"shared/ material missing: {p} (set BENCH_SHARED to the folder holding fixtures/, data/, weights/)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return p


def fill_by_key(model: nn.Module, scale: float) -> nn.Module:
    """Fill every floating-point tensor of ``model.state_dict()`` deterministically by its key."""
    named = dict(model.named_parameters()) | dict(model.named_buffers())
    with torch.no_grad():
        for key in model.state_dict():
            t = named[key]
            if not t.is_floating_point():
                continue
            g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
            v = torch.randn(t.shape, generator=g, dtype=torch.float64).to(t.dtype) * scale
            if key.endswith("running_var"):
                v = v.abs() + 0.5
            t.data = v.contiguous()
    return model


def load_fixture(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(meta.json, io.pt) of ``fixtures/<name>``."""
    d = shared_path("fixtures", name)
    meta = json.loads((d / "meta.json").read_text())
    io = torch.load(d / "io.pt", map_location="cpu", weights_only=True)
    return meta, io


def jobs_by_kind(job: Any) -> dict[str, list[Any]]:
    """Every job of ``job``'s graph (``Job.walk``), grouped by kind: what graph tests count and compare."""
    out: dict[str, list[Any]] = {}
    for j in job.walk():
        out.setdefault(j.kind, []).append(j)
    return out
