"""What every baseline's ``forward`` must do around its network, driven by ``size_multiple``.

``Restorer.forward`` (baselines/_base.py) pads bottom/right to a multiple of ``size_multiple``
(reflect, or replicate where the padding is at least the side), calls ``restore`` and crops
back. These tests hold each registered network to that contract; network-specific behaviour
(output selection, normalisation, value scaling) stays in ``tests/baselines/test_<name>.py``.
Weights are the fixtures' deterministic fill at each fixture's scale, so outputs are
non-trivial and reproducible without shared/ material.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from support.shared import fill_by_key

import bench
from baselines._base import Restorer
from bench.fidelity import single_thread

#: The fixtures' fill scales (meta.json "scale"), which keep activations in a sensible range.
SCALE = {"fsdgn": 0.05, "mb_taylorformer": 0.05, "rcdnet": 0.1, "efderain": 0.02, "deeplpf": 0.05, "iat": 0.05,
         "msbdn": 0.02, "griddehazenet": 0.1}
ALL = list(SCALE)
#: What ``size_multiple`` must be, and why (the official architectures' strides).
MULTIPLE = {
    "fsdgn": 16,  # four stride-2 stages concatenated with their skips
    "msbdn": 16,  # four stride-2 stages; dense feature fusion projects each scale exactly
    "efderain": 16,  # four 2x average pools concatenated with 2x bilinear up-samplings
    "mb_taylorformer": 8,  # three 2x pixel-unshuffles
    "rcdnet": 1, "deeplpf": 1, "iat": 1, "griddehazenet": 1,
}
#: Networks whose official pipeline does nothing around the network: forward IS official_forward.
RAW = ("efderain", "msbdn", "mb_taylorformer")
#: Networks whose official output is clamped to [0, 1] whatever the weights (IAT clamps, then raises to a
#: learned gamma: in [0, 1] only for gamma > 0, checked with the trained weights in test_iat.py).
CLAMPED = ("fsdgn", "deeplpf")
#: The awkward size each network is run at. 401x599 where one forward costs under 5 s on one
#: shared CPU core (measured under load: iat 3.2 s, deeplpf 2.2 s, fsdgn 4.7 s); the others
#: at a smaller odd size that takes the same padding path (measured at 401x599 on a busy
#: 2-core machine: griddehazenet 21 s, msbdn 17 s, efderain 23 s, mb_taylorformer 104 s;
#: rcdnet ~3 M multiply-adds per pixel, minutes).
AWKWARD = {"iat": (401, 599), "deeplpf": (401, 599), "fsdgn": (401, 599), "griddehazenet": (101, 149),
           "msbdn": (101, 149), "efderain": (101, 149), "mb_taylorformer": (57, 83), "rcdnet": (23, 37)}


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Many small ops: two intra-op threads on a shared 2-core CPU oversubscribe it (10x slower)."""
    with single_thread():
        yield


_MODELS: dict[str, Restorer] = {}


def _model(name: str) -> Restorer:
    if name not in _MODELS:
        _MODELS[name] = fill_by_key(bench.build_baseline(name), SCALE[name]).eval()
    return _MODELS[name]


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _admissible(name: str) -> int:
    """The smallest square side the network runs at without padding (MSBDN needs 32, see its note)."""
    return max(32 if name == "msbdn" else 16, MULTIPLE[name])


def test_every_registered_baseline_is_covered() -> None:
    assert set(bench.BASELINES.names()) == set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_size_multiple_is_the_architectures(name: str) -> None:
    assert _model(name).size_multiple == MULTIPLE[name]


@pytest.mark.parametrize("name", RAW)
def test_forward_is_the_raw_official_output_at_admissible_sizes(name: str) -> None:
    """The official pipeline feeds [0, 1] RGB unnormalised and keeps the raw output: nothing around it."""
    s = _admissible(name)
    x = _rand(2, 3, s, 2 * s)
    with torch.no_grad():
        y = _model(name)(x)
        official = _model(name).official_forward(x)
    assert y.shape == x.shape
    assert torch.equal(y, official)
    assert torch.isfinite(y).all() and (y - x).std() > 1e-3  # the network changes the image


@pytest.mark.parametrize("name", ALL)
def test_forward_reflect_pads_to_the_multiple_and_crops(name: str) -> None:
    """An odd size is reflect-padded bottom/right to the next multiple, restored, cropped back (atol 1e-6);
    with size_multiple 1 nothing is padded."""
    m = MULTIPLE[name]
    h, w = 2 * _admissible(name) + 3, 2 * _admissible(name) + 7
    x = _rand(1, 3, h, w, seed=1)
    with torch.no_grad():
        y = _model(name)(x)
        expected = _model(name).restore(F.pad(x, (0, (-w) % m, 0, (-h) % m), mode="reflect"))[..., :h, :w]
    assert y.shape == x.shape
    assert (y - expected).abs().max().item() <= 1e-6


@pytest.mark.parametrize("name", [n for n in ALL if MULTIPLE[n] > 1 and n != "msbdn"])
def test_forward_replicate_pads_when_the_image_is_too_small_to_reflect(name: str) -> None:
    """Padding of at least the side cannot reflect; it replicates. (MSBDN is left out: it needs 32 pixels.)"""
    m = MULTIPLE[name]
    x = _rand(1, 3, m // 2 - 1, m + 3, seed=2)
    h, w = x.shape[-2:]
    with torch.no_grad():
        y = _model(name)(x)
        expected = _model(name).restore(F.pad(x, (0, (-w) % m, 0, (-h) % m), mode="replicate"))[..., :h, :w]
    assert y.shape == x.shape
    assert (y - expected).abs().max().item() <= 1e-6


@pytest.mark.parametrize("name", [n for n in ALL if MULTIPLE[n] > 1])
def test_official_forward_rejects_sizes_not_a_multiple(name: str) -> None:
    """Why size_multiple is what it is: 2.5 x the multiple fails in the official network's strides."""
    s = MULTIPLE[name] * 5 // 2
    with torch.no_grad(), pytest.raises(RuntimeError):
        _model(name).official_forward(_rand(1, 3, s, s))


@pytest.mark.parametrize("name", ALL)
def test_forward_at_awkward_size(name: str) -> None:
    h, w = AWKWARD[name]
    x = _rand(1, 3, h, w, seed=3)
    with torch.no_grad():
        y = _model(name)(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    if name in CLAMPED:
        assert y.min() >= 0 and y.max() <= 1
