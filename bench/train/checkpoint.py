"""Checkpoint files that survive a crash mid-write or a corrupted disk: the newest two are kept.

``checkpoint.pt`` is the newest, ``checkpoint.prev.pt`` the one before. A save moves the newest
to the previous name, then writes the new one atomically (``bench.io.torch_save``), so at every
instant at least one complete checkpoint exists. Reading takes the newest file that unpickles;
a truncated or unreadable one is skipped with a log line (issue 16.3). A file that reads but
belongs to another run is the caller's to refuse: that is a mistake to report, not corruption.

Also here: the global random generators a checkpoint carries (torch's CPU generator and every
CUDA device's), captured and restored in one place.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.faults import fault_point
from bench.io import torch_save


def previous_path(path: Path) -> Path:
    """``checkpoint.pt`` -> ``checkpoint.prev.pt``."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


class CheckpointFiles:
    """The newest two checkpoints of one run, at ``path`` and :func:`previous_path` (``path``)."""

    def __init__(self, path: str | Path, log: Callable[[str], None] = print, weights_only: bool = False):
        self.path = Path(path)
        self.previous = previous_path(self.path)
        self.log = log
        self.weights_only = weights_only
        self.loaded_from: Path | None = None

    def exists(self) -> bool:
        return self.path.is_file() or self.previous.is_file()

    def save(self, state: dict[str, Any]) -> None:
        """Rotate the newest checkpoint to the previous name, then write ``state`` atomically."""
        fault_point("before_checkpoint")
        if self.path.is_file():
            os.replace(self.path, self.previous)
        torch_save(self.path, state)
        fault_point("checkpoint_saved")

    def _read(self, path: Path, map_location: Any) -> tuple[dict[str, Any] | None, str]:
        try:
            state = torch.load(path, map_location=map_location, weights_only=self.weights_only)
        except Exception as e:  # truncated zip, bad pickle, I/O error: all mean "this copy is unusable"
            return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
        if not isinstance(state, dict) or "step" not in state:
            return None, "it holds no training state (no 'step')"
        return state, ""

    def load(self, map_location: Any = "cpu") -> dict[str, Any] | None:
        """The newest readable checkpoint, or None when there is none (then training starts at step 0)."""
        self.loaded_from = None
        failures = []
        for path in (self.path, self.previous):
            if not path.is_file():
                continue
            state, why = self._read(path, map_location)
            if state is not None:
                if failures:
                    self.log(f"[checkpoint] {'; '.join(failures)}; falling back to {path.name} "
                             f"(step {state['step']})")
                self.loaded_from = path
                return state
            failures.append(f"{path} is unreadable ({why})")
        if failures:
            self.log(f"[checkpoint] {'; '.join(failures)}; no readable checkpoint is left, starting from step 0")
        return None


# ---------------------------------------------------------------------------------------------- generators


def capture_global_rng() -> dict[str, Any]:
    """torch's CPU generator, and every CUDA device's when CUDA has been used in this process.

    CUDA states are only read when CUDA is initialised: a CPU run on a GPU machine never creates
    a CUDA context just to checkpoint generators it did not draw from.
    """
    state: dict[str, Any] = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def restore_global_rng(state: dict[str, Any], log: Callable[[str], None] = print) -> None:
    """Inverse of :func:`capture_global_rng` (untested on GPU here: no CUDA device was available)."""
    torch.set_rng_state(state["torch_rng"])
    cuda = state.get("cuda_rng")
    if cuda and torch.cuda.is_available():
        count = torch.cuda.device_count()
        if len(cuda) != count:
            log(f"[checkpoint] the checkpoint holds {len(cuda)} CUDA generator states, this machine has {count} "
                f"devices; restoring the first {min(len(cuda), count)}")
        for i, s in enumerate(cuda[:count]):
            torch.cuda.set_rng_state(s, device=i)
