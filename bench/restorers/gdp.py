"""Generative Diffusion Prior (GDP; Fei et al., CVPR 2023), zero-shot, on our ADM prior and schedule.

GDP restores an image y with an unconditional DDPM and a degradation model whose parameters are
learned while sampling. For blind problems (low light, HDR; here also haze and rain) the model
is D(x) = f x + M: a scalar light factor f and a per-pixel light mask M. At every reverse step,
on every patch:

1. the prior gives the posterior mean, learned log-variance and x0-hat (clipped to [-1, 1]);
2. L = mean((D(z) - y)^2) over the patch, with z = x0-hat (**GDP-x0**) or z = x_t (**GDP-xt**);
3. f and M take one plain gradient step on L (learning rate 1); the mean moves by
   ``-s * dL/dz`` (s = guidance scale), once per guidance repeat (the official loop applies the
   same gradient twice);
4. overlapping patches are averaged (mean, log-variance, M; f over all patches), and
   x_{t-1} = mean + exp(logvar / 2) * noise (no noise at the last step).

No gradient flows through the prior: GDP differentiates the cheap loss with respect to x0-hat
(or x_t) only, so a step costs one prior forward per patch and no backward.

Source: Fayeben/GenerativeDiffusionPrior @ b34494cd53e344a5c726e502f552cd7fb888aad0 (the only
blind scripts are ``scripts/sample_x0_enhancement_low_light.py`` and ``..._HDR.py``; both use
``guided_diffusion/gaussian_diffusion_x0_enhancement_direct.py`` (``_HDR.py``) and
``respace_x0_enhancement.py``). Hyper-parameters, with where they are read:

* guidance scale s = 80000 (``sample_x0_enhancement_low_light.py`` l.259 ``--img_guidance_scale``;
  HDR l.269 the same), on a 256x256 patch, with the MSE a mean over the patch's 3*256*256 values;
* f and M: one gradient step per guidance call with learning rate 1 (l.110-111: ``f - grad``);
  initialised f = N(0, 1)/100, M = U[0, 1)/10000 over the whole image (l.172-173);
* two guidance calls per patch and step, each with the step's starting f and M, so the mean moves
  by 2 * grad (``..._direct.py`` l.468-471, ``condition_mean`` l.359-377: its Adam optimiser never
  receives a gradient and changes nothing);
* patches: 256x256, stride 128, plus the last-aligned position on each axis (``..._direct.py``
  l.403-410, 441-493); x0-hat clipped (``clip_denoised=True``), learned-range variance
  (``--learn_sigma True``), 1000 DDPM steps (README's MODEL_FLAGS, no ``--timestep_respacing``);
* quality-enhancement losses (the paper's low-light terms: exposure control, colour constancy,
  illumination smoothness, after Zero-DCE; their weights are read from the code): the script
  builds ``L_exp(8, 0.3)``, ``L_color``, ``L_TV`` (``MyLoss.py``; l.73-75) and computes them every
  call (l.105-107), but its active loss is the MSE alone
  (l.109); the combined loss ``- s*mse - s/100 L_exp(x0) - s/200 L_col(x0) - s L_TV(M)`` is the
  commented-out l.108. ``TASK_SETTINGS`` follows the active line (no quality term); pass
  ``quality=QUALITY_AS_COMMENTED`` for l.108. In l.108, L_TV(M) enters only the loss whose
  gradient is taken with respect to x0-hat, where it is zero, and f, M step on the MSE alone: the
  smoothness term has no effect in the official arithmetic, and none here.
* M's step is the gradient of a mean over 3 P^2 values, at most 2/P^2 of the local residual per
  step (3e-5 at P = 256): over 1000 steps M moves by a few hundredths at most, so in the
  published loop f does the fitting and M stays near its start. Kept as is;
* output: ``((x + 1) * 127.5).clamp(0, 255).to(uint8)`` (l.204), i.e. truncation; ``restore``
  returns exactly those 8-bit levels as floats in [0, 1].

Per-task settings (``TASK_SETTINGS``): low light is the published one. Dehazing and deraining
have no published GDP setting; the code's answer to an unknown degradation is this same blind
f x + M loop (used unchanged for low light and for HDR), so both use it with the low-light
numbers and no quality loss (exposure and colour terms are low-light priors). Haze,
J t + A (1 - t), is f x + M with a global transmission; rain streaks are an additive M. Expect
little from it there: with M nearly inert (above) and f free, only the prior sets the output's
brightness, x ~ y / f; on the smoke haze and rain tiles f settled at 0.6-0.9 and the output came
out brighter than the input and scored below it (PSNR), while on smoke low light it gained ~2 dB.

Any size: the canvas is cut into the official grid of prior-sized patches (256 for the real prior,
stride half a patch). A side shorter than the patch is padded by edge replication to the patch
size and cropped back at the end (the official code cannot take such images).

Differences from the official code (all arithmetic otherwise identical; see tests/test_gdp.py):

1. the random draws come from a ``torch.Generator`` seeded per image (CPU, then moved to the
   prior's device), in the official order (f, M, x_T, one noise per step); the official code uses
   the global CUDA generator, unseeded;
2. patches go through the prior in batches (``patch_batch``) and a repeated grid position is
   computed once and counted with its multiplicity (same weights; float sums in another order);
3. attention uses our SDPA path (``bench.prior.adm``), not the official einsum: ~1e-7 relative;
4. images smaller than the patch are padded (above); the official code fails on them;
5. GDP-xt for the blind model has no official script: it is the low-light loop with the guidance
   evaluated on the x_t patch, which is the one difference between the official
   ``gaussian_diffusion.py`` (GDP-xt) and ``gaussian_diffusion_x0.py`` (GDP-x0);
6. for a prior whose patch P is not 256 (the smoke prior: 32), the default s and M learning rate
   are scaled by (P/256)^2, so that the per-pixel pull (s / (3 P^2)) and the per-pixel M step are
   the official ones; at P = 256 they are exactly 80000 and 1;
7. ``steps`` < 1000 respaces the schedule as the official ``--timestep_respacing N`` would; the
   published runs use 1000;
8. batch size 1 only (one seed per image); the official loop shares f and M across a batch.

Cost (``gdp_cost``): per image, forwards = steps x patches(H, W) and no backward through the prior
(the guidance gradient is taken with respect to x0-hat or x_t of a pixel loss, a few elementwise
operations per pixel). At 256x256, 1000 steps and 2.24 TFLOP per forward (the real prior):

=============  ======  =======  ===============  ==========  ===========================
test set       images  patches  forwards         TFLOP       hours at 100 TFLOP/s
=============  ======  =======  ===============  ==========  ===========================
LOL 600x400    15      12       180,000          403,200     1.12
Rain100H       100     6        600,000          1,344,000   3.73
Dense-Haze     5       108      540,000          1,209,600   3.36
total          120              1,320,000        2,956,800   8.21 (per variant; x2 for x0 + xt)
=============  ======  =======  ===============  ==========  ===========================

100 TFLOP/s sustained is an assumption (about a third of an A100's fp16 tensor-core peak, for a
batch of 256x256 patches), not a measurement; time scales as 1/that rate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError
from bench.prior.schedule import DiffusionSchedule
from bench.registry import RESTORERS
from bench.restorers.guidance_losses import QUALITY_LOSSES, degradation_mse, illumination_smoothness
from bench.restorers.sampling import SpacedDDPM, patch_grid

#: The patch size the published hyper-parameters are stated for (the 256x256 prior).
REFERENCE_PATCH = 256

_BLIND = {
    "guidance_scale": 80000.0,  # sample_x0_enhancement_low_light.py l.259
    "lr_factor": 1.0,  # l.110: f <- f - dL/df
    "lr_mask": 1.0,  # l.111: M <- M - dL/dM
    "repeats": 2,  # gaussian_diffusion_x0_enhancement_direct.py l.468
    "steps": 1000,  # README MODEL_FLAGS: --diffusion_steps 1000, no respacing
    "quality": {},  # l.109 (the active line): MSE only
}
#: The quality terms of the commented-out official loss (l.108), as multiples of the guidance scale.
#: "smoothness" (L_TV on M) is listed for completeness: its gradient with respect to x0-hat is 0.
QUALITY_AS_COMMENTED: dict[str, float] = {"exposure": 1 / 100, "colour": 1 / 200, "smoothness": 1.0}
#: The released script's active line (l.109): the MSE alone, no quality term.
QUALITY_AS_RELEASED: dict[str, float] = {}
#: Per-task settings: explicit data, read by ``GDP``; see the module docstring for the sources. Low light
#: follows the paper, which lists exposure control, colour constancy and illumination smoothness as its
#: quality-enhancement losses (their weights are the released code's commented-out l.108); the released
#: script's active line (MSE only) is ``quality=QUALITY_AS_RELEASED``: paper first, released code as an option.
TASK_SETTINGS: dict[str, dict[str, Any]] = {
    "lowlight": {**_BLIND, "quality": dict(QUALITY_AS_COMMENTED),
                 "source": "published: scripts/sample_x0_enhancement_low_light.py, quality terms as the paper lists "
                           "them (weights of l.108)"},
    "dehazing": {**_BLIND, "source": "no published setting: the official blind f x + M loop (low light, HDR)"},
    "deraining": {**_BLIND, "source": "no published setting: the official blind f x + M loop (low light, HDR)"},
}
GUIDES = ("x0", "xt")

Progress = Callable[[int, int, float], None]


@dataclass
class GDPSample:
    """What one GDP run ends with: the sample x_0 (1 x 3 x H x W, [-1, 1] up to guidance overshoot), f and M."""

    x: torch.Tensor
    factor: torch.Tensor
    mask: torch.Tensor


class GDP:
    """GDP restorer: ``GDP(prior, task=...).restore(img, seed=...)``; ``guide`` is "x0" or "xt".

    ``prior``: a learned-variance ADM (``bench.prior``), frozen; its device is used. ``schedule``:
    the prior's training schedule (default: linear, 1000 steps). ``steps``: sampling steps
    (default: the task's, 1000). ``guidance_scale``, ``lr_factor``, ``lr_mask``, ``quality``
    override the task setting; ``None`` keeps it (scaled to the patch, see the module docstring).
    ``patch`` (default ``prior.image_size``) and ``stride`` (default ``patch // 2``) set the grid;
    ``patch_batch`` how many patches go through the prior at once (speed only).
    """

    guide = "x0"

    def __init__(
        self,
        prior: nn.Module,
        *,
        task: str = "lowlight",
        schedule: DiffusionSchedule | None = None,
        steps: int | None = None,
        guidance_scale: float | None = None,
        lr_factor: float | None = None,
        lr_mask: float | None = None,
        quality: Mapping[str, float] | None = None,
        patch: int | None = None,
        stride: int | None = None,
        patch_batch: int = 16,
        guide: str | None = None,
    ):
        if task not in TASK_SETTINGS:
            import difflib

            close = difflib.get_close_matches(task, TASK_SETTINGS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise BenchError(f"GDP has no setting for task '{task}'.{hint}",
                             fix=f"Use one of: {', '.join(TASK_SETTINGS)}.")
        self.guide = guide or self.guide
        if self.guide not in GUIDES:
            raise BenchError(f"GDP guidance must act on one of {GUIDES}, got '{self.guide}'.",
                             fix="Use the registered 'gdp_x0' or 'gdp_xt'.")
        setting = TASK_SETTINGS[task]
        self.prior, self.task = prior, task
        self.patch = int(patch or getattr(prior, "image_size", REFERENCE_PATCH))
        self.stride = int(stride or self.patch // 2)
        if self.patch < 8 or not 0 < self.stride <= self.patch:
            raise BenchError(f"GDP patch {self.patch} / stride {self.stride} is not a usable grid.",
                             fix="Use a patch of at least 8 pixels and 0 < stride <= patch.")
        area = (self.patch / REFERENCE_PATCH) ** 2  # per-pixel equivalence with the 256x256 setting
        self.guidance_scale = float(guidance_scale if guidance_scale is not None
                                    else setting["guidance_scale"] * area)
        self.lr_factor = float(lr_factor if lr_factor is not None else setting["lr_factor"])
        self.lr_mask = float(lr_mask if lr_mask is not None else setting["lr_mask"] * area)
        self.repeats = int(setting["repeats"])
        self.quality = dict(setting["quality"] if quality is None else quality)
        unknown = sorted(set(self.quality) - set(QUALITY_LOSSES) - {"smoothness"})
        if unknown:
            raise BenchError(f"Unknown GDP quality loss(es) {unknown}.",
                             fix=f"Use keys from {sorted([*QUALITY_LOSSES, 'smoothness'])}.")
        self.schedule = schedule or DiffusionSchedule.linear(1000)
        self.steps = int(steps or setting["steps"])
        self.ddpm = SpacedDDPM(self.schedule, self.steps)
        self.patch_batch = max(1, int(patch_batch))

    @property
    def device(self) -> torch.device:
        return next(self.prior.parameters()).device

    def config(self) -> dict[str, Any]:
        """Every setting that changes the numbers (for a job hash)."""
        return {"method": f"gdp_{self.guide}", "task": self.task, "steps": self.steps, "patch": self.patch,
                "stride": self.stride, "guidance_scale": self.guidance_scale, "lr_factor": self.lr_factor,
                "lr_mask": self.lr_mask, "repeats": self.repeats, "quality": dict(self.quality),
                "patch_batch": self.patch_batch}

    # -- public ------------------------------------------------------------------------------
    def restore(self, img: torch.Tensor, *, seed: int, progress: Progress | None = None) -> torch.Tensor:
        """Restore a 1 x 3 x H x W image in [0, 1]; returns 1 x 3 x H x W 8-bit levels in [0, 1] on CPU.

        Deterministic given ``seed`` (same machine and settings). ``progress(step, steps, mse)``
        is called after each sampling step with the step's mean guidance MSE. The levels are the
        official ``uint8`` conversion (truncation) of the final sample.
        """
        x = self.sample(img, seed=seed, progress=progress).x
        return (torch.floor(((x + 1) * 127.5).clamp(0, 255)) / 255).cpu()

    def sample(self, img: torch.Tensor, *, seed: int, progress: Progress | None = None) -> GDPSample:
        """The whole GDP run: final sample in [-1, 1] (unclamped) and the learned f and M, cropped to the input."""
        _check_image(img)
        dev = self.device
        h, w = img.shape[-2:]
        y = img.detach().to(dev, torch.float32) * 2 - 1
        pad_h, pad_w = max(0, self.patch - h), max(0, self.patch - w)
        if pad_h or pad_w:
            y = F.pad(y, (0, pad_w, 0, pad_h), mode="replicate")
        hc, wc = y.shape[-2:]
        gen = torch.Generator().manual_seed(int(seed))
        factor = (torch.randn([1], generator=gen) / 100).to(dev)
        mask = (torch.rand([hc, wc], generator=gen) / 10000).to(dev)
        x = torch.randn((1, 3, hc, wc), generator=gen).to(dev)
        corners = patch_grid(hc, wc, self.patch, self.stride)
        for k, i in enumerate(reversed(range(self.ddpm.steps))):
            mean, log_var, factor, mask, mse = self._step(x, i, factor, mask, y, corners)
            noise = torch.randn(x.shape, generator=gen).to(dev)
            x = mean + float(i != 0) * torch.exp(0.5 * log_var) * noise
            if progress is not None:
                progress(k + 1, self.ddpm.steps, mse)
        return GDPSample(x[..., :h, :w], factor, mask[:h, :w])

    # -- one reverse step over all patches -------------------------------------------------------
    def _step(self, x: torch.Tensor, i: int, factor: torch.Tensor, mask: torch.Tensor, y: torch.Tensor,
              corners: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float]:
        p = self.patch
        unique = list(dict.fromkeys(corners))
        done: dict[tuple[int, int], tuple[torch.Tensor, ...]] = {}
        for s in range(0, len(unique), self.patch_batch):
            chunk = unique[s:s + self.patch_batch]
            xs = torch.cat([x[..., a:a + p, b:b + p] for a, b in chunk])
            ys = torch.cat([y[..., a:a + p, b:b + p] for a, b in chunk])
            ms = torch.stack([mask[a:a + p, b:b + p] for a, b in chunk])[:, None]
            with torch.no_grad():
                out = self.prior(xs, self.ddpm.model_timesteps(i, len(chunk), xs.device))
            post = self.ddpm.p_mean_variance(out.float(), xs, i)
            grad, f_new, m_new, mse = self._guidance(post.pred_x0 if self.guide == "x0" else xs, factor, ms, ys)
            mean = post.mean
            for _ in range(self.repeats):  # the official loop adds the same gradient `repeats` times
                mean = mean + grad
            for j, c in enumerate(chunk):
                done[c] = (mean[j], post.log_variance[j], f_new[j].reshape(1), m_new[j, 0], mse[j])

        mean_acc, var_acc, hits = torch.zeros_like(x), torch.zeros_like(x), torch.zeros_like(x)
        mask_acc, mask_hits = torch.zeros_like(mask), torch.zeros_like(mask)
        factor_acc: torch.Tensor | int = 0
        for a, b in corners:  # official order and multiplicity
            m, v, f_new, m_new, _ = done[(a, b)]
            mask_acc[a:a + p, b:b + p] += m_new
            factor_acc = factor_acc + f_new
            mask_hits[a:a + p, b:b + p] += 1
            hits[..., a:a + p, b:b + p] += 1
            mean_acc[0, :, a:a + p, b:b + p] += m
            var_acc[0, :, a:a + p, b:b + p] += v
        mse_mean = float(torch.stack([done[c][4] for c in unique]).mean())
        return (mean_acc / hits, var_acc / hits, factor_acc / len(corners), mask_acc / mask_hits, mse_mean)

    def _guidance(self, z: torch.Tensor, factor: torch.Tensor, masks: torch.Tensor, ys: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per patch: -s dL/dz, f and M after one step on the MSE, and the MSE (official ``light_cond_fn``)."""
        s = self.guidance_scale
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            f = factor.detach().reshape(1, 1, 1, 1).expand(z.shape[0], 1, 1, 1).clone().requires_grad_(True)
            m = masks.detach().clone().requires_grad_(True)
            mse = degradation_mse(z, f, m, ys)
            loss = -(mse.sum() * s)
            for name, weight in self.quality.items():
                term = illumination_smoothness(m) if name == "smoothness" else QUALITY_LOSSES[name](z)
                loss = loss - term.sum() * s * weight
            g_f, g_m = torch.autograd.grad(mse.sum(), (f, m), retain_graph=True)
            (g_z,) = torch.autograd.grad(loss, z)
        return g_z, (f - self.lr_factor * g_f).detach(), (m - self.lr_mask * g_m).detach(), mse.detach()


@RESTORERS.register("gdp_x0", paper="Fei et al., CVPR 2023", zero_shot=True, tasks=tuple(TASK_SETTINGS),
                    summary="GDP-x0: guidance on x0-hat with the blind f x + M degradation learned while sampling")
class GDPx0(GDP):
    guide = "x0"


@RESTORERS.register("gdp_xt", paper="Fei et al., CVPR 2023", zero_shot=True, tasks=tuple(TASK_SETTINGS),
                    summary="GDP-xt: guidance on the noisy sample x_t with the blind f x + M degradation")
class GDPxt(GDP):
    guide = "xt"


def _check_image(img: Any) -> None:
    if not isinstance(img, torch.Tensor) or img.dim() != 4 or img.shape[0] != 1 or img.shape[1] != 3:
        shape = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
        raise BenchError(f"GDP restores one RGB image given as a 1 x 3 x H x W tensor, got {shape}.",
                         fix="Pass img[None] for a 3 x H x W image, and one image per call (each has its seed).")
    if not img.is_floating_point() or not torch.isfinite(img).all() or img.min() < 0 or img.max() > 1:
        raise BenchError("GDP's input must be a finite floating-point image in [0, 1].",
                         fix="Divide 8-bit images by 255 (bench.data.base.read_image does) and clamp to [0, 1].")


# -- cost arithmetic -----------------------------------------------------------------------------
#: Test sets of the paper profile's GDP rows: (images, height, width). Dense-Haze 1600x1200,
#: Rain100H 481x321 (66 landscape, 34 portrait: the grid count is the same), LOL eval15 600x400.
PAPER_TEST_SETS: dict[str, tuple[int, int, int]] = {
    "dense_haze": (5, 1200, 1600),
    "rain100h": (100, 321, 481),
    "lol": (15, 400, 600),
}
#: Forward cost of 256x256_diffusion_uncond at 256x256, batch 1 (TFLOP), as measured for this project.
ADM256_TFLOP_PER_FORWARD = 2.24


def gdp_cost(height: int, width: int, *, images: int = 1, steps: int = 1000, patch: int = REFERENCE_PATCH,
             stride: int | None = None, tflop_per_forward: float = ADM256_TFLOP_PER_FORWARD,
             sustained_tflops: float = 100.0) -> dict[str, float]:
    """Prior forwards, backwards, TFLOP and GPU hours of GDP on ``images`` images of ``height`` x ``width``.

    forwards = images x steps x patches(H, W), patches = the unique positions of the official
    grid (sides shorter than the patch are padded to it); backwards = 0 (GDP never differentiates
    through the prior); time = forwards x tflop_per_forward / sustained_tflops. GDP-x0 and GDP-xt
    cost the same. ``sustained_tflops`` is an assumption, not a measurement: state it beside the result.
    """
    stride = stride or patch // 2
    grid = patch_grid(max(height, patch), max(width, patch), patch, stride)
    n = len(set(grid))
    forwards = images * steps * n
    tflop = forwards * tflop_per_forward
    return {"patches_per_step": n, "grid_positions_official": len(grid), "forwards": forwards, "backwards": 0,
            "tflop": tflop, "gpu_hours": tflop / sustained_tflops / 3600, "sustained_tflops": sustained_tflops}


def paper_profile_cost(sustained_tflops: float = 100.0, steps: int = 1000) -> dict[str, dict[str, float]]:
    """``gdp_cost`` for each paper test set and their total, for one GDP variant (x0 or xt)."""
    rows = {name: gdp_cost(h, w, images=n, steps=steps, sustained_tflops=sustained_tflops)
            for name, (n, h, w) in PAPER_TEST_SETS.items()}
    rows["total"] = {k: sum(r[k] for r in rows.values()) for k in ("forwards", "backwards", "tflop", "gpu_hours")}
    rows["total"]["sustained_tflops"] = sustained_tflops
    return rows
