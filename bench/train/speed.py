"""Speed options of a training run, applied to the modules that do the work (issue 12.1).

``SpeedOptions.apply(network, prior)`` configures, in place:

* ``precision="bf16"``: the network's forward runs under ``torch.autocast(bfloat16)`` and returns
  float32 tensors, so every loss reduces in float32; the prior gets ``ADMUNet.autocast_dtype``
  (its GroupNorms and DiffLoss's reductions stay float32 by construction);
* ``channels_last``: 4-D weights of both in ``torch.channels_last``, and the network's 4-D inputs
  (the prior converts its own, ``ADMUNet.channels_last``);
* ``compile``: ``torch.compile`` of the prior's forward and of the network's; where it cannot run
  (no C++ compiler on the CPU, no triton on CUDA, or an error at the first call) the module
  runs eagerly and the reason is logged and kept in ``forward.fallback_reason``;
* ``prior_checkpointing``: ``use_checkpoint`` on every ADM ResBlock / AttentionBlock, i.e.
  ``torch.utils.checkpoint`` (non-reentrant) on the restored branch; the clear branch runs under
  ``no_grad`` where ADM skips checkpointing anyway.

``SpeedOptions.backend(device)`` sets, for a CUDA run, ``cudnn.benchmark`` and TF32 for matmuls
and convolutions (and restores them). ``tf32=False`` turns TF32 convolutions off too (PyTorch
enables them by default), so "fp32" means float32 arithmetic.

Which options change the numbers, and so enter the job hash (:meth:`SpeedOptions.hashed`):
precision (bf16 rounds every product; ``tests/test_train_speed.py`` shows the loss moves far
beyond float32 rounding), compile (Inductor fuses and reorders arithmetic, and draws dropout
masks from its own generator stream), channels_last (other convolution kernels with another
summation order), tf32 (10-bit mantissas in matmuls and convolutions) and cudnn_benchmark
(cuDNN picks the fastest algorithm by timing, each with its own rounding). Prior checkpointing
does not: it recomputes the same operations in the same order, and the test shows the loss and
every gradient bit-identical on the CPU, so it stays out of the hash. CUDA paths (backend flags,
bf16 on a GPU, compile with triton) are untested here: no GPU was available.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_map

from bench.errors import BenchError

PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}
#: The options that change what a run computes; only these enter the job hash.
HASHED_OPTIONS = ("precision", "channels_last", "compile", "tf32", "cudnn_benchmark")


def _compile_blocker(device_type: str) -> str | None:
    """Why torch.compile cannot work here, or None (the first call may still fail: that is caught too)."""
    if device_type == "cuda":
        return None if importlib.util.find_spec("triton") is not None else "triton is not installed"
    if device_type == "cpu":
        cxx = os.environ.get("CXX") or "g++"
        if shutil.which(cxx) is None and shutil.which("clang++") is None:
            return f"no C++ compiler ('{cxx}') for Inductor's CPU kernels"
        return None
    return f"torch.compile is not supported on '{device_type}' here"


class SpeedForward:
    """A module's ``forward`` replaced (as an instance attribute, so ``state_dict`` keys stay) by one
    that autocasts, converts inputs to channels_last and runs a compiled version when it can."""

    def __init__(self, module: nn.Module, name: str, *, autocast_dtype: torch.dtype | None, channels_last: bool,
                 compile: bool, log: Callable[[str], None]):
        self.eager = module.forward  # the bound method of the class
        self.name, self.autocast_dtype, self.channels_last = name, autocast_dtype, channels_last
        self.log = log
        self.fallback_reason: str | None = None
        self.compiled: Callable[..., Any] | None = torch.compile(self._run) if compile else None

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        if self.channels_last:
            args = tuple(a.contiguous(memory_format=torch.channels_last)
                         if isinstance(a, torch.Tensor) and a.dim() == 4 else a for a in args)
        if self.autocast_dtype is None:
            return self.eager(*args, **kwargs)
        device_type = next((a.device.type for a in args if isinstance(a, torch.Tensor)), "cpu")
        with torch.autocast(device_type=device_type, dtype=self.autocast_dtype):
            out = self.eager(*args, **kwargs)
        return tree_map(lambda t: t.float() if isinstance(t, torch.Tensor) and t.is_floating_point() else t, out)

    def fall_back(self, reason: str) -> None:
        self.compiled, self.fallback_reason = None, reason
        self.log(f"[speed] torch.compile of the {self.name} is off, running eagerly: {reason}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiled is not None:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as e:  # a compiler or backend failure: the eager run below decides if it was ours
                self.fall_back(f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:300]}")
        return self._run(*args, **kwargs)


@dataclass(frozen=True)
class SpeedOptions:
    """How fast a training run goes; see the module docstring for what each option does and costs."""

    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    prior_checkpointing: bool = False
    cudnn_benchmark: bool = False
    tf32: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BenchError(f"Unknown precision '{self.precision}'.", fix=f"Use one of {', '.join(PRECISIONS)}.")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> SpeedOptions:
        known = {f.name for f in fields(cls)}
        bad = sorted(set(d or {}) - known)
        if bad:
            raise BenchError(f"Unknown speed option '{bad[0]}'.", fix=f"Use only {', '.join(sorted(known))}.")
        return cls(**(d or {}))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def hashed(self) -> dict[str, Any]:
        """The options that change the numbers a run computes: these, and only these, enter the job hash."""
        return {k: getattr(self, k) for k in HASHED_OPTIONS}

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return PRECISIONS[self.precision]

    # -- modules ---------------------------------------------------------------------------------
    def apply(self, network: nn.Module, prior: nn.Module | None = None, *, device: str | torch.device | None = None,
              log: Callable[[str], None] = print) -> tuple[nn.Module, nn.Module | None, list[str]]:
        """Configure ``network`` and the frozen ``prior`` in place; return them and what was done.

        Calling it again with the same options changes nothing; with other options it is refused
        (a compiled or autocast forward cannot be half undone).
        """
        if device is None:
            device = next((p.device for p in network.parameters()), torch.device("cpu"))
        device = torch.device(device)
        if self.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise BenchError("This GPU has no bfloat16 support.", fix="Train with --precision fp32.")
        notes: list[str] = []
        self._network(network, device, notes, log)
        if prior is not None:
            notes += self.configure_prior(prior, device=device, log=log)
        return network, prior, notes

    def _claim(self, module: nn.Module, what: str) -> bool:
        done = module.__dict__.get("_bench_speed")
        if done is not None and done != self:
            raise BenchError(f"The {what} was already configured with other speed options ({done}).",
                             fix="Build a fresh module for other speed options.")
        module.__dict__["_bench_speed"] = self
        return done is None

    def _network(self, net: nn.Module, device: torch.device, notes: list[str], log: Callable[[str], None]) -> None:
        if not self._claim(net, "network"):
            return
        compile_ = self.compile
        if compile_ and (why := _compile_blocker(device.type)) is not None:
            notes.append(f"network: torch.compile unavailable ({why}); eager")
            log(f"[speed] torch.compile of the network is off, running eagerly: {why}")
            compile_ = False
        if self.channels_last:
            # only 4-D tensors: Module.to(memory_format=...) raises on a 5-D weight (RCDNet's rain-kernel bank)
            net._apply(lambda t: t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t)
            notes.append("network: 4-D weights and inputs channels_last")
        if self.autocast_dtype is not None:
            notes.append(f"network: forward under autocast({self.precision}), outputs cast to float32")
        if compile_:
            notes.append("network: forward compiled with torch.compile")
        if self.channels_last or self.autocast_dtype is not None or compile_:
            net.forward = SpeedForward(net, "network", autocast_dtype=self.autocast_dtype,  # type: ignore[method-assign]
                                       channels_last=self.channels_last, compile=compile_, log=log)

    def configure_prior(self, prior: nn.Module, *, device: str | torch.device,
                        log: Callable[[str], None] = print) -> list[str]:
        """The prior's part of :meth:`apply` (for a run with more than one prior); returns what was done."""
        from bench.prior.adm import ADMUNet, AttentionBlock, ResBlock

        device, notes = torch.device(device), []
        if not isinstance(prior, ADMUNet):
            raise BenchError(f"Speed options configure an ADM prior, got a {type(prior).__name__}.",
                             fix="Load the prior with bench.prior.load_prior or train it with train_smoke_prior.")
        if not self._claim(prior, "prior"):
            return notes
        prior.configure(autocast_dtype=self.autocast_dtype, channels_last=self.channels_last,
                        use_checkpoint=self.prior_checkpointing)
        if self.autocast_dtype is not None:
            notes.append(f"prior: autocast({self.precision}); DiffLoss reduces in float32")
        if self.channels_last:
            notes.append("prior: conv weights and activations channels_last")
        if self.prior_checkpointing:
            n = sum(isinstance(m, ResBlock | AttentionBlock) for m in prior.modules())
            notes.append(f"prior: activation checkpointing on {n} blocks of the restored branch")
        if self.compile:
            why = _compile_blocker(device.type)
            if why is None:
                prior.forward = SpeedForward(prior, "prior", autocast_dtype=None,  # type: ignore[method-assign]
                                             channels_last=False, compile=True, log=log)
                notes.append("prior: forward compiled with torch.compile")
            else:
                notes.append(f"prior: torch.compile unavailable ({why}); eager")
                log(f"[speed] torch.compile of the prior is off, running eagerly: {why}")
        return notes

    # -- process-wide backend flags ----------------------------------------------------------------
    @contextlib.contextmanager
    def backend(self, device: str | torch.device) -> Iterator[list[str]]:
        """cuDNN autotuning and TF32 for a CUDA run, restored afterwards; nothing on other devices."""
        if torch.device(device).type != "cuda":
            yield []
            return
        b = torch.backends
        saved = (b.cudnn.benchmark, b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32)
        b.cudnn.benchmark = self.cudnn_benchmark
        b.cuda.matmul.allow_tf32 = b.cudnn.allow_tf32 = self.tf32
        try:
            yield [f"cuda: cudnn.benchmark {self.cudnn_benchmark}, TF32 matmuls and convolutions {self.tf32}"]
        finally:
            b.cudnn.benchmark, b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32 = saved
