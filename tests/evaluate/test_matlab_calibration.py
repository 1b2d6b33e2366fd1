"""Calibration of the official scripts' conventions on real Rain100H pairs, against NumPy written from their text.

The references below are written from the scripts, not from bench: PReNet's / RCDNet's
``statistic_rain100H.m`` (``im2double`` -> ``rgb2ycbcr`` on doubles -> Y plane), their ``psnr.m``
(peak ``2^k - 1`` with ``k = 1`` when ``max(f1) <= 2``, MSE = ``sum(sum(e.^2))/(m*n)``) and their
``ssim.m`` (Zhou Wang's 2009 "SSIM with automatic downsampling", called as ``ssim(x*255, x_true*255)``),
and IAT's ``evaluation_lol_v1.py`` (IQA_pytorch SSIM). Each 2-D filter is a direct 11x11 correlation
over sliding windows (ours is separable, in torch), so the two share no code.

Tolerances: both sides compute in float64 from the same 8-bit values (k/255), so they differ only
by summation order: measured max 4e-15 dB (PSNR) and 2e-14 (SSIM) over the pairs. We assert
1e-9 dB and 1e-10: the issue asks 1e-3 dB, but that could not tell the unrounded Y from the
rounded one on these rainy inputs (they differ by up to 3e-3 dB, checked below), and float64
rounding on another CPU or BLAS (an MSE of 1.5e5 terms: ~1e-13 relative; SSIM variances are
differences of ~6e4-sized sums, ~1e-11 absolute, over C2 = 58.5) stays far below both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
from support.shared import shared_path

from bench.evaluate import metrics as M

#: 28 of the 100 pairs: every 4th, plus 8, 10 and 100; 9 of them are 320x480 (portrait), 19 are 480x320.
PAIRS = [*range(1, 101, 4), 8, 10, 100]
PSNR_TOL = 1e-9
SSIM_TOL = 1e-10


def _root() -> Path:
    return shared_path("data", "rain100h_crop")


def _u8(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# ----------------------------------------------------------------------------- the MATLAB text, in NumPy


def im2double(u8: np.ndarray) -> np.ndarray:
    return u8.astype(np.float64) / 255.0


def rgb2ycbcr_y_double(rgb: np.ndarray) -> np.ndarray:
    """First plane of MATLAB ``rgb2ycbcr`` for class double: (T / 255) * rgb + offset / 255, not rounded."""
    t = np.array([65.481, 128.553, 24.966]) / 255.0
    return rgb[..., 0] * t[0] + rgb[..., 1] * t[1] + rgb[..., 2] * t[2] + 16.0 / 255.0


def psnr_m(f1: np.ndarray, f2: np.ndarray) -> float:
    """PReNet statistic/psnr.m (RCDNet ships the same file)."""
    k = 8 if f1.max() > 2 else 1
    a = (2.0**k - 1) ** 2
    e = f1 - f2
    m, n = e.shape
    return float(10 * np.log10(a / ((e**2).sum() / (m * n))))


def fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    half = (size - 1) / 2
    x, y = np.meshgrid(np.arange(-half, half + 1), np.arange(-half, half + 1))
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


def filter2_valid(window: np.ndarray, img: np.ndarray) -> np.ndarray:
    """MATLAB ``filter2(window, img, 'valid')``: 2-D correlation where the window fits entirely."""
    return np.einsum("ijkl,kl->ij", sliding_window_view(img, window.shape), window)


def matlab_round(x: float) -> int:
    return int(np.sign(x) * np.floor(abs(x) + 0.5))


def imfilter_box_symmetric_same(img: np.ndarray, f: int) -> np.ndarray:
    """``imfilter(img, ones(f)/f^2, 'symmetric', 'same')``: kernel origin at floor((f+1)/2), mirrored borders."""
    c = (f + 1) // 2
    padded = np.pad(img, ((c - 1, f - c), (c - 1, f - c)), mode="symmetric")
    return sliding_window_view(padded, (f, f)).mean(axis=(-2, -1))


def ssim_m(img1: np.ndarray, img2: np.ndarray) -> float:
    """Zhou Wang's 2009 ssim.m with its defaults (K = [0.01 0.03], 11x11 Gaussian 1.5, L = 255)."""
    m, n = img1.shape
    window = fspecial_gaussian(11, 1.5)
    k1, k2, big_l = 0.01, 0.03, 255.0
    f = max(1, matlab_round(min(m, n) / 256))
    if f > 1:
        img1 = imfilter_box_symmetric_same(img1, f)[::f, ::f]
        img2 = imfilter_box_symmetric_same(img2, f)[::f, ::f]
    c1, c2 = (k1 * big_l) ** 2, (k2 * big_l) ** 2
    window = window / window.sum()
    mu1, mu2 = filter2_valid(window, img1), filter2_valid(window, img2)
    s1 = filter2_valid(window, img1 * img1) - mu1 * mu1
    s2 = filter2_valid(window, img2 * img2) - mu2 * mu2
    s12 = filter2_valid(window, img1 * img2) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 * mu1 + mu2 * mu2 + c1) * (s1 + s2 + c2))
    return float(ssim_map.mean())


def statistic_m(pred_u8: np.ndarray, true_u8: np.ndarray) -> tuple[float, float]:
    """One image of statistic_rain100H.m: tp = mean(psnr(x, x_true)); ts = ssim(x*255, x_true*255)."""
    x_true = rgb2ycbcr_y_double(im2double(true_u8))
    x = rgb2ycbcr_y_double(im2double(pred_u8))
    return psnr_m(x, x_true), ssim_m(x * 255, x_true * 255)


