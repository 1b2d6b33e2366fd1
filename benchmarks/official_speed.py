"""Our paper-mode DiffLoss step against the same step built on the official guided-diffusion modules.

Not a test. Run, with a checkout of openai/guided-diffusion OUTSIDE this repository::

    python benchmarks/official_speed.py --official /path/to/guided-diffusion

The official ``unet.py`` / ``nn.py`` / ``gaussian_diffusion.py`` are imported from that folder at
run time (nothing of them is in this repository). Both UNets are built from the ``adm_tiny``
fixture's ``create_model`` kwargs (the 256x256 uncond structure at small widths) and get the
fixture's state_dict. One step is the whole paper-mode DiffLoss training step on a restored batch
z (a leaf tensor requiring grad): draw t and noise, noise z and x, the clear branch under no_grad,
the restored branch with gradient, L2 + gamma (L_nat on eps + lam L_sem on h), backward to z.

The official ``AttentionBlock.forward`` always calls its ``checkpoint`` helper with the block's
parameters, which fails in backward ("One of the differentiated Tensors does not require grad")
when the prior is frozen, so the official step is timed in the two variants that do run:

* ``official-grad``: the prior's parameters left requiring grad. The helper works, but backward
  also computes every parameter's gradient, which a frozen prior does not need (they are thrown
  away after each step);
* ``official-noparams``: the prior frozen and the helper called with no parameters. This is a
  wrapper installed at run time over the name ``checkpoint`` in the imported official ``unet``
  module (``unet.checkpoint``, what ``AttentionBlock.forward`` and ``ResBlock.forward`` look up);
  it passes ``params=()`` to the official ``nn.checkpoint`` while this variant runs and forwards
  every call unchanged otherwise. No file of the checkout is modified. The helper still recomputes
  each attention block's forward in backward, as the official code always does.

The variants run interleaved in one process (ours, official-grad, official-noparams, then the same
three rotated by one, and so on, so that none always runs first: on a busy machine the first of a
round ran up to 8 % slower), each drawing its own t and noise from a generator seeded alike, so the
k-th step of every variant computes the same thing. Before timing, the first step's loss and gradient
wrt z of every variant are compared with ours (tolerances printed). Printed: median ms per step and ours / official.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.errors import BenchError  # noqa: E402
from bench.losses.diffloss import DiffLoss  # noqa: E402
from bench.paths import shared_root  # noqa: E402
from bench.prior.adm import create_adm  # noqa: E402

LAM, GAMMA = 0.01, 0.001  # the paper's defaults (DiffLoss's PAPER_DEFAULTS)
#: ours (SDPA attention) vs the official einsum attention, both float32: loss and grad wrt z
LOSS_RTOL, GRAD_RTOL = 1e-5, 1e-4


def import_official(root: Path) -> dict[str, Any]:
    """The official modules from a guided-diffusion checkout (a folder holding guided_diffusion/unet.py)."""
    root = root.resolve()
    if not (root / "guided_diffusion" / "unet.py").is_file():
        raise BenchError(f"{root} is not a guided-diffusion checkout (no guided_diffusion/unet.py there).",
                         fix="Pass --official the folder of a clone of github.com/openai/guided-diffusion.")
    if REPO in root.parents or root == REPO:
        raise BenchError(f"The official checkout {root} is inside this repository.",
                         fix="Clone guided-diffusion into a scratch folder outside the repository.")
    sys.path.insert(0, str(root))
    mods = {name: importlib.import_module(f"guided_diffusion.{name}")
            for name in ("unet", "nn", "script_util", "gaussian_diffusion")}
    origin = Path(mods["unet"].__file__).resolve()
    if root not in origin.parents:
        raise BenchError(f"guided_diffusion was imported from {origin}, not from {root}.",
                         fix="Uninstall the other guided_diffusion package or run from a clean environment.")
    return mods


class NoParamsCheckpoint:
    """Stands in for ``unet.checkpoint``: passes no parameters while ``active``, else the call unchanged."""

    def __init__(self, original: Callable[..., Any]):
        self.original, self.active, self.calls = original, False, 0

    def __call__(self, func: Callable[..., Any], inputs: Any, params: Any, flag: bool) -> Any:
        if self.active:
            self.calls += 1
            return self.original(func, inputs, (), flag)
        return self.original(func, inputs, params, flag)

    @contextlib.contextmanager
    def on(self) -> Iterator[None]:
        self.active = True
        try:
            yield
        finally:
            self.active = False


class Hooked:
    """An official UNetModel with its middle_block output (h-space) caught by a forward hook."""

    def __init__(self, model: torch.nn.Module):
        self.model, self.h = model, None
        model.middle_block.register_forward_hook(self._keep)

    def _keep(self, module: Any, args: Any, out: torch.Tensor) -> None:
        self.h = out

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(x, t)
        h, self.h = self.h, None
        return out, h


def official_step(model: Hooked, diffusion: Any, z: torch.Tensor, x: torch.Tensor,
                  gen: torch.Generator) -> torch.Tensor:
    """Paper-mode DiffLoss (eps variant, l2 norms) on the official modules; DiffLoss's draw order."""
    n, size = z.shape[0], z.shape[-1]
    t = torch.randint(0, diffusion.num_timesteps, (n,), generator=gen)
    noise = torch.randn((n, 3, size, size), generator=gen)
    x_t = diffusion.q_sample(x * 2 - 1, t, noise=noise)
    z_t = diffusion.q_sample(z * 2 - 1, t, noise=noise)
    with torch.no_grad():
        out_x, h_x = model(x_t, t)
    out_z, h_z = model(z_t, t)
    l2 = lambda d: d.flatten(1).norm(dim=1).mean()  # noqa: E731
    return l2(z - x) + GAMMA * (l2(out_x[:, :3] - out_z[:, :3]) + LAM * l2(h_x - h_z))


