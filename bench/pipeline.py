"""From a user's request (table, profile, seeds) to a finished graph and published tables.

This is the library behind ``bench run``; the CLI only parses options.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from bench.config import get_profile
from bench.errors import BenchError
from bench.graph.executor import LocalExecutor
from bench.graph.executor import plan as graph_plan
from bench.graph.job import Job
from bench.graph.store import RunStore
from bench.paths import runs_dir
from bench.paths import tables_dir as default_tables_dir
from bench.registry import BASELINES

TABLES = (1, 2, 3, 4)
OFFICIAL_PRIOR = "adm256_uncond"  # weights-manifest name of guided-diffusion's 256x256 unconditional model
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


def build(spec: RunSpec) -> Job:
    """The render job of the requested table; raises a one-sentence error for bad requests."""
    from bench import experiments

    if spec.table is not None and spec.table not in TABLES:
        raise BenchError(f"Unknown table {spec.table}.",
                         fix=f"Tables available: {', '.join(map(str, TABLES))}.")
    if spec.figure is not None and spec.figure not in FIGURES:
        raise BenchError(f"Unknown figure {spec.figure}.", fix=f"Figures available: {', '.join(map(str, FIGURES))}.")
    profile = get_profile(spec.profile, limit=spec.limit, classes=spec.classes, steps=spec.steps)
    if spec.classes is not None and profile.embedded_data:
        raise BenchError(f"--classes cuts real CUB; the '{profile.name}' profile builds its own few classes.",
                         fix="Use --profile truncated --data-root PATH, or drop --classes.")
    if profile.name == "truncated" and profile.prior == "smoke":
        from bench.weights import find

        if find(OFFICIAL_PRIOR) is not None:  # the real prior is here: use it (REPRODUCE.md, Profiles)
            profile = replace(profile, prior=OFFICIAL_PRIOR)
    if spec.data_root is not None and not spec.data_root.is_dir():
        raise BenchError(f"Data directory {spec.data_root} does not exist.",
                         fix="Pass the folder that holds the data sets with --data-root.", doc="Data")
    for name in spec.baselines or []:
        BASELINES.get(name)  # "did you mean" on a typo
    target = spec.table if spec.table is not None else f"figure{spec.figure}"
    job = experiments.build_table(target, profile, seeds=spec.seeds, data_root=spec.data_root)
    if spec.baselines:
        # Reference rows (no baseline: Table 2's clean and unrestored images) stay in a filtered table.
        keep = {k: j for k, j in job.inputs.items() if j.config.get("baseline") in [*spec.baselines, ""]}
        rows = [r for r in job.config["rows"] if r["baseline"] in [*spec.baselines, ""]]
        job = replace(job, inputs={f"row{i:03d}": j for i, j in enumerate(keep.values())},
                      config={**job.config, "rows": rows})
    return job


def store(root: Path | None = None) -> RunStore:
    return RunStore(root or runs_dir())


def plan(graph: Job, st: RunStore) -> list[tuple[str, str, str, str]]:
    import bench.jobs  # noqa: F401  (registers job kinds)

    return [(j.key, j.kind, j.describe(), status) for j, status in graph_plan([graph], st)]


def execute(graph: Job, st: RunStore, device: str = "cpu", force: bool = False, progress: bool = True,
            tables_dir: Path | None = None) -> list[Path]:
    """Run what is not done, then copy the render job's files to the tables folder."""
    import bench.jobs  # noqa: F401
    from bench.ui import logger, progress_bars

    with progress_bars(progress) as prog:
        LocalExecutor(device=device, progress=prog, log=logger(prog)).run([graph], st, force=force)
    return publish(graph, st, tables_dir or default_tables_dir())


def publish(render: Job, st: RunStore, target: Path) -> list[Path]:
    rec = st.done_record(render)
    if rec is None:
        raise BenchError(f"Render job {render.key} has not finished; nothing to publish.")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BenchError(f"Tables directory {target} is not writable ({e.strerror}).",
                         fix="Choose another with --tables-dir.") from None
    out = []
    for name in rec["result"]["files"]:
        src, dst = st.dir(render) / name, target / name
        tmp = dst.with_name(f".{dst.name}.tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
        out.append(dst)
    return out
