"""What DiffLoss costs per training step, against plain L2 and against a naive implementation.

Not a test. Run ``python benchmarks/diffloss_speed.py``: on the CPU it uses the smoke prior;
when a CUDA GPU is present it also runs the real 256x256 uncond configuration (random weights:
the speed does not depend on them) at the paper's batch 4, patch 256. Each configuration runs in
its own subprocess so peak memory is its own:

* ``l2``: a small stand-in restorer trained with the pixel L2 alone (the floor);
* ``naive-fp32``: L2 + DiffLoss written the obvious way: the prior as loaded (parameters still
  requiring grad, so both branches build a graph and backward computes weight gradients that are
  then thrown away), the official einsum attention, float32;
* ``ours-fp32``: ``bench.DiffLoss``: frozen prior, clear branch under no_grad, SDPA attention;
* ``ours-bf16-cl`` (CUDA): the same with bf16 autocast and channels_last.

Printed per configuration: ms/step (median), peak memory (CUDA: max allocated; CPU: peak RSS
of the worker process), FLOPs per step (``torch.utils.flop_counter``) and achieved TFLOP/s, the
first step's L_DiffLoss = L_nat + lam L_sem (naive and ours draw the same t and noise, so they
must agree), and the
ratios measured in this run.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.losses.diffloss import DiffLoss  # noqa: E402
from bench.losses.pixel import L2Loss, reduce_difference  # noqa: E402
from bench.prior.adm import ADM256_UNCOND_KWARGS, create_adm  # noqa: E402
from bench.prior.schedule import DiffusionSchedule  # noqa: E402
from bench.prior.smoke import SMOKE_PRIOR_KWARGS  # noqa: E402

FORWARD_TFLOP_256 = 2.24  # the 256x256 ADM forward, per image (2 FLOPs per multiply-add)
PRIORS = {"smoke": SMOKE_PRIOR_KWARGS, "adm256": ADM256_UNCOND_KWARGS}


class StandIn(nn.Module):
    """A small residual CNN standing in for the restoration network: its cost is the same in every row."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 3, 3, padding=1),
        )

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y + self.body(y)


def naive_diffloss(prior: nn.Module, schedule: DiffusionSchedule, z: torch.Tensor, x: torch.Tensor,
                   gen: torch.Generator, lam: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """Paper-mode DiffLoss (eps variant, l2 norm) with no care for cost; same draws as DiffLoss.

    Returns (pixel, L_nat + lam * L_sem).
    """
    n, size = z.shape[0], z.shape[-1]
    t_cpu = torch.randint(0, schedule.num_timesteps, (n,), generator=gen)
    noise = torch.randn((n, 3, size, size), generator=gen).to(z.device)
    t = t_cpu.to(z.device)
    z_t = schedule.q_sample(z * 2 - 1, t_cpu, noise)
    x_t = schedule.q_sample(x * 2 - 1, t_cpu, noise)
    out_x, h_x = prior(x_t, t, return_h=True)
    out_z, h_z = prior(z_t, t, return_h=True)
    nat = reduce_difference(out_x[:, :3] - out_z[:, :3], "l2")
    sem = reduce_difference(h_x - h_z, "l2")
    return reduce_difference(z - x, "l2"), nat + lam * sem


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def worker(cfg: str, prior_name: str, device: torch.device, batch: int, steps: int, warmup: int) -> dict[str, Any]:
    """Build one configuration and time its training steps."""
    torch.manual_seed(0)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kwargs = PRIORS[prior_name]
    size = kwargs["image_size"]
    net = StandIn().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 3, size, size, generator=g).to(device)
    y = (x + 0.2 * torch.randn(x.shape, generator=g).to(device)).clamp(0, 1)

    prior = None
    if cfg != "l2":
        with torch.device(device):
            prior = create_adm(**kwargs).eval()
        with torch.no_grad():  # give the zero-initialised layers weights, so eps-hat is not identically 0
            for p in prior.parameters():
                if not p.any():
                    p.normal_(0.0, 0.02, generator=torch.Generator(device).manual_seed(p.numel()))
    if cfg == "l2":
        l2 = L2Loss(norm="l2")
        loss_fn = lambda z: (l2(z, x)["total"], torch.zeros(()))  # noqa: E731
    elif cfg == "naive-fp32":
        prior.configure(attention="eager")
        schedule, gen = DiffusionSchedule.linear(), torch.Generator().manual_seed(0)
        def loss_fn(z):
            pixel, diff = naive_diffloss(prior, schedule, z, x, gen)
            return pixel + 0.001 * diff, diff
    else:
        if cfg == "ours-bf16-cl":
            prior.configure(autocast_dtype=torch.bfloat16, channels_last=True)
        dl = DiffLoss(prior, seed=0)
        def loss_fn(z):
            terms = dl(z, x)
            return terms["total"], terms["diffloss"]

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss, diff = loss_fn(net(y))
        loss.backward()
        opt.step()
        if prior is not None:
            for p in prior.parameters():
                p.grad = None  # the naive run computes them; nobody uses them
        return float(diff.detach())

    first = step()
    for _ in range(max(warmup - 1, 0)):
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024  # KiB on Linux
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        step()
    ms = 1000 * statistics.median(times)
    flops = fc.get_total_flops()
    return {"config": cfg, "prior": prior_name, "device": str(device), "batch": batch, "size": size,
            "ms_per_step": ms, "ms_min": 1000 * min(times), "peak_mb": peak_mb, "gflop_per_step": flops / 1e9,
            "tflops_achieved": flops / (ms / 1000) / 1e12, "first_diffloss": first, "steps": steps,
            "threads": torch.get_num_threads()}


