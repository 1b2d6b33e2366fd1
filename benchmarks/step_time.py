"""Training-step time per baseline, and what the paper profile would cost in GPU-hours.

Not a test. ``python benchmarks/step_time.py [--device cpu|cuda] [--patch 48] [--batch 2]``
measures, per registered baseline, the median wall time of an L2 training step (forward,
backward, Adam) and of one inference at 96x96, side by side in one process. It then prints an
*estimate* of the paper profile's GPU-hours: FLOPs per paper step (batch 4, patch 256; network
forward x 3 for forward + backward, plus DiffLoss: 3 prior passes per image, the forward of both
branches and the restored branch's backward to its input only, 2.24 TFLOP per 256x256 forward; the
counts of ``bench.costs``) x 40,000 iterations x 2 rows
(without / with DiffLoss), at an assumed sustained throughput (``--tflops``, default 100 TFLOP/s,
roughly 10-20 % of an H100's dense bf16 peak). The estimate is arithmetic, not a measurement: the
script says so in its output, and a CUDA run replaces it with measured step times.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PAPER_ITERS = 40_000


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def step_seconds(name: str, device: str, batch: int, patch: int, steps: int) -> tuple[float, float]:
    """(median training-step seconds, one 96x96 inference in seconds) for baseline ``name``."""
    from bench import build_baseline

    torch.manual_seed(0)
    model = build_baseline(name).to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    x, y = torch.rand(batch, 3, patch, patch, device=device), torch.rand(batch, 3, patch, patch, device=device)
    times = []
    for _ in range(steps + 1):  # the first step warms up allocators and kernels
        _sync(device)
        t0 = time.perf_counter()
        loss = (model(x) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        probe = torch.rand(1, 3, 96, 96, device=device)
        _sync(device)
        t0 = time.perf_counter()
        model.eval()(probe)
        _sync(device)
        infer = time.perf_counter() - t0
    return statistics.median(times[1:]), infer


def paper_tflop_per_step(name: str) -> tuple[float, float]:
    """(TFLOP per paper step without DiffLoss, with DiffLoss), from ``bench.costs`` (meta-device counts)."""
    from bench.costs import PAPER_BATCH, PAPER_PATCH, train_cost

    wo, w = (train_cost(name, diffloss=d, steps=1, batch=PAPER_BATCH, patch=PAPER_PATCH).step_tflop
             for d in (False, True))
    return wo, w


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--patch", type=int, default=48, help="the smoke profile's patch")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--tflops", type=float, default=100.0, help="assumed sustained TFLOP/s for the estimate")
    ap.add_argument("--baseline", action="append", help="only these (default: all registered)")
    args = ap.parse_args(argv)
    from bench.registry import BASELINES

    names = args.baseline or BASELINES.names()
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"batch {args.batch}, patch {args.patch}, median of {args.steps} steps after 1 warm-up")
    print(f"{'baseline':<16} {'s/step':>8} {'infer96 s':>10} {'TFLOP/step w/o':>15} {'w/':>8} "
          f"{'GPU-h w/o (est.)':>17} {'w/ (est.)':>10}")
    total = 0.0
    for name in names:
        sec, infer = step_seconds(name, args.device, args.batch, args.patch, args.steps)
        wo, w = paper_tflop_per_step(name)
        h_wo, h_w = (PAPER_ITERS * t / args.tflops / 3600 for t in (wo, w))
        total += h_wo + h_w
        print(f"{name:<16} {sec:>8.2f} {infer:>10.2f} {wo:>15.2f} {w:>8.2f} {h_wo:>17.1f} {h_w:>10.1f}", flush=True)
    print(f"estimated paper-profile GPU-hours for one seed of both rows of every baseline: {total:.0f} "
          f"(arithmetic at an assumed {args.tflops:g} TFLOP/s, not measured)")


if __name__ == "__main__":
    main()
