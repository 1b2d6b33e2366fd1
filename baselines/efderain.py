"""EfDeRain: pixel-wise dilation filtering for single-image deraining (Guo et al., AAAI 2021).

A kernel prediction network: a five-scale U-Net (64 -> 512 channels, average-pool down,
bilinear up) predicts a K x K filter for every pixel and colour channel. That filter is
applied to the rainy image at four dilation rates (1, 2, 3, 4) and a 3x3 convolution fuses
the four filtered images into the derained one. The image itself only passes through the
predicted filters, which is what makes the method cheap and stable.

Faithful to the official ``network.py`` (class ``KPN``) with the configuration of
``train.py``'s defaults (color, burst_length 1, blind_est, kernel_size [3], no attention,
bilinear up-sampling, no core bias); parameter names match, so official checkpoints
load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from baselines._base import Restorer, TrainRecipe
from bench.registry import BASELINES

#: Dilation rates at which the predicted per-pixel filters are applied (hard-wired officially).
RATES = (1, 2, 3, 4)
#: Colour channels; ``conv_final`` fuses len(RATES) x 3 = 12 channels in the official code.
COLOR = 3


class Basic(nn.Module):
    """Three conv3x3-ReLU layers, optionally followed by channel / spatial attention (official ``Basic``)."""

    def __init__(self, in_ch: int, out_ch: int, g: int = 16, channel_att: bool = False, spatial_att: bool = False):
        super().__init__()
        self.channel_att = channel_att
        self.spatial_att = spatial_att
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(out_ch, out_ch, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(out_ch, out_ch, 3, padding=1),
            nn.ReLU(),
        )
        if channel_att:
            self.att_c = nn.Sequential(
                nn.Conv2d(2 * out_ch, out_ch // g, 1),
                nn.ReLU(),
                nn.Conv2d(out_ch // g, out_ch, 1),
                nn.Sigmoid(),
            )
        if spatial_att:
            self.att_s = nn.Sequential(nn.Conv2d(2, 1, 7, padding=3), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fm = self.conv1(x)
        if self.channel_att:
            pooled = torch.cat([F.adaptive_avg_pool2d(fm, 1), F.adaptive_max_pool2d(fm, 1)], dim=1)
            fm = fm * self.att_c(pooled)
        if self.spatial_att:
            pooled = torch.cat([fm.mean(dim=1, keepdim=True), fm.amax(dim=1, keepdim=True)], dim=1)
            fm = fm * self.att_s(pooled)
        return fm


def apply_pixel_filters(image: torch.Tensor, filters: torch.Tensor, kernel_size: int, rate: int) -> torch.Tensor:
    """Filter each pixel and channel of ``image`` with its own dilated K x K kernel (official ``KernelConv``).

    ``filters`` is N x (C*K*K) x H x W, channel-major, taps row-major; the image is
    zero-padded by (K // 2) * rate so the output keeps the input size.
    """
    n, c, h, w = image.shape
    k2 = kernel_size * kernel_size
    taps = F.unfold(image, kernel_size, dilation=rate, padding=(kernel_size // 2) * rate)
    return (filters.reshape(n, c, k2, h, w) * taps.reshape(n, c, k2, h, w)).sum(dim=2)


CHANNELS = (64, 128, 256, 512, 512)
#: Gain of the official xavier_normal initialisation of conv weights (train.py ``--init_gain``).
INIT_GAIN = 0.02

EFDERAIN_RECIPE = TrainRecipe(
    loss="l1-0.2ssim",
    lr=2e-4,
    batch=16,
    patch=256,
    schedule="linear decay: lr = 2e-4 * (5000 - e) / 3000 from 1-based epoch e = 2000 on (set every iteration)",
    iterations=565_000,
    optimizer="adam(betas=(0.5, 0.999), weight_decay=0)",
    notes=(
        "tsingqguo/efficientderain train_rain100H.sh + train.py + trainer.py: --lr_g 2e-4 --b1 0.5 --b2 0.999 "
        "--train_batch_size 16 --crop_size 256 --epochs 5000 --lr_decrease_epoch 2000, rainaug false, no flips "
        "or rotations (angle_aug default false), random 256x256 crops of [0, 1] RGB images, conv weights "
        "xavier_normal with gain 0.02 (EfDeRain.init_official_weights, applied at construction). "
        "Loss = L1(pred, gt) - 0.2 * SSIM(gt, pred) (pytorch_ssim: 11x11 Gaussian window, sigma 1.5, mean over "
        "the map). 1800 Rain100H pairs / 16 = 113 batches x 5000 epochs = 565k iterations (train_rain1400.sh: "
        "250 epochs, decay from epoch 50). The DiffLoss paper trains on Rain13K."
    ),
)


@BASELINES.register(
    "efderain",
    task="deraining",
    dataset="rain100h",
    paper="Guo, Sun, Juefei-Xu, Ma, Xie, Feng, Liu, Zhao, AAAI 2021, EfficientDeRain: Learning Pixel-wise "
    "Dilation Filtering for High-Efficiency Single-Image Deraining",
    repo="tsingqguo/efficientderain",
    commit="465759da2428a4263eeee6ab464a0135fca2900c",
    fixture="efderain",
    params=27_395_406,
    input_range=(0.0, 1.0),
    recipe=EFDERAIN_RECIPE,
    size_multiple_note=(
        "four 2x average pools whose outputs are concatenated with bilinear 2x up-samplings, so H and W must be "
        "multiples of 16; forward reflect-pads and crops back (the official test instead bilinearly resizes to "
        "the next multiple of 16 and back: see EfDeRain.restore_resized)"
    ),
)
class EfDeRain(Restorer):
    """The official ``KPN`` (``network.py``) with its constructor keywords.

    ``official_forward`` is the official ``model(x, x)`` on a [0, 1] image (the test and
    training scripts pass the rainy image twice); ``forward`` is the same with padding to a
    multiple of 16. The network's output is not clamped (the official code clamps only
    when saving PNGs).
    """

    size_multiple = 16

    def __init__(
        self,
        color: bool = True,
        burst_length: int = 1,
        blind_est: bool = True,
        kernel_size: Sequence[int] = (3,),
        sep_conv: bool = False,
        channel_att: bool = False,
        spatial_att: bool = False,
        upMode: str = "bilinear",  # the official keyword name
        core_bias: bool = False,
    ) -> None:
        super().__init__()
        if not (color and burst_length == 1 and blind_est):
            # conv_final takes 12 = 4 rates x 3 colours channels: only single colour images run.
            raise ValueError("EfDeRain runs on single colour images only: color=True, burst_length=1, blind_est=True")
        if sep_conv or core_bias or len(kernel_size) != 1:
            # Officially, several kernel sizes without sep_conv raise a KeyError in KernelConv and
            # core_bias a broadcasting error; the published models use one size, no bias, no sep_conv.
            raise ValueError("EfDeRain supports kernel_size=[K], sep_conv=False, core_bias=False only")
        self.kernel_size = int(kernel_size[0])
        self.up_mode = upMode
        out_channel = COLOR * self.kernel_size**2
        att = {"channel_att": channel_att, "spatial_att": spatial_att}
        c = CHANNELS
        self.conv1 = Basic(COLOR, c[0])
        self.conv2 = Basic(c[0], c[1])
        self.conv3 = Basic(c[1], c[2])
        self.conv4 = Basic(c[2], c[3])
        self.conv5 = Basic(c[3], c[4])
        self.conv6 = Basic(c[3] + c[4], c[3], **att)
        self.conv7 = Basic(c[2] + c[3], c[2], **att)
        self.conv8 = Basic(c[2] + c[1], out_channel, **att)
        self.outc = nn.Conv2d(out_channel, out_channel, 1)
        self.conv_final = nn.Conv2d(COLOR * len(RATES), COLOR, 3, padding=1)
        self.init_official_weights()

    def init_official_weights(self, gain: float = INIT_GAIN) -> None:
        """The official training start: every conv weight ~ xavier_normal(gain 0.02), biases as PyTorch sets them.

        ``utils.create_generator`` applies ``weights_init(net, 'xavier', 0.02)`` (train.py's
        defaults) to a fresh KPN; doing it here makes a built model start where official training does.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_normal_(module.weight, gain=gain)

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode=self.up_mode)

    def predict_filters(self, x: torch.Tensor) -> torch.Tensor:
        """The U-Net's per-pixel filters: N x 3K^2 x H x W, colour-major, taps row-major."""
        c1 = self.conv1(x)
        c2 = self.conv2(F.avg_pool2d(c1, 2))
        c3 = self.conv3(F.avg_pool2d(c2, 2))
        c4 = self.conv4(F.avg_pool2d(c3, 2))
        c5 = self.conv5(F.avg_pool2d(c4, 2))
        c6 = self.conv6(torch.cat([c4, self._up(c5)], dim=1))
        c7 = self.conv7(torch.cat([c3, self._up(c6)], dim=1))
        c8 = self.conv8(torch.cat([c2, self._up(c7)], dim=1))
        return self.outc(self._up(c8))

    def filtered_images(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The rainy image filtered at each dilation rate in RATES (inputs of ``conv_final``)."""
        filters = self.predict_filters(x)
        return [apply_pixel_filters(x, filters, self.kernel_size, r) for r in RATES]

    def official_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_final(torch.cat(self.filtered_images(x), dim=1))

    def restore_resized(self, x: torch.Tensor) -> torch.Tensor:
        """The official test pipeline for any size: bilinear resize up to multiples of 16, run, resize back.

        ``DenoisingValDataset`` upsizes with ``cv2.resize`` (bilinear, half-pixel centres) and
        ``save_sample_png`` / ``recover_process`` resize the output back the same way; this is
        that in PyTorch on float images (cv2 works on 8-bit images, so values differ by rounding).
        """
        h, w = x.shape[-2:]
        m = self.size_multiple
        th, tw = -(-h // m) * m, -(-w // m) * m
        if (th, tw) == (h, w):
            return self.official_forward(x)
        y = self.official_forward(F.interpolate(x, size=(th, tw), mode="bilinear", align_corners=False))
        return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