def build(official: dict[str, Any], batch: int) -> tuple[dict[str, Callable[[], tuple[float, torch.Tensor]]], dict]:
    """The three step functions (each returns (loss, grad wrt z)) and a description."""
    meta = json.loads((shared_root() / "fixtures" / "adm_tiny" / "meta.json").read_text())
    kwargs = meta["guided_diffusion_create_model_kwargs"]
    state = torch.load(shared_root() / "fixtures" / "adm_tiny" / "state_dict.pt", map_location="cpu",
                       weights_only=True)
    size = kwargs["image_size"]
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 3, size, size, generator=g)
    z0 = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)

    ours_prior = create_adm(**kwargs)
    ours_prior.load_state_dict(state, strict=True)
    dl = DiffLoss(ours_prior, seed=0, lam=LAM, gamma=GAMMA, norm="l2")  # freezes the prior

    unet, gd_nn = official["unet"], official["nn"]
    diffusion = official["script_util"].create_gaussian_diffusion(steps=1000, noise_schedule="linear")
    wrapper = NoParamsCheckpoint(gd_nn.checkpoint)
    unet.checkpoint = wrapper  # the name ResBlock/AttentionBlock.forward look up at call time
    models = {}
    for name in ("official-grad", "official-noparams"):
        m = official["script_util"].create_model(**kwargs)
        m.load_state_dict(state, strict=True)
        m.eval().requires_grad_(name == "official-grad")
        models[name] = Hooked(m)
    gens = {name: torch.Generator().manual_seed(0) for name in models}

    def leaf() -> torch.Tensor:
        return z0.clone().requires_grad_(True)

    def ours() -> tuple[float, torch.Tensor]:
        z = leaf()
        total = dl(z, x)["total"]
        total.backward()
        return float(total.detach()), z.grad

    def off(name: str) -> Callable[[], tuple[float, torch.Tensor]]:
        ctx = wrapper.on if name == "official-noparams" else contextlib.nullcontext

        def step() -> tuple[float, torch.Tensor]:
            z = leaf()
            with ctx():
                total = official_step(models[name], diffusion, z, x, gens[name])
                total.backward()
            if name == "official-grad":
                for p in models[name].model.parameters():
                    p.grad = None  # computed by backward, needed by nobody
            return float(total.detach()), z.grad
        return step

    steps = {"ours": ours, "official-grad": off("official-grad"), "official-noparams": off("official-noparams")}
    info = {"kwargs": kwargs, "size": size, "wrapper": wrapper}
    return steps, info


