"""The preflight: everything a job graph will read, checked before any job runs, in one report.

A missing data set or prior must cost seconds, not the hours of the jobs that run before the first
one that reads it. So ``bench run`` (and ``--dry-run``, and ``--check`` alone) walks the graph and
checks every data set it reads (present, published counts unless the profile allows fewer, pairing,
a sample decoded, shortest side at least the training patch), the prior (found, structure,
SHA-256), every other weight file, the free disk against what the run writes, and on CUDA the
largest job's estimated peak memory against the device's. Every problem is listed, not the first.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.graph.job import Job, toposort

DOC = "Preflight"
#: Files decoded per data set (spread over the set) on top of the header checks of every file.
DECODE_SAMPLE = 8
#: Manifest weight files each metric or loss reads.
METRIC_WEIGHTS = {"lpips": ("alexnet_features", "lpips_alex_v01"), "fid": ("inception_fid",),
                  "kid": ("inception_fid",)}
LOSS_WEIGHTS = {"perceptual": ("vgg16_features",)}
CLASSIFIER_WEIGHTS = {"vgg16": "vgg16_features", "resnet50": "resnet50_imagenet"}


@dataclass
class Finding:
    """One line of the report: a checked thing, and what is wrong with it (empty when fine)."""

    area: str  # data | prior | weights | disk | gpu
    subject: str
    problem: str = ""
    fix: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


@dataclass
class PreflightReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]

    def add(self, area: str, subject: str, problem: str = "", fix: str = "") -> None:
        self.findings.append(Finding(area, subject, problem, fix))

    def render(self) -> str:
        bad = self.problems
        head = (f"Preflight found {len(bad)} problem(s) in {len(self.findings)} check(s):" if bad
                else f"Preflight: all {len(self.findings)} check(s) passed.")
        lines = [head]
        for f in sorted(self.findings, key=lambda f: (f.ok, f.area)):
            mark = "ok " if f.ok else "BAD"
            lines.append(f"  {mark} {f.area}: {f.subject}" + ("" if f.ok else f": {f.problem}"))
            if f.fix and not f.ok:
                lines.append(f"        fix: {f.fix}")
        return "\n".join(lines)


class PreflightFailed(BenchError):
    """The preflight found problems; ``report`` holds all of them."""

    def __init__(self, report: PreflightReport):
        super().__init__(report.render(), fix="Fix the problems listed above, then run the same command again "
                                              "(bench run --check repeats only these checks).", doc=DOC)
        self.report = report


# --------------------------------------------------------------------------------------- data


def _sample(items: list[Any], k: int) -> list[Any]:
    if len(items) <= k:
        return list(items)
    step = (len(items) - 1) / (k - 1)
    return [items[round(i * step)] for i in range(k)]


def _check_paired(report: PreflightReport, job: Job, patch: int | None, strict: bool) -> None:
    from bench.data.verify import decode_error, probe, verify_dataset
    from bench.jobs.data import load_split

    cfg, root = job.config, Path(job.params["root"])
    name = cfg["dataset"]
    subject = f"{name} under {root}"
    rep = verify_dataset(name, root, deep=False, strict_counts=strict)
    if not rep.ok:
        for line in rep.details()[1:]:
            report.add("data", subject, line, rep.first().fix if rep.first() else "")
        return
    for split in cfg["splits"]:
        try:
            pairs = load_split({"dataset": name, "root": str(root), "limit": cfg.get("limit")}, split)
        except BenchError as e:
            report.add("data", f"{subject} ({split})", e.message, e.fix or "")
            continue
        files = [f for p in pairs.pairs for f in (p.degraded, p.clear) if f is not None]
        broken = [str(f) for f in _sample(files, DECODE_SAMPLE) if decode_error(f) is not None]
        if broken:
            report.add("data", f"{subject} ({split})", f"{len(broken)} of {DECODE_SAMPLE} sampled files do not "
                       f"decode, first {broken[0]}", "Replace them with intact copies (bench data verify lists all).")
        if patch and split == "train":
            sides = [(min(h.size), f) for f in (p.degraded for p in pairs.pairs) if (h := probe(f)).size]
            small = [(s, f) for s, f in sides if s < patch]
            if small:
                s, f = min(small)
                report.add("data", f"{subject} ({split})", f"{len(small)} training image(s) are smaller than the "
                           f"{patch}px training patch, smallest {f} ({s}px)",
                           "Use the full-resolution release, or a smaller --patch.")
        report.add("data", f"{subject} ({split}): {len(pairs)} pairs ({pairs.subset})")


def _check_cub(report: PreflightReport, job: Job) -> None:
    from bench.data.verify import decode_error
    from bench.jobs.cub import load_cub

    root = Path(job.params["root"])
    subject = f"{job.config['dataset']} under {root}"
    for split in ("train", "test"):
        try:
            images = load_cub(job.config, root, split)
        except BenchError as e:
            report.add("data", subject, e.message, e.fix or "")
            return
        broken = [str(p) for p in _sample(images.paths, DECODE_SAMPLE) if decode_error(p) is not None]
        if broken:
            report.add("data", f"{subject} ({split})", f"sampled file {broken[0]} does not decode",
                       "Replace it with an intact copy (bench data verify cub lists all).")
        else:
            report.add("data", f"{subject} ({split}): {len(images)} images, {images.num_classes} classes")


# --------------------------------------------------------------------------------------- weights, disk, GPU


def _needed_weights(jobs: list[Job]) -> dict[str, str]:
    """Manifest entry -> the first job that reads it."""
    need: dict[str, str] = {}
    for j in jobs:
        names: tuple[str, ...] = ()
        if j.kind == "evaluate":
            names = tuple(w for m in j.config.get("metrics", []) for w in METRIC_WEIGHTS.get(m, ()))
        elif j.kind == "train":
            names = tuple(w for loss in j.config.get("losses", {}) for w in LOSS_WEIGHTS.get(loss, ()))
        elif j.kind == "finetune_classifier" and j.config.get("init") == "imagenet":
            names = (CLASSIFIER_WEIGHTS[j.config["arch"]],)
        for n in names:
            need.setdefault(n, j.describe())
    return need


def _check_weights(report: PreflightReport, jobs: list[Job]) -> None:
    from bench.weights import locate

    for name, user in _needed_weights(jobs).items():
        try:
            path = locate(name)
        except BenchError as e:
            report.add("weights", f"{name} (for {user})", e.message, e.fix or "")
        else:
            report.add("weights", f"{name}: {path}")


def estimated_bytes(job: Job) -> int:
    """Disk a job writes (an estimate, for the free-space check)."""
    from bench import costs

    if job.kind == "train":
        snaps = 0
        every = job.config.get("train", {}).get("snapshot_every", 0)
        if every:
            snaps = job.config["train"]["steps"] // every
        return costs.checkpoint_bytes(job.config["baseline"], snaps)
    if job.kind in ("evaluate", "restore_cub", "degrade_cub", "zero_shot"):
        if job.config.get("profile") == "paper":
            return costs.images_bytes(100, 1200, 1600)  # at most a test set of full-resolution images
        return costs.images_bytes(20, 256, 256)
    return 1 << 20


def _check_disk(report: PreflightReport, pending: list[Job], runs_root: Path) -> None:
    need = sum(estimated_bytes(j) for j in pending)
    probe = runs_root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    subject = (f"{runs_root}: {free / 2**30:.1f} GiB free, {len(pending)} job(s) to run write about "
               f"{need / 2**30:.2f} GiB")
    if free < need * 1.2:
        report.add("disk", subject, "not enough free space for what the run writes",
                   "Free space there, or point --runs-dir (BENCH_RUNS) at a larger disk.")
    else:
        report.add("disk", subject)


def _check_gpu(report: PreflightReport, pending: list[Job], device: str, speed: dict[str, Any]) -> None:
    if not device.startswith("cuda"):
        return
    import torch

    from bench import costs

    total = torch.cuda.get_device_properties(torch.device(device)).total_memory / costs.GIB
    worst: tuple[float, str] = (0.0, "")
    for j in pending:
        if j.kind != "train":
            continue
        t = j.config["train"]
        c = costs.train_cost(j.config["baseline"], diffloss="diffloss" in j.config["losses"], steps=t["steps"],
                             batch=t["batch"], patch=t["patch"], bf16=speed.get("precision") == "bf16",
                             prior_checkpointing=bool(speed.get("prior_checkpointing")))
        worst = max(worst, (c.peak_gib, j.describe()))
    if not worst[1]:
        return
    subject = f"largest job {worst[1]}: about {worst[0]:.1f} GiB of {total:.1f} GiB on {device}"
    if worst[0] > total * 0.95:
        report.add("gpu", subject, "its estimated peak memory exceeds the GPU's",
                   "Add --prior-checkpointing and --precision bf16, or lower --batch.")
    else:
        report.add("gpu", subject)


def preflight(graph: Job, *, runs_root: Path, problems: list[BenchError], patch: int | None, strict_counts: bool,
              device: str = "cpu", speed: dict[str, Any] | None = None, prior: Any = None,
              pending: set[str] | None = None) -> PreflightReport:
    """Check everything ``graph`` reads; ``problems`` are what the graph builder could not read."""
    jobs = toposort([graph])
    report = PreflightReport()
    checked_data = False
    for j in jobs:
        if j.kind == "prepare_data" and j.config.get("source") == "real":
            _check_paired(report, j, patch, strict_counts)
            checked_data = True
        elif j.kind == "prepare_cub" and j.config.get("source") == "cub":
            _check_cub(report, j)
            checked_data = True
    for e in problems:
        area = "prior" if getattr(e, "doc", "") == "Weights" else "data"
        if area == "data" and checked_data:
            continue  # the data checks above list every problem of each data set, this one included
        report.add(area, "prior" if area == "prior" else "data", e.message, e.fix or "")
    if prior is not None:
        report.add("prior", prior.describe())
    _check_weights(report, jobs)
    todo = [j for j in jobs if pending is None or j.key in pending]
    _check_disk(report, todo, runs_root)
    _check_gpu(report, todo, device, speed or {})
    return report
