"""Proof of fidelity for every published baseline against the official code's outputs.

For each fixture in ``$BENCH_SHARED/fixtures/<name>``: parameter count equals the
official model's, the official state_dict keys and shapes load with ``strict=True``,
and ``official_forward`` reproduces the stored outputs within the fixture's ``atol``.
"""

from __future__ import annotations

import pytest
import torch

import bench
from bench.testing import fill_by_key, load_fixture

#: The eight networks of the paper; every one must be registered and pass every test below.
ALL = ["fsdgn", "mb_taylorformer", "rcdnet", "efderain", "deeplpf", "iat", "msbdn", "griddehazenet"]
NAMES = ALL


def _registered(name: str) -> None:
    if name not in bench.BASELINES:
        pytest.fail(f"baseline '{name}' is not registered")


@pytest.mark.parametrize("name", NAMES)
def test_param_count_matches_official(name: str) -> None:
    _registered(name)
    meta, _ = load_fixture(name)
    model = bench.build_baseline(name)
    n = sum(p.numel() for p in model.parameters())
    assert n == meta["params"], f"{name}: {n} parameters, official {meta['params']}"


@pytest.mark.parametrize("name", NAMES)
def test_official_keys_load_strictly(name: str) -> None:
    _registered(name)
    meta, _ = load_fixture(name)
    model = bench.build_baseline(name)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: list(v) for k, v in meta["state_dict_keys"].items()}
    assert ours == theirs
    official = {k: torch.zeros(v) for k, v in theirs.items()}
    model.load_state_dict(official, strict=True)


@pytest.mark.parametrize("name", NAMES)
def test_official_forward_matches_fixture(name: str) -> None:
    _registered(name)
    meta, io = load_fixture(name)
    model = fill_by_key(bench.build_baseline(name), meta["scale"]).eval()
    atol = float(meta["atol"])
    assert len(io["inputs"]) == len(io["outputs"]) > 0
    with torch.no_grad():
        for i, (x, expected) in enumerate(zip(io["inputs"], io["outputs"], strict=True)):
            got = model.official_forward(x.float())
            assert got.shape == expected.shape, f"{name} input {i}: shape {tuple(got.shape)} vs {tuple(expected.shape)}"
            err = (got - expected).abs().max().item()
            assert err <= atol, f"{name} input {i}: max abs error {err:.3g} > atol {atol}"


@pytest.mark.parametrize("name", NAMES)
def test_forward_keeps_size_at_awkward_shape(name: str) -> None:
    """forward() pads what the network cannot take and crops back: 3 x 41 x 59 in, same out."""
    _registered(name)
    model = bench.build_baseline(name).eval()
    x = torch.rand(1, 3, 41, 59, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
