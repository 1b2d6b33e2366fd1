"""``bench data synth``: a synthetic data root in the published layouts, counts and image sizes.

Anyone can rehearse a paper-profile run (layout search, verification, memory, loader speed)
without the real data. Scenes are smooth random images with a few shapes; each set gets its
task's degradation from ``bench.data.degrade`` where that is cheap at full size (rain streaks
from a small bank of streak tiles, haze from a low-resolution depth map, low light as is).
Everything is seeded per image from (seed, set, index): the same seed writes the same bytes.

Each set's folder gets a ``SYNTHETIC.json`` marker (``bench.data.verify.MARKER``) recording the
counts written; ``bench data verify`` and the loaders then check counts against it instead of
the release (layout, pairing, decodability and sizes are checked as for real data), and sets
loaded from it carry ``subset="synthetic"`` so no table made from them passes for a reproduction.
"""

from __future__ import annotations

import shutil
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from bench.data import cub as cub_mod
from bench.data import dense_haze as dense_haze_mod
from bench.data import lol as lol_mod
from bench.data import rain as rain_mod
from bench.data.degrade import depth_proxy, low_light, rain_layer
from bench.data.verify import MARKER, MARKER_FORMAT
from bench.errors import DataError, UnknownNameError
from bench.registry import Registry

#: What ``bench data synth`` writes without ``--count``: the releases' counts, from the loaders.
PUBLISHED: dict[str, dict[str, int]] = {
    "dense_haze": {"all": dense_haze_mod.PAIRS},
    "rain13k": {"train": rain_mod.RAIN13K_PAIRS},
    "rain100h": {"test": rain_mod.RAIN100H_PAIRS},
    "lol": {split: n for split, (_, n) in lol_mod.SPLITS.items()},
    "cub": dict(cub_mod.FULL),
}
#: Folder of each set under the synthetic root: a layout its loader finds (MPRNet's Datasets/ for rain).
FOLDERS = {"dense_haze": "Dense_Haze_NTIRE19", "rain13k": "train/Rain13K", "rain100h": "test/Rain100H",
           "lol": "LOLdataset", "cub": "CUB_200_2011"}
DENSE_HAZE_SIZE = (1600, 1200)  # (width, height), every image
LOL_SIZE = (600, 400)
RAIN100H_SIZES = ((481, 321), (321, 481))  # 66 landscape, 34 portrait, as in the release
RAIN100H_PORTRAIT = 34
#: LOL eval15's image numbers (the release's file names); our485's are the first 485 other numbers.
LOL_EVAL15 = (1, 22, 23, 55, 79, 111, 146, 179, 493, 547, 665, 669, 748, 778, 780)
CUB_LONG_SIDE = 500  # CUB-200-2011's images are at most 500 px on the long side
CUB_SMALL_CLASSES = 6  # 194 classes of 30 train / 29 test images and 6 of 29 / 28 give 5,994 / 5,794
JPEG_QUALITY = 90

#: Rain13K as MPRNet assembled it (Zamir et al., CVPR 2021, Table 1): (source, pairs, pairs per clean scene,
#: (width, height) cycled per scene). Rain1800 (Yang et al., CVPR 2017) and Rain12 (Li et al., CVPR 2016) are
#: BSD images at 481 x 321 (either orientation). Rain14000 (Fu et al., CVPR 2017: 1,000 clean images from UCID,
#: BSD and the web, 14 rain renderings each; 800 scenes here) and Rain800 (Zhang et al., 2019: UCID, BSD, web)
#: vary in size and their per-image sizes are not published: the cycles below are a model (UCID 512 x 384,
#: BSD 481 x 321, web images up to 1,500 px) with the published set's widths (a public mirror of Rain13K
#: reports widths of 228 to 3,560 px; sides under the paper's 256 px patch are left out here, because the
#: patch samplers refuse them where MPRNet's loader reflect-pads them).
RAIN13K_PARTS: tuple[tuple[str, int, int, tuple[tuple[int, int], ...]], ...] = (
    ("Rain14000", 11_200, 14, ((512, 384), (512, 384), (512, 384), (384, 512), (481, 321), (481, 321),
                               (321, 481), (640, 480), (800, 600), (1200, 800))),
    ("Rain1800", 1_800, 1, ((481, 321), (481, 321), (321, 481))),
    ("Rain800", 700, 1, ((512, 384), (384, 512), (481, 321), (321, 481), (640, 480), (500, 333), (800, 600),
                         (1024, 768), (700, 467), (1500, 1000))),
    ("Rain12", 12, 1, ((481, 321),)),
)


