"""Terminal output: rich progress bars with ETA, and one-sentence errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


@contextlib.contextmanager
def progress_bars(enabled: bool = True) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    prog = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console, transient=False)
    with prog:
        yield prog


def logger(prog: Progress | None):
    def log(msg: str) -> None:
        # no emoji either: a label like "degrade:fog: done" would print a fog emoji
        (prog.console if prog is not None else console).print(msg, markup=False, highlight=False, emoji=False,
                                                               soft_wrap=True)

    return log


def step_callback(prog: Progress | None, description: str, total: int):
    """A ``callback(step, steps, loss)`` that drives one progress bar (None without bars)."""
    if prog is None:
        return None
    task = prog.add_task(description, total=total)

    def update(step: int, steps: int, loss: float) -> None:
        prog.update(task, completed=step, total=steps, description=f"{description} (loss {loss:.4g})")
        if step >= steps:
            prog.remove_task(task)

    return update
