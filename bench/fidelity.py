"""Is a baseline the published network? Checked against the official code's fixture, not claimed.

``check_fixture(name)`` runs the whole proof of ``$BENCH_SHARED/fixtures/<name>`` (see
``fixtures/README.md``): parameter count equal to the official model's, the official
state_dict keys and shapes loading with ``strict=True``, and ``official_forward`` on every
stored input matching the official output within the fixture's ``atol`` after filling the
weights by the fixtures' rule (``fill_by_key`` below). The tests and ``bench ls
baselines`` both call it, so there is one implementation of the proof.

The proof must hold on any x86 CPU, whose float32 kernels round differently from the
machine that made the fixture. Every output element is held to ``atol`` unless the
baseline's comparison in :data:`COMPARISONS` shows that element is ill-conditioned (another
CPU's rounding could move it by more than ``atol / CONDITIONED``); only IAT needs one
(:func:`compare_iat`). For the other seven, our float32 output is within 3.6e-7 of the same
network in float64 (rcdnet: 2.0e-4 on its 0-255 scale), 50-2600x inside ``atol``, and their
discrete choices (DeepLPF's ellipse test, sign and branch) are 1.6e-5 or more from a tie, so
elementwise is well conditioned. tests/test_baseline_fixtures.py runs all eight proofs on a
simulated other CPU (``SimulatedCPU`` in tests/support/shared.py) as well.
"""

from __future__ import annotations

import copy
import json
import math
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from bench.paths import shared_root

VERIFIED, FAILED, NO_FIXTURE = "verified", "failed", "no fixture"


@dataclass(frozen=True)
class FidelityResult:
    """Outcome of one baseline's fixture check; ``label`` is what ``bench ls baselines`` shows."""

    name: str
    status: str  # VERIFIED, FAILED or NO_FIXTURE
    params: int | None = None
    official_params: int | None = None
    max_err: float | None = None  # largest |ours - official| over every judged output element of every input
    atol: float | None = None
    inputs: int = 0
    reason: str = ""
    judged: int = 0  # output elements held to atol (all but the ill-conditioned ones)
    elements: int = 0  # output elements stored, over every input checked

    @property
    def ok(self) -> bool:
        return self.status == VERIFIED

    @property
    def label(self) -> str:
        if self.status == VERIFIED:
            if self.judged == self.elements:
                return f"fixture-verified (max err {self.max_err:.1e})"
            share = 1 - self.judged / self.elements
            return f"fixture-verified (max err {self.max_err:.1e}; {share:.0%} of outputs ill-conditioned, not judged)"
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
    judged = elements = 0

    def failed(reason: str, max_err: float | None = None, inputs: int = 0) -> FidelityResult:
        return FidelityResult(name, FAILED, params, official_params, max_err, atol, inputs, reason, judged, elements)

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
    compare = COMPARISONS.get(name, compare_elementwise)
    worst = 0.0
    with torch.no_grad():
        for i, (x, expected) in enumerate(zip(inputs, outputs, strict=True)):
            x = x.float()
            try:
                got = model.official_forward(x)
            except Exception as e:  # a broken network is a failed check, not a crash of the listing
                return failed(f"input {i}: official_forward raised {type(e).__name__}: {e}", worst or None, i)
            if got.shape != expected.shape:
                return failed(f"input {i}: output shape {tuple(got.shape)}, official {tuple(expected.shape)}",
                              worst or None, i)
            j = compare(model, x, got, expected, atol)
            worst = j.err if math.isnan(j.err) else max(worst, j.err)
            judged, elements = judged + j.judged, elements + j.total
            if j.problem:
                return failed(f"input {i}: {j.problem}", worst, i + 1)
    return FidelityResult(name, VERIFIED, params, official_params, worst, atol, len(inputs), "", judged, elements)


# ----------------------------------------------------------------------------- comparisons


