"""One training-step engine for every optimisation loop of the bench (issue 14).

Restoration training (``bench.train.loop.train``), the smoke prior (``bench.prior.smoke``) and
classifier fine-tuning (``bench.evaluate.classify.finetune``) each describe *what* a step
computes as a :class:`TrainTask`; the engine owns *how* steps run:

* the update, in one fixed order: ``zero_grad(set_to_none=True)``, ``backward``, optional
  gradient-norm clipping, ``optimizer.step()``, then the task's ``after_step``;
* no host synchronisation per step (issue 12.2): the first non-finite loss is remembered on the
  device (``torch.where``), logged terms stay there, and both are read in one transfer only at
  *read points*: log steps, before every checkpoint or weight snapshot, at a preemption and at
  the end. A non-finite loss stops the run at the next read point with the step it happened at;
  no checkpoint is ever written after it, so the last good one stays on disk;
* checkpoints: the task's state plus the step and the global generators (torch CPU, all CUDA
  devices) in the newest two files (:class:`bench.train.checkpoint.CheckpointFiles`), with the
  named fault points ``before_checkpoint`` / ``checkpoint_saved`` around each write;
* preemption (issue 13.4): after every completed step, if ``bench.preempt`` was asked to
  stop (SIGTERM / SIGUSR1), the step's checkpoint is written and :class:`Preempted` raised;
* progress and cost: the progress callback and the optional TensorBoard writer are fed at log
  steps; ms per step and peak memory come from :class:`bench.train.cost.StepCost`.

The engine never draws random numbers and never seeds: tasks keep their own draw order, which
is what keeps the trained weights of every loop identical to the loops it replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench import preempt
from bench.errors import TrainingDiverged
from bench.train.checkpoint import CheckpointFiles, capture_global_rng, restore_global_rng
from bench.train.cost import StepCost

Progress = Callable[[int, int, dict[str, float]], None]


class TrainTask:
    """What one loop supplies (subclass it). ``done`` is the number of completed steps."""

    def compute(self, done: int) -> dict[str, torch.Tensor]:  # pragma: no cover
        """Draw step ``done + 1``'s inputs and return its terms; ``"total"`` is back-propagated."""
        raise NotImplementedError

    def after_step(self, done: int) -> dict[str, torch.Tensor | float]:
        """After the optimiser's update of step ``done``: more terms to log (tensors stay on the device)."""
        return {}

    def on_log(self, done: int, values: dict[str, float], cost: dict[str, Any]) -> None:
        """At a log step: the step's terms as host floats and the interval's cost."""

    def on_step_end(self, done: int, engine: TrainEngine) -> None:
        """After logging, before the checkpoint: e.g. weight snapshots (call ``engine.ensure_finite()`` first)."""

    def state_dict(self) -> dict[str, Any]:  # pragma: no cover
        """Everything besides the step and the global generators that resuming needs."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:  # pragma: no cover
        raise NotImplementedError

    def check(self, state: dict[str, Any], path: Path) -> None:
        """Refuse (raise ``BenchError``) a readable checkpoint that belongs to another run."""


@dataclass
class EngineResult:
    steps: int
    stopped: bool
    values: dict[str, float]
    cost: dict[str, Any] = field(default_factory=dict)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move a CPU batch to ``device`` without a host sync: a pageable copy to CUDA waits for the stream.

    On CUDA the batch is pinned and copied with ``non_blocking`` (untested here: no GPU); elsewhere
    it is ``t.to(device)``.
    """
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def read_scalars(values: dict[str, torch.Tensor | float]) -> dict[str, float]:
    """Host floats of 0-d tensors (any dtype) in ONE transfer; floats pass through. Exact: float64 holds them."""
    tensors = {k: v for k, v in values.items() if isinstance(v, torch.Tensor)}
    out = {k: float(v) for k, v in values.items() if not isinstance(v, torch.Tensor)}
    if tensors:
        flat = torch.stack([v.detach().reshape(()).to(torch.float64) for v in tensors.values()]).tolist()
        out.update(zip(tensors, flat))
    return {k: out[k] for k in values}


