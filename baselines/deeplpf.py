"""DeepLPF: Deep Local Parametric Filters for image enhancement (Moran et al., CVPR 2020).

A small U-Net backbone maps the image to 64 feature channels. Three heads read those
features (downsampled to 300x300) and regress the parameters of three families of
spatially smooth filters, applied in sequence:

* a cubic filter: per channel, a cubic polynomial in (row, column, intensity) added to
  the image (60 coefficients);
* graduated filters: three soft "linear gradient" scaling masks (24 parameters);
* elliptical filters: three radial scaling masks inside rotated ellipses (24 parameters).

Names follow the official ``model.py`` / ``unet.py`` so that the authors' checkpoints load
with ``strict=True``. Every formula keeps the official operation order, quirks included
(each is marked "official quirk"), because the fixtures and the checkpoints depend on it.

The official code supports batch size 1 only (it reads ``R[0, k]`` and writes
``mask[0, c]``). Here every parameter is taken per sample, which is the same function at
batch size 1 and the natural extension beyond it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from baselines._base import Restorer, TrainRecipe
from bench.registry import BASELINES

#: Smallest side the backbone takes: four 2x max-pools leave >= 2 pixels for the 1-pixel reflection pads.
MIN_SIDE = 32
#: Every parameter head resizes its input to this size first (official ``nn.Upsample(size=(300, 300))``).
HEAD_SIZE = (300, 300)


# ----------------------------------------------------------------------------- backbone (unet.py)


class DoubleConv(nn.Module):
    """Reflection-pad 3x3 conv + LeakyReLU, twice (official ``LocalNet``)."""

    def __init__(self, cin: int = 16, cout: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3)
        self.conv2 = nn.Conv2d(cout, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv1(F.pad(x, (1, 1, 1, 1), mode="reflect")))
        return F.leaky_relu(self.conv2(F.pad(x, (1, 1, 1, 1), mode="reflect")))


def _match_skip(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """Official fix-up after a 2x upsample of an odd size: zero-pad one column on the LEFT
    and/or one row at the BOTTOM (official quirk: left, not right)."""
    dh, dw = x.shape[2] != skip.shape[2], x.shape[3] != skip.shape[3]
    if dh and dw:
        return F.pad(x, (1, 0, 0, 1))
    if dh:
        return F.pad(x, (0, 0, 0, 1))
    if dw:
        return F.pad(x, (1, 0, 0, 0))
    return x


class UNet(nn.Module):
    """Official ``unet.UNet``: 5 levels (16-32-64-128-128), nearest upsampling + 1x1 conv,
    output = last conv + input (residual)."""

    def __init__(self) -> None:
        super().__init__()
        # Official quirk: conv1-3 and local_net are built but never used by forward; they are
        # kept so that official checkpoints load strictly and the parameter count matches.
        self.conv1 = nn.Conv2d(16, 64, 1)
        self.conv2 = nn.Conv2d(32, 64, 1)
        self.conv3 = nn.Conv2d(64, 64, 1)
        self.local_net = DoubleConv(16)
        self.dconv_down1 = DoubleConv(3, 16)
        self.dconv_down2 = DoubleConv(16, 32)
        self.dconv_down3 = DoubleConv(32, 64)
        self.dconv_down4 = DoubleConv(64, 128)
        self.dconv_down5 = DoubleConv(128, 128)
        self.up_conv1x1_1 = nn.Conv2d(128, 128, 1)
        self.up_conv1x1_2 = nn.Conv2d(128, 128, 1)
        self.up_conv1x1_3 = nn.Conv2d(64, 64, 1)
        self.up_conv1x1_4 = nn.Conv2d(32, 32, 1)
        self.dconv_up4 = DoubleConv(256, 128)
        self.dconv_up3 = DoubleConv(192, 64)
        self.dconv_up2 = DoubleConv(96, 32)
        self.dconv_up1 = DoubleConv(48, 16)
        self.conv_last = DoubleConv(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for down in (self.dconv_down1, self.dconv_down2, self.dconv_down3, self.dconv_down4):
            h = down(h)
            skips.append(h)
            h = F.max_pool2d(h, 2)
        h = self.dconv_down5(h)
        ups = (
            (self.up_conv1x1_1, self.dconv_up4),
            (self.up_conv1x1_2, self.dconv_up3),
            (self.up_conv1x1_3, self.dconv_up2),
            (self.up_conv1x1_4, self.dconv_up1),
        )
        for (proj, conv), skip in zip(ups, reversed(skips), strict=True):
            h = _match_skip(proj(F.interpolate(h, scale_factor=2, mode="nearest")), skip)
            h = conv(torch.cat([h, skip], dim=1))
        return self.conv_last(h) + x


class Backbone(nn.Module):
    """Official ``unet.UNetModel``: U-Net, then a reflection-padded 3x3 conv to 64 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.unet = UNet()
        self.final_conv = nn.Conv2d(3, 64, 3)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.final_conv(F.pad(self.unet(img), (1, 1, 1, 1), mode="reflect"))


