"""What a training run costs, measured without per-step host synchronisation (issues 13.5, 17.3).

Time: the wall time of each log interval (from the end of one log step's bookkeeping to the
next log step, where the device is synchronised anyway to read the logged terms), minus the
time spent writing checkpoints inside the interval, divided by its steps. The first interval
a process runs is warm-up (allocator, kernel selection, compilation) and is excluded from the
median. Memory: on CUDA the allocator's peak (``torch.cuda.max_memory_allocated``, reset when
the run starts); on CPU the peak resident set size since the run started (Linux: the kernel's
high-water mark ``VmHWM``, reset through ``/proc/self/clear_refs`` when the run starts, so a worker
that ran other jobs before reports this job's peak), else the process's lifetime peak (``getrusage``).
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import torch


def synchronize(device: torch.device) -> None:
    """Wait for queued device work (CUDA); nothing to wait for on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory(device: torch.device) -> tuple[int, str]:
    """(bytes, kind) of the run's peak memory on ``device``."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "cuda_max_allocated"
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024, "process_peak_rss"
    except OSError:
        pass
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024), "process_lifetime_peak_rss"


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: CUDA's allocator statistics, or Linux's resident-set high-water mark."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        pass  # not Linux, or not allowed: the lifetime peak is reported (and named so)


class StepCost:
    """Log-interval timing and peak memory; ``intervals`` are (ms per step, warm-up?) and survive resumes."""

    def __init__(self, device: torch.device, state: dict[str, Any] | None = None):
        self.device = device
        state = state or {}
        self.intervals: list[list[Any]] = [list(i) for i in state.get("intervals", [])]
        self.earlier_peak = int(state.get("peak_memory_bytes", 0))
        self._first = True
        self._t0 = time.perf_counter()
        self._steps0 = 0
        self._excluded = 0.0
        reset_peak_memory(device)

    def start(self, step: int) -> None:
        """Start an interval after ``step`` (call when a log step's bookkeeping is done)."""
        self._t0, self._steps0, self._excluded = time.perf_counter(), step, 0.0

    def exclude(self, seconds: float) -> None:
        """Time inside the interval that is not training (checkpoint writes)."""
        self._excluded += seconds

    def interval(self, step: int) -> float | None:
        """Close the interval ending at log step ``step``: its ms per step (the device is synchronised here)."""
        synchronize(self.device)
        n = step - self._steps0
        if n <= 0:
            return None
        ms = 1000.0 * (time.perf_counter() - self._t0 - self._excluded) / n
        self.intervals.append([ms, self._first])
        self._first = False
        return ms

    def peak(self) -> tuple[int, str]:
        now, kind = peak_memory(self.device)
        return max(now, self.earlier_peak), kind

    def median_ms(self) -> float | None:
        warm = [ms for ms, warmup in self.intervals if not warmup]
        return statistics.median(warm) if warm else None

    def state_dict(self) -> dict[str, Any]:
        return {"intervals": [list(i) for i in self.intervals], "peak_memory_bytes": self.peak()[0]}

    def summary(self) -> dict[str, Any]:
        """What a result row records: the median over warm intervals (None when every interval was warm-up)."""
        peak, kind = self.peak()
        return {"ms_per_step_median": self.median_ms(),
                "ms_per_step_intervals": sum(1 for _, warm in self.intervals if not warm),
                "peak_memory_bytes": peak, "peak_memory_kind": kind}
