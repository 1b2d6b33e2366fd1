"""The embedded smoke profile's data: real photographs shipped in scikit-image, degraded here.

No download: the photographs are the ones scikit-image installs with its wheel. Train
and test come from different photographs. Each task's degradation (haze, rain, low
light; see ``bench.data.degrade``) is seeded per image from (seed, task, image id), so
the same seed writes the same bytes.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.base import IMAGE_SUFFIXES, Pair, PairedSet, write_png
from bench.data.degrade import DEGRADATIONS
from bench.errors import DataError
from bench.faults import fault_point
from bench.registry import DATASETS

TRAIN_PHOTOS = ("astronaut", "coffee", "motorcycle", "immunohistochemistry")
TEST_PHOTOS = ("chelsea", "rocket")
TASKS = {"dehazing": "haze", "deraining": "rain", "lowlight": "lowlight"}
TRAIN_SHORT_SIDE = 160
TEST_TILE = 96


def _photo(name: str) -> np.ndarray:
    import skimage.data as skd

    img = skd.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skd, name)()
    return np.asarray(img[..., :3], dtype=np.uint8)


def _resize_short(img: np.ndarray, short: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = short / min(h, w)
    size = (max(short, round(w * s)), max(short, round(h * s)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BICUBIC))


def clean_images(split: str) -> dict[str, np.ndarray]:
    """id -> H x W x 3 uint8 clean image for ``split`` ('train': whole photos, 'test': tiles)."""
    out: dict[str, np.ndarray] = {}
    if split == "train":
        for name in TRAIN_PHOTOS:
            out[name] = _resize_short(_photo(name), TRAIN_SHORT_SIDE)
        return out
    if split != "test":
        raise ValueError(f"unknown split '{split}'")
    for name in TEST_PHOTOS:
        img = _resize_short(_photo(name), 2 * TEST_TILE)
        h, w = img.shape[:2]
        for i in range(h // TEST_TILE):
            for j in range(w // TEST_TILE):
                out[f"{name}_{i}{j}"] = img[i * TEST_TILE:(i + 1) * TEST_TILE, j * TEST_TILE:(j + 1) * TEST_TILE]
    return out


def _rng(seed: int, task: str, image_id: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(task.encode()), zlib.crc32(image_id.encode())])


def build_smoke_data(task: str, root: Path, seed: int = 0) -> dict[str, str]:
    """Write ``root/{train,test}/{degraded,clear}/<id>.png``; return {relative path: sha256}."""
    if task not in TASKS:
        raise DataError(f"Unknown smoke task '{task}'; choose one of {sorted(TASKS)}.")
    degrade = DEGRADATIONS[TASKS[task]]
    hashes: dict[str, str] = {}
    for split in ("train", "test"):
        for image_id, clean in clean_images(split).items():
            deg = degrade(clean.astype(np.float64) / 255.0, _rng(seed, task, image_id))
            deg8 = (np.clip(deg, 0, 1) * 255.0 + 0.5).astype(np.uint8)
            for kind, arr in (("clear", clean), ("degraded", deg8)):
                rel = f"{split}/{kind}/{image_id}.png"
                write_png(root / rel, arr)
                fault_point("image")
                hashes[rel] = hashlib.sha256((root / rel).read_bytes()).hexdigest()
    return hashes


def folder_pairs(root: Path, name: str) -> PairedSet:
    """Pairs ``root/degraded/<id>.*`` with ``root/clear/<id>.*`` (the layout smoke data is written in)."""
    def index(d: Path) -> dict[str, Path]:
        return {p.stem: p for p in sorted(d.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES} if d.is_dir() else {}

    deg, clr = index(root / "degraded"), index(root / "clear")
    if not deg:
        raise DataError(f"{root / 'degraded'} holds no images.", fix="Rebuild the data set (bench run --force).")
    unpaired = sorted(set(deg) ^ set(clr))
    if unpaired:
        raise DataError(f"{len(unpaired)} image(s) in {root} have no partner, first: '{unpaired[0]}'.")
    return PairedSet(name, [Pair(i, deg[i], clr[i]) for i in sorted(deg)])


def _smoke_loader(task: str):
    def load(root: Path, split: str = "test", limit: int | None = None) -> PairedSet:
        return folder_pairs(Path(root) / split, f"smoke_{task}").limit(limit)

    return load


for _task in TASKS:
    DATASETS.register(f"smoke_{_task}", task=_task, role="train+test", convention="rgb", embedded=True,
                      summary=f"scikit-image photographs with synthetic {TASKS[_task]} (smoke profile)")(
        _smoke_loader(_task))