class TrainEngine:
    """Runs a :class:`TrainTask` for ``steps`` steps with ``optimizer``; see the module docstring."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        steps: int,
        device: str | torch.device,
        log_every: int = 10,
        checkpoints: CheckpointFiles | None = None,
        checkpoint_every: int = 50,
        grad_clip: float = 0.0,
        clip_params: Iterable[nn.Parameter] = (),
        global_rng: bool = True,
        progress: Progress | None = None,
        log: Callable[[str], None] = print,
        tensorboard_dir: Path | None = None,
        name: str = "train",
        what: str = "Loss",
        diverged_fix: str = ("Lower the learning rate (bench run --lr: a new job; this one stays failed) or check the "
                             "inputs: rerun unchanged, it resumes from the last good checkpoint and diverges again."),
    ):
        if log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {log_every}")
        if checkpoints is not None and checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
        self.optimizer, self.steps, self.device = optimizer, int(steps), torch.device(device)
        self.log_every, self.checkpoints, self.checkpoint_every = log_every, checkpoints, checkpoint_every
        self.grad_clip, self.clip_params = grad_clip, list(clip_params)
        self.global_rng, self.progress, self.log = global_rng, progress, log
        self.tensorboard_dir, self.name, self.what, self.diverged_fix = tensorboard_dir, name, what, diverged_fix
        self.step = 0
        self._saved_step: int | None = None  # the step of the newest checkpoint on disk (None: none yet)
        self.cost = StepCost(self.device)
        self._last: dict[str, torch.Tensor | float] = {}
        self._bad_step: torch.Tensor | None = None  # first non-finite step (0: none), on the device
        self._bad_value: torch.Tensor | None = None
        self._read_at = -1
        self._values: dict[str, float] = {}
        self._writer: Any = None

    # -- resume ---------------------------------------------------------------------------------
    def resume(self, task: TrainTask) -> int:
        """Load the newest readable checkpoint into ``task`` and the engine; return the step it holds."""
        if self.checkpoints is None:
            return 0
        state = self.checkpoints.load(map_location=self.device)
        if state is None:
            return 0
        task.check(state, self.checkpoints.loaded_from or self.checkpoints.path)
        task.load_state_dict(state)
        if self.global_rng:
            restore_global_rng(state, self.log)
        self.step = self._saved_step = int(state["step"])
        self.cost = StepCost(self.device, state.get("cost"))
        self.log(f"[{self.name}] resuming from step {self.step} of {self.steps} ({self.checkpoints.loaded_from})")
        return self.step

    # -- device-side bookkeeping ------------------------------------------------------------------
    def _guard(self, total: torch.Tensor, step: int) -> None:
        """Remember the first step whose loss is not finite, without leaving the device."""
        t = total.detach().reshape(()).float()
        if self._bad_step is None:
            self._bad_step = torch.zeros((), dtype=torch.int64, device=t.device)
            self._bad_value = torch.zeros((), dtype=torch.float32, device=t.device)
        first = (self._bad_step == 0) & ~torch.isfinite(t)
        self._bad_step = torch.where(first, step, self._bad_step)
        self._bad_value = torch.where(first, t, self._bad_value)

    def _read(self) -> dict[str, float]:
        """The read point: one transfer of the guard and the last step's terms; raise if a loss went bad."""
        if self._read_at == self.step:
            return self._values
        guard = {} if self._bad_step is None else {"__bad_step": self._bad_step, "__bad_value": self._bad_value}
        values = read_scalars({**guard, **self._last})
        bad = int(values.pop("__bad_step", 0))
        value = values.pop("__bad_value", 0.0)
        if bad:
            if self.checkpoints is None:
                where = "no weights were written after it"
            elif self._saved_step is not None or self.checkpoints.exists():
                at = f" (step {self._saved_step})" if self._saved_step is not None else ""
                where = f"the last good checkpoint{at} is kept at {self.checkpoints.path}"
            else:
                where = f"no checkpoint had been written yet (the first was due at step {self.checkpoint_every})"
            raise TrainingDiverged(f"{self.what} became {value} at step {bad}; {where}.", fix=self.diverged_fix)
        self._read_at, self._values = self.step, values
        return values

    def ensure_finite(self) -> dict[str, float]:
        """Read the guard now (call before writing weights); returns the last step's terms as floats."""
        return self._read()

    # -- checkpoints ------------------------------------------------------------------------------
    def save(self, task: TrainTask) -> None:
        """Write the checkpoint of the current step (after checking no loss so far was non-finite)."""
        if self.checkpoints is None:
            return
        self._read()
        t0 = time.perf_counter()
        if self._writer is not None:
            self._writer.flush()
        state = {**task.state_dict(), "step": self.step, "cost": self.cost.state_dict()}
        if self.global_rng:
            state.update(capture_global_rng())
        self.checkpoints.save(state)
        self._saved_step = self.step
        self.cost.exclude(time.perf_counter() - t0)

    # -- logging ------------------------------------------------------------------------------------
    def _open_tensorboard(self) -> None:
        if self.tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step hides what a killed run logged after the checkpoint this run resumed from
            self._writer = SummaryWriter(str(self.tensorboard_dir), purge_step=self.step + 1 if self.step else None)

    def _log_step(self, task: TrainTask, values: dict[str, float]) -> None:
        ms = self.cost.interval(self.step)
        peak, kind = self.cost.peak()
        cost = {"ms_per_step": ms, "peak_memory_bytes": peak, "peak_memory_kind": kind}
        task.on_log(self.step, values, cost)
        writer = self._writer
        if writer is not None:
            for k, v in values.items():
                writer.add_scalar(f"loss/{k}", v, self.step)
            if ms is not None:
                writer.add_scalar("cost/ms_per_step", ms, self.step)
            writer.add_scalar(f"cost/peak_memory_mib_{kind}", peak / 2**20, self.step)
        if self.progress is not None:
            self.progress(self.step, self.steps, values)

    # -- the loop -------------------------------------------------------------------------------
    def run(self, task: TrainTask, stop_after: int | None = None) -> EngineResult:
        """Steps from the current ``step`` to ``steps`` (or to ``stop_after``: tests simulate a kill with it)."""
        self._open_tensorboard()
        self.cost.start(self.step)
        try:
            while self.step < self.steps:
                self._one_step(task)
                done = self.step
                is_log = done % self.log_every == 0 or done == self.steps
                is_ckpt = self.checkpoints is not None and (done % self.checkpoint_every == 0 or done == self.steps)
                if is_log:
                    self._log_step(task, self._read())
                task.on_step_end(done, self)
                stopping = preempt.requested() is not None and done < self.steps
                if is_ckpt or stopping:
                    self.save(task)
                if is_log:
                    self.cost.start(done)
                if stopping:
                    self._preempted()
                if stop_after is not None and done >= stop_after:
                    return EngineResult(done, True, self._read(), self.cost.summary())
            values = self._read() if self._last else {}
            return EngineResult(self.step, False, values, self.cost.summary())
        finally:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def _one_step(self, task: TrainTask) -> None:
        terms = task.compute(self.step)
        total = terms["total"]
        self._guard(total, self.step + 1)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.clip_params, self.grad_clip)
        self.optimizer.step()
        self.step += 1
        aux = task.after_step(self.step)
        self._last = {**{k: v.detach() for k, v in terms.items()}, **aux}

    def _preempted(self) -> None:
        if self.checkpoints is not None:
            self.log(f"[{self.name}] stopping on {preempt.requested()} after step {self.step}: checkpoint written")
            preempt.check(self.step)
        raise preempt.Preempted(f"Stopped on {preempt.requested()} at step {self.step}; this loop keeps no "
                                f"checkpoint, so running it again starts over.", step=self.step)
