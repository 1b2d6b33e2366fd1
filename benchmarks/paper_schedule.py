"""Wall time of the paper profile (all tables and Figure 7) on 1, 4, 8 and 32 GPUs, from per-job estimates.

Not a test, not a measurement: ``python benchmarks/paper_schedule.py [--gpus 1,4,8,32] [--step-ms FILE]``
builds the paper profile's real job graph (data sets need not exist: their keys are placeholders),
gives every job an estimated duration (``bench.costs``: training FLOPs at an assumed sustained
TFLOP/s, or measured ms/step from ``benchmarks/results/gpu_<device>.csv`` when given) and list-schedules
it (``bench.graph.schedule``), printing the makespan per GPU count and the critical path.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: Hours of the jobs that do not train a restoration network (estimates on one H100-class GPU).
OTHER_HOURS = {
    "prepare_data": 0.0, "prepare_cub": 0.0, "degrade_cub": 0.05, "render": 0.0,
    "evaluate": 0.05,  # a test set at full resolution (Rain100H: 100 images) plus FID/KID features
    "restore_cub": 0.1,  # 5,794 CUB test images through a restoration network
    "finetune_classifier": 0.3,  # 30 epochs of 5,994 CUB images at 224 px (VGG16 ~8 PFLOP)
    "classify": 0.02,
}


def measured_step_ms(path: Path | None) -> dict[tuple[str, bool], float]:
    """(baseline, with DiffLoss) -> ms/step from a gpu_check CSV (bf16 rows), when one is given."""
    if path is None:
        return {}
    out = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("precision") == "bf16" and row.get("ms_per_step"):
                out[(row["baseline"], row["loss"] == "l2+diffloss")] = float(row["ms_per_step"])
    return out


#: Test-set sizes and image sizes of the zero-shot (GDP) jobs, per task.
ZERO_SHOT_SETS = {"dehazing": (5, 1200, 1600), "deraining": (100, 321, 481), "lowlight": (15, 400, 600)}


def job_hours(job, measured: dict[tuple[str, bool], float], tflops: float) -> float:
    from bench import costs

    if job.kind == "zero_shot":
        from bench.restorers.gdp import gdp_cost

        n, h, w = ZERO_SHOT_SETS[job.config["task"]]
        return gdp_cost(h, w, images=n, steps=job.config["steps"], sustained_tflops=tflops)["gpu_hours"]
    if job.kind == "train":
        t = job.config["train"]
        diff = "diffloss" in job.config["losses"]
        key = (job.config["baseline"], diff)
        if key in measured:
            return measured[key] * t["steps"] / 1000 / 3600
        c = costs.train_cost(job.config["baseline"], diffloss=diff, steps=t["steps"], batch=t["batch"],
                             patch=t["patch"], bf16=True)
        return c.step_tflop * c.steps / tflops / 3600
    if job.kind == "evaluate" and job.config.get("select", "last") != "last":
        return OTHER_HOURS["evaluate"] * 5  # every snapshot is scored to pick the best
    return OTHER_HOURS.get(job.kind, 0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gpus", default="1,4,8,32")
    ap.add_argument("--step-ms", type=Path, default=None, help="gpu_check CSV with measured ms/step")
    ap.add_argument("--tflops", type=float, default=None, help="assumed sustained TFLOP/s (default: bench.costs)")
    args = ap.parse_args()

    from bench import costs
    from bench.config import get_profile
    from bench.graph.job import Job, toposort
    from bench.graph.schedule import schedule
    from bench.paper import build_target
    from bench.prior.adm import ADM256_UNCOND_KWARGS
    from bench.prior.ref import PriorRef

    prior = PriorRef("file", sha256="planned", adm_kwargs=dict(ADM256_UNCOND_KWARGS))
    problems: list = []
    roots = [build_target(t, get_profile("paper"), data_root=Path("/nonexistent"), prior=prior, problems=problems)
             for t in (1, 2, 3, 4, "figure7")]
    everything = Job("all", {}, {f"t{i}": r for i, r in enumerate(roots)})
    measured = measured_step_ms(args.step_ms)
    tflops = args.tflops or costs.ASSUMED_TFLOPS
    jobs = toposort([everything])
    trains = [j for j in jobs if j.kind == "train"]
    print(f"paper profile: {len(jobs) - 1} jobs, {len(trains)} trainings of "
          f"{sorted({j.config['train']['steps'] for j in trains})} steps")
    source = (f"measured bf16 ms/step from {args.step_ms}" if measured else
              f"ESTIMATED: FLOPs at {tflops:.0f} TFLOP/s sustained, not measured")
    print(f"durations: {source}")
    print("\n| GPUs | wall time (h) | GPU-hours | critical path (h) |\n|---|---|---|---|")
    last = None
    for g in [int(x) for x in args.gpus.split(",")]:
        s = schedule([everything], lambda j: job_hours(j, measured, tflops) if j.kind != "all" else 0.0, g)
        print(f"| {g} | {s.hours:.1f} | {s.busy_hours:.1f} | {s.critical_path_hours:.1f} |")
        last = s
    if last is not None:
        print("\ncritical path: " + " -> ".join(p for p in last.critical_path if p != "all:"))


if __name__ == "__main__":
    main()
