"""The ADM UNet of guided-diffusion (Dhariwal & Nichol, 2021), written for DiffLoss.

State-dict keys, shapes and arithmetic follow openai/guided-diffusion (``unet.py``, ``nn.py``,
``script_util.create_model``) so the official ``256x256_diffusion_uncond.pt`` loads with
``strict=True`` and computes the same function. What is ours: attention runs through
``scaled_dot_product_attention`` (the official einsum path stays available as ``"eager"`` for
comparison and for the naive baseline of the speed benchmark), gradient checkpointing uses
``torch.utils.checkpoint``, and ``forward(..., return_h=True)`` also returns the middle-block
output (the h-space DiffLoss constrains).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

NUM_CLASSES = 1000  # guided-diffusion's ImageNet class count for class_cond models
ATTENTION_IMPLS = ("sdpa", "eager")


class GroupNorm32(nn.GroupNorm):
    """GroupNorm computed in (at least) float32 and cast back: keeps fp16/bf16 torsos numerically stable."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.to(torch.promote_types(x.dtype, torch.float32))).type(x.dtype)


def normalization(channels: int) -> GroupNorm32:
    return GroupNorm32(32, channels)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero a layer's parameters: ADM starts every residual branch as the identity."""
    for p in module.parameters():
        p.detach().zero_()
    return module


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps: [cos | sin], float32 frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half).to(timesteps.device)
    args = timesteps[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepBlock(nn.Module):
    """A layer that also takes the timestep embedding."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class TimestepEmbedSequential(nn.Sequential):
    """Sequential that hands ``emb`` to the children that want it (keys stay ``<block>.<i>.*``)."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, TimestepBlock) else layer(x)
        return x


class Upsample(nn.Module):
    """Nearest x2, then an optional 3x3 conv (used when resblock_updown is False)."""

    def __init__(self, channels: int, use_conv: bool, out_channels: int | None = None):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        self.use_conv = use_conv
        if use_conv:
            self.conv = nn.Conv2d(channels, self.out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class Downsample(nn.Module):
    """Stride-2 3x3 conv, or 2x2 average pooling without a conv."""

    def __init__(self, channels: int, use_conv: bool, out_channels: int | None = None):
        super().__init__()
        self.channels = channels
        self.out_channels = out_channels or channels
        if use_conv:
            self.op: nn.Module = nn.Conv2d(channels, self.out_channels, 3, stride=2, padding=1)
        else:
            if self.channels != self.out_channels:
                raise ValueError("average-pool downsampling cannot change the channel count")
            self.op = nn.AvgPool2d(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class ResBlock(TimestepBlock):
    """ADM residual block: GN-SiLU-conv, timestep FiLM (scale-shift) or add, GN-SiLU-drop-conv(zero)."""

    def __init__(
        self,
        channels: int,
        emb_channels: int,
        dropout: float,
        out_channels: int | None = None,
        use_scale_shift_norm: bool = False,
        use_checkpoint: bool = False,
        up: bool = False,
        down: bool = False,
    ):
        super().__init__()
        self.out_channels = out_channels or channels
        self.use_checkpoint = use_checkpoint
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(
            normalization(channels), nn.SiLU(), nn.Conv2d(channels, self.out_channels, 3, padding=1)
        )
        self.updown = up or down
        if up:
            self.h_upd: nn.Module = Upsample(channels, False)
            self.x_upd: nn.Module = Upsample(channels, False)
        elif down:
            self.h_upd = Downsample(channels, False)
            self.x_upd = Downsample(channels, False)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, 2 * self.out_channels if use_scale_shift_norm else self.out_channels)
        )
        self.out_layers = nn.Sequential(
            normalization(self.out_channels),
            nn.SiLU(),
            nn.Dropout(p=dropout),
            zero_module(nn.Conv2d(self.out_channels, self.out_channels, 3, padding=1)),
        )
        if self.out_channels == channels:
            self.skip_connection: nn.Module = nn.Identity()
        else:
            self.skip_connection = nn.Conv2d(channels, self.out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.use_checkpoint and torch.is_grad_enabled():
            return checkpoint(self._forward, x, emb, use_reentrant=False)
        return self._forward(x, emb)

    def _forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.updown:
            # the resampling sits between the first activation and the first conv
            h = self.in_layers[:-1](x)
            h = self.h_upd(h)
            x = self.x_upd(x)
            h = self.in_layers[-1](h)
        else:
            h = self.in_layers(x)
        emb_out = self.emb_layers(emb).type(h.dtype)[..., None, None]
        if self.use_scale_shift_norm:
            scale, shift = torch.chunk(emb_out, 2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Self-attention over all spatial positions, with the official QKV channel layouts.

    ``legacy`` (use_new_attention_order False, the released checkpoints): qkv channels are
    grouped per head as [q_h, k_h, v_h]; ``new``: as [q (all heads), k, v].
    """

    def __init__(
        self,
        channels: int,
        num_heads: int = 1,
        num_head_channels: int = -1,
        use_checkpoint: bool = False,
        use_new_attention_order: bool = False,
    ):
        super().__init__()
        if num_head_channels == -1:
            self.num_heads = num_heads
        else:
            if channels % num_head_channels:
                raise ValueError(f"channels {channels} are not divisible by num_head_channels {num_head_channels}")
            self.num_heads = channels // num_head_channels
        self.use_checkpoint = use_checkpoint
        self.new_order = use_new_attention_order
        self.impl = "sdpa"
        self.norm = normalization(channels)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.proj_out = zero_module(nn.Conv1d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_checkpoint and torch.is_grad_enabled():
            return checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(x))
        h = self._attend(qkv)
        h = self.proj_out(h)
        return (x + h).reshape(b, c, *spatial)

    def _split(self, qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, 3*C, T) -> q, k, v each (B, heads, ch, T) in the official channel order."""
        b, width, length = qkv.shape
        ch = width // (3 * self.num_heads)
        if self.new_order:
            q, k, v = qkv.chunk(3, dim=1)
            return tuple(u.reshape(b, self.num_heads, ch, length) for u in (q, k, v))  # type: ignore[return-value]
        q, k, v = qkv.reshape(b, self.num_heads, 3 * ch, length).split(ch, dim=2)
        return q, k, v

    def _attend(self, qkv: torch.Tensor) -> torch.Tensor:
        b, _, length = qkv.shape
        q, k, v = self._split(qkv)
        ch = q.shape[2]
        if self.impl == "eager":
            # the official arithmetic: scale both q and k by ch^-1/4, softmax in float32
            s = 1 / math.sqrt(math.sqrt(ch))
            w = torch.einsum("bhct,bhcs->bhts", q * s, k * s)
            w = torch.softmax(w.float(), dim=-1).type(w.dtype)
            a = torch.einsum("bhts,bhcs->bhct", w, v)
            return a.reshape(b, -1, length)
        a = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return a.transpose(-1, -2).reshape(b, -1, length)


class ADMUNet(nn.Module):
    """guided-diffusion's ``UNetModel`` (2-D, 3 input channels); ``forward(x, t)`` -> eps[, variance]."""

    def __init__(
        self,
        image_size: int,
        in_channels: int,
        model_channels: int,
        out_channels: int,
        num_res_blocks: int,
        attention_resolutions: Sequence[int],
        dropout: float = 0.0,
        channel_mult: Sequence[float] = (1, 2, 4, 8),
        conv_resample: bool = True,
        num_classes: int | None = None,
        use_checkpoint: bool = False,
        use_fp16: bool = False,
        num_heads: int = 1,
        num_head_channels: int = -1,
        num_heads_upsample: int = -1,
        use_scale_shift_norm: bool = False,
        resblock_updown: bool = False,
        use_new_attention_order: bool = False,
    ):
        super().__init__()
        if num_heads_upsample == -1:
            num_heads_upsample = num_heads
        self.image_size = image_size
        self.in_channels = in_channels
        self.model_channels = model_channels
        self.out_channels = out_channels
        self.num_classes = num_classes
        self.dtype = torch.float16 if use_fp16 else torch.float32
        self.autocast_dtype: torch.dtype | None = None
        self.channels_last = False

        emb_dim = model_channels * 4
        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if num_classes is not None:
            self.label_emb = nn.Embedding(num_classes, emb_dim)

        def res(ch_in: int, ch_out: int, **kw: Any) -> ResBlock:
            return ResBlock(ch_in, emb_dim, dropout, out_channels=ch_out, use_scale_shift_norm=use_scale_shift_norm,
                            use_checkpoint=use_checkpoint, **kw)

        def attn(ch: int, heads: int) -> AttentionBlock:
            return AttentionBlock(ch, num_heads=heads, num_head_channels=num_head_channels,
                                  use_checkpoint=use_checkpoint, use_new_attention_order=use_new_attention_order)

        ch = input_ch = int(channel_mult[0] * model_channels)
        self.input_blocks = nn.ModuleList([TimestepEmbedSequential(nn.Conv2d(in_channels, ch, 3, padding=1))])
        skip_chans = [ch]
        ds = 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers: list[nn.Module] = [res(ch, int(mult * model_channels))]
                ch = int(mult * model_channels)
                if ds in attention_resolutions:
                    layers.append(attn(ch, num_heads))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                skip_chans.append(ch)
            if level != len(channel_mult) - 1:
                down = res(ch, ch, down=True) if resblock_updown else Downsample(ch, conv_resample, out_channels=ch)
                self.input_blocks.append(TimestepEmbedSequential(down))
                skip_chans.append(ch)
                ds *= 2

        self.middle_block = TimestepEmbedSequential(res(ch, ch), attn(ch, num_heads), res(ch, ch))

        self.output_blocks = nn.ModuleList([])
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                layers = [res(ch + skip_chans.pop(), int(model_channels * mult))]
                ch = int(model_channels * mult)
                if ds in attention_resolutions:
                    layers.append(attn(ch, num_heads_upsample))
                if level and i == num_res_blocks:
                    up = res(ch, ch, up=True) if resblock_updown else Upsample(ch, conv_resample, out_channels=ch)
                    layers.append(up)
                    ds //= 2
                self.output_blocks.append(TimestepEmbedSequential(*layers))

        self.out = nn.Sequential(
            normalization(ch), nn.SiLU(), zero_module(nn.Conv2d(input_ch, out_channels, 3, padding=1))
        )
        if use_fp16:
            self.convert_to_fp16()

    # -- precision and speed switches -------------------------------------------------------
    def _torso(self) -> list[nn.Module]:
        return [self.input_blocks, self.middle_block, self.output_blocks]

    def convert_to_fp16(self) -> None:
        """As guided-diffusion: only the torso's conv weights become float16 (norms, linears stay fp32)."""
        self._convert_convs(torch.float16)

    def convert_to_fp32(self) -> None:
        self._convert_convs(torch.float32)

    def _convert_convs(self, dtype: torch.dtype) -> None:
        for part in self._torso():
            for m in part.modules():
                if isinstance(m, nn.Conv1d | nn.Conv2d):
                    m.weight.data = m.weight.data.to(dtype)
                    if m.bias is not None:
                        m.bias.data = m.bias.data.to(dtype)

    def configure(
        self,
        *,
        attention: str | None = None,
        autocast_dtype: torch.dtype | str | None = "keep",
        channels_last: bool | None = None,
        use_checkpoint: bool | None = None,
    ) -> ADMUNet:
        """Switch speed options without touching the weights; ``None``/"keep" leaves a setting as is."""
        if attention is not None:
            if attention not in ATTENTION_IMPLS:
                raise ValueError(f"attention must be one of {ATTENTION_IMPLS}, got {attention!r}")
            for m in self.modules():
                if isinstance(m, AttentionBlock):
                    m.impl = attention
        if autocast_dtype != "keep":
            self.autocast_dtype = autocast_dtype  # type: ignore[assignment]
        if channels_last is not None:
            self.channels_last = channels_last
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    m.weight.data = m.weight.data.contiguous(memory_format=fmt)
        if use_checkpoint is not None:
            for m in self.modules():
                if isinstance(m, ResBlock | AttentionBlock):
                    m.use_checkpoint = use_checkpoint
        return self

    # -- forward ------------------------------------------------------------------------------
    def forward(
        self, x: torch.Tensor, timesteps: torch.Tensor, y: torch.Tensor | None = None, return_h: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Full output (eps, then the variance interpolation when learned); with ``return_h`` also h.

        h is the middle-block output, in the torso's dtype.
        """
        if (y is not None) != (self.num_classes is not None):
            raise ValueError("pass class labels y if and only if the model is class-conditional")
        ctx = (
            torch.autocast(device_type=x.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else nullcontext()
        )
        with ctx:
            t_emb = timestep_embedding(timesteps, self.model_channels).to(self.time_embed[0].weight.dtype)
            emb = self.time_embed(t_emb)
            if self.num_classes is not None:
                emb = emb + self.label_emb(y)
            h = x.type(self.dtype)
            if self.channels_last:
                h = h.contiguous(memory_format=torch.channels_last)
            skips = []
            for block in self.input_blocks:
                h = block(h, emb)
                skips.append(h)
            h = self.middle_block(h, emb)
            mid = h
            for block in self.output_blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
            out = self.out(h.type(x.dtype))
        out = out.type(x.dtype)
        return (out, mid) if return_h else out


def _parse_channel_mult(image_size: int, channel_mult: str) -> tuple[float, ...]:
    if channel_mult:
        return tuple(int(m) for m in channel_mult.split(","))
    defaults = {512: (0.5, 1, 1, 2, 2, 4, 4), 256: (1, 1, 2, 2, 4, 4), 128: (1, 1, 2, 3, 4), 64: (1, 2, 3, 4)}
    if image_size not in defaults:
        raise ValueError(f"no default channel_mult for image_size {image_size}; pass channel_mult, e.g. '1,2,2,2'")
    return defaults[image_size]


def create_adm(
    image_size: int,
    num_channels: int,
    num_res_blocks: int,
    channel_mult: str = "",
    learn_sigma: bool = False,
    class_cond: bool = False,
    use_checkpoint: bool = False,
    attention_resolutions: str = "16",
    num_heads: int = 1,
    num_head_channels: int = -1,
    num_heads_upsample: int = -1,
    use_scale_shift_norm: bool = False,
    dropout: float = 0.0,
    resblock_updown: bool = False,
    use_fp16: bool = False,
    use_new_attention_order: bool = False,
) -> ADMUNet:
    """Build the ADM UNet from exactly the keyword arguments of guided-diffusion's ``create_model``.

    ``attention_resolutions`` are feature-map sizes ("32,16,8"), turned into downsample
    rates as the official code does. Unlike ``create_model``, ``use_fp16=True`` also converts
    the torso to float16 right away (the official scripts call ``convert_to_fp16()`` after
    loading; loading fp32 weights into the converted model casts them, so the result is the same).
    """
    return ADMUNet(
        image_size=image_size,
        in_channels=3,
        model_channels=num_channels,
        out_channels=6 if learn_sigma else 3,
        num_res_blocks=num_res_blocks,
        attention_resolutions=tuple(image_size // int(r) for r in attention_resolutions.split(",")),
        dropout=dropout,
        channel_mult=_parse_channel_mult(image_size, channel_mult),
        num_classes=NUM_CLASSES if class_cond else None,
        use_checkpoint=use_checkpoint,
        use_fp16=use_fp16,
        num_heads=num_heads,
        num_head_channels=num_head_channels,
        num_heads_upsample=num_heads_upsample,
        use_scale_shift_norm=use_scale_shift_norm,
        resblock_updown=resblock_updown,
        use_new_attention_order=use_new_attention_order,
    )


#: The README configuration of ``256x256_diffusion_uncond.pt`` (the paper's prior, 552,814,086 parameters).
ADM256_UNCOND_KWARGS: dict[str, Any] = dict(
    image_size=256,
    num_channels=256,
    num_res_blocks=2,
    channel_mult="",
    learn_sigma=True,
    class_cond=False,
    attention_resolutions="32,16,8",
    num_heads=4,
    num_head_channels=64,
    num_heads_upsample=-1,
    use_scale_shift_norm=True,
    dropout=0.0,
    resblock_updown=True,
    use_fp16=False,
    use_new_attention_order=False,
)
