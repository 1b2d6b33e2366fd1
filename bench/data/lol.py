"""LOL (Wei et al., BMVC 2018): ``our485/{low,high}`` trains (485 pairs), ``eval15/{low,high}`` tests (15).

``root`` may be the LOL folder (holding ``our485/`` and ``eval15/``), a parent of it, or one
split's folder (holding ``low/`` directly). ``require_clear=False`` accepts ``low/`` without
``high/`` (e.g. the 3 real eval15 inputs in shared/, whose ground truth is not available).
"""

from __future__ import annotations

from pathlib import Path

from bench.data.base import PairedSet
from bench.data.verify import (
    Listing,
    VerifyReport,
    check_listing,
    checked_set,
    child_dir,
    image_files,
    index_by,
    missing_root,
    no_layout,
    register_verifier,
    resolve_root,
)
from bench.errors import DataError
from bench.registry import DATASETS

SPLITS = {"train": ("our485", 485), "test": ("eval15", 15)}
LAYOUT = "our485/{low,high}/ and eval15/{low,high}/ with equal file names"
ALIASES = ("LOL", "LOLdataset", "LOL-v1", "LOLv1", "lol")


def _has_low(folder: Path) -> bool:
    low = child_dir(folder, "low")
    return low is not None and bool(image_files(low))


def listing(root: Path, split: str) -> Listing:
    if split not in SPLITS:
        raise DataError(f"LOL has no split '{split}'; it has train (our485) and test (eval15).",
                        fix="Use split='train' or split='test'.", doc="Data")
    sub, expected = SPLITS[split]
    root = Path(root).expanduser()
    if not root.is_dir():
        raise missing_root("LOL", root, LAYOUT)
    folder = resolve_root(root, _has_low, (sub, *(f"{a}/{sub}" for a in ALIASES)))
    if folder is None:
        raise no_layout("LOL", root, LAYOUT)
    low = child_dir(folder, "low")
    high = child_dir(folder, "high")
    deg, dd = index_by(image_files(low))  # type: ignore[arg-type]
    clr, cd = index_by(image_files(high)) if high is not None else ({}, [])
    return Listing("lol", split, folder, "low/ + high/", deg, clr, expected, duplicates=dd + cd,
                   title=f"LOL {sub}")


@DATASETS.register("lol", task="lowlight", role="train+test", expected={"train": 485, "test": 15},
                   convention="rgb-iat", summary="LOL v1: our485 (train) and eval15 (test), low/ + high/")
def lol(root: Path, split: str = "test", limit: int | None = None, *, strict_counts: bool = True,
        require_clear: bool = True) -> PairedSet:
    """LOL's train (our485) or test (eval15) pairs."""
    return checked_set(listing(root, split), limit, require_clear=require_clear, strict_counts=strict_counts)


@register_verifier("lol")
def verify(root: Path, deep: bool = True, strict_counts: bool = True, require_clear: bool = True,
           splits: tuple[str, ...] = ("train", "test")) -> VerifyReport:
    reports = [check_listing(listing(root, s), strict_counts=strict_counts, require_clear=require_clear, deep=deep)
               for s in splits]
    out = VerifyReport("LOL", Path(root))
    for r in reports:
        out.merge(r)
    return out