# ----------------------------------------------------------------------------- filter heads (model.py)


class StridedConv(nn.Module):
    """Stride-2 3x3 conv + LeakyReLU (official ``ConvBlock``)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(x))


class ParameterHead(nn.Module):
    """The CNN shared by the three filter classes: resize to 300x300, then
    [conv s2, max-pool] x 3, conv s2, global average pool, dropout 0.5, linear.

    Layers are named ``<kind>_layer1/3/5/7`` and ``fc_<kind>`` as in the official classes
    (the even-numbered official layers are parameter-free pools).
    """

    def __init__(self, kind: str, n_params: int, channels: int = 64) -> None:
        super().__init__()
        self.kind = kind
        for i in (1, 3, 5, 7):
            setattr(self, f"{kind}_layer{i}", StridedConv(channels, channels))
        setattr(self, f"fc_{kind}", nn.Linear(channels, n_params))
        self.dropout = nn.Dropout(0.5)

    def predict(self, feat: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        """(B, n_params) from the features and the current image, concatenated features first."""
        x = F.interpolate(torch.cat((feat, img), 1), size=HEAD_SIZE, mode="bilinear", align_corners=False)
        for i in (1, 3, 5, 7):
            x = getattr(self, f"{self.kind}_layer{i}")(x)
            if i < 7:
                x = F.max_pool2d(x, 2)
        x = self.dropout(F.adaptive_avg_pool2d(x, 1).flatten(1))
        return getattr(self, f"fc_{self.kind}")(x)


def tanh01(x: torch.Tensor) -> torch.Tensor:
    """tanh rescaled to (0, 1), as the official ``tanh01``."""
    return 0.5 * (torch.tanh(x) + 1)


def pixel_grid(h: int, w: int, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Official normalised coordinates: ``x_axis`` = row / H, ``y_axis`` = column / W (both H x W)."""
    rows = torch.arange(h, device=ref.device, dtype=ref.dtype).view(-1, 1).expand(h, w) / h
    cols = torch.arange(w, device=ref.device, dtype=ref.dtype).view(1, -1).expand(h, w) / w
    return rows, cols


def _col(p: torch.Tensor) -> torch.Tensor:
    """(B,) per-sample scalar -> (B, 1, 1) to broadcast over an H x W map."""
    return p.view(-1, 1, 1)


#: Monomials of the cubic filter in the official order; "x" = row, "y" = column, "i" = intensity.
CUBIC_TERMS = (
    "xxx", "xxy", "xxi", "xx", "xyy", "xyi", "xy", "xii", "xi", "x",
    "yyy", "yyi", "yy", "yii", "yi", "y", "iii", "ii", "i", "",
)  # fmt: skip