def forward_tflop(kwargs: dict[str, Any]) -> float:
    """FLOPs of one forward of one image, counted on the meta device (no memory, no time)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        m = create_adm(**kwargs).eval()
        x, t = torch.empty(1, 3, kwargs["image_size"], kwargs["image_size"]), torch.zeros(1, dtype=torch.long)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        m(x, t)
    return fc.get_total_flops() / 1e12


def run_all(prior_name: str, device: str, configs: list[str], batch: int, steps: int, warmup: int) -> list[dict]:
    rows = []
    for cfg in configs:
        cmd = [sys.executable, __file__, "--worker", cfg, "--prior", prior_name, "--device", device,
               "--batch", str(batch), "--steps", str(steps), "--warmup", str(warmup)]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if res.returncode:
            print(f"[{prior_name}/{cfg}] failed:\n{res.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"  {prior_name:6s} {cfg:13s} {r['ms_per_step']:9.1f} ms/step  peak {r['peak_mb']:8.0f} MiB  "
              f"{r['gflop_per_step']:10.1f} GFLOP  {r['tflops_achieved']:7.3f} TFLOP/s  "
              f"L_DiffLoss@1 {r['first_diffloss']:.6f}", flush=True)
    return rows


def print_ratios(rows: list[dict]) -> None:
    by = {r["config"]: r for r in rows}
    if "l2" in by:
        for cfg, r in by.items():
            if cfg != "l2":
                print(f"    {cfg:13s} / l2: time x{r['ms_per_step'] / by['l2']['ms_per_step']:.2f}")
    if "naive-fp32" in by:
        n = by["naive-fp32"]
        for cfg, r in by.items():
            if cfg.startswith("ours"):
                rel = abs(n["first_diffloss"] - r["first_diffloss"]) / abs(n["first_diffloss"])
                print(f"    naive-fp32 / {cfg}: time x{n['ms_per_step'] / r['ms_per_step']:.2f}, "
                      f"peak memory x{n['peak_mb'] / max(r['peak_mb'], 1e-9):.2f}, "
                      f"first-step L_DiffLoss rel. diff {rel:.1e}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--prior", default="smoke", choices=sorted(PRIORS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=None, help="default: 8 on CPU (smoke), 4 on CUDA (paper)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 10 CPU, 20 CUDA)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--cpu-bf16", action="store_true", help="also time ours-bf16-cl on the CPU")
    ap.add_argument("--skip-cpu", action="store_true", help="time only the CUDA configurations (gpu_check.sh)")
    ap.add_argument("--json", type=Path, help="write all rows here")
    a = ap.parse_args(argv)
    if a.worker:
        dev = torch.device(a.device)
        print(json.dumps(worker(a.worker, a.prior, dev, a.batch, a.steps, a.warmup)))
        return

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} CPU threads, "
          f"torch {torch.__version__}")
    print(f"counted forward FLOPs per image: 256x256 uncond {forward_tflop(ADM256_UNCOND_KWARGS):.4f} TFLOP "
          f"(stated {FORWARD_TFLOP_256}), smoke prior {forward_tflop(SMOKE_PRIOR_KWARGS) * 1e3:.3f} GFLOP")
    all_rows = []
    if not a.skip_cpu:
        cpu_cfgs = ["l2", "naive-fp32", "ours-fp32"] + (["ours-bf16-cl"] if a.cpu_bf16 else [])
        print("CPU, smoke prior:")
        rows = run_all("smoke", "cpu", cpu_cfgs, a.batch or 8, a.steps or 10, a.warmup)
        print_ratios(rows)
        all_rows += rows
    if torch.cuda.is_available():
        print(f"CUDA ({torch.cuda.get_device_name()}), 256x256 uncond config, random weights:")
        rows = run_all("adm256", "cuda", ["l2", "naive-fp32", "ours-fp32", "ours-bf16-cl"], a.batch or 4,
                       a.steps or 20, a.warmup)
        print_ratios(rows)
        all_rows += rows
    else:
        print("no CUDA device: the 256x256 configuration was not timed")
    if a.json:
        from bench.io import write_json

        write_json(a.json, {"rows": all_rows, "torch": torch.__version__, "machine": platform.platform()})


if __name__ == "__main__":
    main()
