"""Provenance carried by every result row: code version, environment, device.

Collected once per process; the job adds its own config hash, seed, profile and subset.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from typing import Any

import torch

from bench.paths import REPO_ROOT

TRACKED_PACKAGES = ("torch", "torchvision", "pyiqa", "torch-fidelity", "timm")


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str, bool]:
    """(SHA of HEAD, whether tracked files differ from it) of the checkout bench runs from.

    An installed wheel has no checkout: its rows say ``release-<version>`` instead (never the SHA of
    some other repository the package happens to sit in).
    """
    if not (REPO_ROOT / ".git").exists():
        from bench import __version__

        return f"release-{__version__}", False
    sha = _git("rev-parse", "HEAD") or "unknown"
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return sha, dirty


def package_versions() -> dict[str, str]:
    out = {}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def device_name(device: torch.device | str) -> str:
    d = torch.device(device)
    if d.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(d)}"
    return f"cpu:{platform.processor() or platform.machine()}"


def environment(device: torch.device | str) -> dict[str, Any]:
    """Columns shared by every row a process writes."""
    sha, dirty = git_state()
    row: dict[str, Any] = {"git_sha": sha, "git_dirty": dirty, "device": device_name(device)}
    row.update({f"version_{k.replace('-', '_')}": v for k, v in package_versions().items()})
    return row


def row_provenance(job: Any, device: str, subset: str, train: Any = None, trained_on: dict[str, Any] | None = None,
                   **extra: Any) -> dict[str, Any]:
    """The columns every result row carries: which job made it (and from which trained network), with what code,
    on what data and device. ``train`` is the train job behind the row, ``trained_on`` its recorded data."""
    from bench.hashing import canonical_json

    cfg = job.config
    row = {
        "profile": cfg.get("profile", ""),
        "baseline": cfg.get("baseline", ""),
        "losses": canonical_json(train.config["losses"]) if train is not None else "",
        "seed": cfg.get("seed", ""),
        "subset": subset,
        "config_hash": job.key,
        "train_config_hash": train.key if train is not None else "",
        **({"train_dataset": trained_on.get("train_dataset", ""), "train_subset": trained_on.get("train_subset", "")}
           if trained_on is not None else {}),
        **extra,
    }
    return row | environment(device)
