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
    """(SHA of HEAD or 'unknown', whether tracked files differ from it)."""
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
