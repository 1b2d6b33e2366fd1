"""FSDGN: Frequency and Spatial Dual Guidance Network for image dehazing (Yu et al., ECCV 2022).

Two U-Nets in sequence. Stage 1 mixes spatial residual blocks with Fourier blocks that
re-weight amplitude and phase; a supervised attention module (SAM) turns its decoder
features into a first dehazed image and an attention-gated feature map that seeds
stage 2. Stage 2 is a purely spatial U-Net that also receives stage 1's encoder and
decoder features through 1x1 "cross-stage feature fusion" convolutions. Inside each U-Net,
MSBDN-style dense feature fusion (DDFF) back-projects every earlier scale into the
current one.

Module and parameter names follow the official ``basicsr/archs/FSDGN_arch.py`` so that
official checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines._base import Restorer, TrainRecipe
from baselines.msbdn import ConvPReLU, DeconvPReLU  # the same official DFF blocks
from bench.registry import BASELINES

#: Channel width of the five scales (full resolution first); hard-wired in the official class.
WIDTHS = (16, 20, 28, 44, 76)


def _resize_to(x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (align_corners=False) as the official fusion blocks do.

    At the sizes ``forward`` admits the shapes already agree; a same-size bilinear
    resize is an exact copy, so it is skipped.
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def _dense_fuse(x: torch.Tensor, others: list[torch.Tensor], there: nn.ModuleList, back: nn.ModuleList) -> torch.Tensor:
    """Fuse ``x`` with each of ``others`` in turn: through the first ``n - i`` blocks of ``there`` to the
    i-th one's scale, subtract it, back through the same blocks of ``back`` in reverse, add."""
    n, fused = len(there), x
    for i, target in enumerate(others):
        ft = fused
        for m in list(there)[: n - i]:
            ft = m(ft)
        ft = _resize_to(ft, target.shape[-2:]) - target
        for m in reversed(list(back)[: n - i]):
            ft = m(ft)
        fused = _resize_to(fused, ft.shape[-2:]) + ft
    return fused


class EncoderFusion(nn.Module):
    """Dense feature fusion on the way down (official ``Encoder_MDCBlock1``).

    The current (coarse) feature is projected up to each earlier, finer scale, the
    difference to that scale's feature is projected back down and added: an error
    feedback that lets every scale see all finer ones.
    """

    def __init__(self, width: int, num_ft: int) -> None:
        super().__init__()
        self.up_convs = nn.ModuleList()
        self.down_convs = nn.ModuleList()
        a = width
        for i in range(num_ft - 1):
            b = a - 2 ** (num_ft - i)
            self.up_convs.append(DeconvPReLU(a, b))
            self.down_convs.append(ConvPReLU(b, a))
            a = b

    def forward(self, coarse: torch.Tensor, finer: list[torch.Tensor]) -> torch.Tensor:
        return _dense_fuse(coarse, finer, self.up_convs, self.down_convs)


class DecoderFusion(nn.Module):
    """Dense feature fusion on the way up (official ``Decoder_MDCBlock1``): mirror of ``EncoderFusion``."""

    def __init__(self, width: int, num_ft: int, num: int) -> None:
        super().__init__()
        self.down_convs = nn.ModuleList()
        self.up_convs = nn.ModuleList()
        a = width
        for i in range(num_ft - 1):
            b = a + 2 ** (num + i)
            self.down_convs.append(ConvPReLU(a, b))
            self.up_convs.append(DeconvPReLU(b, a))
            a = b

    def forward(self, fine: torch.Tensor, coarser: list[torch.Tensor]) -> torch.Tensor:
        return _dense_fuse(fine, coarser, self.down_convs, self.up_convs)


