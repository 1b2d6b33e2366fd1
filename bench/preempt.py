"""Preemption: SIGTERM / SIGUSR1 ask a running job to checkpoint at its next safe point and stop.

Slurm sends SIGUSR1 (``--signal``) before a time limit and SIGTERM on preemption; a user's Ctrl-C
in a pool worker arrives as SIGTERM. A signal handler only sets a flag: saving a checkpoint from
inside the handler could catch the optimiser half-way through a step. Long loops call
:func:`check` at step boundaries; it raises :class:`Preempted` once the flag is set, after the
loop has saved what it needs (the loop decides what that is, see ``bench.train``).
"""

from __future__ import annotations

import signal
from collections.abc import Iterable

from bench.errors import BenchError

PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
_requested: list[str] = []


class Preempted(BenchError):
    """A job stopped on request (a signal) after checkpointing; running it again resumes it."""

    exit_code = 3

    def __init__(self, message: str, step: int | None = None):
        super().__init__(message, fix="Run the same command again (or let Slurm requeue it): the job resumes.")
        self.step = step


def _handler(signum: int, frame: object) -> None:
    _requested.append(signal.Signals(signum).name)


def install(signals: Iterable[signal.Signals] = PREEMPT_SIGNALS) -> None:
    """Route ``signals`` to the flag (call in a job's process, on its main thread)."""
    for s in signals:
        signal.signal(s, _handler)


def request(reason: str = "request") -> None:
    """Set the flag without a signal (tests, and executors stopping their own workers)."""
    _requested.append(reason)


def requested() -> str | None:
    """The first reason a stop was asked for, or None."""
    return _requested[0] if _requested else None


def clear() -> None:
    _requested.clear()


def check(step: int | None = None) -> None:
    """Raise :class:`Preempted` if a stop was asked for (call only where the job's state is saved)."""
    reason = requested()
    if reason is not None:
        where = f" at step {step}" if step is not None else ""
        raise Preempted(f"Stopped on {reason}{where} after saving a checkpoint.", step=step)
