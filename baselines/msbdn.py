"""MSBDN-DFF: Multi-Scale Boosted Dehazing Network with Dense Feature Fusion (Dong et al., CVPR 2020).

A five-scale U-Net (16 -> 256 channels, four stride-2 stages) with an 18-block residual
bottleneck. Two ideas make it more than a U-Net:

* "boosting" in the decoder: each decoder scale adds the upsampled coarser result to
  the skip feature, refines the sum and subtracts the upsampled term again
  (strengthen-operate-subtract);
* dense feature fusion (DFF): every scale back-projects its feature to each earlier
  scale, takes the difference to what was there and projects that error back, so
  every scale sees all the others.

Module and parameter names follow the official ``networks/MSBDN-DFF-v1-1.py`` and
``networks/base_networks.py`` so that official checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines._base import Restorer, TrainRecipe
from bench.registry import BASELINES

#: Channel width of the five scales, full resolution first (hard-wired in the official ``Net``).
WIDTHS = (16, 32, 64, 128, 256)


class ReflectConv(nn.Module):
    """Reflection-padded convolution (official ``ConvLayer``); keeps the size at stride 1."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.pad = kernel_size // 2
        self.conv2d = nn.Conv2d(cin, cout, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(F.pad(x, (self.pad,) * 4, mode="reflect"))


class UpConv(nn.Module):
    """Unpadded 3x3 stride-2 transposed convolution (official ``UpsampleConvLayer``).

    It yields 2h+1 pixels; the decoder resizes that bilinearly onto the skip feature.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv2d = nn.ConvTranspose2d(cin, cout, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(x)


class ResidualBlock(nn.Module):
    """conv-PReLU-conv with the branch scaled by 0.1 before the skip (official ``ResidualBlock``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ReflectConv(channels, channels, 3)
        self.conv2 = ReflectConv(channels, channels, 3)
        self.relu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu(self.conv1(x))) * 0.1 + x


def _residual_stack(channels: int, n: int = 3) -> nn.Sequential:
    return nn.Sequential(*(ResidualBlock(channels) for _ in range(n)))


class ConvPReLU(nn.Module):
    """4x4 stride-2 convolution + PReLU: one step down in the fusion blocks (official ``ConvBlock``)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, stride=2, padding=1)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class DeconvPReLU(nn.Module):
    """4x4 stride-2 transposed convolution + PReLU: one step up (official ``DeconvBlock``)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.deconv(x))


def _back_project(
    fused: torch.Tensor, target: torch.Tensor, there: list[nn.Module], back: list[nn.Module]
) -> torch.Tensor:
    """Project ``fused`` through ``there`` onto ``target``'s scale and the error back through ``back``."""
    ft = fused
    for m in there:
        ft = m(ft)
    ft = ft - target
    for m in back:
        ft = m(ft)
    return fused + ft


class EncoderFusion(nn.Module):
    """DFF on the way down (official ``Encoder_MDCBlock1``, mode ``iter2``).

    The new coarse feature is fused with every finer one in ``memory`` (finest first):
    up to that scale, subtract, back down, add. ``up_convs[i]`` halves the width,
    ``down_convs[i]`` doubles it back.
    """

    def __init__(self, width: int, num_ft: int) -> None:
        super().__init__()
        self.steps = num_ft - 1
        self.up_convs = nn.ModuleList(DeconvPReLU(width >> i, width >> (i + 1)) for i in range(self.steps))
        self.down_convs = nn.ModuleList(ConvPReLU(width >> (i + 1), width >> i) for i in range(self.steps))

    def forward(self, coarse: torch.Tensor, memory: list[torch.Tensor]) -> torch.Tensor:
        fused = coarse
        for i, finer in enumerate(memory):
            n = self.steps - i
            ups = [self.up_convs[j] for j in range(n)]
            downs = [self.down_convs[j] for j in reversed(range(n))]
            fused = _back_project(fused, finer, ups, downs)
        return fused


class DecoderFusion(nn.Module):
    """DFF on the way up (official ``Decoder_MDCBlock1``, mode ``iter2``).

    The new fine feature is fused with every coarser decoder feature in ``memory``
    (coarsest first): down to that scale, subtract, back up, add.
    """

    def __init__(self, width: int, num_ft: int) -> None:
        super().__init__()
        self.steps = num_ft - 1
        self.down_convs = nn.ModuleList(ConvPReLU(width << i, width << (i + 1)) for i in range(self.steps))
        self.up_convs = nn.ModuleList(DeconvPReLU(width << (i + 1), width << i) for i in range(self.steps))

    def forward(self, fine: torch.Tensor, memory: list[torch.Tensor]) -> torch.Tensor:
        fused = fine
        for i, coarser in enumerate(memory):
            n = self.steps - i
            downs = [self.down_convs[j] for j in range(n)]
            ups = [self.up_convs[j] for j in reversed(range(n))]
            fused = _back_project(fused, coarser, downs, ups)
        return fused


def _resize_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    # Official: F.upsample(..., mode='bilinear') with the default align_corners (False).
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


