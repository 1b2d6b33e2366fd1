"""prepare_data: build the embedded smoke set, or check and record a real data set (or a user's folders).

Writes ``dataset.json`` saying where the images are and what they are, so consumers never rebuild
paths themselves. Smoke images go to the cache (``$BENCH_CACHE``), never to git.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from bench.data.base import PairedSet
from bench.graph.job import Artifact, JobContext, job_kind
from bench.hashing import content_hash
from bench.io import write_json
from bench.paths import cache_dir
from bench.registry import DATASETS

OUTPUTS = {"dataset": Artifact("dataset.json", doc="source, dataset, root, limit, counts per split, fingerprint, "
                                                   "stand_in_for")}


@job_kind("prepare_data", outputs=OUTPUTS)
def prepare_data(ctx: JobContext) -> dict[str, Any]:
    cfg = ctx.job.config
    if cfg["source"] == "smoke":
        from bench.data.smoke import build_smoke_data

        root = cache_dir() / "smoke-data" / ctx.job.key
        hashes = build_smoke_data(cfg["task"], root, seed=cfg["seed"])
        info = {"source": "smoke", "dataset": cfg["dataset"], "root": str(root), "files": len(hashes),
                "content_sha256": content_hash(hashes, length=64)}
        ctx.log(f"[data] built {len(hashes)} smoke files for {cfg['task']} in {root}")
    else:
        root = Path(ctx.job.params["root"])  # where the content its fingerprint names lives here
        counts = {}
        for split in cfg["splits"]:
            ps = load_split({"dataset": cfg["dataset"], "root": str(root), "limit": cfg.get("limit")}, split)
            counts[split] = {"pairs": len(ps), "subset": ps.subset}
        info = {"source": "real", "dataset": cfg["dataset"], "root": str(root), "counts": counts,
                "fingerprint": cfg.get("fingerprint", {})}
        ctx.log(f"[data] checked {cfg['dataset']} under {root}: {counts}")
    info.update({"limit": cfg.get("limit"), "dataset": cfg["dataset"], "stand_in_for": cfg.get("stand_in_for")})
    write_json(ctx.output("dataset"), info)
    return info


def dataset_info(ctx: JobContext, input_name: str = "data") -> dict[str, Any]:
    """The ``dataset.json`` of a prepare_data input."""
    return json.loads(ctx.artifact(input_name, "dataset").read_text())


def load_split(info: dict[str, Any], split: str) -> PairedSet:
    """The pairs of ``split`` described by a prepare_data job's ``dataset.json``."""
    loader = DATASETS.get(info["dataset"])
    # a cut run (--limit) reads whatever part of a release is there; a full run insists on the published counts
    cut = {"strict_counts": False} if info.get("limit") is not None and info.get("source") != "smoke" else {}
    pairs = loader(Path(info["root"]), split=split, limit=info.get("limit"), **cut)
    if info.get("stand_in_for"):  # synthetic data standing in for an absent real set (truncated profile)
        pairs = dataclasses.replace(pairs, subset=f"synthetic-stand-in:{info['stand_in_for']}")
    return pairs