def check_same(first: dict[str, tuple[float, torch.Tensor]]) -> list[str]:
    """Every official variant's first loss and grad wrt z against ours; raises on a mismatch."""
    loss0, grad0 = first["ours"]
    lines = []
    for name, (loss, grad) in first.items():
        if name == "ours":
            continue
        dl = abs(loss - loss0) / abs(loss0)
        dg = float((grad - grad0).norm() / grad0.norm())
        lines.append(f"{name}: loss rel. diff {dl:.1e} (tol {LOSS_RTOL:g}), grad wrt z rel. norm diff {dg:.1e} "
                     f"(tol {GRAD_RTOL:g})")
        if not (dl <= LOSS_RTOL and dg <= GRAD_RTOL):
            raise SystemExit(f"ours and {name} do not compute the same step: {lines[-1]}")
    return lines


def measure(official: dict[str, Any], batch: int, threads: int, repeats: int, warmup: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    steps, info = build(official, batch)
    first = {name: fn() for name, fn in steps.items()}  # step 0: same draws in every variant
    checks = check_same(first)
    if info["wrapper"].calls == 0:
        raise SystemExit("the no-parameters wrapper was never called: the official code path changed")
    times: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(warmup + repeats):
        for name in names[r % 3:] + names[: r % 3]:  # rotated, so that no variant always runs first
            fn = steps[name]
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if r >= warmup:
                times[name].append(dt)
                cpu[name].append(dc)
    ms = {name: 1000 * statistics.median(v) for name, v in times.items()}
    cpu_ms = {name: 1000 * statistics.median(v) for name, v in cpu.items()}
    spread = {name: 1000 * (max(v) - min(v)) for name, v in times.items()}
    return {"batch": batch, "threads": threads, "repeats": repeats, "ms": ms, "cpu_ms": cpu_ms,
            "spread_ms": spread, "checks": checks}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--official", type=Path, required=True, help="a guided-diffusion checkout outside the repo")
    ap.add_argument("--batch", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=10, help="timed steps per variant (median)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed interleaved rounds after the check step")
    ap.add_argument("--json", type=Path, help="write the rows here")
    a = ap.parse_args(argv)
    try:
        official = import_official(a.official)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"official code from {a.official.resolve()}")
    rows = []
    print(f"{'batch':>5} {'threads':>7} {'ours ms':>9} {'off-grad ms':>12} {'off-noparams ms':>16} "
          f"{'ours/grad':>10} {'ours/noparams':>14}   CPU-time ratios (grad, noparams)")
    for threads in a.threads:
        for batch in a.batch:
            row = measure(official, batch, threads, a.repeats, a.warmup)
            ms = row["ms"]
            row["ratio_grad"] = ms["ours"] / ms["official-grad"]
            row["ratio_noparams"] = ms["ours"] / ms["official-noparams"]
            rows.append(row)
            for line in row["checks"]:
                print(f"      check (batch {batch}, {threads} threads) {line}")
            cpu = row["cpu_ms"]
            print(f"{batch:>5} {threads:>7} {ms['ours']:>9.1f} {ms['official-grad']:>12.1f} "
                  f"{ms['official-noparams']:>16.1f} {row['ratio_grad']:>10.2f} {row['ratio_noparams']:>14.2f}   "
                  f"{cpu['ours'] / cpu['official-grad']:.2f}, {cpu['ours'] / cpu['official-noparams']:.2f}",
                  flush=True)
    print(f"median of {a.repeats} interleaved steps per variant after {a.warmup} warm-up rounds; ratio = ours / "
          f"official (lower is faster for ours); wall clock, and the process's CPU time (less disturbed by other "
          f"processes on a shared machine, but it counts every thread's time)")
    if a.json:
        from bench.io import write_json

        write_json(a.json, {"rows": rows, "torch": torch.__version__, "machine": platform.platform()})


if __name__ == "__main__":
    main()
