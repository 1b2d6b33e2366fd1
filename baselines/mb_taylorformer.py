"""MB-TaylorFormer: multi-branch efficient transformer expanded by the Taylor formula (Qiu et al., ICCV 2023).

A four-level U-Net (Restormer layout). Every level first builds ``num_path`` token
branches by a chain of deformable depthwise "patch embeddings" (each branch sees a
larger, learned receptive field), runs a stack of transformer blocks on every branch,
and fuses the branches with selective-kernel feature fusion (SKFF). The attention is
linear in the number of pixels: softmax(q.k) is replaced by its first-order Taylor
expansion 1 + q.k (with q, k L2-normalised to ``qk_norm`` so the expansion stays
positive), which regroups as (sum v + q (k^T v)) / (N + q sum k). A small convolution
over the concatenated q and k maps ("refine_att", a multi-scale correction) gates the
result per head and pixel.

Module and parameter names follow the official ``basicsr/models/archs/MB_TaylorFormer.py``
so that official checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import DeformConv2d

from baselines._base import Restorer, TrainRecipe
from bench.registry import BASELINES

#: Hard-wired in every official stage, whatever the constructor is given.
STAGE_FFN_EXPANSION = 2.66

#: Official ``crpe_window``: {kernel size: number of heads} of the q/k refinement convolutions.
REFINE_WINDOWS: dict[int, dict[int, int]] = {
    1: {3: 1},
    2: {3: 2},
    4: {3: 2, 5: 2},
    8: {3: 2, 5: 3, 7: 3},
}


class ChannelNorm(nn.Module):
    """Layer norm over channels of an N x C x H x W map (the official ``WithBias`` / ``BiasFree`` norms).

    The bias-free form divides by the standard deviation without subtracting the mean,
    exactly as the official one does; eps is 1e-5 inside the square root.
    """

    def __init__(self, dim: int, with_bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if with_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.permute(0, 2, 3, 1)
        var = t.var(-1, keepdim=True, unbiased=False)
        if self.bias is None:
            t = t / torch.sqrt(var + 1e-5) * self.weight
        else:
            t = (t - t.mean(-1, keepdim=True)) / torch.sqrt(var + 1e-5) * self.weight + self.bias
        return t.permute(0, 3, 1, 2)


class LayerNorm(nn.Module):
    """Wrapper that only exists to give the official key prefix ``...norm.body.weight``."""

    def __init__(self, dim: int, layer_norm_type: str) -> None:
        super().__init__()
        self.body = ChannelNorm(dim, with_bias=layer_norm_type != "BiasFree")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class GatedDConvFFN(nn.Module):
    """Restormer's gated depthwise-conv feed-forward network: GELU(a) * b, then project back."""

    def __init__(self, dim: int, expansion: float, bias: bool) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, 2 * hidden, 1, bias=bias)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(a) * b)


