"""Synthetic degradations of CUB test images for Table 2 ("synthetic methods from Hendrycks & Dietterich 2019").

* ``fog``: ImageNet-C's fog, the haze stand-in: a diamond-square plasma fractal added to the
  image, then rescaled by ``max / (max + amount)``. Its five severities' (amount, wibble decay)
  are ImageNet-C's. Drawn from a legacy ``RandomState`` so that ``corrupt(img, "fog", s, seed)``
  equals ImageNet-C's ``fog(img, s)`` after ``np.random.seed(seed)`` on a 224x224 image. Larger
  images get the next power-of-two fractal (ImageNet-C is fixed at 256, cropped to 224).
* ``rain`` and ``lowlight``: ImageNet-C has neither, so they reuse ``bench.data.degrade``
  (streak layer; gamma darkening plus Poisson-Gaussian noise) with the severity tables below,
  severity 3 being ``degrade``'s defaults (the smoke profile's degradations).

Everything is deterministic in (image, degradation, severity, seed). Applied to files, each
image draws from its own seed derived from its bytes (one shared seed would give every image
the same fog pattern), and results are cached under a content hash of (image bytes,
degradation, severity, seed, parameters). ``render_grid`` writes a PNG of examples to look at.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from bench.data import degrade
from bench.data.base import read_image, write_png
from bench.errors import BenchError, UnknownNameError

SEVERITIES = (1, 2, 3, 4, 5)
DEFAULT_SEVERITY = 3  # the paper names no severity; ours is stated in every Table 2 row by the caller
#: ImageNet-C fog: (amount of fractal added, wibble decay per octave), severities 1..5.
FOG = ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))
#: ``degrade.rain`` keyword arguments, severities 1..5 (3 = the smoke profile's defaults).
RAIN = tuple({"density": d, "length": n, "intensity": i}
             for d, n, i in ((0.006, 9, 0.6), (0.012, 12, 0.7), (0.02, 15, 0.8), (0.03, 19, 0.85), (0.045, 23, 0.9)))
#: ``degrade.low_light`` keyword arguments, severities 1..5 (3 = the smoke profile's defaults).
LOWLIGHT = tuple({"gamma": g, "scale": s, "photons": p, "read_sigma": r}
                 for g, s, p, r in ((1.6, 0.6, 200.0, 0.004), (1.9, 0.45, 100.0, 0.007), (2.2, 0.35, 60.0, 0.01),
                                    (2.5, 0.25, 30.0, 0.015), (2.8, 0.15, 15.0, 0.02)))
CORRUPTIONS = ("fog", "rain", "lowlight")
#: The Table 2 degradation of each restoration task.
TASK_CORRUPTION = {"dehazing": "fog", "deraining": "rain", "lowlight": "lowlight"}


def params(name: str, severity: int) -> dict[str, Any]:
    """The parameters ``name`` uses at ``severity``; part of the cache key."""
    _check(name, severity)
    if name == "fog":
        amount, decay = FOG[severity - 1]
        return {"amount": amount, "decay": decay}
    return dict((RAIN if name == "rain" else LOWLIGHT)[severity - 1])


def _check(name: str, severity: int) -> None:
    if name not in CORRUPTIONS:
        close = difflib.get_close_matches(name, CORRUPTIONS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UnknownNameError(f"Unknown degradation '{name}'.{hint}", fix=f"Use one of {', '.join(CORRUPTIONS)}.")
    if not isinstance(severity, numbers.Integral) or severity not in SEVERITIES:
        raise BenchError(f"Severity must be an integer from 1 to 5, got {severity!r}.")


def plasma_fractal(size: int, decay: float, rng: np.random.RandomState) -> np.ndarray:
    """A size x size heightmap in [0, 1] by diamond-square on a torus (ImageNet-C's construction).

    Each octave sets new points to the mean of their four neighbours plus uniform noise of
    half-width ``wibble**2``; ``wibble`` starts at 100 and is divided by ``decay`` per octave,
    so a smaller decay keeps more fine structure (thicker, patchier fog).
    """
    if size < 2 or size & (size - 1):
        raise ValueError(f"plasma_fractal needs a power of two, got {size}")
    m = np.empty((size, size), dtype=np.float64)
    m[0, 0] = 0.0
    step, wibble = size, 100.0

    def noisy_mean(total: np.ndarray) -> np.ndarray:
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = m[0::step, 0::step]
        square = corners + np.roll(corners, -1, axis=0)
        square = square + np.roll(square, -1, axis=1)
        m[half::step, half::step] = noisy_mean(square)
        centres = m[half::step, half::step]
        corners = m[0::step, 0::step]
        across = (centres + np.roll(centres, 1, axis=0)) + (corners + np.roll(corners, -1, axis=1))
        m[0::step, half::step] = noisy_mean(across)
        down = (centres + np.roll(centres, 1, axis=1)) + (corners + np.roll(corners, -1, axis=0))
        m[half::step, 0::step] = noisy_mean(down)
        step = half
        wibble /= decay
    m -= m.min()
    return m / m.max()


def fog(img: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """ImageNet-C fog on an H x W x 3 float image in [0, 1]."""
    amount, decay = FOG[severity - 1]
    h, w = img.shape[:2]
    size = max(256, 1 << (max(h, w) - 1).bit_length())
    peak = img.max()
    x = img + amount * plasma_fractal(size, decay, rng)[:h, :w, None]
    return np.clip(x * peak / (peak + amount), 0.0, 1.0)


def corrupt(img: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """Degrade an H x W x 3 image (uint8, or float in [0, 1]) -> float64 in [0, 1]; same inputs, same output."""
    _check(name, severity)
    x = img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else np.asarray(img, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != 3:
        raise BenchError(f"Expected an H x W x 3 image, got shape {x.shape}.")
    if name == "fog":
        return fog(x, severity, np.random.RandomState(seed % 2**32))
    rng = np.random.default_rng(seed)
    if name == "rain":
        return degrade.rain(x, rng, **params(name, severity))
    return degrade.low_light(x, rng, **params(name, severity))


def image_seed(content: bytes, name: str, severity: int, seed: int) -> int:
    """A 32-bit seed for one image: different images get different fog/streak/noise draws."""
    h = hashlib.sha256(b"bench-corruption-seed\0" + hashlib.sha256(content).digest())
    h.update(f"{name}\0{severity}\0{seed}".encode())
    return int.from_bytes(h.digest()[:4], "little")


def cache_key(content: bytes, name: str, severity: int, seed: int) -> str:
    """Hex SHA-256 of (image bytes, degradation, severity, seed, its parameters)."""
    spec = json.dumps({"name": name, "severity": severity, "seed": seed, "params": params(name, severity)},
                      sort_keys=True)
    return hashlib.sha256(hashlib.sha256(content).digest() + spec.encode()).hexdigest()


def load_uint8_grid(path: Path) -> np.ndarray:
    """An image file as H x W x 3 float64 on the 8-bit grid (``read_image`` rules, then k/255 exactly)."""
    t = read_image(Path(path))
    return np.round(t.permute(1, 2, 0).double().numpy() * 255.0) / 255.0


class CorruptionCache:
    """Degraded copies of image files, stored as 8-bit PNG under ``root/<name>/s<severity>/<key>.png``."""

    def __init__(self, root: Path | None = None):
        if root is None:
            from bench.paths import cache_dir

            root = cache_dir() / "corruptions"
        self.root = Path(root)

    def path(self, content: bytes, name: str, severity: int, seed: int) -> Path:
        key = cache_key(content, name, severity, seed)
        return self.root / name / f"s{severity}" / key[:2] / f"{key}.png"

    def get(self, src: Path, name: str, severity: int, seed: int) -> Path:
        """The degraded copy of ``src``, made (and written atomically) if not cached yet."""
        content = Path(src).read_bytes()
        out = self.path(content, name, severity, seed)
        if not out.is_file():
            from bench.io import remove_stale_temps

            remove_stale_temps(out.parent)  # what a killed writer left (its process is gone)
            img = load_uint8_grid(Path(src))
            write_png(out, _to_uint8(corrupt(img, name, severity, image_seed(content, name, severity, seed))))
        return out

    def many(self, srcs: Sequence[Path], name: str, severity: int, seed: int) -> list[Path]:
        return [self.get(s, name, severity, seed) for s in srcs]


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Round to 8 bits (ImageNet-C truncates with ``np.uint8``; rounding is unbiased)."""
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _square(img: np.ndarray, tile: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = Image.fromarray(img[top:top + s, left:left + s])
    return np.asarray(crop.resize((tile, tile), Image.Resampling.BICUBIC))


def render_grid(images: Sequence[Path | np.ndarray], out: Path, names: Sequence[str] = CORRUPTIONS,
                severities: Sequence[int] = SEVERITIES, seed: int = 0, tile: int = 128) -> Path:
    """A PNG with one row per (image, degradation): the clean image, then each severity.

    Images are degraded at full size with the same per-image seeds the cache uses, then
    centre-cropped and resized to ``tile`` for display.
    """
    label_w, head_h, pad = 72, 16, 2
    rows: list[tuple[str, list[np.ndarray]]] = []
    for item in images:
        if isinstance(item, np.ndarray):
            content, img = item.tobytes(), (item.astype(np.float64) / 255.0 if item.dtype == np.uint8 else item)
        else:
            content, img = Path(item).read_bytes(), load_uint8_grid(Path(item))
        clean = _square(_to_uint8(img), tile)
        for name in names:
            tiles = [clean] + [_square(_to_uint8(corrupt(img, name, s, image_seed(content, name, s, seed))), tile)
                               for s in severities]
            rows.append((name, tiles))
    cols = 1 + len(severities)
    canvas = Image.new("RGB", (label_w + cols * (tile + pad), head_h + len(rows) * (tile + pad)), (32, 32, 32))
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(["clean", *(f"severity {s}" for s in severities)]):
        draw.text((label_w + c * (tile + pad) + 4, 2), title, fill=(255, 255, 255))
    for r, (name, tiles) in enumerate(rows):
        y = head_h + r * (tile + pad)
        draw.text((4, y + tile // 2 - 6), name, fill=(255, 255, 255))
        for c, t in enumerate(tiles):
            canvas.paste(Image.fromarray(t), (label_w + c * (tile + pad), y))
    write_png(out, np.asarray(canvas))
    return out