MSBDN_RECIPE = TrainRecipe(
    loss="mse",
    lr=1e-4,
    batch=16,
    patch=256,
    schedule="step(every 50 epochs, x0.1)",
    iterations=None,
    optimizer="adam(default betas, no weight decay)",
    notes=(
        "BookerDeWitt/MSBDN-DFF train.py: torch.nn.MSELoss on the raw output, Adam lr 1e-4, batchSize 16, "
        "training_settings nEpochs 100 with lr = 1e-4 * 0.1 ** (epoch // 50) (epochs count from 1); 256x256 patches "
        "from HDF5/dehaze_RESIDE_HDF5.m (RESIDE, bicubic downscales 0.5/0.7/1, stride 128) with random flip + "
        "rot90. The --clip 0.25 option is parsed but never applied. Inputs in [0, 1], no normalisation; test.py "
        "clamps the output to [0, 1] before PSNR/SSIM."
    ),
)


@BASELINES.register(
    "msbdn",
    task="dehazing",
    dataset="dense_haze",
    paper=(
        "Dong, Pan, Hu, Lei, Zhang, Wang, Yang, CVPR 2020, "
        "Multi-Scale Boosted Dehazing Network with Dense Feature Fusion"
    ),
    repo="BookerDeWitt/MSBDN-DFF",
    commit="ab515e2530caafbd5d054e5da1f7a854f2e9a03d",
    fixture="msbdn",
    params=31_353_061,
    input_range=(0.0, 1.0),
    recipe=MSBDN_RECIPE,
    size_multiple_note=(
        "four stride-2 stages whose dense feature fusion projects each scale exactly onto the finer ones, so H and W "
        "must be multiples of 16 (and at least 32, for the reflection padding at the 1/16 scale); forward "
        "reflect-pads and crops back"
    ),
)
class MSBDN(Restorer):
    """The official MSBDN-DFF ``Net`` (``networks/MSBDN-DFF-v1-1.py``, the README's training model).

    ``official_forward`` and ``forward`` both map a [0, 1] RGB image to the raw,
    unclamped output; the official test clamps it to [0, 1] before scoring.
    """

    size_multiple = 16

    def __init__(self, res_blocks: int = 18) -> None:
        super().__init__()
        c = WIDTHS
        self.conv_input = ReflectConv(3, c[0], 11)
        self.dense0 = _residual_stack(c[0])
        self.conv2x = ReflectConv(c[0], c[1], 3, stride=2)
        self.fusion1 = EncoderFusion(c[1], 2)
        self.dense1 = _residual_stack(c[1])
        self.conv4x = ReflectConv(c[1], c[2], 3, stride=2)
        self.fusion2 = EncoderFusion(c[2], 3)
        self.dense2 = _residual_stack(c[2])
        self.conv8x = ReflectConv(c[2], c[3], 3, stride=2)
        self.fusion3 = EncoderFusion(c[3], 4)
        self.dense3 = _residual_stack(c[3])
        self.conv16x = ReflectConv(c[3], c[4], 3, stride=2)
        self.fusion4 = EncoderFusion(c[4], 5)

        self.dehaze = nn.Sequential()
        for i in range(res_blocks):
            self.dehaze.add_module(f"res{i}", ResidualBlock(c[4]))

        self.convd16x = UpConv(c[4], c[3])
        self.dense_4 = _residual_stack(c[3])
        self.fusion_4 = DecoderFusion(c[3], 2)
        self.convd8x = UpConv(c[3], c[2])
        self.dense_3 = _residual_stack(c[2])
        self.fusion_3 = DecoderFusion(c[2], 3)
        self.convd4x = UpConv(c[2], c[1])
        self.dense_2 = _residual_stack(c[1])
        self.fusion_2 = DecoderFusion(c[1], 4)
        self.convd2x = UpConv(c[1], c[0])
        self.dense_1 = _residual_stack(c[0])
        self.fusion_1 = DecoderFusion(c[0], 5)
        self.conv_output = ReflectConv(c[0], 3, 3)

    def official_forward(self, x: torch.Tensor) -> torch.Tensor:
        # Encoder: each scale = strided conv, DFF with all finer scales, residual stack.
        res1x = self.conv_input(x)
        memory = [res1x]
        feats = [self.dense0(res1x) + res1x]
        stages = (
            (self.conv2x, self.fusion1, self.dense1),
            (self.conv4x, self.fusion2, self.dense2),
            (self.conv8x, self.fusion3, self.dense3),
        )
        for down, fusion, dense in stages:
            h = fusion(down(feats[-1]), memory)
            memory.append(h)
            feats.append(dense(h) + h)
        bottom = self.fusion4(self.conv16x(feats[-1]), memory)

        # Bottleneck: residual blocks on the doubled feature, minus the feature (boosting).
        doubled = bottom * 2
        h = self.dehaze(doubled) + doubled - bottom

        # Decoder: strengthen (add upsampled), operate (residual stack), subtract, then DFF.
        memory_up = [h]
        ups = (
            (self.convd16x, self.dense_4, self.fusion_4),
            (self.convd8x, self.dense_3, self.fusion_3),
            (self.convd4x, self.dense_2, self.fusion_2),
            (self.convd2x, self.dense_1, self.fusion_1),
        )
        for (up, dense, fusion), skip in zip(ups, reversed(feats), strict=True):
            u = _resize_to(up(h), skip)
            s = u + skip
            h = fusion(dense(s) + s - u, memory_up)
            memory_up.append(h)
        return self.conv_output(h)

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        # The official pipeline feeds RGB in [0, 1] unnormalised and trains on the raw output.
        return self.official_forward(x)
