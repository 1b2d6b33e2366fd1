"""Rain13K (training) and Rain100H (testing), in the three layouts they are passed around in.

* ``input/`` + ``target/`` with equal file names (MPRNet's ``Datasets/{train/Rain13K,test/Rain100H}``);
* ``rain-NNN.png`` + ``norain-NNN.png``, in one folder or in ``rain/`` + ``norain/`` (PReNet's copies);
* ``inputcrop/`` + ``cleancrop/`` with ``N.png`` (MSPFN's Rain100H: 481x321 images cropped to 480x320).

Pairs are matched by name (the ``NNN`` part for the second layout). PSNR/SSIM follow the MATLAB scripts of
PReNet and RCDNet (convention ``y-matlab-double``: unrounded double Y, see bench.evaluate.metrics).
"""

from __future__ import annotations

from pathlib import Path

from bench.data import verify as dv
from bench.data.base import PairedSet
from bench.errors import DataError
from bench.registry import DATASETS

LAYOUT = ("input/ + target/ with equal names, rain-NNN.png + norain-NNN.png (one folder or rain/ + norain/), "
          "or inputcrop/ + cleancrop/ with N.png")
RAIN13K_PAIRS = 13_712
RAIN100H_PAIRS = 100
ALIASES = {
    "rain13k": ("Rain13K", "train/Rain13K", "Datasets/train/Rain13K"),
    "rain100h": ("Rain100H", "rain100h_crop", "test/Rain100H", "Datasets/test/Rain100H"),
}
LABELS = {"rain13k": "Rain13K", "rain100h": "Rain100H"}


def find_layout(folder: Path) -> tuple[str, dict[str, Path], dict[str, Path], list[str]] | None:
    """(layout, degraded index, clear index, duplicate files) for the first layout ``folder`` holds."""
    for deg_name, clr_name in (("input", "target"), ("inputcrop", "cleancrop")):
        d = dv.child_dir(folder, deg_name)
        if d is not None and dv.image_files(d):
            c = dv.child_dir(folder, clr_name)
            deg, dd = dv.index_by(dv.image_files(d))
            clr, cd = dv.index_by(dv.image_files(c)) if c is not None else ({}, [])
            return f"{deg_name}/ + {clr_name}/", deg, clr, dd + cd
    for d, c, name in ((folder, folder, "rain-NNN + norain-NNN"),
                       (dv.child_dir(folder, "rain"), dv.child_dir(folder, "norain"), "rain/ + norain/")):
        if d is None:
            continue
        deg, dd = dv.index_by(dv.image_files(d), r"rain-(.+)")
        if deg:
            clr, cd = dv.index_by(dv.image_files(c), r"norain-(.+)") if c is not None else ({}, [])
            return name, deg, clr, dd + cd
    return None


def listing(name: str, root: Path, expected: int | None, split: str) -> dv.Listing:
    """Find ``name``'s layout under ``root`` (or a known subfolder of it) without checking anything."""
    label = LABELS[name]
    root = dv.existing_root(label, root, LAYOUT)
    folder = dv.resolve_root(root, lambda f: find_layout(f) is not None, ALIASES[name])
    if folder is None:
        raise dv.no_layout(label, root, LAYOUT)
    layout, deg, clr, dups = find_layout(folder)  # type: ignore[misc]
    return dv.Listing(name, split, folder, layout, deg, clr, expected, duplicates=dups, title=label)


def _only(split: str, allowed: str, label: str) -> None:
    if split != allowed:
        raise DataError(f"{label} has only a '{allowed}' split, not '{split}'.",
                        fix=f"Use split='{allowed}'.", doc="Data")


@DATASETS.register("rain13k", task="deraining", role="train", expected=RAIN13K_PAIRS,
                   convention="y-matlab-double",
                   summary="Rain13K training pairs (input/ + target/, or rain-/norain- names)")
def rain13k(root: Path, split: str = "train", limit: int | None = None, *, strict_counts: bool = True,
            require_clear: bool = True) -> PairedSet:
    """Rain13K's 13,712 training pairs."""
    _only(split, "train", "Rain13K")
    ls = listing("rain13k", root, RAIN13K_PAIRS, split)
    return dv.checked_set(ls, limit, require_clear=require_clear, strict_counts=strict_counts)


@DATASETS.register("rain100h", task="deraining", role="test", expected=RAIN100H_PAIRS,
                   convention="y-matlab-double",
                   summary="Rain100H's 100 test pairs (three layouts, incl. inputcrop/ + cleancrop/)")
def rain100h(root: Path, split: str = "test", limit: int | None = None, *, strict_counts: bool = True,
             require_clear: bool = True) -> PairedSet:
    """Rain100H's 100 test pairs."""
    _only(split, "test", "Rain100H")
    ls = listing("rain100h", root, RAIN100H_PAIRS, split)
    return dv.checked_set(ls, limit, require_clear=require_clear, strict_counts=strict_counts)


@dv.register_verifier("rain13k")
def verify_rain13k(root: Path, deep: bool = True, strict_counts: bool = True) -> dv.VerifyReport:
    return dv.check_listing(listing("rain13k", root, RAIN13K_PAIRS, "train"), strict_counts=strict_counts, deep=deep)


@dv.register_verifier("rain100h")
def verify_rain100h(root: Path, deep: bool = True, strict_counts: bool = True) -> dv.VerifyReport:
    return dv.check_listing(listing("rain100h", root, RAIN100H_PAIRS, "test"), strict_counts=strict_counts, deep=deep)