class Down(nn.Module):
    """Halve the resolution: 4x4 stride-2 convolution + ReLU (official ``UNetConvBlock``)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Up(nn.Module):
    """Double the resolution and merge the skip (official ``UNetUpBlock``, 'upconv' mode)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        self.conv_block = nn.Sequential(nn.Conv2d(2 * cout, cout, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv_block(torch.cat([self.up(x), skip], 1))


class ResBlock(nn.Module):
    """Two 3x3 conv + LeakyReLU(0.2) with a 1x1-projected shortcut."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.LeakyReLU(0.2),
        )
        self.conv_1x1 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x) + self.conv_1x1(x)


class FourierBlock(nn.Module):
    """Spatial 3x3 conv plus a frequency branch (official ``ResBlock_fft_bench``).

    The amplitude spectrum goes through a 1x1 conv; the channel softmax of its mean
    change weights the phase, which a small 1x1 MLP then refines residually. This is
    the "amplitude guides phase" idea of the paper.
    """

    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.main = nn.Conv2d(n_feat, n_feat, 3, padding=1)
        self.mag = nn.Conv2d(n_feat, n_feat, 1)
        self.pha = nn.Sequential(nn.Conv2d(n_feat, n_feat, 1), nn.ReLU(), nn.Conv2d(n_feat, n_feat, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        spec = torch.fft.rfft2(x, norm="backward")
        mag, pha = spec.abs(), spec.angle()
        mag_out = self.mag(mag)
        weight = torch.softmax(F.adaptive_avg_pool2d(mag_out - mag, 1), dim=1)
        pha_out = self.pha(pha * weight) + pha
        # Not torch.polar: the learned amplitude may be negative, which polar does not promise to accept.
        spec_out = torch.complex(mag_out * pha_out.cos(), mag_out * pha_out.sin())
        return self.main(x) + torch.fft.irfft2(spec_out, s=(h, w), norm="backward")


class SAM(nn.Module):
    """Supervised attention module (from MPRNet): stage-1 image and attention-gated features."""

    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(n_feat, n_feat, 1, bias=False)
        self.conv2 = nn.Conv2d(n_feat, 3, 1, bias=False)
        self.conv3 = nn.Conv2d(3, n_feat, 1, bias=False)

    def forward(self, feat: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.conv2(feat) + image
        return self.conv1(feat) * torch.sigmoid(self.conv3(img)) + feat, img


FSDGN_RECIPE = TrainRecipe(
    loss="charbonnier+phase+amplitude",
    lr=1e-4,
    batch=2,
    patch=256,
    schedule="cosine_restart(periods=5x80000, restart_weights=[1,1,1,1,0.5], eta_min=1e-7)",
    iterations=400_000,
    optimizer="adam(betas=(0.9, 0.99), weight_decay=0)",
    notes=(
        "yuhuUSTC/FSDGN options/train/dehaze.yml (RESIDE ITS config, num_gpu 1, batch_size_per_gpu 2, "
        "256x256 crops, flip+rot, EMA 0.999). Loss = Charbonnier(eps 1e-12) + L1 on rfft2 phase + L1 on "
        "rfft2 amplitude, each summed over the final and the stage-1 output (DehazeModel.optimize_parameters)."
    ),
)


@BASELINES.register(
    "fsdgn",
    task="dehazing",
    dataset="dense_haze",
    paper="Yu, Zheng, Zhou, Huang, Xiao, Zhao, ECCV 2022, Frequency and Spatial Dual Guidance for Image Dehazing",
    repo="yuhuUSTC/FSDGN",
    commit="5a8daf79cf689eeb5fcb1a06bca95dd996ece77a",
    fixture="fsdgn",
    params=2_731_283,
    input_range=(0.0, 1.0),
    recipe=FSDGN_RECIPE,
    size_multiple_note=(
        "four stride-2 stages whose transposed-conv outputs are concatenated with the skips, so H and W must be "
        "multiples of 16; forward reflect-pads and crops back (the official test instead crops SOTS to 448x608)"
    ),
)
class FSDGN(Restorer):
    """The official FSDGN (``basicsr/archs/FSDGN_arch.py``), default configuration.

    ``official_forward`` returns ``stack([output, stage1_output])`` (both clamped to
    [0, 1]); ``forward`` returns the final output only; ``stage_outputs`` gives both at any
    size, for the official two-output training loss.
    """

    size_multiple = 16

    def __init__(self, num_in_ch: int = 3, base_channel: int = 16, up_mode: str = "upconv", bias: bool = False):
        super().__init__()
        if up_mode != "upconv":
            # The official 'upsample' branch is broken (``self.up == ...``) and cannot build.
            raise ValueError(f"FSDGN supports up_mode='upconv' only, got {up_mode!r}")
        if base_channel != WIDTHS[0]:
            raise ValueError(f"FSDGN's widths are hard-wired to {WIDTHS}; base_channel must be {WIDTHS[0]}")
        c = WIDTHS
        # Stage 1: spatial + Fourier U-Net.
        self.layer0 = nn.Conv2d(num_in_ch, c[0], 3, padding=1)
        for i in range(1, 5):
            setattr(self, f"layer{i}", Down(c[i - 1], c[i]))
        for i in range(4):
            setattr(self, f"layer_{i}", Up(c[i + 1], c[i]))
        # Stage 2: spatial U-Net.
        self.layer0_ = nn.Conv2d(num_in_ch, c[0], 3, padding=1)
        for i in range(1, 5):
            setattr(self, f"layer{i}_", Down(c[i - 1], c[i]))
        for i in range(4):
            setattr(self, f"layer_{i}_", Up(c[i + 1], c[i]))
        self.last = nn.Conv2d(c[0], num_in_ch, 1)

        for i in range(5):
            setattr(self, f"fft{i}", FourierBlock(c[i]))
        for i in range(4):
            setattr(self, f"fft_{i}", FourierBlock(c[i]))
        for suffix in ("", "_"):
            for i in range(5):
                setattr(self, f"res{i}{suffix}", ResBlock(c[i]))
            for i in range(4):
                setattr(self, f"res_{i}{suffix}", ResBlock(c[i]))
        for kind in ("enc", "dec"):
            for i in range(4):
                setattr(self, f"csff_{kind}{i}", nn.Conv2d(c[i], c[i], 1, bias=bias))
        for suffix in ("", "_"):
            for i in range(1, 5):
                setattr(self, f"fusion{i}{suffix}", EncoderFusion(c[i], i + 1))
            for i in (3, 2, 1, 0):
                setattr(self, f"fusion_{i}{suffix}", DecoderFusion(c[i], 5 - i, i + 2))
        self.sam = SAM(c[0])
        self.concat = nn.Conv2d(2 * c[0], c[0], 3, padding=1, bias=False)

    def _m(self, name: str) -> nn.Module:
        return getattr(self, name)

    def _unet(
        self, stem: torch.Tensor, sfx: str, fourier: bool, cross: tuple[list[torch.Tensor], list[torch.Tensor]] | None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """One U-Net pass from the full-resolution stem: (encoder, decoder) features, finest first.

        ``sfx`` picks the stage's modules ("" stage 1, "_" stage 2); stage 1 adds the Fourier
        blocks, stage 2 adds stage 1's features through the csff 1x1 convolutions.
        """
        m = self._m
        enc: list[torch.Tensor] = []
        h = stem
        for i in range(5):
            if i > 0:
                h = m(f"fusion{i}{sfx}")(m(f"layer{i}{sfx}")(h), enc)
            h = m(f"res{i}{sfx}")(h)
            if fourier:
                h = m(f"fft{i}")(h)
            if cross is not None and i < 4:
                h = h + m(f"csff_enc{i}")(cross[0][i]) + m(f"csff_dec{i}")(cross[1][i])
            enc.append(h)
        ups = [enc[4]]
        dec: list[torch.Tensor] = []
        h = enc[4]
        for i in (3, 2, 1, 0):
            h = m(f"layer_{i}{sfx}")(h, enc[i])
            h = m(f"res_{i}{sfx}")(h)
            if fourier:
                h = m(f"fft_{i}")(h)
            h = m(f"fusion_{i}{sfx}")(h, ups)
            ups.append(h)
            dec.insert(0, h)
        return enc, dec

    def _stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(final output, stage-1 output), both clamped to [0, 1] as in the official forward."""
        enc1, dec1 = self._unet(self.layer0(x), "", True, None)
        feats, stage1 = self.sam(dec1[0], x)
        stem2 = self.concat(torch.cat([self.layer0_(x), feats], 1))
        _, dec2 = self._unet(stem2, "_", False, (enc1[:4], dec1))
        return self.last(dec2[0]).clamp(0, 1), stage1.clamp(0, 1)

    def official_forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack(self._stages(x))

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        # The official pipeline feeds RGB in [0, 1] unnormalised and keeps the first output.
        return self._stages(x)[0]

    def stage_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(final, stage-1) restored images at any size: for the official loss on both outputs."""
        h, w = x.shape[-2:]
        m = self.size_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
        final, stage1 = self._stages(x)
        return final[..., :h, :w], stage1[..., :h, :w]
