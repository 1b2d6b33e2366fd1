"""Fault injection by name, for the kill-matrix tests (developers only; see tests/test_faults.py).

``BENCH_FAULT=<scope>:<point>[:<n>]`` makes the process SIGKILL itself (no clean-up, no
``finally``) the n-th time (default: the first) execution passes ``fault_point(point)`` while
``scope`` is current. The scope is the kind of the job being run (``train``, ``evaluate``, ...;
the worker sets it), ``publish`` while tables are copied out, or ``main`` elsewhere; ``*``
matches any scope. Several faults may be given, separated by commas. With the variable unset a
fault point costs one dictionary lookup.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

ENV = "BENCH_FAULT"
_hits: dict[tuple[str, str], int] = {}
_scopes: list[str] = ["main"]


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


def _wanted() -> list[tuple[str, str, int]]:
    out = []
    for part in os.environ.get(ENV, "").split(","):
        bits = part.strip().split(":")
        if len(bits) in (2, 3) and all(bits):
            out.append((bits[0], bits[1], int(bits[2]) if len(bits) == 3 else 1))
    return out


def fault_point(point: str) -> None:
    """Kill this process here if ``BENCH_FAULT`` names (current scope, ``point``) and its count is reached."""
    if ENV not in os.environ:
        return
    here = _scopes[-1]
    for want_scope, want_point, n in _wanted():
        if want_point == point and want_scope in (here, "*"):
            key = (want_scope, point)
            _hits[key] = _hits.get(key, 0) + 1
            if _hits[key] == n:
                os.kill(os.getpid(), signal.SIGKILL)
