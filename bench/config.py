"""Profiles: the one defaults object per run that the CLI, the job graph and the API share.

* ``smoke``: embedded data (scikit-image photographs, synthetic degradations), a small
  ADM prior trained here, a few CPU-minutes in all. Never a reproduction.
* ``truncated``: real data under ``--data-root`` cut to ``--limit`` pairs (CUB: a few images
  per class, and with ``--classes`` the first k classes); the smoke prior
  unless the official prior file is present. Never a reproduction.
* ``paper``: full data, the official 256x256 unconditional prior, the paper's recipe
  (Adam 1e-4, batch 4, patch 256).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bench.errors import UnknownNameError


@dataclass(frozen=True)
class Profile:
    name: str
    embedded_data: bool  # True: smoke data built here; False: real data sets under --data-root
    prior: str  # "smoke" (trained by a job) or a weights-manifest name
    steps: int  # training iterations per baseline unless ``steps_per_baseline`` says otherwise
    batch: int
    patch: int
    lr: float
    ckpt_every: int
    log_every: int
    limit: int | None  # pairs per real data set (truncated profile)
    classes: int | None = None  # CUB: only the first k classes (truncated profile; Table 2, Figure 7)
    prior_steps: int = 0  # smoke prior training iterations
    #: Sampling steps of the zero-shot restorers (GDP): the published 1000 on the paper profile, few on CPU.
    zero_shot_steps: int = 1000
    steps_per_baseline: dict[str, int] = field(default_factory=dict)
    eval_metrics: tuple[str, ...] = ("psnr", "ssim")
    is_reproduction: bool = False
    #: Training speed options (bench.train.speed.SpeedOptions); --precision etc. override them.
    speed: dict[str, Any] = field(default_factory=dict)

    def steps_for(self, baseline: str) -> int:
        return self.steps_per_baseline.get(baseline, self.steps)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", embedded_data=True, prior="smoke", steps=20, batch=2, patch=48, lr=5e-4,
        ckpt_every=10, log_every=5, limit=None, prior_steps=400, zero_shot_steps=10,
    ),
    "truncated": Profile(
        name="truncated", embedded_data=False, prior="smoke", steps=20, batch=2, patch=48, lr=5e-4,
        ckpt_every=10, log_every=5, limit=8, prior_steps=400, zero_shot_steps=10,
    ),
    "paper": Profile(
        name="paper", embedded_data=False, prior="adm256_uncond", steps=40_000, batch=4, patch=256, lr=1e-4,
        ckpt_every=1000, log_every=100, limit=None, is_reproduction=True,
        eval_metrics=("psnr", "ssim", "lpips", "fid"),
        # What a GPU user should run, chosen without a GPU measurement (none was lent; REPRODUCE.md, "Speed
        # options"): float32 with TF32 matrix products (PyTorch's own default for convolutions, most likely what
        # the authors ran), channels-last and cuDNN autotuning for the fixed 256x256 shapes; bf16, compile and
        # prior checkpointing are opt-in.
        speed={"precision": "fp32", "tf32": True, "channels_last": True, "cudnn_benchmark": True},
    ),
}

#: ``--rehearse STEPS``: the paper profile's shapes (patch 256, batch 4, full-resolution test images, the
#: 256x256 ADM) with every training cut to STEPS steps; its tables are titled REHEARSAL, never a reproduction.
REHEARSAL = "rehearsal"


def get_profile(name: str, *, rehearse: int | None = None, **overrides: Any) -> Profile:
    """The named profile with ``overrides`` (None values ignored); ``rehearse=STEPS`` makes a paper rehearsal."""
    if name not in PROFILES:
        import difflib

        close = difflib.get_close_matches(name, list(PROFILES), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UnknownNameError(f"Unknown profile '{name}'.{hint}", fix=f"Choose one of {', '.join(PROFILES)}.")
    p = PROFILES[name]
    if rehearse is not None:
        from bench.errors import BenchError

        if name != "paper":
            raise BenchError(f"--rehearse rehearses the paper profile, not '{name}'.",
                             fix="Add --profile paper (the shapes rehearsed are the paper's).")
        if rehearse < 1:
            raise BenchError(f"--rehearse needs at least 1 step, got {rehearse}.", fix="For example: --rehearse 2.")
        p = replace(p, name=REHEARSAL, steps=rehearse, steps_per_baseline={}, is_reproduction=False,
                    ckpt_every=max(1, rehearse), log_every=1, zero_shot_steps=rehearse)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(p, **overrides) if overrides else p
