"""Test helpers: shared/ material (skipped loudly, or failed under CI=true, when absent), fixtures, graphs,
and a simulated other CPU. They live with the tests, never in the installed package."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from bench.fidelity import fill_by_key  # noqa: F401  (re-exported: the fixtures' keyed fill)
from bench.paths import shared_root


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


#: torch ops whose float32 result IEEE 754 does not fix, so that CPUs differ in its last bits: sums in a
#: kernel-chosen order (contractions, reductions, normalisations, resampling) and vectorised transcendental
#: functions. Elementwise +, -, *, /, sqrt, comparisons, clamps and copies are exact on every CPU.
INEXACT_OPS = frozenset({
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "linear",
    "bilinear", "matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "baddbmm", "addmm", "einsum", "tensordot",
    "mv", "dot", "sum", "mean", "var", "std", "norm", "cumsum", "prod", "logsumexp", "softmax", "log_softmax",
    "layer_norm", "batch_norm", "group_norm", "instance_norm", "normalize", "interpolate", "grid_sample",
    "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "deform_conv2d",
    "scaled_dot_product_attention", "exp", "expm1", "log", "log1p", "log2", "log10", "tanh", "sigmoid", "gelu",
    "silu", "softplus", "elu", "erf", "sin", "cos", "tan", "atan", "atan2", "asin", "acos", "sinh", "cosh",
    "rsqrt", "reciprocal", "pow", "__pow__", "__rpow__",
})  # fmt: skip


class SimulatedCPU(TorchFunctionMode):
    """Another CPU, simulated: every float32 result of an inexact op (:data:`INEXACT_OPS`) gets a
    random relative error up to ``rel`` (default 2^-22, about 2 ulps), seeded.

    Real kernels of this CPU (oneDNN off, channels_last weights) move the fixture outputs about as
    much as our float32-vs-float64 difference; this moves them 1-4x as much, on any host CPU, so a
    numerical proof that passes under it does not hang on this machine's last bits. float64 is
    left exact (a proof's own arithmetic), and so are integer powers (``x ** 2`` is ``x * x``).
    """

    def __init__(self, seed: int, rel: float = 2.0**-22) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)
        self.rel = rel
        self.perturbed = 0  # op results perturbed so far

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        if not (name in INEXACT_OPS and isinstance(out, torch.Tensor) and out.dtype == torch.float32):
            return out
        if name in ("pow", "__pow__") and len(args) > 1 and isinstance(args[1], int | float) \
                and float(args[1]).is_integer():
            return out
        self.perturbed += 1
        noise = torch.rand(out.shape, generator=self.generator).mul_(2).sub_(1).mul_(self.rel)
        return out * (1 + noise)
