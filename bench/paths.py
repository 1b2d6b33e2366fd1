"""Where things live: cache, runs, shared material, data roots.

Every location can be overridden by an environment variable so CI and users can
point bench at their own disks without editing config.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Generated data, built weights, smoke prior: ``$BENCH_CACHE`` or ``~/.cache/diffloss-bench``."""
    env = os.environ.get("BENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "diffloss-bench"


def runs_dir() -> Path:
    """Job outputs: ``$BENCH_RUNS`` or ``./runs`` (the current directory, as lm-eval and BasicSR users expect;
    never beside the installed package)."""
    env = os.environ.get("BENCH_RUNS")
    return Path(env).expanduser() if env else Path.cwd() / "runs"


def tables_dir() -> Path:
    """Rendered tables and figures: ``$BENCH_TABLES`` or ``./tables`` (the current directory)."""
    env = os.environ.get("BENCH_TABLES")
    return Path(env).expanduser() if env else Path.cwd() / "tables"


def weights_search_path() -> list[Path]:
    """Folders searched for weight files, in order."""
    dirs = []
    if os.environ.get("BENCH_WEIGHTS"):
        dirs.append(Path(os.environ["BENCH_WEIGHTS"]).expanduser())
    dirs += [Path.cwd() / "weights", cache_dir() / "weights"]
    return dirs


def data_root() -> Path | None:
    """The root of real data sets: ``$BENCH_DATA`` (``--data-root`` overrides)."""
    env = os.environ.get("BENCH_DATA")
    return Path(env).expanduser() if env else None


def shared_root() -> Path:
    """The material handed to the project (fixtures, samples, paper): ``$BENCH_SHARED`` or ``../shared``."""
    env = os.environ.get("BENCH_SHARED")
    return Path(env) if env else (REPO_ROOT.parent / "shared")
