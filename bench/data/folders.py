"""A user's own paired folders: ``degraded/`` + ``clear/`` (or ``input/`` + ``target/``, ``low/`` + ``high/``).

One folder per split: an experiment file names a training folder and a test folder, and each is
read whole (``split`` is accepted and ignored). Pairs are matched by file name without extension.
"""

from __future__ import annotations

from pathlib import Path

from bench.data.base import Pair, PairedSet
from bench.data.verify import Listing, check_listing, child_dir, existing_root, image_files, index_by
from bench.registry import DATASETS

LAYOUTS = (("degraded", "clear"), ("input", "target"), ("low", "high"))
LAYOUT = "degraded/ + clear/ (or input/ + target/, or low/ + high/) with equal file names"


def listing(root: Path, split: str) -> Listing:
    root = existing_root("paired-folders", root, LAYOUT)
    for deg_name, clr_name in LAYOUTS:
        d = child_dir(root, deg_name)
        if d is not None and image_files(d):
            c = child_dir(root, clr_name)
            deg, dd = index_by(image_files(d))
            clr, cd = index_by(image_files(c)) if c is not None else ({}, [])
            return Listing("folders", split, root, f"{deg_name}/ + {clr_name}/", deg, clr, None, duplicates=dd + cd,
                           title=f"paired folders {root}")
    from bench.data.verify import no_layout

    raise no_layout("paired-folders", root, LAYOUT)


@DATASETS.register("folders", task="any", role="train+test", convention="rgb",
                   summary="your own paired folders: degraded/ + clear/ (or input/ + target/), equal file names")
def folders(root: Path, split: str = "test", limit: int | None = None, *, strict_counts: bool = False,
            require_clear: bool = True) -> PairedSet:
    """Every pair in ``root`` (the folder of one split), checked like a release's split."""
    ls = listing(root, split)
    rep = check_listing(ls, require_clear=require_clear, strict_counts=False)
    rep.raise_if_bad()
    ids = sorted(ls.degraded)
    pairs = PairedSet("folders", [Pair(i, ls.degraded[i], ls.clear.get(i)) for i in ids],
                      info={"split": split, "layout": ls.layout, "folder": str(root)})
    return pairs.limit(limit)