class CubicFilter(ParameterHead):
    """Official ``CubicFilter``: per channel c, ``img_c + sum_k R[20c + k] * monomial_k``, clamped to [0, 1]."""

    def __init__(self) -> None:
        super().__init__("cubic", 60)

    def get_cubic_mask(self, feat: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        coef = self.predict(feat, img)
        x, y = pixel_grid(img.shape[2], img.shape[3], img)
        channels = []
        for c in range(3):
            i = img[:, c]
            # Powers as the official code writes them (x ** 3, x ** 2, ...), products left to right.
            base = {"x": x, "y": y, "i": i}
            power = {"xxx": x**3, "xx": x**2, "yyy": y**3, "yy": y**2, "iii": i**3, "ii": i**2}
            mask = None
            for k, term in enumerate(CUBIC_TERMS):
                t = _col(coef[:, 20 * c + k])
                for factor in _split_powers(term):
                    t = t * (power[factor] if factor in power else base[factor])
                mask = t if mask is None else mask + t
            channels.append(mask)
        return torch.clamp(img + torch.stack(channels, 1), 0, 1)


def _split_powers(term: str) -> list[str]:
    """'xxi' -> ['xx', 'i'], 'xyy' -> ['x', 'yy']: the factors the official code multiplies."""
    out: list[str] = []
    for ch in term:
        if out and out[-1][-1] == ch:
            out[-1] += ch
        else:
            out.append(ch)
    return out


class GraduatedFilter(ParameterHead):
    """Official ``GraduatedFilter``: three soft linear-gradient filters, each scaling R, G, B by its own factor."""

    MAX_SCALE = 2.0

    def __init__(self) -> None:
        super().__init__("graduated", 24)

    @staticmethod
    def inverted_mask(
        factor: torch.Tensor, invert: torch.Tensor, d1: torch.Tensor, d2: torch.Tensor, top_line: torch.Tensor
    ) -> torch.Tensor:
        """Official ``get_inverted_mask``, its four ``if`` branches chosen per sample with ``torch.where``.

        ``factor``, ``invert``, ``d1``, ``d2``: (B, 1, 1); ``top_line``: (B, H, W). Returns (B, H, W).
        """
        mx = GraduatedFilter.MAX_SCALE
        up = factor >= 1
        diff_up = (factor - 1) / 2 + 1
        diff_dn = (1 - factor) / 2 + factor
        # invert == 1: the filter starts at `factor` and relaxes to 1.
        inv_up = factor + (diff_up - factor) / d1 * top_line + (1 - diff_up) / d2 * top_line
        inv_dn = factor + (diff_dn - factor) / d1 * top_line + (1 - diff_dn) / d2 * top_line
        # otherwise it starts at 1 and moves to `factor`.
        std_up = 1 + (diff_up - factor) / d1 * top_line + (factor - diff_up) / d2 * top_line
        std_dn = 1 + (diff_dn - 1) / d1 * top_line + (factor - diff_dn) / d2 * top_line
        inv = torch.where(up, inv_up.clamp(1, mx), inv_dn.clamp(0, 1))
        std = torch.where(up, std_up.clamp(1, mx), std_dn.clamp(0, 1))
        return torch.where(invert == 1, inv, std).clamp(0, mx)

    def get_graduated_mask(self, feat: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        eps, mx = 1e-10, self.MAX_SCALE
        x, y = pixel_grid(img.shape[2], img.shape[3], img)
        g = self.predict(feat, img)
        groups = []
        for k in range(3):
            invert = _col((torch.sign(g[:, k]) + 1) / 2)
            slope = _col(g[:, 3 + k])
            lower = tanh01(g[:, 6 + k]) + eps
            dist = tanh01(g[:, 9 + k]).clamp(min=lower.detach()).clamp(max=1.0)  # official: .data bounds
            dist_far = tanh01(g[:, 12 + k]).clamp(min=0).clamp(max=dist.detach())
            dist, dist_far = _col(dist), _col(dist_far)
            cos_angle = torch.cos(torch.atan(slope))
            d_near = tanh01(dist * cos_angle)
            d_far = tanh01(dist_far * cos_angle)
            top_line = tanh01(y - (slope * x + dist + d_near))
            masks = [
                self.inverted_mask(_col(tanh01(g[:, 15 + 3 * k + c]) * mx), invert, d_near, d_far, top_line)
                for c in range(3)
            ]
            groups.append(torch.stack(masks, 1).clamp(0, mx))
        return (groups[0] * groups[1] * groups[2]).clamp(0, mx)


class EllipticalFilter(ParameterHead):
    """Official ``EllipticalFilter``: three rotated ellipses, each scaling R, G, B radially by its own factor."""

    MAX_SCALE = 2.0

    def __init__(self) -> None:
        super().__init__("elliptical", 24)

    @staticmethod
    def ellipse_mask(
        x: torch.Tensor,
        y: torch.Tensor,
        cx: torch.Tensor,
        cy: torch.Tensor,
        ax: torch.Tensor,
        ay: torch.Tensor,
        alpha: torch.Tensor,
        scale: torch.Tensor,
        radius: torch.Tensor,
        eps: float = 1e-7,
    ) -> torch.Tensor:
        """Official ``get_mask``: inside the ellipse the scale decays linearly with the distance to
        the centre, from ``scale`` to 1 at ``radius``; outside it is 1. (B, H, W), clamped to [0, 2]."""
        dx, dy = x - cx, y - cy
        part1 = (dx * torch.cos(alpha) + dy * torch.sin(alpha)) ** 2 / ax**2
        part2 = (dx * torch.sin(alpha) - dy * torch.cos(alpha)) ** 2 / ay**2
        inside = (part1 + part2 < 1).to(x.dtype)
        value = (torch.sqrt(dx**2 + dy**2 + eps) * (1 - scale)) / radius + scale
        # Official "differentiable where": cond * a + (1 - cond) * b.
        return (inside * value + (1 - inside) * 1).clamp(0, EllipticalFilter.MAX_SCALE)

    def get_elliptical_mask(self, feat: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        eps1, eps2, mx = 1e-10, 1e-7, self.MAX_SCALE
        g = self.predict(feat, img)
        x, y = pixel_grid(img.shape[2], img.shape[3], img)

        def p(j: int, times: float = 1.0) -> torch.Tensor:  # (multiplying by 1.0 is exact)
            return _col(tanh01(g[:, j]) * times + eps1)

        cx = [p(k) for k in range(3)]
        cy = [p(3 + k) for k in range(3)]
        a = [p(6 + k) for k in range(3)]
        b = [p(9 + k) for k in range(3)]
        rot = [p(12 + k, math.pi) for k in range(3)]
        scale = [p(15 + j, mx) for j in range(9)]
        angle, radius = [], []
        for k in range(3):
            cosine = (y - cy[k]) / torch.sqrt((x - cx[k]) ** 2 + (y - cy[k]) ** 2 + eps1)
            angle.append(torch.acos(cosine.clamp(-1 + eps2, 1 - eps2)) - rot[k])
            radius.append(
                (a[k] * b[k])
                / torch.sqrt(a[k] ** 2 * torch.sin(angle[k]) ** 2 + b[k] ** 2 * torch.cos(angle[k]) ** 2 + eps1)
            )
        groups = []
        for k in range(3):
            masks = []
            for c in range(3):
                # Official quirk: the blue mask of the second ellipse uses the third ellipse's b axis.
                ay = b[2] if (k, c) == (1, 2) else b[k]
                masks.append(self.ellipse_mask(x, y, cx[k], cy[k], a[k], ay, angle[k], scale[3 * k + c], radius[k]))
            groups.append(torch.stack(masks, 1).clamp(0, mx))
        return (groups[0] * groups[1] * groups[2]).clamp(0, mx)


class FilterNet(nn.Module):
    """Official ``DeepLPFParameterPrediction``: cubic, then graduated + elliptical scaling, then a residual."""

    def __init__(self) -> None:
        super().__init__()
        self.cubic_filter = CubicFilter()
        self.graduated_filter = GraduatedFilter()
        self.elliptical_filter = EllipticalFilter()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Official quirk: the "image" the filters act on is the first 3 of the backbone's 64
        # output channels, not the input photograph; channels 3..63 are the features.
        img, feat = x[:, :3], x[:, 3:]
        img_cubic = self.cubic_filter.get_cubic_mask(feat, img)
        scale = self.graduated_filter.get_graduated_mask(feat, img_cubic)
        scale = torch.clamp(scale + self.elliptical_filter.get_elliptical_mask(feat, img_cubic), 0, 2)
        img_fuse = torch.clamp(img_cubic * scale, 0, 1)
        return torch.clamp(img_fuse + img, 0, 1)


DEEPLPF_RECIPE = TrainRecipe(
    loss="deeplpf: L1(CIELab) + 1e-3 * (1 - MS-SSIM(L channel, 5x5 Gaussian window))",
    lr=1e-4,
    batch=1,
    patch=0,
    schedule="constant",
    iterations=None,
    optimizer="adam(betas=(0.9, 0.999), eps=1e-8)",
    notes=(
        "sjmoran/DeepLPF main.py + data.py + model.DeepLPFLoss: batch size 1 only (the code asserts it), whole "
        "images (patch=0 means no cropping), random h/v flips, output clamped to [0, 1] before the loss; "
        "num_epoch default 100000 with validation every 25 epochs and best-valid-PSNR checkpointing (the "
        "published Adobe-DPE model is from epoch 424). The DiffLoss paper trains it on LOL."
    ),
)


@BASELINES.register(
    "deeplpf",
    task="lowlight",
    dataset="lol",
    paper="Moran, Marza, McDonagh, Parisot, Slabaugh, CVPR 2020, DeepLPF: Deep Local Parametric Filters for "
    "Image Enhancement",
    repo="sjmoran/DeepLPF",
    commit="e610b2ba618bd7fe13da2c0c350ffd4ae7e87f8b",
    fixture="deeplpf",
    params=1_769_347,
    input_range=(0.0, 1.0),
    recipe=DEEPLPF_RECIPE,
    size_multiple_note=(
        "any H, W >= 32 (the official U-Net zero-pads odd sizes itself after each upsample); smaller inputs are "
        "reflect/replicate-padded to 32 and cropped back, which the official code cannot take at all"
    ),
)
class DeepLPF(Restorer):
    """The official ``DeepLPFNet`` (``model.py``), its only configuration.

    ``official_forward`` is the network's output (already in [0, 1]); ``forward`` adds the
    official evaluator's input clamp and pads inputs smaller than 32 pixels;
    :meth:`filter_stages` gives the intermediate images.
    """

    size_multiple = 1

    def __init__(self) -> None:
        super().__init__()
        self.backbonenet = Backbone()
        self.deeplpfnet = FilterNet()

    def official_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deeplpfnet(self.backbonenet(x))

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        """metric.Evaluator clamps the input to [0, 1]; the network's output is already clamped."""
        h, w = x.shape[-2:]
        ph, pw = max(0, MIN_SIDE - h), max(0, MIN_SIDE - w)
        x = x.clamp(0, 1)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
        return self.official_forward(x)[..., :h, :w]

    def filter_stages(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Intermediate outputs for inspection: the backbone's 3-channel "image", the image after the
        cubic filter, the fused graduated + elliptical scale map, and the final output."""
        feat = self.backbonenet(x)
        img, rest = feat[:, :3], feat[:, 3:]
        net = self.deeplpfnet
        cubic = net.cubic_filter.get_cubic_mask(rest, img)
        scale = net.graduated_filter.get_graduated_mask(rest, cubic)
        scale = torch.clamp(scale + net.elliptical_filter.get_elliptical_mask(rest, cubic), 0, 2)
        out = torch.clamp(torch.clamp(cubic * scale, 0, 1) + img, 0, 1)
        return {"backbone_image": img, "cubic": cubic, "scale": scale, "output": out}
