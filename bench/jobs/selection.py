"""Which weights of a train job an evaluation uses: the one checkpoint rule of evaluation, Table 2 and Figure 7.

``last`` is the final model; ``best:<metric>`` scores every snapshot (and the final model) on the test
set and keeps the best, the paper's "best performance in the first K iterations" (Table 3, Figure 7).
A job that restores other images with "the same checkpoint" reads the step an evaluate job picked
(``picked_step``), so both use one network.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from bench.errors import BenchError
from bench.graph.job import JobContext


def candidates(ctx: JobContext, train_input: str = "model") -> list[tuple[int, Path]]:
    """(step, weights file) for every snapshot and the final model of input ``train_input``, in training order."""
    snaps = sorted(ctx.artifact(train_input, "snapshots").glob("step*.pt"))
    out = [(int(p.stem.removeprefix("step")), p) for p in snaps]
    steps = int(ctx.result(train_input).get("steps", -1))
    if not out or out[-1][0] != steps:
        out.append((steps, ctx.artifact(train_input, "model")))
    return out


def best_of(options: list[tuple[int, Path]], score: Callable[[Path], float], lower_better: bool,
            ) -> tuple[tuple[int, Path], list[dict[str, float]]]:
    """The option with the best ``score`` (first on ties) and every option's score."""
    scores = [{"step": step, "score": score(path)} for step, path in options]
    values = [s["score"] for s in scores]
    best = min(values) if lower_better else max(values)
    return options[values.index(best)], scores


def picked_step(ctx: JobContext, evaluation_input: str) -> int:
    """The step an evaluate input selected (its summary's ``selected_step``)."""
    return int(ctx.table(evaluation_input, "summary")["selected_step"].iloc[0])


def weights_at(ctx: JobContext, step: int, train_input: str = "model") -> tuple[int, Path]:
    found = [o for o in candidates(ctx, train_input) if o[0] == step]
    if not found:
        steps = ", ".join(str(s) for s, _ in candidates(ctx, train_input))
        raise BenchError(f"The selected checkpoint (step {step}) is not among the train job's files ({steps}).",
                         fix="Rerun the train job with --force.")
    return found[0]


def load_weights(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return model


def selection_frame(scores: list[dict[str, float]], metric: str) -> pd.DataFrame:
    return pd.DataFrame([{"step": s["step"], metric: s["score"]} for s in scores])
