"""Dense-Haze (NTIRE 2019): 55 pairs ``NN_hazy.png`` / ``NN_GT.png``.

The images sit in one folder or in ``hazy/`` + ``GT/`` (the official archive). Splits follow
NTIRE 2019: images 1-45 train, 46-50 validation, 51-55 test; ``ranges`` overrides them.
Ids are the two-digit numbers (``"51"``), so ``1_hazy.png`` and ``01_hazy.png`` both pair as ``"01"``.
"""

from __future__ import annotations

from pathlib import Path

from bench.data import verify as dv
from bench.data.base import PairedSet
from bench.errors import DataError
from bench.registry import DATASETS

PAIRS = 55
SPLITS: dict[str, tuple[int, int]] = {"train": (1, 45), "val": (46, 50), "test": (51, 55), "all": (1, 55)}
LAYOUT = "NN_hazy.png and NN_GT.png (NN = 01..55) in one folder or in hazy/ + GT/"
ALIASES = ("Dense-Haze", "Dense_Haze", "Dense_Haze_NTIRE19", "DenseHaze", "dense_haze")


def _numbered(files: list[Path], suffix: str) -> tuple[dict[str, Path], list[str]]:
    """``NN_<suffix>`` files keyed by the zero-padded number."""
    raw, dups = dv.index_by(files, rf"(\d+)_{suffix}")
    out: dict[str, Path] = {}
    for k, f in raw.items():
        key = f"{int(k):02d}"
        if key in out:
            dups.append(str(f))
        else:
            out[key] = f
    return out, dups


def find_layout(folder: Path) -> tuple[str, dict[str, Path], dict[str, Path], list[str]] | None:
    for d, c, name in ((folder, folder, "NN_hazy + NN_GT"), (dv.child_dir(folder, "hazy"), dv.child_dir(folder, "GT"),
                                                              "hazy/ + GT/")):
        if d is None:
            continue
        deg, dd = _numbered(dv.image_files(d), "hazy")
        if deg:
            clr, cd = _numbered(dv.image_files(c), "GT") if c is not None else ({}, [])
            return name, deg, clr, dd + cd
    return None


def listing(root: Path, split: str, ranges: dict[str, tuple[int, int]] | None = None) -> dv.Listing:
    """The files of ``split`` (a range of image numbers), found but not checked."""
    spans = SPLITS | (ranges or {})
    if split == "validation":
        split = "val"
    if split not in spans:
        raise DataError(f"Dense-Haze has no split '{split}'; it has {', '.join(sorted(spans))}.",
                        fix="Pick one of those, or pass ranges={'name': (first, last)}.", doc="Data")
    lo, hi = spans[split]
    root = dv.existing_root("Dense-Haze", root, LAYOUT)
    folder = dv.resolve_root(root, lambda f: find_layout(f) is not None, ALIASES)
    if folder is None:
        raise dv.no_layout("Dense-Haze", root, LAYOUT)
    layout, deg, clr, dups = find_layout(folder)  # type: ignore[misc]
    wanted = [f"{n:02d}" for n in range(lo, hi + 1)]
    keep = set(wanted)
    return dv.Listing("dense_haze", split, folder, layout, {k: v for k, v in deg.items() if k in keep},
                   {k: v for k, v in clr.items() if k in keep}, expected=len(wanted), wanted=wanted,
                   duplicates=dups, title="Dense-Haze")


@DATASETS.register("dense_haze", task="dehazing", role="train+test", expected=PAIRS, convention="rgb",
                   splits="train 1-45, val 46-50, test 51-55",
                   summary="Dense-Haze (NTIRE 2019), NN_hazy.png / NN_GT.png")
def dense_haze(root: Path, split: str = "test", limit: int | None = None, *,
               ranges: dict[str, tuple[int, int]] | None = None, strict_counts: bool = True,
               require_clear: bool = True) -> PairedSet:
    """The pairs of one split; ``ranges={"test": (46, 55)}`` overrides the NTIRE 2019 split."""
    ls = listing(root, split, ranges)
    return dv.checked_set(ls, limit, require_clear=require_clear, strict_counts=strict_counts)


@dv.register_verifier("dense_haze")
def verify(root: Path, deep: bool = True, strict_counts: bool = True) -> dv.VerifyReport:
    """All 55 pairs (split "all")."""
    return dv.check_listing(listing(root, "all"), strict_counts=strict_counts, deep=deep)
