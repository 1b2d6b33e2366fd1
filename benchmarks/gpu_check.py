"""The GPU check of issue 12.5: per baseline, ms/step, peak memory and achieved TFLOP/s of the paper step.

Not a test. Run ``benchmarks/gpu_check.sh`` (it calls this with the machine's ``python3`` and
``PYTHONPATH=.``). For every baseline, one training step (network forward, loss, backward, Adam)
at batch 4 / patch 256 with random weights and random inputs made here, for the loss ``l2`` and
``l2+diffloss`` (DiffLoss, paper mode, on the 256x256 uncond ADM with random weights), under the
speed configurations of ``CONFIGS`` (``bench.train.speed.SpeedOptions``; every one autotunes cuDNN,
the shapes being fixed), the DiffLoss rows with and without prior activation checkpointing.

Rows run in the order of :func:`plan`: the headline bf16 rows first, the compile rows last, and
the cheaper networks first within a phase. The CSV is rewritten after every row, rows not reached
marked ``pending``, so a run cut short keeps what it measured and says what it did not. A row
whose estimated time does not fit what is left of ``--budget`` is skipped with that reason, and
``--resume`` runs only the rows an earlier CSV lacks (the machine starts bare, so the CSV travels
back in the working tree). ``benchmarks/diffloss_speed.py`` (naive vs ours at 256x256) runs after
the second phase, in a subprocess with its own time cap.

``--smoke``: tiny shapes (batch 1, patch 32, the smoke-prior architecture at 16x16, so DiffLoss
takes one random 16x16 crop per image), one warm-up and two timed steps, on whatever device is
there (a CPU here); compile rows are skipped with a stated reason.

TFLOP per step: the network's forward FLOPs x 3 (forward + backward) plus, with DiffLoss, the
prior's forward FLOPs x 3 per image (clear forward, restored forward, restored backward to the
input only). The paper shapes take ``bench.costs``' counts; other shapes scale the network's count
by batch x pixels and count the prior on the meta device. Recomputation under prior checkpointing
is not counted: achieved TFLOP/s = useful FLOPs / time. Peak memory: ``torch.cuda.max_memory_allocated``
over the row (the prior's weights included); on a CPU the process's peak RSS, which only grows.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import build_baseline  # noqa: E402
from bench.config import PROFILES  # noqa: E402
from bench.costs import NETWORK_STEP_TFLOP, PAPER_BATCH, PAPER_PATCH, PRIOR_TFLOP_PER_FORWARD  # noqa: E402
from bench.io import write_text  # noqa: E402
from bench.losses.diffloss import DiffLoss  # noqa: E402
from bench.losses.pixel import L2Loss  # noqa: E402
from bench.prior.adm import ADM256_UNCOND_KWARGS, create_adm  # noqa: E402
from bench.prior.smoke import smoke_prior_kwargs  # noqa: E402
from bench.registry import BASELINES  # noqa: E402
from bench.train.cost import peak_memory, synchronize  # noqa: E402
from bench.train.speed import SpeedOptions  # noqa: E402

CONFIGS: dict[str, dict[str, Any]] = {
    "bf16-cl": {"precision": "bf16", "channels_last": True, "cudnn_benchmark": True},
    "paper": dict(PROFILES["paper"].speed),  # the paper profile's default: fp32 with TF32, channels_last
    "fp32": {"precision": "fp32", "tf32": False, "cudnn_benchmark": True},  # float32 arithmetic
    "bf16-compile": {"precision": "bf16", "channels_last": True, "compile": True, "cudnn_benchmark": True},
}
#: (phase, [(loss, config, prior checkpointing), ...]) in the order they run
PHASES: list[tuple[str, list[tuple[str, str, bool]]]] = [
    ("1-headline", [("l2+diffloss", "bf16-cl", False), ("l2", "bf16-cl", False)]),
    ("2-paper-profile", [("l2+diffloss", "paper", False), ("l2", "paper", False)]),
    ("3-checkpointing-bf16", [("l2+diffloss", "bf16-cl", True)]),
    ("4-compile", [("l2+diffloss", "bf16-compile", False)]),  # the prior compiles once for the whole phase
    ("5-fp32", [("l2+diffloss", "fp32", False), ("l2", "fp32", False)]),
    ("6-checkpointing", [("l2+diffloss", "paper", True), ("l2+diffloss", "fp32", True)]),
    ("7-compile-rest", [("l2", "bf16-compile", False), ("l2+diffloss", "bf16-compile", True)]),
]
DIFFLOSS_SPEED_AFTER = 1  # index in PHASES: diffloss_speed.py runs once the paper-profile phase is done
PHASE_INDEX = {name: i for i, (name, _) in enumerate(PHASES)}
KEY = ["baseline", "loss", "config", "prior_checkpointing"]
COLUMNS = [
    "order", "phase", *KEY, "status", "reason", "ms_per_step", "ms_min", "steps_timed", "peak_memory_mib",
    "peak_memory_kind", "step_tflop", "achieved_tflops", "tflop_source", "estimated_s", "elapsed_s", "batch",
    "patch", "prior", "speed_options", "notes", "device", "torch",
]
#: For the time plan only: sustained TFLOP/s assumed for eager steps on an H100/H200-class GPU (the first
#: measured row of a baseline and loss corrects it for the rest), and first-call compile seconds.
ASSUMED_RATE = {"fp32": 35.0, "paper": 120.0, "bf16-cl": 200.0, "bf16-compile": 250.0}
COMPILE_S = {"prior": 90.0, "network": 30.0}
BUILD_S = {"network": 1.0, "prior": 3.0}
DIFFLOSS_SPEED_CAP_S = 70.0
PENDING = "not reached: the run ended before this row"


@dataclass
class Row:
    order: int
    phase: str
    baseline: str
    loss: str
    config: str
    prior_checkpointing: bool
    status: str = "pending"
    reason: str = PENDING
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def diffloss(self) -> bool:
        return self.loss == "l2+diffloss"

    @property
    def key(self) -> tuple[str, ...]:
        return (self.baseline, self.loss, self.config, str(self.prior_checkpointing))

    def options(self) -> SpeedOptions:
        return SpeedOptions(**CONFIGS[self.config], prior_checkpointing=self.prior_checkpointing)

    def record(self, common: dict[str, Any]) -> dict[str, Any]:
        fixed = {"order": self.order, "phase": self.phase, "baseline": self.baseline, "loss": self.loss,
                 "config": self.config, "prior_checkpointing": self.prior_checkpointing, "status": self.status,
                 "reason": self.reason, "speed_options": json.dumps(self.options().as_dict(), sort_keys=True)}
        return {c: fixed[c] if c in fixed else self.values.get(c, common.get(c, "")) for c in COLUMNS}


@dataclass(frozen=True)
class Shapes:
    batch: int
    patch: int
    prior_kwargs: dict[str, Any]
    prior_name: str
    timed_seconds: float  # what the timed steps of a row should take, within [min_steps, max_steps]
    min_steps: int
    max_steps: int

    def warmup(self, step_s: float) -> int:
        """Two warm-up steps (cuDNN autotuning, then the allocator), one where a step is slow or shapes tiny."""
        return 1 if self.timed_seconds == 0 or step_s > 0.3 else 2


FULL = Shapes(PAPER_BATCH, PAPER_PATCH, ADM256_UNCOND_KWARGS, "adm256-uncond (random weights)",
              timed_seconds=1.0, min_steps=3, max_steps=10)
SMOKE = Shapes(1, 32, smoke_prior_kwargs(16), "smoke-16 (random weights; DiffLoss crops 16x16)",
               timed_seconds=0.0, min_steps=2, max_steps=2)


def plan(baselines: list[str]) -> list[Row]:
    """Every row, most important first, so that a time-out keeps the headline rows."""
    by_cost = sorted(baselines, key=lambda b: (NETWORK_STEP_TFLOP.get(b, 1.0), b))
    rows: list[Row] = []
    for phase, combos in PHASES:
        for loss, config, ckpt in combos:
            for b in by_cost:
                rows.append(Row(len(rows) + 1, phase, b, loss, config, ckpt))
    return rows


# -- FLOPs --------------------------------------------------------------------------------------------
def _meta_prior_tflop(kwargs: dict[str, Any], n: int) -> float:
    """One forward of ``n`` images through the prior, counted on the meta device (shapes only)."""
    from torch.utils.flop_counter import FlopCounterMode

    s = kwargs["image_size"]
    with torch.device("meta"):
        model = create_adm(**kwargs).eval()
        x, t = torch.empty(n, 3, s, s), torch.zeros(n, dtype=torch.long)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x, t)
    return fc.get_total_flops() / 1e12


def step_tflop(baseline: str, diffloss: bool, shapes: Shapes, cache: dict) -> tuple[float, str]:
    """(useful TFLOP of one training step, where the count comes from); NaN for a network costs does not list."""
    n, p = shapes.batch, shapes.patch
    net = NETWORK_STEP_TFLOP.get(baseline, math.nan)
    if (n, p) == (PAPER_BATCH, PAPER_PATCH) and shapes.prior_kwargs == ADM256_UNCOND_KWARGS:
        prior, source = PRIOR_TFLOP_PER_FORWARD * 3 * n, "bench.costs"
    else:
        net *= n / PAPER_BATCH * (p / PAPER_PATCH) ** 2  # approximate: not every network scales with pixels
        key = ("prior", json.dumps(shapes.prior_kwargs, sort_keys=True), n)
        if key not in cache:
            cache[key] = 3 * _meta_prior_tflop(shapes.prior_kwargs, n)
        prior, source = cache[key], "bench.costs scaled by batch x pixels; prior counted on the meta device"
    return net + (prior if diffloss else 0.0), source


# -- one row --------------------------------------------------------------------------------------------
class RowTimeout(BaseException):
    """A BaseException, so that SpeedForward's compile fallback (``except Exception``) does not swallow it."""


@contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """Interrupt a row that runs far past its estimate (between Python bytecodes, so between device calls)."""
    def fire(signum: int, frame: Any) -> None:
        raise RowTimeout(f"timed out after {seconds:.0f} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1.0))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def random_prior(shapes: Shapes, device: torch.device) -> torch.nn.Module:
    """The prior's architecture with random weights, its zero-initialised layers given weights too."""
    torch.manual_seed(0)
    with torch.device(device):
        prior = create_adm(**shapes.prior_kwargs).eval()
    gen = torch.Generator(device).manual_seed(1)
    with torch.no_grad():
        for p in prior.parameters():
            if not p.any():
                p.normal_(0.0, 0.02, generator=gen)
    return prior


class Runner:
    """Runs rows, keeping the prior of the last (config, checkpointing) while the next row can use it
    (a compiled prior then compiles once per phase)."""

    def __init__(self, shapes: Shapes, device: torch.device):
        self.shapes, self.device = shapes, device
        self.prior_key: tuple | None = None
        self.prior: torch.nn.Module | None = None
        self.flop_cache: dict = {}
        self.step_factor: dict[tuple[str, str], float] = {}  # measured / estimated step time
        self.compiled: set[str] = set()  # "prior" once a compiled prior ran; baselines whose network compiled

    def drop_prior(self) -> None:
        self.prior, self.prior_key = None, None
        self.compiled.discard("prior")
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def prior_for(self, row: Row) -> torch.nn.Module:
        key = (row.config, row.prior_checkpointing)
        if self.prior_key != key:
            self.drop_prior()
            self.prior, self.prior_key = random_prior(self.shapes, self.device), key
        return self.prior

    def estimate(self, row: Row) -> tuple[float, float, int]:
        """(estimated seconds of the whole row, of one step, timed steps)."""
        tflop, _ = step_tflop(row.baseline, row.diffloss, self.shapes, self.flop_cache)
        if not math.isfinite(tflop):
            tflop = 1.0 + (PRIOR_TFLOP_PER_FORWARD * 3 * self.shapes.batch if row.diffloss else 0.0)
        if row.diffloss and row.prior_checkpointing:
            tflop *= 4 / 3  # the restored branch runs forward twice
        step = tflop / ASSUMED_RATE[row.config] * self.step_factor.get((row.baseline, row.loss), 1.0) + 0.005
        steps = self.shapes.min_steps
        if self.shapes.timed_seconds > 0:
            steps = max(self.shapes.min_steps, min(self.shapes.max_steps, int(self.shapes.timed_seconds / step)))
        seconds = BUILD_S["network"] + (self.shapes.warmup(step) + steps) * step
        if row.diffloss and self.prior_key != (row.config, row.prior_checkpointing):
            seconds += BUILD_S["prior"]
        if CONFIGS[row.config].get("compile"):
            seconds += COMPILE_S["network"]
            if row.diffloss and ("prior" not in self.compiled or self.prior_key != (row.config,
                                                                                      row.prior_checkpointing)):
                seconds += COMPILE_S["prior"]
        return seconds, step, steps

    def simulate(self, rows: list[Row]) -> None:
        """Fill in ``estimated_s`` of the pending rows as if they ran in order (priors kept, compiled once)."""
        saved = (self.prior_key, set(self.compiled))
        for r in rows:
            if r.status != "ok":
                r.values["estimated_s"] = f"{self.estimate(r)[0]:.1f}"
            if r.diffloss:
                self.prior_key = (r.config, r.prior_checkpointing)
                if r.options().compile:
                    self.compiled.add("prior")
            else:
                self.prior_key = None
                self.compiled.discard("prior")
        self.prior_key, self.compiled = saved

    def run(self, row: Row) -> None:
        sh, dev, opts = self.shapes, self.device, row.options()
        _, est_step, steps = self.estimate(row)
        if row.diffloss:
            prior = self.prior_for(row)
        else:
            prior = None
            self.drop_prior()
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        torch.manual_seed(0)
        net = build_baseline(row.baseline).to(dev).train()
        notes: list[str] = []
        _, _, applied = opts.apply(net, prior, device=dev, log=lambda m: notes.append(m.replace("[speed] ", "")))
        notes += applied
        loss_fn: torch.nn.Module = DiffLoss(prior, seed=0).to(dev) if row.diffloss else L2Loss(norm="l2")
        opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-4)
        g = torch.Generator().manual_seed(1)
        clear = torch.rand(sh.batch, 3, sh.patch, sh.patch, generator=g)
        degraded = (clear + 0.1 * torch.randn(clear.shape, generator=g)).clamp(0, 1)
        clear, degraded = clear.to(dev), degraded.to(dev)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            loss_fn(net(degraded), clear)["total"].backward()
            opt.step()

        with opts.backend(dev) as backend_notes:
            notes += backend_notes
            for _ in range(sh.warmup(est_step)):
                step()
            times = timed(step, steps, dev)
        if opts.compile:
            self.compiled |= {"prior"} if row.diffloss else set()
        peak, kind = peak_memory(dev)
        ms = statistics.median(times)
        tflop, source = step_tflop(row.baseline, row.diffloss, sh, self.flop_cache)
        self.step_factor.setdefault((row.baseline, row.loss), max(ms / 1000 / est_step, 0.05))
        eager = [f.fallback_reason for f in (net.forward, getattr(prior, "forward", None))
                 if getattr(f, "fallback_reason", None)]
        eager += [n for n in notes if "torch.compile unavailable" in n]
        row.status = "ok"  # a compile row that ran eagerly says so: its time is not a compiled step's
        row.reason = ("ran eagerly, torch.compile was off: " + "; ".join(dict.fromkeys(eager))) if eager else ""
        row.values.update({
            "ms_per_step": f"{ms:.2f}", "ms_min": f"{min(times):.2f}", "steps_timed": steps,
            "peak_memory_mib": f"{peak / 2**20:.0f}", "peak_memory_kind": kind, "step_tflop": f"{tflop:.4g}",
            "achieved_tflops": f"{tflop / (ms / 1000):.4g}" if math.isfinite(tflop) else "", "tflop_source": source,
            "notes": " | ".join(dict.fromkeys(notes)),
        })


