"""Physically motivated, seeded degradations of clean photographs.

Used by the embedded smoke profile to build paired data with no external download.
Every function takes an H x W x 3 float64 image in [0, 1] and a ``numpy`` Generator,
and is deterministic given the generator's seed (same seed, same bytes).

* haze: the atmospheric scattering model I = J t + A (1 - t), t = exp(-beta d), with a
  smooth depth proxy d (farther towards the top of the frame, plus low-frequency terrain).
* rain: sparse drops motion-blurred along one orientation into streaks, added as a
  bright layer (screen blend, so streaks never exceed white).
* low light: gamma darkening plus Poisson-Gaussian sensor noise (shot noise at a given
  photon count, Gaussian read noise).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def depth_proxy(h: int, w: int, rng: np.random.Generator, smoothness: float = 0.15) -> np.ndarray:
    """A smooth depth map in [0, 1]: a vertical ramp (sky far) plus blurred noise."""
    ramp = np.linspace(1.0, 0.0, h)[:, None] * np.ones((1, w))
    noise = ndimage.gaussian_filter(rng.standard_normal((h, w)), sigma=smoothness * max(h, w))
    noise = (noise - noise.min()) / (np.ptp(noise) + 1e-12)
    d = 0.7 * ramp + 0.3 * noise
    return (d - d.min()) / (np.ptp(d) + 1e-12)


def haze(img: np.ndarray, rng: np.random.Generator, beta: float = 2.0, airlight: float | None = None) -> np.ndarray:
    """Atmospheric scattering: I = J t + A (1 - t), t = exp(-beta d)."""
    h, w, _ = img.shape
    d = depth_proxy(h, w, rng)
    a = rng.uniform(0.8, 0.95) if airlight is None else airlight
    t = np.exp(-beta * d)[..., None]
    return np.clip(img * t + a * (1.0 - t), 0.0, 1.0)


def line_kernel(length: int, angle_deg: float) -> np.ndarray:
    """A normalised motion-blur kernel: a line of ``length`` pixels at ``angle_deg``."""
    size = length if length % 2 else length + 1
    k = np.zeros((size, size))
    c = size // 2
    theta = np.deg2rad(angle_deg)
    for s in np.linspace(-c, c, 4 * size):
        x, y = int(np.rint(c + s * np.cos(theta))), int(np.rint(c - s * np.sin(theta)))
        k[y, x] = 1.0
    return k / k.sum()


def rain_layer(h: int, w: int, rng: np.random.Generator, density: float = 0.02, length: int = 15,
               angle_deg: float = 75.0, intensity: float = 0.8, mode: str = "reflect") -> np.ndarray:
    """Oriented streaks: sparse random drops, motion-blurred along ``angle_deg``.

    ``mode="wrap"`` makes the layer periodic, so tiles of it join without seams (``bench data synth``).
    """
    drops = (rng.random((h, w)) < density) * rng.uniform(0.5, 1.0, (h, w))
    streaks = ndimage.convolve(drops, line_kernel(length, angle_deg), mode=mode)
    streaks = streaks / (streaks.max() + 1e-12)
    return np.clip(intensity * streaks, 0.0, 1.0)


def rain(img: np.ndarray, rng: np.random.Generator, density: float = 0.02, length: int = 15,
         angle_deg: float | None = None, intensity: float = 0.8) -> np.ndarray:
    """Add a streak layer by screen blending: 1 - (1 - J)(1 - S)."""
    h, w, _ = img.shape
    ang = rng.uniform(60.0, 120.0) if angle_deg is None else angle_deg
    s = rain_layer(h, w, rng, density, length, ang, intensity)[..., None]
    return 1.0 - (1.0 - img) * (1.0 - s)


def low_light(img: np.ndarray, rng: np.random.Generator, gamma: float = 2.2, scale: float = 0.35,
              photons: float = 60.0, read_sigma: float = 0.01, gaussian_shot: bool = False) -> np.ndarray:
    """Darken by ``scale * J**gamma``, then Poisson shot noise at ``photons`` plus Gaussian read noise.

    ``gaussian_shot`` draws the shot noise from its Gaussian approximation (mean and variance of
    the Poisson), ten times faster on large images (``bench data synth``); the default is exact.
    """
    dark = scale * np.power(np.clip(img, 0.0, 1.0), gamma)
    if gaussian_shot:
        shot = dark + np.sqrt(dark / photons) * rng.standard_normal(img.shape)
    else:
        shot = rng.poisson(dark * photons) / photons
    return np.clip(shot + rng.normal(0.0, read_sigma, img.shape), 0.0, 1.0)


DEGRADATIONS = {"haze": haze, "rain": rain, "lowlight": low_light}
