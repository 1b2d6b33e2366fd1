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


#: What ``read_pixels`` converted, per kind: the files (for the note a command prints, ``take_notes``).
_CONVERTED: dict[str, list[str]] = {}
_NOTE = {"grayscale": "were grayscale and were read as RGB (the gray level in all three channels)",
         "grayscale16": "were 16-bit grayscale and were read as RGB scaled by 1/65535",
         "alpha": "had an alpha channel, which was dropped (the stored colour is scored)",
         "palette": "were palette images and were converted to RGB",
         "CMYK": "were CMYK (or YCbCr) and were converted to RGB by Pillow's plain formula",
         "EXIF": "had an EXIF orientation tag, which was applied (the image was rotated upright) before reading"}


def _converted(kind: str, path: Path) -> None:
    files = _CONVERTED.setdefault(kind, [])
    if len(files) < 1000:
        files.append(Path(path).name)


def take_notes() -> list[str]:
    """One sentence per kind of conversion ``read_image`` made since the last call (then forgotten)."""
    out = []
    for kind, files in _CONVERTED.items():
        out.append(f"{len(files)} image(s) {_NOTE[kind]}; first: {files[0]}.")
    _CONVERTED.clear()
    return out


def read_image(path: Path) -> torch.Tensor:
    """Decode an image file to a float32 3 x H x W tensor in [0, 1].

    Rules: an EXIF orientation is applied (the image is read upright, as viewers show it);
    grayscale is replicated to RGB; an alpha channel is dropped (composited on nothing: the
    stored colour is kept); 16-bit grayscale is scaled by 1/65535; palette and CMYK images
    are converted to RGB. Each conversion is remembered for a note (``take_notes``). 16-bit
    colour (Pillow would keep only the high byte), 32-bit integer images and images past
    Pillow's decompression-bomb limit are refused with a one-sentence error.
    """
    return pixels_to_tensor(*read_pixels(path))


def read_pixels(path: Path) -> tuple[np.ndarray, float]:
    """The integer pixels ``read_image`` converts, and their full scale (255 or 65535).

    An H x W x 3 uint8 array, or H x W uint16 for 16-bit grayscale. Training workers cache and
    crop these (a quarter of the float32 bytes) and convert only the crop: the conversion is
    element-wise, so a converted crop equals the same crop of ``read_image``, bit for bit.
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
            if im.getexif().get(0x0112, 1) not in (1, None):
                from PIL import ImageOps

                _converted("EXIF", path)
                im = ImageOps.exif_transpose(im)
            if mode in ("I;16", "I;16B", "I;16L"):
                _converted("grayscale16", path)
                return np.asarray(im).astype(np.uint16), 65535.0  # native byte order
            if mode in ("RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "YCbCr"):
                for kind, modes in (("grayscale", ("L", "LA")), ("alpha", ("RGBA", "LA", "PA")),
                                    ("palette", ("P", "PA")), ("CMYK", ("CMYK", "YCbCr"))):
                    if mode in modes:
                        _converted(kind, path)
                return np.asarray(im.convert("RGB"), dtype=np.uint8), 255.0
            raise DataError(f"{path} has image mode '{mode}', which bench cannot read.",
                            fix="Convert it to 8- or 16-bit RGB or grayscale PNG.")
    except Image.DecompressionBombError as e:
        raise DataError(f"{path} is refused as a possible decompression bomb ({e}).",
                        fix="Check the file; if it is a genuine image, resize it (bench restores and scores images "
                            "of at most Pillow's limit).") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f"{path} cannot be decoded as an image ({e}).",
                        fix="Replace the file with an intact copy.") from None


def pixels_to_tensor(pixels: np.ndarray, scale: float) -> torch.Tensor:
    """Integer pixels (or a crop of them) -> float32 3 x H x W: through float64, as ``read_image`` always did."""
    arr = pixels.astype(np.float64) / scale
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
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
