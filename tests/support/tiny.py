"""The cheapest graphs the CLI can run, and how to tell two runs' results apart (wall times aside).

A user's experiment file with a 2-layer network outside the repository (``mynets:TinyNet``) on the
smoke dehazing data, trained for ``STEPS`` steps with DiffLoss on a smoke prior of ``PRIOR_STEPS``
steps, scored with PSNR and SSIM only: data, prior, train, evaluate and render jobs in about half a
minute of CPU. The fault tests (tests/test_faults.py) and the bad-input census (tests/test_census.py)
build on it.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd

TINYNET = '''
import torch
from torch import nn


class TinyNet(nn.Module):
    """A residual 2-layer CNN: the user's own network, outside the repository."""

    def __init__(self, width: int = 4):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.body(x)).clamp(0, 1)


class RawNet(TinyNet):
    """TinyNet without the clamp: a huge learning rate overflows its output to inf (any CPU: 1e60 > 3.4e38)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
'''

EXPERIMENT = '''title = "Tiny"
[[row]]
baseline = "mynets:TinyNet"
task = "dehazing"
loss_sets = ["diffloss"]
'''

STEPS, PRIOR_STEPS = 20, 3
#: The options of every run of the tiny experiment (training checkpoints at steps 10 and 20).
RUN_ARGS = ("--profile", "smoke", "--no-progress", "--steps", str(STEPS), "--prior-steps", str(PRIOR_STEPS))


def write_user(folder: Path, experiment: str = EXPERIMENT) -> Path:
    """``folder/mynets.py`` and ``folder/exp.toml``; returns the experiment file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mynets.py").write_text(TINYNET)
    exp = folder / "exp.toml"
    exp.write_text(textwrap.dedent(experiment))
    return exp


#: Columns and lines that hold measured time or memory, never compared between runs.
TIMING_COLUMNS = ("wall_time", "seconds", "ms_per_step", "s_median", "peak_memory")
TIMING_LINES = ("rendered:",)
#: Provenance that says whether the worktree had uncommitted edits when a job ran: it changes when a developer
#: edits a file while the (minutes long) tests run, never with the results; the commit (git_sha) is compared.
UNCOMPARED = ("git_dirty",)


def is_measured(name: str) -> bool:
    """A column of measured time or memory, or provenance that may change between identical runs."""
    return any(t in name for t in TIMING_COLUMNS) or name in UNCOMPARED


def _csv(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, keep_default_na=False, dtype=str)
    return frame[[c for c in frame.columns if not is_measured(c)]]


def _text(path: Path) -> list[str]:
    """The lines of a rendered table; in its cost section (measured seconds, memory) every number is masked."""
    import re

    out, cost = [], False
    for ln in path.read_text().splitlines():
        if ln.startswith("## Cost of each row") or "\\caption{Cost of each row" in ln:
            cost = True
        elif cost and (ln == "---" or ln.startswith("\\end{table}")):
            cost = False
        if any(t in ln for t in TIMING_LINES):
            continue
        ln = ln.replace(" (uncommitted changes)", "")  # git_dirty, see UNCOMPARED
        out.append(re.sub(r"\d+(\.\d+)?", "#", ln) if cost else ln)
    return out


def differences(a: Path, b: Path) -> str:
    """'' when files ``a`` and ``b`` hold the same results (measured times aside), else what differs."""
    if not b.is_file():
        return f"{b} is missing"
    if a.read_bytes() == b.read_bytes():
        return ""
    if a.suffix == ".csv":
        fa, fb = _csv(a), _csv(b)
        if list(fa.columns) != list(fb.columns) or len(fa) != len(fb):
            return f"{b.name}: columns or rows differ"
        bad = [c for c in fa.columns if not fa[c].equals(fb[c])]
        return f"{b.name}: columns {bad} differ" if bad else ""
    if a.suffix in (".md", ".tex", ".txt"):
        return "" if _text(a) == _text(b) else f"{b.name}: text differs"
    if a.suffix == ".pt":
        import torch

        sa, sb = torch.load(a, map_location="cpu"), torch.load(b, map_location="cpu")
        return "" if _same_state(sa, sb) else f"{b.name}: tensors differ"
    return f"{b.name}: bytes differ"


def _same_state(x: object, y: object) -> bool:
    import torch

    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y)
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(_same_state(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return isinstance(y, (list, tuple)) and len(x) == len(y) and all(_same_state(i, j) for i, j in zip(x, y))
    return x == y


def compare_runs(ref: Path, other: Path) -> list[str]:
    """Every difference between two bases (runs/ and tables/): each finished job's outputs and every table."""
    out = []
    for d in sorted((ref / "runs").iterdir()):
        done = d / "done.json"
        if not done.is_file():
            continue
        twin = other / "runs" / d.name
        if not (twin / "done.json").is_file():
            out.append(f"job {d.name} is not done in {other}")
            continue
        for rel in json.loads(done.read_text())["outputs"]:
            if why := differences(d / rel, twin / rel):
                out.append(f"job {d.name}: {why}")
    for t in sorted((ref / "tables").iterdir()):
        if why := differences(t, other / "tables" / t.name):
            out.append(f"tables: {why}")
    return out


def temp_files(*folders: Path) -> list[Path]:
    """Temporary files of bench.io.atomic_path (``.<name>.<owner>.<random>.tmp``) anywhere under ``folders``."""
    return sorted(p for f in folders if f.is_dir() for p in f.rglob(".*.tmp"))
