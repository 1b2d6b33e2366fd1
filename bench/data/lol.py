"""LOL (Wei et al., BMVC 2018): ``our485/{low,high}`` trains (485 pairs), ``eval15/{low,high}`` tests (15).

``root`` may be the LOL folder (holding ``our485/`` and ``eval15/``), a parent of it, or one
split's folder (holding ``low/`` directly). ``require_clear=False`` accepts ``low/`` without
``high/`` (e.g. the 3 real eval15 inputs in shared/, whose ground truth is not available).
"""

from __future__ import annotations

from pathlib import Path

from bench.data import verify as dv
from bench.data.base import PairedSet
from bench.errors import DataError
from bench.registry import DATASETS

SPLITS = {"train": ("our485", 485), "test": ("eval15", 15)}
LAYOUT = "our485/{low,high}/ and eval15/{low,high}/ with equal file names"
ALIASES = ("LOL", "LOLdataset", "LOL-v1", "LOLv1", "lol")


def _has_low(folder: Path) -> bool:
    low = dv.child_dir(folder, "low")
    return low is not None and bool(dv.image_files(low))


def listing(root: Path, split: str) -> dv.Listing:
    if split not in SPLITS:
        raise DataError(f"LOL has no split '{split}'; it has train (our485) and test (eval15).",
                        fix="Use split='train' or split='test'.", doc="Data")
    sub, expected = SPLITS[split]
    root = dv.existing_root("LOL", root, LAYOUT)
    folder = dv.resolve_root(root, _has_low, (sub, *(f"{a}/{sub}" for a in ALIASES)))
    if folder is None:
        raise dv.no_layout("LOL", root, LAYOUT)
    low = dv.child_dir(folder, "low")
    high = dv.child_dir(folder, "high")
    deg, dd = dv.index_by(dv.image_files(low))  # type: ignore[arg-type]
    clr, cd = dv.index_by(dv.image_files(high)) if high is not None else ({}, [])
    return dv.Listing("lol", split, folder, "low/ + high/", deg, clr, expected, duplicates=dd + cd,
                   title=f"LOL {sub}")


@DATASETS.register("lol", task="lowlight", role="train+test", expected={"train": 485, "test": 15},
                   convention="rgb-iat", summary="LOL v1: our485 (train) and eval15 (test), low/ + high/")
def lol(root: Path, split: str = "test", limit: int | None = None, *, strict_counts: bool = True,
        require_clear: bool = True) -> PairedSet:
    """LOL's train (our485) or test (eval15) pairs."""
    return dv.checked_set(listing(root, split), limit, require_clear=require_clear, strict_counts=strict_counts)


@dv.register_verifier("lol")
def verify(root: Path, deep: bool = True, strict_counts: bool = True, require_clear: bool = True,
           splits: tuple[str, ...] = ("train", "test")) -> dv.VerifyReport:
    reports = [dv.check_listing(listing(root, s), strict_counts=strict_counts, require_clear=require_clear, deep=deep)
               for s in splits]
    out = dv.VerifyReport("LOL", Path(root))
    for r in reports:
        out.merge(r)
    return out
