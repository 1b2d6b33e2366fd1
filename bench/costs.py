"""What a job costs (GPU memory, disk, time), estimated before it runs.

The preflight compares the largest job's peak GPU memory with the device's and the run's output
with the free disk; the Slurm executor turns the same numbers into resource requests; the GPU
schedule of REPRODUCE.md adds the times up. Every number here is an estimate with its source
stated beside it; where a measurement replaces one (``benchmarks/``), the source says so.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1 << 30
#: The paper's step: batch 4, 256x256 patches.
PAPER_BATCH, PAPER_PATCH = 4, 256
#: 256x256_diffusion_uncond.pt: 552,814,086 float32 parameters.
PRIOR_PARAMS = 552_814_086
PRIOR_TFLOP_PER_FORWARD = 2.2397  # counted with FlopCounterMode at 256x256 (REPRODUCE.md, "Measured speed")

#: Network activations kept for backward at the paper's step in float32 (GiB), and parameters.
#: Source: issue 12's estimate (peak with DiffLoss minus the prior's part), not measured on a GPU.
NETWORK_ACTIVATIONS_GIB: dict[str, float] = {
    "deeplpf": 2.0, "efderain": 3.0, "fsdgn": 2.0, "griddehazenet": 2.0, "iat": 1.0, "msbdn": 3.0,
    "rcdnet": 21.0, "mb_taylorformer": 26.0,
}
NETWORK_PARAMS: dict[str, int] = {  # the official counts (fixtures' meta.json; `bench ls baselines`)
    "deeplpf": 1_769_347, "efderain": 27_395_406, "fsdgn": 2_731_283, "griddehazenet": 958_051, "iat": 91_154,
    "mb_taylorformer": 2_676_520, "msbdn": 31_353_061, "rcdnet": 3_166_355,
}
#: Paper-step network TFLOP (forward + backward = 3 x forward at batch 4, 256 px; bench ls baselines' GFLOPs).
NETWORK_STEP_TFLOP: dict[str, float] = {
    "deeplpf": 0.15, "efderain": 1.16, "fsdgn": 0.25, "griddehazenet": 0.45, "iat": 0.04, "mb_taylorformer": 0.84,
    "msbdn": 0.59, "rcdnet": 5.02,
}
#: The prior's restored-branch activations at the paper's step (GiB, float32): ~20 without activation
#: checkpointing, ~6 with it (issue 12's estimate); the clear branch runs without autograd.
DIFFLOSS_ACTIVATIONS_GIB = 20.0
DIFFLOSS_ACTIVATIONS_CHECKPOINTED_GIB = 6.0
#: Sustained throughput assumed for time estimates until a GPU measurement replaces it: about half the
#: dense bf16 peak of an H100/H200 (989 TFLOP/s), i.e. issue 12's 55 ms target for a 27-TFLOP paper step.
ASSUMED_TFLOPS = 490.0


@dataclass(frozen=True)
class TrainCost:
    """Estimated peak GPU memory and time of one training job."""

    peak_gib: float
    step_tflop: float
    steps: int

    @property
    def hours(self) -> float:
        return self.step_tflop * self.steps / ASSUMED_TFLOPS / 3600


def train_cost(baseline: str, *, diffloss: bool, steps: int, batch: int = PAPER_BATCH, patch: int = PAPER_PATCH,
               bf16: bool = False, prior_checkpointing: bool = False) -> TrainCost:
    """Peak memory and compute of a train job, scaled from the paper's step by batch x (patch/256)^2."""
    scale = batch / PAPER_BATCH * (patch / PAPER_PATCH) ** 2
    act = NETWORK_ACTIVATIONS_GIB.get(baseline, 3.0)
    params = NETWORK_PARAMS.get(baseline, 10_000_000)
    weights = params * 4 * 4 / GIB  # weights, gradients, two Adam moments
    flop = NETWORK_STEP_TFLOP.get(baseline, 1.0) * scale
    prior = 0.0
    if diffloss:
        act += DIFFLOSS_ACTIVATIONS_CHECKPOINTED_GIB if prior_checkpointing else DIFFLOSS_ACTIVATIONS_GIB
        prior = PRIOR_PARAMS * 4 / GIB
        # three passes per image: forward on both branches, and the restored branch's backward, which
        # computes input gradients only (the prior's weights are frozen), about one forward's FLOPs
        flop += PRIOR_TFLOP_PER_FORWARD * 3 * batch * (patch / PAPER_PATCH) ** 2
    act *= scale * (0.5 if bf16 else 1.0)
    return TrainCost(peak_gib=act + weights + prior, step_tflop=flop, steps=steps)


def checkpoint_bytes(baseline: str, snapshots: int = 0) -> int:
    """Disk of a train job: two checkpoints (weights + Adam) and the final weights, plus snapshots."""
    params = NETWORK_PARAMS.get(baseline, 10_000_000)
    return params * 4 * (3 * 2 + 1 + snapshots)


def images_bytes(n_images: int, height: int, width: int) -> int:
    """Disk of restored PNG images (about 2 bytes per pixel for natural photographs)."""
    return n_images * height * width * 2