@dataclass(frozen=True)
class SynthResult:
    """What one set's writer produced."""

    dataset: str
    folder: Path
    counts: dict[str, int]
    files: int
    seconds: float

    def summary(self) -> str:
        counts = ", ".join(f"{k} {v:,}" for k, v in self.counts.items())
        return f"{self.dataset}: wrote {counts} ({self.files:,} files) to {self.folder} in {self.seconds:.1f} s."


SYNTHS: Registry[Callable[..., SynthResult]] = Registry("synthetic data set")


# --- pictures ------------------------------------------------------------------------------------

def _rng(seed: int, name: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode()), index])


def scene(w: int, h: int, rng: np.random.Generator, tint: np.ndarray | None = None) -> np.ndarray:
    """A smooth random H x W x 3 uint8 picture: a colour field with fine texture, and a few flat shapes."""
    sw, sh = w // 8 + 1, h // 8 + 1
    coarse = Image.fromarray((rng.random((3, 4, 3)) * 255).astype(np.uint8)).resize((sw, sh), Image.Resampling.BICUBIC)
    small = 0.8 * np.asarray(coarse, dtype=np.float32) + 0.2 * 255 * rng.random((sh, sw, 3), dtype=np.float32)
    if tint is not None:
        small = 0.6 * small + 0.4 * tint[None, None, :].astype(np.float32)
    img = Image.fromarray((small + 0.5).astype(np.uint8)).resize((w, h), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(4, 10))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        dx, dy = int(rng.integers(w // 20 + 1, w // 3 + 2)), int(rng.integers(h // 20 + 1, h // 3 + 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x0 + dx, y0 + dy], fill=colour)
    return np.asarray(img)


def streak_bank(seed: int, n: int = 6, size: int = 256) -> list[np.ndarray]:
    """Rain streak layers (``degrade.rain_layer``) as uint8, tiled over whole images: a full-size convolution
    per image would cost seconds."""
    out = []
    for k in range(n):
        rng = _rng(seed, "rain-bank", k)
        layer = rain_layer(size, size, rng, density=float(rng.uniform(0.01, 0.03)), length=int(rng.integers(11, 21)),
                           angle_deg=float(rng.uniform(60.0, 120.0)), intensity=float(rng.uniform(0.6, 0.9)),
                           mode="wrap")
        out.append(_to_uint8(layer))
    return out


def add_rain(clean: np.ndarray, bank: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Screen-blend a streak layer, 1 - (1 - J)(1 - S) as ``degrade.rain``, in 8-bit integers (fast)."""
    h, w, _ = clean.shape
    tile = bank[int(rng.integers(len(bank)))]
    th, tw = tile.shape
    oy, ox = int(rng.integers(th)), int(rng.integers(tw))
    inv_s = 255 - np.tile(tile, (h // th + 2, w // tw + 2))[oy:oy + h, ox:ox + w, None].astype(np.uint16)
    return (255 - ((255 - clean).astype(np.uint16) * inv_s + 127) // 255).astype(np.uint8)


def add_haze(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dense haze, I = J t + A (1 - t), t = exp(-beta d), with ``degrade``'s depth proxy made at 1/8 size."""
    h, w, _ = clean.shape
    d = depth_proxy(max(2, h // 8), max(2, w // 8), rng).astype(np.float32)
    d = np.asarray(Image.fromarray(d, mode="F").resize((w, h), Image.Resampling.BILINEAR))
    t = np.exp(-float(rng.uniform(2.0, 3.0)) * d)[..., None]
    a = float(rng.uniform(0.8, 0.95))
    return _to_uint8(clean.astype(np.float32) / 255.0 * t + a * (1.0 - t))


def darken(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """LOL-like low light: ``degrade.low_light`` (Gaussian approximation of the shot noise, for speed)."""
    return _to_uint8(low_light(clean.astype(np.float64) / 255.0, rng, gaussian_shot=True))


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save(arr: np.ndarray, path: Path) -> None:
    """Write by extension: JPEG at quality 90, PNG at fast compression. (A set is complete only once its
    marker says so, so single files need no atomic rename.)"""
    if path.suffix.lower() in (".jpg", ".jpeg"):
        Image.fromarray(arr).save(path, format="JPEG", quality=JPEG_QUALITY)
    else:
        Image.fromarray(arr).save(path, format="PNG", compress_level=1)


# --- plans: what each set holds (pure, so the published counts are testable without writing) ------

def _count(name: str, split: str, count: int | None) -> int:
    full = PUBLISHED[name][split]
    if count is None:
        return full
    if count < 1:
        raise DataError(f"--count must be positive, got {count}.")
    return min(count, full)


def rain13k_sizes(count: int | None = None) -> list[tuple[int, int]]:
    """(width, height) of each Rain13K pair; ``count`` pairs are spread evenly over the composition."""
    sizes = []
    for _, pairs, per_scene, cycle in RAIN13K_PARTS:
        sizes += [cycle[(i // per_scene) % len(cycle)] for i in range(pairs)]
    n = _count("rain13k", "train", count)
    return [sizes[i * len(sizes) // n] for i in range(n)]


def rain100h_sizes(count: int | None = None) -> list[tuple[int, int]]:
    """Rain100H: 481 x 321, 34 of the 100 in portrait (every third, from the first)."""
    portrait = set(range(0, 3 * RAIN100H_PORTRAIT, 3))
    return [RAIN100H_SIZES[i in portrait] for i in range(_count("rain100h", "test", count))]


def dense_haze_ids(count: int | None = None) -> list[str]:
    """All 55 ids, or ``count`` of them taken from train, test and val in turn (2 cover train and test, 3 all)."""
    n = _count("dense_haze", "all", count)
    spans = [list(range(lo, hi + 1)) for lo, hi in (dense_haze_mod.SPLITS[s] for s in ("train", "test", "val"))]
    order = [s[k] for k in range(max(map(len, spans))) for s in spans if k < len(s)]
    return sorted(f"{i:02d}" for i in order[:n])


def lol_ids(count: int | None = None) -> dict[str, list[int]]:
    others = [i for i in range(1, 2_000) if i not in LOL_EVAL15][: PUBLISHED["lol"]["train"]]
    return {"train": others[: _count("lol", "train", count)], "test": list(LOL_EVAL15[: _count("lol", "test", count)])}


def cub_plan(count: int | None = None, classes: int | None = None) -> list[tuple[int, int]]:
    """(train, test) images per class: 30 / 29 (6 classes 29 / 28), or ``count`` per class split half and half."""
    n_classes = PUBLISHED["cub"]["classes"] if classes is None else classes
    plan = []
    for k in range(n_classes):
        full = (29, 28) if k >= n_classes - CUB_SMALL_CLASSES and classes is None else (30, 29)
        if count is None:
            plan.append(full)
        else:
            if count < 2:
                raise DataError(f"--count for CUB is images per class and must be at least 2 (one train, one test), "
                                f"got {count}.")
            n = min(count, sum(full))
            plan.append((n - n // 2, n // 2))
    return plan


# --- writers ---------------------------------------------------------------------------------------

def _prepare(root: Path, name: str, seed: int) -> Path:
    """The set's folder, emptied if an earlier ``synth`` wrote it (finished or not); real data is never touched.

    The marker is written first with ``complete: false``: an interrupted run leaves a set that
    ``verify`` and the loaders refuse, and that the next ``synth`` replaces.
    """
    from bench.io import write_json

    folder = Path(root).expanduser() / FOLDERS[name]
    if folder.exists():
        if not (folder / MARKER).is_file():
            raise DataError(f"{folder} already exists and is not synthetic data written by 'bench data synth'.",
                            fix="Pass an empty or new --root (synth never writes over real data).")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    write_json(folder / MARKER, _marker(name, {}, seed, complete=False))
    return folder


def _marker(name: str, counts: dict[str, int], seed: int, complete: bool, **extra: Any) -> dict[str, Any]:
    return {"format": MARKER_FORMAT, "dataset": name, "complete": complete, "counts": counts,
            "published": PUBLISHED[name], "seed": seed, "written_by": "bench data synth", **extra}


def _finish(name: str, folder: Path, counts: dict[str, int], files: int, seed: int, t0: float,
            **extra: Any) -> SynthResult:
    from bench.io import write_json

    write_json(folder / MARKER, _marker(name, counts, seed, complete=True, **extra))
    return SynthResult(name, folder, counts, files, time.perf_counter() - t0)


def _paired_rain(root: Path, name: str, sizes: list[tuple[int, int]], split: str, ext: str, seed: int,
                 bank_seed: int) -> SynthResult:
    """Rain13K / Rain100H: ``input/`` + ``target/`` with equal names, rain streaks over a smooth scene."""
    t0 = time.perf_counter()
    folder = _prepare(root, name, seed)
    (folder / "input").mkdir()
    (folder / "target").mkdir()
    bank = streak_bank(bank_seed)
    for i, (w, h) in enumerate(sizes):
        rng = _rng(seed, name, i)
        clean = scene(w, h, rng)
        save(add_rain(clean, bank, rng), folder / "input" / f"{i + 1}{ext}")
        save(clean, folder / "target" / f"{i + 1}{ext}")
    return _finish(name, folder, {split: len(sizes)}, 2 * len(sizes), seed, t0)


@SYNTHS.register("rain13k", summary="train/Rain13K/{input,target}/N.jpg at Rain13K's sizes (see RAIN13K_PARTS)")
def synth_rain13k(root: Path, count: int | None = None, seed: int = 0) -> SynthResult:
    return _paired_rain(root, "rain13k", rain13k_sizes(count), "train", ".jpg", seed, seed)


@SYNTHS.register("rain100h", summary="test/Rain100H/{input,target}/N.png, 481 x 321 (34 portrait)")
def synth_rain100h(root: Path, count: int | None = None, seed: int = 0) -> SynthResult:
    return _paired_rain(root, "rain100h", rain100h_sizes(count), "test", ".png", seed, seed + 1)


@SYNTHS.register("dense_haze", summary="Dense_Haze_NTIRE19/{hazy,GT}/NN_hazy.png, NN_GT.png, 1600 x 1200")
def synth_dense_haze(root: Path, count: int | None = None, seed: int = 0) -> SynthResult:
    t0 = time.perf_counter()
    folder = _prepare(root, "dense_haze", seed)
    (folder / "hazy").mkdir()
    (folder / "GT").mkdir()
    ids = dense_haze_ids(count)
    w, h = DENSE_HAZE_SIZE
    for k in ids:
        rng = _rng(seed, "dense_haze", int(k))
        clean = scene(w, h, rng)
        save(add_haze(clean, rng), folder / "hazy" / f"{k}_hazy.png")
        save(clean, folder / "GT" / f"{k}_GT.png")
    return _finish("dense_haze", folder, {"all": len(ids)}, 2 * len(ids), seed, t0, ids={"all": ids})


@SYNTHS.register("lol", summary="LOLdataset/{our485,eval15}/{low,high}/N.png, 600 x 400")
def synth_lol(root: Path, count: int | None = None, seed: int = 0) -> SynthResult:
    t0 = time.perf_counter()
    folder = _prepare(root, "lol", seed)
    ids = lol_ids(count)
    w, h = LOL_SIZE
    for split, sub in (("train", "our485"), ("test", "eval15")):
        for kind in ("low", "high"):
            (folder / sub / kind).mkdir(parents=True)
        for i in ids[split]:
            rng = _rng(seed, "lol", i)
            clean = scene(w, h, rng)
            save(darken(clean, rng), folder / sub / "low" / f"{i}.png")
            save(clean, folder / sub / "high" / f"{i}.png")
    counts = {s: len(v) for s, v in ids.items()}
    return _finish("lol", folder, counts, 2 * sum(counts.values()), seed, t0)


@SYNTHS.register("cub", summary="CUB_200_2011/images/NNN.Class_NNN/*.jpg and the four text files, 200 classes")
def synth_cub(root: Path, count: int | None = None, seed: int = 0, classes: int | None = None) -> SynthResult:
    """``count`` is images per class (half train, half test); ``classes`` < 200 only for tests (a subset)."""
    t0 = time.perf_counter()
    folder = _prepare(root, "cub", seed)
    plan = cub_plan(count, classes)
    images, labels, split, names = [], [], [], []
    image_id = 0
    for k, (n_train, n_test) in enumerate(plan):
        cls = f"{k + 1:03d}.Class_{k + 1:03d}"
        names.append(f"{k + 1} {cls}")
        (folder / "images" / cls).mkdir(parents=True)
        tint = _rng(seed, "cub-class", k).integers(0, 256, 3).astype(np.float64)
        flags = ["1" if j % 2 == 0 or j // 2 >= n_test else "0" for j in range(n_train + n_test)]
        for j, flag in enumerate(flags):
            image_id += 1
            rng = _rng(seed, "cub", image_id)
            short = int(rng.integers(300, CUB_LONG_SIDE))
            w, h = (CUB_LONG_SIDE, short) if rng.random() < 0.75 else (short, CUB_LONG_SIDE)
            rel = f"{cls}/Class_{k + 1:03d}_{j + 1:04d}_{image_id}.jpg"
            save(scene(w, h, rng, tint), folder / "images" / rel)
            images.append(f"{image_id} {rel}")
            labels.append(f"{image_id} {k + 1}")
            split.append(f"{image_id} {flag}")
    for fname, lines in zip(cub_mod.FILES, (images, labels, split, names), strict=True):
        (folder / fname).write_text("\n".join(lines) + "\n", encoding="utf-8")
    counts = {"train": sum(p[0] for p in plan), "test": sum(p[1] for p in plan), "classes": len(plan)}
    return _finish("cub", folder, counts, image_id, seed, t0)


def synth_root(root: Path, sets: Sequence[str] | None = None, count: int | None = None, seed: int = 0,
               log: Callable[[str], None] | None = None) -> list[SynthResult]:
    """Write each of ``sets`` (default: all five) under ``root``; unknown names fail before anything is written."""
    names = list(sets) if sets else list(PUBLISHED)
    for name in names:
        try:
            SYNTHS.get(name)
        except UnknownNameError as e:
            raise DataError(f"bench data synth: {e.message}",
                            fix=f"Pass --sets with names from {', '.join(PUBLISHED)}.") from None
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise DataError(f"--root {root} is a file, not a folder.", fix="Pass a new or empty folder with --root.")
    for name in names:  # every set's folder is checked before any is written
        folder = root / FOLDERS[name]
        if folder.exists() and not (folder / MARKER).is_file():
            raise DataError(f"{folder} already exists and is not synthetic data written by 'bench data synth'.",
                            fix="Pass an empty or new --root (synth never writes over real data).")
    out = []
    for name in names:
        if log:
            log(f"[synth] writing {name} ...")
        out.append(SYNTHS.get(name)(Path(root), count=count, seed=seed))
        if log:
            log(out[-1].summary())
    return out