def iqa_pytorch_ssim(x_u8: np.ndarray, y_u8: np.ndarray) -> float:
    """IAT's SSIM: IQA_pytorch ssim() on [0,1] RGB, valid Gaussian (fspecial_gauss), relu on cs, mean over C,H,W."""
    x, y = im2double(x_u8), im2double(y_u8)
    g = np.mgrid[-11 // 2 + 1:11 // 2 + 1, -11 // 2 + 1:11 // 2 + 1]
    win = np.exp(-((g[0] ** 2 + g[1] ** 2) / (2.0 * 1.5**2)))
    win = win / win.sum()
    c1, c2 = 0.01**2, 0.03**2
    maps = []
    for ch in range(3):
        a, b = x[..., ch], y[..., ch]
        mu1, mu2 = filter2_valid(win, a), filter2_valid(win, b)
        s1 = filter2_valid(win, a * a) - mu1**2
        s2 = filter2_valid(win, b * b) - mu2**2
        s12 = filter2_valid(win, a * b) - mu1 * mu2
        cs = np.maximum((2 * s12 + c2) / (s1 + s2 + c2), 0)
        maps.append((2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1) * cs)
    return float(np.mean(maps))


def _tensor(u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(u8.astype(np.float32) / 255).permute(2, 0, 1)[None]


# ----------------------------------------------------------------------------- tests


def test_y_matlab_double_equals_the_statistic_script_on_real_rain100h_pairs() -> None:
    """Rainy input vs clean target of real Rain100H pairs (a real pair): ours == statistic_rain100H.m's arithmetic."""
    psnr, ssim = M.build_metric("psnr", "y-matlab-double"), M.build_metric("ssim", "y-matlab-double")
    rounded = M.build_metric("psnr", "y-pyiqa-rounded")
    dp, ds, d_rounded = [], [], []
    for i in PAIRS:
        rain, clean = _u8(_root() / "inputcrop" / f"{i}.png"), _u8(_root() / "cleancrop" / f"{i}.png")
        ref_p, ref_s = statistic_m(rain, clean)
        ours_p, ours_s = psnr(_tensor(rain), _tensor(clean)), ssim(_tensor(rain), _tensor(clean))
        dp.append(abs(ours_p - ref_p))
        ds.append(abs(ours_s - ref_s))
        d_rounded.append(abs(rounded(_tensor(rain), _tensor(clean)) - ref_p))
        assert 5 < ref_p < 40 and 0.05 < ref_s < 0.99, (i, ref_p, ref_s)  # a real, imperfect pair
    print(f"y-matlab-double on {len(PAIRS)} Rain100H pairs: max |ours - statistic.m| PSNR {max(dp):.3g} dB, "
          f"SSIM {max(ds):.3g}; the rounded Y misses by up to {max(d_rounded):.3g} dB")
    assert max(dp) < PSNR_TOL and max(ds) < SSIM_TOL
    assert max(d_rounded) > 1e-3  # the calibration tells the two Y conventions apart


@pytest.mark.parametrize(("scale", "factor"), [(2, 3), (1.6, 2)])
def test_wang2009_downsampling_equals_ssim_m_on_enlarged_real_images(scale: float, factor: int) -> None:
    """Rain100H's 320-row images give f = 1; enlarged ones exercise ssim.m's f x f downsampling (2.5 rounds to 3)."""
    rain, clean = _u8(_root() / "inputcrop" / "7.png"), _u8(_root() / "cleancrop" / "7.png")
    size = (round(rain.shape[1] * scale), round(rain.shape[0] * scale))
    rain = np.asarray(Image.fromarray(rain).resize(size, Image.BICUBIC))
    clean = np.asarray(Image.fromarray(clean).resize(size, Image.BICUBIC))
    assert M.wang2009_factor(*rain.shape[:2]) == factor == max(1, matlab_round(min(rain.shape[:2]) / 256))
    ref_p, ref_s = statistic_m(rain, clean)
    assert abs(M.build_metric("ssim", "y-matlab-double")(_tensor(rain), _tensor(clean)) - ref_s) < SSIM_TOL
    assert abs(M.build_metric("psnr", "y-matlab-double")(_tensor(rain), _tensor(clean)) - ref_p) < PSNR_TOL
    undownsampled = float(M.ssim_map(*(255 * M.luma_matlab_double(_tensor(u)) for u in (rain, clean))).mean())
    assert abs(undownsampled - ref_s) > 1e-3  # the downsampling matters at this size


def test_rgb_iat_equals_iqa_pytorch_ssim_arithmetic() -> None:
    """LOL's convention on a real pair and on an anti-correlated one, where IQA_pytorch's relu on cs bites."""
    ssim = M.build_metric("ssim", "rgb-iat")
    rain, clean = _u8(_root() / "inputcrop" / "3.png"), _u8(_root() / "cleancrop" / "3.png")
    assert abs(ssim(_tensor(rain), _tensor(clean)) - iqa_pytorch_ssim(rain, clean)) < SSIM_TOL
    inverted = 255 - clean  # locally anti-correlated with clean: cs < 0 almost everywhere
    ours, ref = ssim(_tensor(inverted), _tensor(clean)), iqa_pytorch_ssim(inverted, clean)
    assert abs(ours - ref) < SSIM_TOL
    assert abs(M.build_metric("ssim", "rgb")(_tensor(inverted), _tensor(clean)) - ref) > 1e-2  # clamp matters
