"""Is a baseline the published network? Checked against the official code's fixture, not claimed.

``check_fixture(name)`` runs the whole proof of ``$BENCH_SHARED/fixtures/<name>`` (see
``fixtures/README.md``): parameter count equal to the official model's, the official
state_dict keys and shapes loading with ``strict=True``, and ``official_forward`` on every
stored input matching the official output within the fixture's ``atol`` after filling the
weights by the fixtures' rule (``bench.testing.fill_by_key``). The tests and ``bench ls
baselines`` both call it, so there is one implementation of the proof.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from bench.testing import fill_by_key, shared_root

VERIFIED, FAILED, NO_FIXTURE = "verified", "failed", "no fixture"


@dataclass(frozen=True)
class FidelityResult:
    """Outcome of one baseline's fixture check; ``label`` is what ``bench ls baselines`` shows."""

    name: str
    status: str  # VERIFIED, FAILED or NO_FIXTURE
    params: int | None = None
    official_params: int | None = None
    max_err: float | None = None  # largest |ours - official| over every output of every input
    atol: float | None = None
    inputs: int = 0
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == VERIFIED

    @property
    def label(self) -> str:
        if self.status == VERIFIED:
            return f"fixture-verified (max err {self.max_err:.1e})"
        if self.status == NO_FIXTURE:
            return "no fixture (set BENCH_SHARED)"
        return f"FAILED: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FidelityResult:
        return cls(**d)


def fixture_dir(name: str) -> Path:
    """Where ``name``'s fixture lives (registration metadata may name another fixture folder)."""
    from bench.registry import BASELINES

    return shared_root() / "fixtures" / str(BASELINES.meta(name).get("fixture", name))


def _key_mismatch(ours: dict[str, list[int]], theirs: dict[str, list[int]]) -> str:
    """One line naming what differs between two key -> shape maps (first few of each kind)."""
    missing = sorted(set(theirs) - set(ours))
    extra = sorted(set(ours) - set(theirs))
    shapes = sorted(k for k in set(ours) & set(theirs) if ours[k] != theirs[k])
    parts = []
    if missing:
        parts.append(f"{len(missing)} official keys missing (e.g. {missing[0]})")
    if extra:
        parts.append(f"{len(extra)} keys the official model lacks (e.g. {extra[0]})")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} shapes differ (e.g. {k}: {ours[k]} vs official {theirs[k]})")
    return "; ".join(parts)


@contextmanager
def single_thread() -> Iterator[None]:
    """Fixture inputs are small and the networks run hundreds of small ops, so intra-op threads cost
    more than they give: all eight checks took 84 s with torch's default threads and 22 s with one
    (2-core shared CPU, measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_fixture(name: str) -> FidelityResult:
    """Run the fixture proof for baseline ``name``; never raises for a mismatch, reports it."""
    with single_thread():
        return _check(name)


def _check(name: str) -> FidelityResult:
    import bench

    d = fixture_dir(name)
    if not (d / "meta.json").is_file() or not (d / "io.pt").is_file():
        return FidelityResult(name, NO_FIXTURE, reason=f"{d} not found")
    meta = json.loads((d / "meta.json").read_text())
    official_params = int(meta["params"])
    atol = float(meta["atol"])
    model = bench.build_baseline(name)
    params = sum(p.numel() for p in model.parameters())

    def failed(reason: str, max_err: float | None = None, inputs: int = 0) -> FidelityResult:
        return FidelityResult(name, FAILED, params, official_params, max_err, atol, inputs, reason)

    if params != official_params:
        return failed(f"{params:,} parameters, official {official_params:,}")
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: list(v) for k, v in meta["state_dict_keys"].items()}
    if ours != theirs:
        return failed(f"state_dict differs from the official one: {_key_mismatch(ours, theirs)}")
    try:
        model.load_state_dict({k: torch.zeros(v) for k, v in theirs.items()}, strict=True)
    except RuntimeError as e:
        return failed(f"official keys do not load strictly: {str(e).splitlines()[0]}")

    io = torch.load(d / "io.pt", map_location="cpu", weights_only=True)
    inputs, outputs = io["inputs"], io["outputs"]
    if len(inputs) != len(outputs) or not inputs:
        return failed(f"fixture io.pt holds {len(inputs)} inputs and {len(outputs)} outputs")
    model = fill_by_key(model, float(meta["scale"])).eval()
    worst = 0.0
    with torch.no_grad():
        for i, (x, expected) in enumerate(zip(inputs, outputs, strict=True)):
            try:
                got = model.official_forward(x.float())
            except Exception as e:  # a broken network is a failed check, not a crash of the listing
                return failed(f"input {i}: official_forward raised {type(e).__name__}: {e}", worst or None, i)
            if got.shape != expected.shape:
                return failed(f"input {i}: output shape {tuple(got.shape)}, official {tuple(expected.shape)}",
                              worst or None, i)
            err = (got.double() - expected.double()).abs().max().item()
            if not err <= atol:  # also catches NaN
                return failed(f"input {i}: max abs error {err:.3g} > atol {atol:g}", max(worst, err), i + 1)
            worst = max(worst, err)
    return FidelityResult(name, VERIFIED, params, official_params, worst, atol, len(inputs))
