"""IAT: Illumination Adaptive Transformer (Cui et al., BMVC 2022), low-light enhancement.

A 90k-parameter network in two branches:

* a local branch at full resolution predicts a per-pixel multiplicative map ``mul`` and
  additive map ``add`` (``x * mul + add``) with light, convolution-only "transformer"
  blocks (depthwise-conv attention, a learned per-pixel channel-mixing normalisation);
* a global branch looks at a 4x downsampled copy and, through 10 learned queries
  attending to every position, predicts one gamma and one 3x3 colour matrix per image,
  applied last: ``clamp(ccm @ rgb, 1e-8, 1) ** gamma``.

Names follow the official ``IAT_enhance/model/{IAT_main,blocks,global_net}.py`` so that
the authors' checkpoints load with ``strict=True`` (see :func:`load_official_checkpoint`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from baselines._base import Restorer, TrainRecipe
from bench.errors import BenchError, MissingFileError
from bench.registry import BASELINES

#: SHA-256 of the authors' checkpoints as published in the official repository (IAT_enhance/).
OFFICIAL_SHA256 = {
    "best_Epoch_lol_v1.pth": "6fb32236152283d3f3633ea1b79601c7e819efbf9d87d6b4767e1db0f1f3435b",
    "best_Epoch_lol.pth": "9564b7e10882e688ac817ae6fd164544d05b9f74232de56c33ed7f9dabf7bdc4",
    "best_Epoch_exposure.pth": "15a9494582f028bef996d4af7145860eaa5d67799d2b0625ed93ff8c546ea3ee",
}


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth per sample, rescaled by 1/keep (timm ``DropPath``, used by the official blocks)."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


class ChannelAffine(nn.Module):
    """Per-pixel channel mixing then affine scale/shift (official ``Aff_channel``, channel_first=True).

    Computed channels-last with ``tensordot`` exactly as the official code does: a 1x1
    convolution is the same map, but its different summation order changes the last bits,
    which the final ``** gamma`` (steep near the 1e-8 clamp) can amplify to ~1e-4.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))
        self.color = nn.Parameter(torch.eye(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = torch.tensordot(x.flatten(2).transpose(1, 2), self.color, dims=[[-1], [-1]])
        return (t * self.alpha + self.beta).view(b, h, w, c).permute(0, 3, 1, 2)


class ConvMlp(nn.Module):
    """1x1 conv -> GELU -> 1x1 conv (official ``CMlp``; its dropout is 0)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class ConvBlock(nn.Module):
    """Convolutional transformer block (official ``CBlock_ln``).

    pos-embed (3x3 depthwise, residual) -> norm -> 1x1 / 5x5 depthwise / 1x1 "attention" ->
    layer-scaled residual -> norm -> MLP -> layer-scaled residual; both residual branches
    use stochastic depth ``drop_path`` during training.
    """

    def __init__(self, dim: int, drop_path: float = 0.0, mlp_ratio: float = 4.0, init_values: float = 1e-4) -> None:
        super().__init__()
        self.gamma_1 = nn.Parameter(init_values * torch.ones(1, dim, 1, 1))
        self.gamma_2 = nn.Parameter(init_values * torch.ones(1, dim, 1, 1))
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = ChannelAffine(dim)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        self.conv2 = nn.Conv2d(dim, dim, 1)
        self.attn = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.norm2 = ChannelAffine(dim)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio))
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        y = self.gamma_1 * self.conv2(self.attn(self.conv1(self.norm1(x))))
        x = x + drop_path(y, self.drop_path, self.training)
        y = self.gamma_2 * self.mlp(self.norm2(x))
        return x + drop_path(y, self.drop_path, self.training)


class LocalBranch(nn.Module):
    """Full-resolution ``mul`` / ``add`` predictor (official ``Local_pred_S``)."""

    #: Stochastic-depth rates of the three blocks in each branch, hard-wired in the official class.
    DROP_PATHS = (0.01, 0.05, 0.1)

    def __init__(self, in_dim: int = 3, dim: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_dim, dim, 3, padding=1)
        self.mul_blocks = nn.Sequential(*[ConvBlock(dim, drop_path=p) for p in self.DROP_PATHS])
        self.add_blocks = nn.Sequential(*[ConvBlock(dim, drop_path=p) for p in self.DROP_PATHS])
        self.mul_end = nn.Sequential(nn.Conv2d(dim, 3, 3, 1, 1), nn.ReLU())
        self.add_end = nn.Sequential(nn.Conv2d(dim, 3, 3, 1, 1), nn.Tanh())
        self._init_convs()

    def _init_convs(self) -> None:
        """Official init: every conv ~ N(0, sqrt(2 / fan_out)) with zero bias (He, fan-out mode)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = F.leaky_relu(self.conv1(img), 0.2)
        mul = self.mul_end(self.mul_blocks(feat) + feat)
        add = self.add_end(self.add_blocks(feat) + feat)
        return mul, add


class ConvEmbedding(nn.Module):
    """Two stride-2 3x3 convs with BatchNorm, GELU between (official ``conv_embedding``)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(cin, cout // 2, 3, stride=2, padding=1),
            nn.BatchNorm2d(cout // 2),
            nn.GELU(),
            nn.Conv2d(cout // 2, cout, 3, stride=2, padding=1),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class QueryAttention(nn.Module):
    """10 learned queries attend over all positions (official ``query_Attention``; k, v without bias)."""

    def __init__(self, dim: int, num_heads: int = 2, num_queries: int = 10) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = nn.Parameter(torch.ones(1, num_queries, dim))
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        h, nq = self.num_heads, self.q.shape[1]
        k = self.k(x).reshape(b, n, h, c // h).transpose(1, 2)
        v = self.v(x).reshape(b, n, h, c // h).transpose(1, 2)
        q = self.q.expand(b, -1, -1).reshape(b, nq, h, c // h).transpose(1, 2)
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, nq, c))


class TokenMlp(nn.Module):
    """Linear -> GELU -> Linear on tokens (official ``Mlp``; its dropout is 0)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class QueryBlock(nn.Module):
    """Official ``query_SABlock``: note the attention output *replaces* the tokens (no residual).

    The N image tokens go in, the 10 query tokens come out.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = QueryAttention(dim, num_heads=num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = TokenMlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        tokens = self.attn(self.norm1(x.flatten(2).transpose(1, 2)))
        return tokens + self.mlp(self.norm2(tokens))


class GlobalBranch(nn.Module):
    """Per-image gamma and 3x3 colour matrix (official ``Global_pred``).

    Query 0 gives gamma, queries 1..9 give the nine matrix entries (row-major); both are
    offsets to the learned ``gamma_base`` / ``color_base``.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 64, num_heads: int = 4, type: str = "exp") -> None:
        super().__init__()
        # The official code freezes the gamma base for exposure correction only.
        self.gamma_base = nn.Parameter(torch.ones(1), requires_grad=type != "exp")
        self.color_base = nn.Parameter(torch.eye(3))
        self.conv_large = ConvEmbedding(in_channels, out_channels)
        self.generator = QueryBlock(out_channels, num_heads=num_heads)
        self.gamma_linear = nn.Linear(out_channels, 1)
        self.color_linear = nn.Linear(out_channels, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        """Official init: Linear ~ trunc_normal(std 0.02), zero bias; LayerNorm (1, 0); value proj = 0."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.generator.attn.v.weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.generator(self.conv_large(x))
        gamma = self.gamma_linear(q[:, :1]).squeeze(-1) + self.gamma_base  # (B, 1)
        color = self.color_linear(q[:, 1:]).squeeze(-1).view(-1, 3, 3) + self.color_base  # (B, 3, 3)
        return gamma, color


def apply_color_gamma(img: torch.Tensor, color: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """``clamp(color @ rgb, 1e-8, 1) ** gamma`` per pixel and image (official ``IAT.apply_color`` then pow)."""
    mixed = torch.einsum("bij,bjhw->bihw", color, img)
    return mixed.clamp(1e-8, 1.0) ** gamma.view(-1, 1, 1, 1)


IAT_RECIPE = TrainRecipe(
    loss="l1",
    lr=2e-4,
    batch=8,
    patch=256,
    schedule=(
        "CosineAnnealingLR(T_max=200) stepped every iteration (official script quirk): the lr swings "
        "2e-4 -> 0 -> 2e-4 with a 400-iteration period"
    ),
    iterations=121_400,
    optimizer="adam(betas=(0.9, 0.999), eps=1e-8, weight_decay=4e-4)",
    notes=(
        "cuiziteng/Illumination-Adaptive-Transformer IAT_enhance/readme.md + train_lol_v1_patch.py: LOL-v1, "
        "10 random 256x256 patches per training image (LOL_patch.py: 4,850 patches), batch 8, 200 epochs "
        "(607 iterations each), L1 loss on the enhanced image, random flips/rot90 (8 cases); then "
        "train_lol_v1_whole.py fine-tunes on the full 600x400 images: lr 1e-4, weight_decay 1e-4, 400 epochs, "
        "batch 8, same per-iteration cosine. Model selection: best eval15 SSIM."
    ),
)


@BASELINES.register(
    "iat",
    task="lowlight",
    dataset="lol",
    paper="Cui, Li, Gu, Su, Gao, Jiang, Qiao, Harada, BMVC 2022, "
    "You Only Need 90K Parameters to Adapt Light: A Light Weight Transformer for Image Enhancement and Exposure "
    "Correction",
    repo="cuiziteng/Illumination-Adaptive-Transformer",
    commit="c76472265247f47cea57649af28b15018bb64cb1",
    fixture="iat",
    params=91_154,
    input_range=(0.0, 1.0),
    recipe=IAT_RECIPE,
    size_multiple_note="fully convolutional plus global pooling by attention: any H x W (no padding needed)",
)
class IAT(Restorer):
    """The official IAT (``IAT_enhance/model/IAT_main.py``), LOL configuration (``IAT()`` defaults).

    ``official_forward`` returns ``stack([mul, add, enhanced])``; ``forward`` returns the
    enhanced image; :meth:`aux_maps` gives ``mul``, ``add``, ``gamma`` and ``color``.
    """

    size_multiple = 1

    def __init__(self, in_dim: int = 3, with_global: bool = True, type: str = "lol") -> None:
        super().__init__()
        self.local_net = LocalBranch(in_dim=in_dim)
        self.with_global = with_global
        if with_global:
            self.global_net = GlobalBranch(in_channels=in_dim, type=type)

    def _run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mul, add = self.local_net(x)
        out = {"mul": mul, "add": add, "enhanced": x * mul + add}
        if self.with_global:
            gamma, color = self.global_net(x)
            out |= {"gamma": gamma, "color": color, "enhanced": apply_color_gamma(out["enhanced"], color, gamma)}
        return out

    def official_forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self._run(x)
        return torch.stack([o["mul"], o["add"], o["enhanced"]])

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        """The official demo and LOL evaluation feed the [0, 1] image as is and keep the third output."""
        return self._run(x)["enhanced"]

    def aux_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Intermediate outputs: ``mul`` and ``add`` (B x 3 x H x W), ``gamma`` (B x 1), ``color`` (B x 3 x 3)."""
        o = self._run(x)
        o.pop("enhanced")
        return o


def _unwrap_state_dict(obj: object) -> dict[str, torch.Tensor]:
    """Rule: take ``obj['state_dict']`` or ``obj['model']`` when present, then strip one leading
    ``module.`` (DataParallel) from every key. The official files are plain state_dicts already."""
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model"):
            if wrapper in obj and isinstance(obj[wrapper], Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BenchError(
            "The IAT checkpoint does not hold a state_dict of tensors.",
            fix="Pass one of the authors' best_Epoch_*.pth files.",
        )
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_official_checkpoint(path: str | Path, verify: bool = True) -> IAT:
    """Build an IAT and load the authors' checkpoint into it strictly.

    The checkpoint type follows the file: ``best_Epoch_exposure.pth`` is the exposure model
    (frozen gamma base), the others are LOL models. With ``verify``, a file whose name is one
    of :data:`OFFICIAL_SHA256` must have that SHA-256 (other names are not checked).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"IAT checkpoint not found: {path}.",
            fix="Point to best_Epoch_lol_v1.pth from the official IAT repository (IAT_enhance/).",
        )
    if verify and path.name in OFFICIAL_SHA256:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != OFFICIAL_SHA256[path.name]:
            raise BenchError(
                f"IAT checkpoint {path} has SHA-256 {digest[:12]}..., not the official "
                f"{OFFICIAL_SHA256[path.name][:12]}...",
                fix="Re-download the file from the official repository, or pass verify=False.",
            )
    state = _unwrap_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model = IAT(type="exp" if "exposure" in path.name else "lol")
    model.load_state_dict(state, strict=True)
    return model.eval()
