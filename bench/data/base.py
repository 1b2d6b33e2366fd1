"""Paired image sets: what every data set in ``bench.DATASETS`` returns.

A :class:`PairedSet` is a list of (degraded, clear) file pairs with an id each; the
id pairs result rows across runs (``bench compare``). ``read_image`` is the single
decoding rule for the whole product, so every loader treats grayscale, alpha and
16-bit files the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from bench.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class Pair:
    """One degraded image and its clear reference (``clear`` is None where none exists)."""

    id: str
    degraded: Path
    clear: Path | None


@dataclass
class PairedSet:
    """An ordered list of pairs plus what the rows made from it must say about it."""

    name: str
    pairs: list[Pair]
    subset: str = "full"  # "full" or "truncated:N"
    expected: int | None = None  # the published count, when there is one
    info: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pairs)

    def limit(self, n: int | None) -> PairedSet:
        """The first ``n`` pairs by sorted id, marked ``truncated:n``; ``None`` keeps all."""
        if n is None or n >= len(self.pairs):
            return self
        if n <= 0:
            raise DataError(f"--limit must be positive, got {n}.")
        kept = sorted(self.pairs, key=lambda p: p.id)[:n]
        return PairedSet(self.name, kept, f"truncated:{n}", self.expected, dict(self.info))


def read_image(path: Path) -> torch.Tensor:
    """Decode an image file to a float32 3 x H x W tensor in [0, 1].

    Rules: grayscale is replicated to RGB; an alpha channel is dropped (composited on
    nothing: the stored colour is kept); 16-bit grayscale is scaled by 1/65535; palette
    images are converted to RGB. 16-bit colour (Pillow would keep only the high byte) and
    32-bit integer images are refused with a one-sentence error.
    """
    try:
        with Image.open(path) as im:
            raw = im.tile[0][3] if getattr(im, "tile", None) else None  # read before load() clears it
            rawmode = raw if isinstance(raw, str) else (raw[0] if isinstance(raw, tuple) and raw else "")
            im.load()
            mode = im.mode
            if mode in ("RGB", "RGBA") and ";16" in str(rawmode):
                raise DataError(f"{path} is a 16-bit colour image, which bench refuses rather than read only "
                                "its high byte.", fix="Convert it to 8-bit RGB PNG (or 16-bit grayscale).")
            if mode in ("I;16", "I;16B", "I;16L"):
                arr = np.asarray(im, dtype=np.float64) / 65535.0
                arr = np.repeat(arr[..., None], 3, axis=2)
            elif mode in ("RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "YCbCr"):
                arr = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
            else:
                raise DataError(f"{path} has image mode '{mode}', which bench cannot read.",
                                fix="Convert it to 8- or 16-bit RGB or grayscale PNG.")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f"{path} cannot be decoded as an image ({e}).",
                        fix="Replace the file with an intact copy.") from None
    if not np.isfinite(arr).all():
        raise DataError(f"{path} decodes to non-finite values.")
    return torch.from_numpy(arr.astype(np.float32)).permute(2, 0, 1).contiguous()


def write_png(path: Path, img: torch.Tensor | np.ndarray) -> None:
    """Write a 3 x H x W [0, 1] tensor (or H x W x 3 uint8 array) as 8-bit PNG, atomically."""
    from bench.io import atomic_path

    if isinstance(img, torch.Tensor):
        arr = (img.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    else:
        arr = img
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
