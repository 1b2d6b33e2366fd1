"""From a user's request (table, profile, seeds) to a finished graph and published tables.

This is the library behind ``bench run``; the CLI only parses options.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import faults
from bench.config import Profile, get_profile
from bench.errors import BenchError
from bench.graph.executor import plan as graph_plan
from bench.graph.job import Job
from bench.graph.store import RunStore
from bench.io import atomic_path
from bench.paths import runs_dir
from bench.paths import tables_dir as default_tables_dir
from bench.prior.ref import PriorRef
from bench.registry import BASELINES

if TYPE_CHECKING:
    from bench.preflight import PreflightReport

TABLES = (1, 2, 3, 4)
FIGURES = (7,)


@dataclass(frozen=True)
class RunSpec:
    table: int | None = None
    figure: int | None = None
    profile: str = "smoke"
    seeds: int = 1
    baselines: list[str] | None = None
    data_root: Path | None = None
    limit: int | None = None
    classes: int | None = None
    steps: int | None = None
    prior: str | None = None  # --prior PATH | smoke | random (rehearsals); None: the profile's (or BENCH_PRIOR)
    experiment: Path | None = None  # a user's experiment file (instead of a table or figure)
    seeds_given: bool = False  # --seeds was on the command line (it overrides an experiment file's seeds)
    rehearse: int | None = None  # --rehearse STEPS: the paper profile's shapes, every training cut to STEPS
    batch: int | None = None  # --batch: override the profile's training batch
    lr: float | None = None  # --lr: override the profile's learning rate (a new train job: lr is in its key)
    prior_steps: int | None = None  # --prior-steps: iterations of the smoke prior (runs that train it)
    zero_shot_steps: int | None = None  # --zero-shot-steps: sampling steps of the zero-shot restorers (GDP)
    speed: dict[str, Any] = field(default_factory=dict)  # --precision, --channels-last, ... (over the profile's)


@dataclass
class Plan:
    """A built graph and what the preflight needs to know about how it was built."""

    graph: Job
    profile: Profile
    prior: PriorRef
    problems: list[BenchError] = field(default_factory=list)


def resolve_prior(spec: RunSpec, profile: Profile, problems: list[BenchError]) -> PriorRef:
    """The run's prior: ``--prior`` / ``BENCH_PRIOR`` for any profile, else the profile's own.

    The truncated profile keeps the smoke prior unless a prior is named (REPRODUCE.md, Profiles):
    finding the 2.2 GB file in a weights folder does not change what a cheap run trains with.
    """
    from bench.config import REHEARSAL
    from bench.prior.adm import ADM256_UNCOND_KWARGS
    from bench.prior.ref import RANDOM, resolve

    rehearsal = profile.name == REHEARSAL
    if spec.prior == RANDOM:  # a request error, not a file problem: say so at once
        return resolve(spec.prior, profile.prior, allow_random=rehearsal)
    try:
        return resolve(spec.prior, profile.prior, allow_random=rehearsal)
    except BenchError as e:
        problems.append(e)
        return PriorRef("file", sha256="unavailable", adm_kwargs=dict(ADM256_UNCOND_KWARGS))


def target_name(spec: RunSpec) -> str:
    """The paper target a request names ("table1" ... "figure7"); one sentence for an unknown one."""
    if spec.table is not None and spec.table not in TABLES:
        raise BenchError(f"Unknown table {spec.table}.", fix=f"Tables available: {', '.join(map(str, TABLES))}.")
    if spec.figure is not None and spec.figure not in FIGURES:
        raise BenchError(f"Unknown figure {spec.figure}.", fix=f"Figures available: {', '.join(map(str, FIGURES))}.")
    return f"table{spec.table}" if spec.table is not None else f"figure{spec.figure}"


def build_plan(spec: RunSpec) -> Plan:
    """The render job of the requested table, figure or experiment file with its profile and prior.

    Raises one sentence for a bad request. What cannot be read while building (a missing data set or
    prior) is collected in ``problems`` for the preflight, which reports everything at once.
    """
    from bench.experiment.graph import GraphBuilder, build_experiment
    from bench.registry import PAPER

    experiment = None
    if spec.experiment is not None:
        from bench.experiment.toml_file import load_experiment

        experiment = load_experiment(spec.experiment)
    else:
        name = target_name(spec)
    check_overrides(spec)
    profile = get_profile(spec.profile, rehearse=spec.rehearse, limit=spec.limit, classes=spec.classes,
                          steps=spec.steps, batch=spec.batch, lr=spec.lr, prior_steps=spec.prior_steps,
                          zero_shot_steps=spec.zero_shot_steps)
    if spec.classes is not None and profile.embedded_data:
        raise BenchError(f"--classes cuts real CUB; the '{profile.name}' profile builds its own few classes.",
                         fix="Use --profile truncated --data-root PATH, or drop --classes.")
    if spec.data_root is not None:
        check_data_root(spec.data_root)
    for b in spec.baselines or []:
        check_row_name(b)  # "did you mean" on a typo
    problems: list[BenchError] = []
    if spec.prior_steps is not None:
        chosen = spec.prior or os.environ.get("BENCH_PRIOR") or (profile.prior if profile.prior == "smoke" else None)
        if chosen != "smoke":
            what = f"the prior file {chosen}" if chosen else f"the '{profile.name}' profile's prior file"
            raise BenchError(f"--prior-steps sets how long the smoke prior trains, but this run uses {what}.",
                             fix="Drop --prior-steps, or use the smoke prior (--prior smoke).")
    prior = resolve_prior(spec, profile, problems)
    if prior.image_size and prior.image_size > profile.patch:
        # DiffLoss crops the prior's size from each patch: a larger prior trains every row at its size
        profile = replace(profile, patch=prior.image_size)
    g = GraphBuilder(profile, spec.data_root, prior, problems, speed={**profile.speed, **spec.speed})
    if experiment is not None:
        job = build_experiment(experiment, g, spec.seeds if spec.seeds_given else experiment.seeds)[0]
    else:
        job = PAPER.get(name)(g, spec.seeds)
    if spec.baselines:
        # Reference rows (no baseline: Table 2's clean and unrestored images) stay in a filtered table.
        keep = [n for n, r in job.config["rows"].items() if r["baseline"] in [*spec.baselines, ""]]
        if not any(job.config["rows"][n]["baseline"] for n in keep):
            have = sorted({r["baseline"] for r in job.config["rows"].values() if r["baseline"]})
            what = f"table {spec.table}" if spec.table is not None else (
                f"figure {spec.figure}" if spec.figure is not None else str(spec.experiment))
            raise BenchError(f"--baseline {' '.join(spec.baselines)} selects no row of {what}.",
                             fix=f"Its rows use {', '.join(have)}.")
        job = replace(job, inputs={n: job.inputs[n] for n in keep},
                      config={**job.config, "rows": {n: job.config["rows"][n] for n in keep}})
    return Plan(job, profile, prior, problems)


def check_data_root(root: Path) -> None:
    """A folder bench can list; one sentence for a missing, non-folder or unreadable ``--data-root``."""
    if not root.exists():
        raise BenchError(f"Data directory {root} does not exist.",
                         fix="Pass the folder that holds the data sets with --data-root.", doc="Data")
    if not root.is_dir():
        raise BenchError(f"Data directory {root} is a file, not a folder.",
                         fix="Pass the folder that holds the data sets with --data-root.", doc="Data")
    try:
        next(iter(root.iterdir()), None)
    except PermissionError:
        raise BenchError(f"Data directory {root} cannot be read (permission denied).",
                         fix="Fix its permissions, or pass another folder with --data-root.", doc="Data") from None


def check_overrides(spec: RunSpec) -> None:
    """Refuse recipe overrides no run can use (before anything is built or written)."""
    import math

    if spec.lr is not None and not (math.isfinite(spec.lr) and spec.lr > 0):
        raise BenchError(f"--lr must be a positive finite learning rate, got {spec.lr}.", fix="For example: --lr 1e-4.")
    if spec.zero_shot_steps is not None and not 2 <= spec.zero_shot_steps <= 1000:
        raise BenchError(f"--zero-shot-steps must be between 2 and 1000, got {spec.zero_shot_steps}.",
                         fix="For example: --zero-shot-steps 10 (1000 is the published setting).")
    if spec.prior_steps is not None and spec.prior_steps < 1:
        raise BenchError(f"--prior-steps must be at least 1, got {spec.prior_steps}.",
                         fix="For example: --prior-steps 50.")


def check_row_name(name: str) -> None:
    """``--baseline NAME``: a registered network or a zero-shot restorer (Table 1's GDP rows); "did you mean" else."""
    from bench.errors import UnknownNameError
    from bench.registry import RESTORERS

    if name in RESTORERS or name in BASELINES:
        return
    import difflib

    names = sorted({*BASELINES.names(), *RESTORERS.names()})
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownNameError(f"Unknown baseline '{name}'.{hint}",
                           fix="Run 'bench ls baselines' for the networks; zero-shot restorers: "
                               f"{', '.join(RESTORERS.names())}.")


def build(spec: RunSpec) -> Job:
    """The render job of the requested table (see :func:`build_plan`)."""
    return build_plan(spec).graph


def check(built: Plan, st: RunStore, device: str = "cpu", speed: dict[str, Any] | None = None) -> PreflightReport:
    """The preflight of a built plan (every problem at once)."""
    from bench.preflight import preflight

    pending = {j.key for j, s in graph_plan([built.graph], st) if s != "done"}
    return preflight(built.graph, runs_root=st.root, problems=built.problems, patch=built.profile.patch,
                     strict_counts=built.profile.is_reproduction, device=device, speed=speed, pending=pending,
                     prior=built.prior if built.prior.kind == "file" and built.prior.sha256 != "unavailable"
                     else None)


def store(root: Path | None = None) -> RunStore:
    return RunStore(root or runs_dir())


def plan(graph: Job, st: RunStore) -> list[tuple[str, str, str, str]]:
    import bench.jobs  # noqa: F401  (registers job kinds)

    return [(j.key, j.kind, j.describe(), status) for j, status in graph_plan([graph], st)]


def execute(graph: Job, st: RunStore, device: str = "cpu", force: bool = False, progress: bool = True,
            tables_dir: Path | None = None, executor: str = "local", workers: int = 1,
            gpus: list[str] | None = None, threads: int | None = None,
            slurm: dict[str, Any] | None = None) -> list[Path]:
    """Run what is not done (on the chosen executor), then copy the render job's files to the tables folder."""
    from bench.graph.executor import execute as run_graph
    from bench.graph.executor import make_backend
    from bench.ui import logger, progress_bars

    with progress_bars(progress and executor == "local") as prog:
        log = logger(prog)
        backend = make_backend(executor, st, device, progress=prog, log=log, workers=workers, gpus=gpus,
                               threads=threads, slurm={**(slurm or {}), "log": log} if executor == "slurm" else None)
        run_graph([graph], st, backend, force=force, log=log)
        return publish(graph, st, tables_dir or default_tables_dir(), log=log)


def publish(render: Job, st: RunStore, target: Path, log: Any = None) -> list[Path]:
    """Copy the render job's files to ``target`` (each atomically; first removing what a killed publish left
    there), then rewrite ``claims.md`` from every ``claims_<target>.md`` there, so it covers each table
    published so far (``bench.report.claims``)."""
    from bench.io import name_location, remove_stale_temps
    from bench.report.claims import merge_claims

    rec = st.done_record(render)
    if rec is None:
        raise BenchError(f"Render job {render.key} has not finished; nothing to publish.")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BenchError(f"Tables directory {target} is not writable ({e.strerror}).",
                         fix="Choose another with --tables-dir.") from None
    name_location(target, "tables", "--tables-dir (or BENCH_TABLES)")
    removed = remove_stale_temps(target)  # only those whose writer (on this host) is gone
    if removed and log is not None:
        log(f"[publish] removed {len(removed)} temporary file(s) an interrupted publish left in {target}")
    out = []
    with faults.scope("publish"):
        for i, name in enumerate(rec["result"]["files"]):
            if i:
                faults.fault_point("table")
            src, dst = st.dir(render) / name, target / name
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
            out.append(dst)
        merged = merge_claims(target) if any(n.startswith("claims_") for n in rec["result"]["files"]) else None
    return [*out, merged] if merged is not None else out