@dataclass(frozen=True)
class Judgement:
    """How one stored output compares with ours."""

    err: float  # largest |ours - official| over the judged elements (NaN when one is NaN)
    judged: int  # elements held to atol
    total: int  # elements stored
    problem: str = ""  # why the comparison fails; empty when it holds


#: (model, input, our official_forward output, the official output, atol) -> Judgement
Comparison = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, float], Judgement]


def _max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| in float64; NaN when any difference is NaN (``max`` would skip it)."""
    d = (a.double() - b.double()).abs()
    return math.nan if d.isnan().any() else (d.max().item() if d.numel() else 0.0)


def _exceeds(err: float, atol: float, where: str = "") -> str:
    return "" if err <= atol else f"max abs error {err:.3g} > atol {atol:g}{where}"  # NaN exceeds


def compare_elementwise(model: torch.nn.Module, x: torch.Tensor, got: torch.Tensor, expected: torch.Tensor,
                        atol: float) -> Judgement:
    """Every element within ``atol``: the proof for networks whose outputs are all well conditioned."""
    err = _max_abs(got, expected)
    return Judgement(err, got.numel(), got.numel(), _exceeds(err, atol))


#: float32 unit roundoff: an IEEE operation's result is within U32 * |result| of the exact one.
U32 = 2.0**-24
#: Two CPUs' float32 values of a tensor may differ by this many times our float32-vs-float64
#: difference. Measured for IAT's z, C and gamma: other kernels of this CPU (oneDNN off,
#: channels_last weights) 0.9-1.6x; a simulated CPU with 2-ulp errors in every inexact op
#: (``SimulatedCPU`` in tests/support/shared.py, harsher than real kernels) 1.1-4.4x.
CROSS_CPU = 4
#: An element is judged when the rounding of any CPU can move it by at most atol / CONDITIONED.
CONDITIONED = 10
#: At least this share of an image must be well conditioned, or the fixture proves too little
#: (IAT's fixture: 95%; a CPU would need ~10x our float32 rounding error to bring it under 25%).
MIN_JUDGED = 0.25
#: IAT's clamp before the power (official ``torch.clamp(img, 1e-08, 1.0) ** gamma``).
IAT_CLAMP = (1e-8, 1.0)


def _cross_cpu_budget(f64: torch.Tensor, ours: torch.Tensor) -> float:
    """How far another CPU's float32 value of a tensor may be from ours: CROSS_CPU x our rounding error,
    taken as at least 2 ulps of the tensor's largest value (one scalar's error can be luckily small)."""
    ours = ours.double()
    return CROSS_CPU * max(_max_abs(f64, ours), 4 * U32 * ours.abs().max().item())


@torch.no_grad()
def compare_iat(model: torch.nn.Module, x: torch.Tensor, got: torch.Tensor, expected: torch.Tensor,
                atol: float) -> Judgement:
    """IAT's ``stack([mul, add, enhanced])``, with ``enhanced = clamp(C @ z, 1e-8, 1) ** gamma``, ``z = x * mul + add``.

    Why: with the fixture's keyed fill, gamma is about -0.07 and a fifth of ``C @ z`` is
    clamped, so near the clamp ``base ** gamma`` turns 1e-9 of rounding in ``base`` into 1e-3:
    the plain comparison gave 3.8e-5 on one CPU and 7.9e-4 on another for the same code.

    Rule: ``mul`` and ``add`` (well conditioned) are held to ``atol`` everywhere. For each
    enhanced element, a first-order bound ``dy`` of what any CPU's rounding can do to it is
    computed in float64 from the official ``z``, our ``C`` and ``gamma``, and three budgets:
    the rounding of ``z`` and of the 3-term colour product on both machines (``2 * gamma_5 *
    sum |C||z|``, true for any summation order), and CROSS_CPU times our own float32-vs-float64
    difference (same weights in float64) for ``z``, ``C`` and ``gamma``. The bound propagates
    through the clamp and the power with the exact derivatives at the worse end of the interval
    ``base +- dbase``; an interval that straddles a clamp bound gives ``dy = inf``. Elements with
    ``dy <= atol / CONDITIONED`` (at least MIN_JUDGED of the image) are held to ``atol``; the
    others are not judged. Last, the gamma and colour matrix implied by the official image
    (linearised least squares on the judged elements) must not be farther than ``atol`` from
    ours by more than the most that ``dy`` on those elements can move the fit: this catches a
    gamma off by 2.5 atol that moves no single pixel by atol.

    CPU-independent: on a judged element two CPUs' results differ by at most ``dy <= atol /
    10``, so a correct network passes with a 10x margin whatever its kernels do; the budgets are
    measured on the CPU that runs the proof. Measured: at most 3.1e-6 with other kernels of this
    CPU and on ten simulated CPUs, where the plain comparison gave 3e-4 to 9.6e-4 (it fails).
    Sharp: about 95% of the enhanced image is judged, the clamped-low fifth included, where
    ``y = 1e-8 ** gamma`` moves 64x as much as gamma; 1 % perturbations of all weights, of the
    global branch only, of its gamma or colour part only, fail (tests/baselines/test_iat.py),
    and so do 0.01 % ones (measured).
    """
    mul_off, add_off, y_off = expected.double().unbind(0)
    mul, add, y = got.double().unbind(0)
    total, judged = got.numel(), 0
    for what, ours, theirs in (("mul", mul, mul_off), ("add", add, add_off)):
        err = _max_abs(ours, theirs)
        judged += ours.numel()
        if problem := _exceeds(err, atol, f" in {what}"):
            return Judgement(err, judged, total, problem)
    worst = max(_max_abs(mul, mul_off), _max_abs(add, add_off))

    x64 = x.double()
    f64 = copy.deepcopy(model).double().aux_maps(x64)  # same weights in float64: our rounding, measured
    aux = model.aux_maps(x)
    g, c = aux["gamma"].double().view(-1, 1, 1, 1), aux["color"].double()
    dz = _cross_cpu_budget(x64 * f64["mul"] + f64["add"], x * aux["mul"] + aux["add"])
    dc = _cross_cpu_budget(f64["color"], aux["color"])
    dg = _cross_cpu_budget(f64["gamma"], aux["gamma"])

    z = x64 * mul_off + add_off  # the official z (its float32 rounding is in gamma5)
    base = torch.einsum("bij,bjhw->bihw", c, z)
    gamma5 = 5 * U32 / (1 - 5 * U32)  # x*mul, +add, one product, two sums: 5 roundings on every path
    abs_terms = torch.einsum("bij,bjhw->bihw", c.abs(), (x64 * mul_off).abs() + add_off.abs())
    dbase = (2 * gamma5 * abs_terms + c.abs().sum(-1)[..., None, None] * dz + dc * z.abs().sum(1, keepdim=True))
    dy = _iat_power_bound(base, dbase, g, dg)
    ok = dy <= atol / CONDITIONED  # False for NaN and inf
    n_ok = int(ok.sum())
    if n_ok < MIN_JUDGED * y.numel():
        return Judgement(worst, judged, total, f"only {n_ok / y.numel():.0%} of the enhanced image is well "
                         f"conditioned enough to judge (MIN_JUDGED {MIN_JUDGED:.0%})")
    err = _max_abs(y[ok], y_off[ok])
    worst, judged = (err if math.isnan(err) else max(worst, err)), judged + n_ok
    if problem := _exceeds(err, atol, f" in the enhanced image (its {n_ok} well-conditioned of {y.numel()} values)"):
        return Judgement(worst, judged, total, problem)

    shift, bound = fit_gamma_colour(base, z, y_off, g, ok, dy)
    beyond = shift.abs() - bound  # how far the official value is from ours at least, whatever the rounding
    for k, what in enumerate(["gamma"] + [f"colour[{r}][{q}]" for r in range(3) for q in range(3)]):
        if not beyond[:, k].max() <= atol:
            return Judgement(worst, judged, total, f"the {what} implied by the official output differs from ours "
                             f"by {shift[:, k].abs().max().item():.3g} (+- {bound[:, k].max().item():.2g}) > atol "
                             f"{atol:g}")
    return Judgement(worst, judged, total)


def _iat_power_bound(base: torch.Tensor, dbase: torch.Tensor, g: torch.Tensor, dg: float) -> torch.Tensor:
    """First-order bound on |change of clamp(base, lo, hi) ** g| for base within +-dbase and g within +-dg."""
    lo, hi = IAT_CLAMP
    ulp_pow = 4 * U32  # pow is within 1 ulp (2 U32) on every common libm, on both machines

    def bound_at(end: torch.Tensor) -> torch.Tensor:
        b = end.clamp(lo, hi)
        yb = b**g
        return g.abs() * b ** (g - 1) * dbase + b.log().abs() * yb * dg + ulp_pow * yb

    free = torch.maximum(bound_at(base - dbase), bound_at(base + dbase))  # both terms monotone: an end is worst
    low = abs(math.log(lo)) * lo**g * dg + ulp_pow * lo**g  # clamped low, y = lo ** g: only gamma moves it
    dy = torch.where(base + dbase <= lo, low.expand_as(base), torch.full_like(base, math.inf))
    dy = torch.where(base - dbase >= hi, torch.zeros_like(base), dy)  # clamped high: y = 1 ** g = 1 exactly
    return torch.where((base - dbase > lo) & (base + dbase < hi), free, dy)


def fit_gamma_colour(base: torch.Tensor, z: torch.Tensor, y_off: torch.Tensor, g: torch.Tensor, ok: torch.Tensor,
                     dy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(gamma, C) implied by the official enhanced image, as a shift from ours, and how well it is determined.

    One Gauss-Newton step from ours, per image, over the judged elements: ``y_off - y(ours) ~ J @ shift``
    with J the derivatives of ``clamp(C z) ** gamma`` by gamma and the nine entries of C. Returns
    ``shift`` (B x 10: gamma, then C row-major) and ``bound`` (B x 10), the most that errors of
    ``dy`` on every judged element can move each fitted value (``|pinv(J)| @ dy``; inf where J's
    columns do not determine all ten).
    """
    lo, hi = IAT_CLAMP
    b = base.clamp(lo, hi)
    y = b**g
    free = (base > lo) & (base < hi)
    shifts, bounds = [], []
    for i in range(base.shape[0]):
        gi = g[i].reshape(())
        jac = torch.zeros(*base.shape[1:], 10, dtype=torch.float64)
        jac[..., 0] = y[i] * b[i].log()
        for r in range(3):  # d y_r / d C[r, q] = gamma * y_r / base_r * z_q where the clamp is not active
            d = torch.where(free[i, r], gi * y[i, r] / b[i, r], 0.0)
            jac[r, ..., 1 + 3 * r: 4 + 3 * r] = d[..., None] * z[i].permute(1, 2, 0)
        rows = jac[ok[i]]
        if torch.linalg.matrix_rank(rows) < 10:  # e.g. no unclamped pixel in a channel: C is not determined
            shifts.append(torch.zeros(10, dtype=torch.float64))
            bounds.append(torch.full((10,), math.inf, dtype=torch.float64))
            continue
        pinv = torch.linalg.pinv(rows)
        shifts.append(pinv @ (y_off[i] - y[i])[ok[i]])
        bounds.append(pinv.abs() @ dy[i][ok[i]])
    return torch.stack(shifts), torch.stack(bounds)


#: Baselines whose fixture needs a conditioned comparison (see the module docstring); the rest are elementwise.
COMPARISONS: dict[str, Comparison] = {"iat": compare_iat}


def fill_by_key(model: torch.nn.Module, scale: float) -> torch.nn.Module:
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