def timed(step: Callable[[], None], steps: int, device: torch.device) -> list[float]:
    """ms of each step: CUDA events on a GPU (one synchronisation at the end), the host clock on a CPU."""
    synchronize(device)
    if device.type != "cuda":
        out = []
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            out.append(1000 * (time.perf_counter() - t0))
        return out
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(steps)]
    for start, end in events:
        start.record()
        step()
        end.record()
    synchronize(device)
    return [s.elapsed_time(e) for s, e in events]


# -- the whole check ------------------------------------------------------------------------------------
def device_slug(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def write_rows(path: Path, rows: list[Row], common: dict[str, Any]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(r.record(common) for r in rows)
    write_text(path, buf.getvalue())


def resume(path: Path, rows: list[Row], common: dict[str, Any]) -> int:
    """Take over the measured rows of an earlier CSV with the same shapes, device and torch; how many."""
    if not path.is_file():
        return 0
    with path.open(newline="") as f:
        old = {tuple(r[k] for k in KEY): r for r in csv.DictReader(f) if r.get("status") == "ok"
               and all(str(r.get(k)) == str(common[k]) for k in ("batch", "patch", "prior", "device", "torch"))}
    n = 0
    for r in rows:
        if r.key in old:
            rec = old[r.key]
            r.status, r.reason = "ok", rec["reason"]
            r.values = {c: rec.get(c, "") for c in COLUMNS}
            n += 1
    return n


def run_diffloss_speed(results: Path, slug: str, smoke: bool, cap_s: float) -> str:
    """benchmarks/diffloss_speed.py (naive vs ours) in a subprocess; its output goes beside the CSV."""
    args = [sys.executable, str(REPO / "benchmarks" / "diffloss_speed.py"),
            "--json", str(results / f"diffloss_speed_{slug}.json")]
    args += ["--batch", "2", "--steps", "2", "--warmup", "1"] if smoke else [
        "--skip-cpu", "--steps", "5", "--warmup", "2"]
    try:
        res = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=cap_s)
        out, status = res.stdout + res.stderr, f"exit {res.returncode}"
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        status = f"timed out after {cap_s:.0f} s"
    write_text(results / f"diffloss_speed_{slug}.txt", f"# {' '.join(args[1:])}: {status}\n{out}")
    return status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny shapes, two timed steps, compile rows skipped")
    ap.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds for all rows and diffloss_speed (default 250; none with --smoke)")
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--baseline", action="append", help="only these baselines (default: all registered)")
    ap.add_argument("--resume", action="store_true", help="keep the measured rows of the CSV already there")
    ap.add_argument("--no-diffloss-speed", action="store_true", help="skip benchmarks/diffloss_speed.py")
    ap.add_argument("--plan", action="store_true", help="print the rows and their estimated seconds, run nothing")
    a = ap.parse_args(argv)
    t_start = time.perf_counter()
    device = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    shapes = SMOKE if a.smoke else FULL
    budget = a.budget if a.budget is not None else (math.inf if a.smoke else 250.0)
    slug = device_slug(device)
    out = a.results / (f"gpu_{slug}_smoke.csv" if a.smoke else f"gpu_{slug}.csv")
    rows = plan(a.baseline or BASELINES.names())
    common = {"batch": shapes.batch, "patch": shapes.patch, "prior": shapes.prior_name, "device": slug,
              "torch": torch.__version__}
    runner = Runner(shapes, device)
    kept = resume(out, rows, common) if a.resume else 0
    runner.simulate(rows)
    if a.plan:
        total = 0.0
        for r in rows:
            est = float(r.values.get("estimated_s") or 0)
            total += est
            print(f"[{r.order:3d}] {r.phase:21s} {r.baseline:16s} {r.loss:12s} {r.config:12s} "
                  f"ckpt={int(r.prior_checkpointing)} est {est:6.1f} s  cumulative {total:6.1f} s")
        return 0
    print(f"gpu_check: {len(rows)} rows ({kept} kept from {out.name}) on {slug} ({platform.node()}), torch "
          f"{torch.__version__}, batch {shapes.batch}, patch {shapes.patch}, prior {shapes.prior_name}, "
          f"budget {budget:g} s -> {out}", flush=True)
    write_rows(out, rows, common)

    def left() -> float:
        return budget - (time.perf_counter() - t_start)

    def diffloss_speed() -> None:
        earlier = a.results / f"diffloss_speed_{slug}.txt"
        if a.resume and earlier.is_file() and earlier.read_text().splitlines()[0].endswith(": exit 0"):
            print("diffloss_speed.py: kept from the earlier run", flush=True)
            return
        cap = min(DIFFLOSS_SPEED_CAP_S, left()) if math.isfinite(left()) else 900.0
        status = run_diffloss_speed(a.results, slug, a.smoke, cap) if cap > 20 else "skipped: time budget"
        print(f"diffloss_speed.py (naive vs ours): {status}", flush=True)

    speed_pending = not a.no_diffloss_speed
    for r in rows:
        if speed_pending and PHASE_INDEX[r.phase] > DIFFLOSS_SPEED_AFTER:
            diffloss_speed()
            speed_pending = False
        if r.status == "ok":
            continue
        est = runner.estimate(r)[0]
        r.values["estimated_s"] = f"{est:.1f}"
        t_row = time.perf_counter()
        if a.smoke and CONFIGS[r.config].get("compile"):
            r.status, r.reason = "skipped", ("--smoke skips torch.compile rows (Inductor's first compile takes "
                                             "minutes on a CPU); the full run times them")
        elif est > left():
            r.status, r.reason = "skipped", f"time budget: estimated {est:.0f} s, {max(left(), 0):.0f} s left"
        else:
            try:
                with alarm(min(max(3 * est, 30.0), left()) if math.isfinite(left()) else 3 * est + 600):
                    runner.run(r)
            except (Exception, RowTimeout) as e:  # one row's failure (OOM, an op without bf16) must not stop the rest
                r.status = "failed"
                r.reason = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:300]}"
                runner.drop_prior()
            r.values["elapsed_s"] = f"{time.perf_counter() - t_row:.1f}"
        write_rows(out, rows, common)
        v = r.values
        shown = (f"{v['ms_per_step']:>9s} ms/step {v['peak_memory_mib']:>7s} MiB {v['achieved_tflops']:>8s} TFLOP/s "
                 f"({v['elapsed_s']} s, est. {v['estimated_s']} s) {r.reason}" if r.status == "ok" else r.reason)
        print(f"[{r.order:3d}] {r.baseline:16s} {r.loss:12s} {r.config:12s} ckpt={int(r.prior_checkpointing)} "
              f"{r.status:8s} {shown}", flush=True)
    runner.drop_prior()
    if speed_pending:
        diffloss_speed()
    done = sum(r.status == "ok" for r in rows)
    print(f"gpu_check: {done}/{len(rows)} rows measured, {time.perf_counter() - t_start:.0f} s -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
