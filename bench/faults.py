"""Fault injection by name, for the kill-matrix tests (developers only; see tests/test_faults.py).

``BENCH_FAULT=<scope>:<point>[:<n>[:<action>]]`` acts the n-th time (default: the first) execution
passes ``fault_point(point)`` while ``scope`` is current. The scope is the kind of the job being run
(``prepare_data``, ``train_prior``, ``train``, ``evaluate``, ``zero_shot``, ``restore_cub``,
``classify``, ``render``, ...; the worker sets it), ``publish`` while tables are copied out, or
``main`` elsewhere; ``*`` matches any scope. The action is ``kill`` (default: SIGKILL, no clean-up,
no ``finally``) or ``enospc`` (raise ``OSError(ENOSPC)`` as a full disk would; meaningful at the
write points). Several faults may be given, separated by commas. With the variable unset a fault
point costs one dictionary lookup.

The named points (``POINTS``) and where they are:
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from collections.abc import Iterator

ENV = "BENCH_FAULT"
#: Every fault point, with where it is (REPRODUCE.md's "What survives what" and the kill matrix use these names).
POINTS = {
    "start": "bench.graph.worker: a job was claimed and its folder tidied; its code has not run yet",
    "image": "inside a job, after each image it wrote (data preparation, degradation, evaluation, restoration, "
             "zero-shot) or each test image it classified",
    "before_rename": "bench.io.atomic_path: the temporary file is written and fsynced, not yet renamed onto its name",
    "after_rename": "bench.io.atomic_path: the file is in place (a job's done.json not yet written)",
    "before_done": "bench.graph.store.mark_done: every output written and checksummed, done.json not yet",
    "before_checkpoint": "bench.train.checkpoint: a checkpoint is about to be written",
    "checkpoint_saved": "bench.train.checkpoint: a checkpoint was just written",
    "table": "bench.pipeline.publish: between two published files",
}
ACTIONS = ("kill", "enospc")
_hits: dict[tuple[str, str], int] = {}
_scopes: list[str] = ["main"]

__doc__ += "".join(f"\n* ``{name}``: {where}." for name, where in POINTS.items()) + "\n"


@contextlib.contextmanager
def scope(name: str) -> Iterator[None]:
    """Fault points passed inside this block belong to ``name`` (a job kind, or ``publish``)."""
    _scopes.append(name)
    try:
        yield
    finally:
        _scopes.pop()


def current_scope() -> str:
    return _scopes[-1]


def _wanted() -> list[tuple[str, str, int, str]]:
    out = []
    for part in os.environ.get(ENV, "").split(","):
        bits = part.strip().split(":")
        if len(bits) in (2, 3, 4) and all(bits):
            n = int(bits[2]) if len(bits) >= 3 else 1
            action = bits[3] if len(bits) == 4 else "kill"
            if action not in ACTIONS:
                raise ValueError(f"{ENV}: unknown action '{action}' (one of {', '.join(ACTIONS)})")
            out.append((bits[0], bits[1], n, action))
    return out


def fault_point(point: str) -> None:
    """Act here if ``BENCH_FAULT`` names (current scope, ``point``) and its count is reached."""
    if ENV not in os.environ:
        return
    here = _scopes[-1]
    for want_scope, want_point, n, action in _wanted():
        if want_point == point and want_scope in (here, "*"):
            key = (want_scope, point)
            _hits[key] = _hits.get(key, 0) + 1
            if action == "enospc" and _hits[key] >= n:  # a full disk stays full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC) + f" (injected by {ENV} at {point})")
            if action == "kill" and _hits[key] == n:
                os.kill(os.getpid(), signal.SIGKILL)