class QKRefinement(nn.Module):
    """Per-head gate from a convolution over each head's [q; k] maps (official ``refine_att``).

    Heads are split into groups with kernel sizes 3/5/7; each group's grouped convolution
    maps 2 * head_dim channels per head to one channel per head.
    """

    def __init__(self, head_dim: int, windows: dict[int, int]) -> None:
        super().__init__()
        self.conv_list = nn.ModuleList(
            nn.Conv2d(heads * 2 * head_dim, heads, k, padding=k // 2, groups=heads) for k, heads in windows.items()
        )
        self.channel_splits = [heads * 2 * head_dim for heads in windows.values()]

    def forward(self, q: torch.Tensor, k: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """q: B x heads x N x C, k: B x heads x C x N -> logits B x heads x N x 1."""
        b, heads, n, c = q.shape
        qk = torch.cat([q.transpose(-2, -1), k], dim=2).reshape(b, heads * 2 * c, *size)
        parts = torch.split(qk, self.channel_splits, dim=1)
        out = torch.cat([conv(p) for conv, p in zip(self.conv_list, parts)], dim=1)
        return out.reshape(b, heads, n, 1)


class TaylorAttention(nn.Module):
    """Linear "Taylor" self-attention over all pixels (official ``Attention``).

    Each head computes (sum_j v_j + q_i . sum_j k_j v_j^T) / (N + q_i . sum_j k_j), i.e.
    softmax replaced by its first-order expansion, then scales by a learned temperature
    and the sigmoid of the q/k refinement gate.
    """

    def __init__(self, dim: int, num_heads: int, bias: bool, qk_norm: float) -> None:
        super().__init__()
        if num_heads not in REFINE_WINDOWS:
            raise ValueError(f"MB-TaylorFormer defines attention for {sorted(REFINE_WINDOWS)} heads, got {num_heads}")
        self.num_heads = num_heads
        self.norm = qk_norm
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(3 * dim, 3 * dim, 3, padding=1, groups=3 * dim, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)
        self.refine_att = QKRefinement(dim // num_heads, REFINE_WINDOWS[num_heads])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n, heads = h * w, self.num_heads
        q, k, v = self.qkv_dwconv(self.qkv(x)).reshape(b, 3, heads, c // heads, n).unbind(1)
        q = q.transpose(-2, -1)  # B x heads x N x C
        v = v.transpose(-2, -1)  # B x heads x N x C; k stays B x heads x C x N
        # Scale q and k to norm qk_norm (official: divide by norm / qk_norm + 1e-6).
        q = q / (torch.linalg.vector_norm(q, dim=-1, keepdim=True) / self.norm + 1e-6)
        k = k / (torch.linalg.vector_norm(k, dim=-2, keepdim=True) / self.norm + 1e-6)

        gate = torch.sigmoid(self.refine_att(q, k, (h, w)))
        numerator = v.sum(dim=-2, keepdim=True) + q @ (k @ v)
        denominator = n + q @ k.sum(dim=-1, keepdim=True) + 1e-6  # same for every channel of a head
        out = numerator / denominator * self.temperature * gate
        return self.project_out(out.transpose(-2, -1).reshape(b, c, h, w))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attn(norm1(x)), then x + ffn(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, expansion: float, bias: bool, norm_type: str, qk_norm: float) -> None:
        super().__init__()
        self.norm1 = LayerNorm(dim, norm_type)
        self.attn = TaylorAttention(dim, num_heads, bias, qk_norm)
        self.norm2 = LayerNorm(dim, norm_type)
        self.ffn = GatedDConvFFN(dim, expansion, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class BranchEncoder(nn.Module):
    """The transformer blocks of one branch (official ``MHCAEncoder``).

    The official code flattens to tokens and reshapes straight back, an identity that is skipped here.
    """

    def __init__(self, dim: int, num_layers: int, num_heads: int, qk_norm: float) -> None:
        super().__init__()
        self.MHCA_layers = nn.ModuleList(
            TransformerBlock(dim, num_heads, STAGE_FFN_EXPANSION, False, "BiasFree", qk_norm) for _ in range(num_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.MHCA_layers:
            x = layer(x)
        return x


class SKFF(nn.Module):
    """Selective-kernel fusion: softmax-over-branches channel weights from the pooled branch sum."""

    def __init__(self, channels: int, height: int, reduction: int = 8) -> None:
        super().__init__()
        self.height = height
        d = max(channels // reduction, 4)
        self.conv_du = nn.Sequential(nn.Conv2d(channels, d, 1, bias=False), nn.PReLU())
        self.fcs = nn.ModuleList(nn.Conv2d(d, channels, 1, bias=False) for _ in range(height))

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack(list(feats), dim=1)  # B x branches x C x H x W
        z = self.conv_du(stacked.sum(dim=1).mean(dim=(2, 3), keepdim=True))
        weights = torch.stack([fc(z) for fc in self.fcs], dim=1).softmax(dim=1)
        return (stacked * weights).sum(dim=1)


class MultiBranchStage(nn.Module):
    """One transformer encoder per branch, fused by SKFF (official ``MHCA_stage``)."""

    def __init__(self, dim: int, num_layers: int, num_heads: int, num_path: int, qk_norm: float) -> None:
        super().__init__()
        self.mhca_blks = nn.ModuleList(BranchEncoder(dim, num_layers, num_heads, qk_norm) for _ in range(num_path))
        self.aggregate = SKFF(dim, height=num_path)

    def forward(self, branches: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.aggregate([enc(x) for x, enc in zip(branches, self.mhca_blks)])


class DeformableDWConv(nn.Module):
    """Deformable depthwise 3x3 conv with clamped predicted offsets, 1x1 conv, Hardswish (official ``DWConv2d_BN``).

    One offset field (18 channels: dy, dx for each of the 9 taps) is shared by all channels.
    """

    def __init__(self, in_ch: int, out_ch: int, offset_clamp: Sequence[float] | None) -> None:
        super().__init__()
        self.offset_clamp = tuple(offset_clamp) if offset_clamp else None
        self.offset_generator = nn.Sequential(
            nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch, bias=False),
            nn.Conv2d(in_ch, 18, 1, bias=False),
        )
        self.dcn = DeformConv2d(in_ch, in_ch, 3, padding=1, groups=in_ch, bias=False)
        self.pwconv = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.act = nn.Hardswish()
        # Official init of the plain convolutions: N(0, 2 / (k*k*out)); the deformable one keeps torchvision's.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset = self.offset_generator(x)
        if self.offset_clamp is not None:
            offset = offset.clamp(self.offset_clamp[0], self.offset_clamp[1])
        return self.act(self.pwconv(self.dcn(x, offset)))


class PatchEmbed(nn.Module):
    """Key-path wrapper (official ``DWCPatchEmbed``)."""

    def __init__(self, in_ch: int, out_ch: int, offset_clamp: Sequence[float] | None) -> None:
        super().__init__()
        self.patch_conv = DeformableDWConv(in_ch, out_ch, offset_clamp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.patch_conv(x)


class BranchEmbedding(nn.Module):
    """A chain of deformable embeddings; every link's output is one branch (official ``Patch_Embed_stage``)."""

    def __init__(self, in_ch: int, dim: int, num_path: int, offset_clamp: Sequence[float] | None) -> None:
        super().__init__()
        self.patch_embeds = nn.ModuleList(
            PatchEmbed(in_ch if i == 0 else dim, dim, offset_clamp) for i in range(num_path)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branches = []
        for embed in self.patch_embeds:
            x = embed(x)
            branches.append(x)
        return branches


class OverlapPatchEmbed(nn.Module):
    """3x3 convolution from the image to the first feature map."""

    def __init__(self, in_ch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_ch, dim, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    """Depthwise 3x3, 1x1 to out/4 channels, pixel-unshuffle by 2."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch, bias=False),
            nn.Conv2d(in_ch, out_ch // 4, 1, bias=False),
            nn.PixelUnshuffle(2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """Depthwise 3x3, 1x1 to 4*out channels, pixel-shuffle by 2."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, in_ch, 3, padding=1, groups=in_ch, bias=False),
            nn.Conv2d(in_ch, out_ch * 4, 1, bias=False),
            nn.PixelShuffle(2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


MB_TAYLORFORMER_RECIPE = TrainRecipe(
    loss="l1",
    lr=2e-4,
    batch=8,
    patch=256,
    schedule=(
        "cosine_restart_cyclic(periods=[200000, 300000], restart_weights=[1, 1], eta_mins=[2e-4, 1e-5]): "
        "constant 2e-4 for 200k iterations, then cosine 2e-4 -> 1e-5 over 300k"
    ),
    iterations=500_000,
    optimizer="adamw(betas=(0.9, 0.999), weight_decay=1e-4), grad-norm clip 0.01",
    notes=(
        "FVL2020/ICCV-2023-MB-TaylorFormer Dehazing/Options/MB-TaylorFormer-B.yml (RESIDE ITS): L1Loss (mean) on "
        "the raw output, num_gpu 8 x batch_size_per_gpu 1, 256x256 crops (gt_sizes [256]), geometric augs "
        "(flips/rot90), no mixup, manual_seed 100, total_iter 500000, use_grad_clip -> clip_grad_norm_(0.01) in "
        "ImageCleanModel.optimize_parameters. The yml also sets pretrain_network_g (an earlier 'Noclamp' run of "
        "theirs, strict_load_g false), i.e. the released model was fine-tuned, not trained from scratch. Inputs "
        "in [0, 1] unnormalised; Dehazing/test.py reflect-pads to a multiple of 8 and clamps the output to [0, 1]."
    ),
)


@BASELINES.register(
    "mb_taylorformer",
    task="dehazing",
    dataset="dense_haze",
    paper=(
        "Qiu, Zhang, Wang, Luo, Li, Jin, ICCV 2023, "
        "MB-TaylorFormer: Multi-branch Efficient Transformer Expanded by Taylor Formula for Image Dehazing"
    ),
    repo="FVL2020/ICCV-2023-MB-TaylorFormer",
    commit="c504250a45a91cefb20c9ee706df0a834e62beb0",
    fixture="mb_taylorformer",
    params=2_676_520,
    input_range=(0.0, 1.0),
    recipe=MB_TAYLORFORMER_RECIPE,
    size_multiple_note=(
        "three pixel-unshuffle downsamplings whose upsampled outputs are concatenated with the skips, so H and W "
        "must be multiples of 8; forward reflect-pads bottom/right and crops back, as the official test.py does"
    ),
)
class MBTaylorFormer(Restorer):
    """The official ``MB_TaylorFormer``; defaults are the -B configuration (``MB-TaylorFormer-B.yml``).

    ``official_forward`` and ``forward`` both map a [0, 1] RGB image to the raw, unclamped
    output (a residual added to the input), which is what the official training loss sees;
    the official test clamps it to [0, 1] before scoring and saving.

    As in the official class, ``model_name``, ``out_channels`` and ``num_refinement_blocks`` are
    accepted and ignored, and every stage hard-wires a bias-free layer norm, an FFN expansion
    of 2.66 and bias-free convolutions regardless of ``LayerNorm_type``,
    ``ffn_expansion_factor`` and ``bias`` (``bias`` only reaches the two channel-reduction convs).
    """

    size_multiple = 8

    def __init__(
        self,
        inp_channels: int = 3,
        out_channels: int = 3,
        model_name: int = 16,
        dim: Sequence[int] = (24, 48, 72, 96),
        num_blocks: Sequence[int] = (2, 3, 3, 4),
        num_refinement_blocks: int = 2,
        heads: Sequence[int] = (1, 2, 4, 8),
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        LayerNorm_type: str = "WithBias",  # the official keyword, kept so option files load unchanged
        dual_pixel_task: bool = False,
        num_path: Sequence[int] = (2, 2, 2, 2),
        qk_norm: float = 0.5,
        offset_clamp: Sequence[float] | None = (-3, 3),
    ) -> None:
        super().__init__()
        d, nb, hd, npth, oc = list(dim), list(num_blocks), list(heads), list(num_path), offset_clamp

        def stage(width: int, level: int) -> MultiBranchStage:
            return MultiBranchStage(width, nb[level], hd[level], npth[level], qk_norm)

        def embed(width: int, level: int) -> BranchEmbedding:
            return BranchEmbedding(width, width, npth[level], oc)

        self.patch_embed = OverlapPatchEmbed(inp_channels, d[0])
        self.patch_embed_encoder_level1 = embed(d[0], 0)
        self.encoder_level1 = stage(d[0], 0)
        self.down1_2 = Downsample(d[0], d[1])
        self.patch_embed_encoder_level2 = embed(d[1], 1)
        self.encoder_level2 = stage(d[1], 1)
        self.down2_3 = Downsample(d[1], d[2])
        self.patch_embed_encoder_level3 = embed(d[2], 2)
        self.encoder_level3 = stage(d[2], 2)
        self.down3_4 = Downsample(d[2], d[3])
        self.patch_embed_latent = embed(d[3], 3)
        self.latent = stage(d[3], 3)

        self.up4_3 = Upsample(d[3], d[2])
        self.reduce_chan_level3 = nn.Sequential(nn.Conv2d(2 * d[2], d[2], 1, bias=bias))
        self.patch_embed_decoder_level3 = embed(d[2], 2)
        self.decoder_level3 = stage(d[2], 2)
        self.up3_2 = Upsample(d[2], d[1])
        self.reduce_chan_level2 = nn.Sequential(nn.Conv2d(2 * d[1], d[1], 1, bias=bias))
        self.patch_embed_decoder_level2 = embed(d[1], 1)
        self.decoder_level2 = stage(d[1], 1)
        # Level 1 of the decoder keeps the concatenated 2 * dim[0] (= dim[1]) channels, with level-1 depth/heads.
        self.up2_1 = Upsample(d[1], d[0])
        self.patch_embed_decoder_level1 = embed(d[1], 0)
        self.decoder_level1 = stage(d[1], 0)
        self.patch_embed_refinement = embed(d[1], 0)
        self.refinement = stage(d[1], 0)

        self.dual_pixel_task = dual_pixel_task
        if dual_pixel_task:
            self.skip_conv = nn.Conv2d(d[0], d[1], 1, bias=bias)
        self.output = nn.Sequential(nn.Conv2d(d[1], 3, 3, padding=1, bias=False))

    @staticmethod
    def _level(x: torch.Tensor, embed: BranchEmbedding, stage: MultiBranchStage) -> torch.Tensor:
        """Branch embedding, multi-branch transformer, and the level's residual connection."""
        return stage(embed(x)) + x

    def official_forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.patch_embed(x)
        enc1 = self._level(stem, self.patch_embed_encoder_level1, self.encoder_level1)
        enc2 = self._level(self.down1_2(enc1), self.patch_embed_encoder_level2, self.encoder_level2)
        enc3 = self._level(self.down2_3(enc2), self.patch_embed_encoder_level3, self.encoder_level3)
        latent = self._level(self.down3_4(enc3), self.patch_embed_latent, self.latent)

        dec3 = self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], 1))
        dec3 = self._level(dec3, self.patch_embed_decoder_level3, self.decoder_level3)
        dec2 = self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 1))
        dec2 = self._level(dec2, self.patch_embed_decoder_level2, self.decoder_level2)
        dec1 = torch.cat([self.up2_1(dec2), enc1], 1)
        dec1 = self._level(dec1, self.patch_embed_decoder_level1, self.decoder_level1)
        dec1 = self._level(dec1, self.patch_embed_refinement, self.refinement)

        if self.dual_pixel_task:
            return self.output(dec1 + self.skip_conv(stem))
        return self.output(dec1) + x
