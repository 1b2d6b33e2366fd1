"""The options that choose a job graph, declared once for ``bench run`` and ``bench status``.

``bench status`` must build the very graph ``bench run`` built, or it reports other jobs' keys; so both
commands take these options through :func:`graph_options`, and both turn them into run specs with
:meth:`GraphChoice.specs`. A command decorated with it receives one ``graph: GraphChoice`` argument.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

import typer

from bench.errors import BenchError

if TYPE_CHECKING:
    from bench.pipeline import RunSpec


#: The speed settings among the options (``RunSpec.speed``; those that change numbers enter job keys).
SPEED = ("precision", "channels_last", "compile_", "prior_checkpointing", "tf32", "cudnn_benchmark")


@dataclass(frozen=True)
class GraphChoice:
    """What the user chose on the command line; :meth:`specs` turns it into one run spec per target.

    Each field is one command-line option: its annotation is what typer reads, in the order ``--help`` lists them.
    """

    table: Annotated[int | None, typer.Option("--table", "-t", help="Paper table (1-4).")] = None
    figure: Annotated[int | None, typer.Option("--figure", help="Paper figure (7).")] = None
    every: Annotated[bool, typer.Option("--all", help="Every table, then every figure (one process).")] = False
    experiment: Annotated[Path | None, typer.Option(
        help="Your own experiment file (TOML: networks, data, loss sets); see README.")] = None
    profile: Annotated[str, typer.Option(help="smoke | truncated | paper")] = "smoke"
    seeds: Annotated[int | None, typer.Option(min=1, help="Train every row with this many seeds (default 1).")] = None
    baseline: Annotated[list[str] | None, typer.Option("--baseline", help="Only rows of these baselines.")] = None
    data_root: Annotated[Path | None, typer.Option(help="Root of the real data sets (or BENCH_DATA).")] = None
    limit: Annotated[int | None, typer.Option(min=1, help="Pairs per data set (truncated profile).")] = None
    classes: Annotated[int | None, typer.Option(
        min=2, help="CUB: only the first K classes (truncated profile; Table 2, Figure 7's Top-1 V).")] = None
    steps: Annotated[int | None, typer.Option(min=1, help="Override training iterations per run.")] = None
    prior: Annotated[str | None, typer.Option(
        help="Diffusion prior file for any profile (or BENCH_PRIOR); 'smoke' for the smoke prior.")] = None
    rehearse: Annotated[int | None, typer.Option(
        min=1, help="Paper profile only: the paper's shapes with every training cut to this many steps.")] = None
    batch: Annotated[int | None, typer.Option(min=1, help="Override the training batch.")] = None
    lr: Annotated[float | None, typer.Option(
        help="Override the training learning rate (a new job per value).")] = None
    prior_steps: Annotated[int | None, typer.Option(
        min=1, help="Iterations of the smoke prior (runs that train it; default: the profile's).")] = None
    zero_shot_steps: Annotated[int | None, typer.Option(
        min=2, max=1000, help="Sampling steps of the zero-shot restorers (Table 1's GDP rows; 2 to 1000).")] = None
    precision: Annotated[str | None, typer.Option(
        help="fp32 | bf16 (autocast of the network and the prior).")] = None
    channels_last: Annotated[bool | None, typer.Option(
        "--channels-last/--no-channels-last", help="Channels-last memory format.")] = None
    compile_: Annotated[bool | None, typer.Option(
        "--compile/--no-compile", help="torch.compile the prior and network.")] = None
    prior_checkpointing: Annotated[bool | None, typer.Option(
        "--prior-checkpointing/--no-prior-checkpointing", help="Activation checkpointing of DiffLoss's prior.")] = None
    tf32: Annotated[bool | None, typer.Option("--tf32/--no-tf32", help="CUDA: TF32 matrix products.")] = None
    cudnn_benchmark: Annotated[bool | None, typer.Option(
        "--cudnn-benchmark/--no-cudnn-benchmark", help="CUDA: cuDNN autotuning.")] = None

    def check_one_target(self, example: str) -> None:
        if sum((self.table is not None, self.figure is not None, self.every, self.experiment is not None)) != 1:
            raise BenchError("Give exactly one of --table N, --figure N, --all or --experiment FILE.",
                             fix=f"For example: {example}.")

    def targets(self) -> list[tuple[int | None, int | None]]:
        """(table, figure) pairs to build: the one asked for, or every table then every figure."""
        from bench import pipeline

        if self.every:
            return [(t, None) for t in pipeline.TABLES] + [(None, f) for f in pipeline.FIGURES]
        return [(self.table, self.figure)]

    def specs(self) -> list[RunSpec]:
        from bench import pipeline

        root = self.data_root or (Path(os.environ["BENCH_DATA"]) if os.environ.get("BENCH_DATA") else None)
        speed = {k.rstrip("_"): getattr(self, k) for k in SPEED if getattr(self, k) is not None}
        return [pipeline.RunSpec(table=t, figure=f, profile=self.profile, seeds=self.seeds or 1,
                                 baselines=self.baseline or None, data_root=root, limit=self.limit,
                                 classes=self.classes, steps=self.steps, prior=self.prior, experiment=self.experiment,
                                 seeds_given=self.seeds is not None, rehearse=self.rehearse, batch=self.batch,
                                 speed=speed, lr=self.lr, prior_steps=self.prior_steps,
                                 zero_shot_steps=self.zero_shot_steps)
                for t, f in self.targets()]


def graph_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` every field of ``GraphChoice`` as an option (first in its ``--help``), as one ``graph``."""
    hints = get_type_hints(GraphChoice, include_extras=True)
    names = [f.name for f in fields(GraphChoice)]
    added = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name])
             for f in fields(GraphChoice)]
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
           for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "graph"]

    @functools.wraps(command)
    def with_graph(**kwargs: Any) -> None:
        choice = GraphChoice(**{name: kwargs.pop(name) for name in names})
        command(graph=choice, **kwargs)

    with_graph.__signature__ = inspect.Signature(added + own)  # type: ignore[attr-defined]
    return with_graph
