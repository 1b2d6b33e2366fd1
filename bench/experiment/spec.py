"""An experiment is data: rows of (network, data, loss sets), metrics, seeds and a layout name.

Every paper table is one (``bench.paper.table1`` ... ``figure7``), and so is a user's TOML file
(``bench.experiment.toml_file``): both become jobs through the same builder
(``bench.experiment.graph``), so the two paths cannot drift. A row names a registered baseline or
``package.module:Class`` (the user's own network), a task of ours (its profile's data) or the user's
own paired folders, and loss sets by name (``bench.experiment.losses``, or declared by the user).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Our tasks: (train data set, test data set) of real data; each is scored by its test set's convention
#: (``bench ls datasets``: Rain100H by PReNet's/RCDNet's statistic.m, LOL by IAT's script, Dense-Haze in RGB).
TASKS: dict[str, tuple[str, str]] = {
    "dehazing": ("dense_haze", "dense_haze"),
    "deraining": ("rain13k", "rain100h"),
    "lowlight": ("lol", "lol"),
}
TASK_TITLES = {"dehazing": "Dehazing (Dense-Haze)", "deraining": "Deraining (Rain100H)",
               "lowlight": "Low-light enhancement (LOL)"}
#: The data kind of a row with its own paired folders.
FOLDERS = "folders"


@dataclass(frozen=True)
class DataRef:
    """What a row trains and tests on: one of our tasks, or the user's own paired folders."""

    task: str  # a key of TASKS, or FOLDERS
    train: str | None = None  # FOLDERS: the training folder (absolute)
    test: str | None = None  # FOLDERS: the test folder (absolute)
    convention: str | None = None  # FOLDERS: the metric convention the user states

    @property
    def title(self) -> str:
        if self.task == FOLDERS:
            return f"Own data (train {self.train}, test {self.test})"
        return TASK_TITLES.get(self.task, self.task)


@dataclass(frozen=True)
class RowSpec:
    """One network on one data set, trained with each of ``loss_sets``."""

    baseline: str  # registered name, or "package.module:Class"
    data: DataRef
    loss_sets: tuple[str, ...]
    baseline_kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""  # how tables name the network (default: the baseline's name)

    @property
    def name(self) -> str:
        return self.label or self.baseline.rpartition(":")[2]


@dataclass(frozen=True)
class Experiment:
    """What to train, evaluate and render; ``layout`` names the table layout (``bench.report`` registry)."""

    name: str
    title: str
    rows: tuple[RowSpec, ...]
    metrics: tuple[str, ...] = ("psnr", "ssim")
    select: tuple[str, ...] = ("last",)  # "best:psnr" = the paper's "best in the first K iterations"
    snapshots: int = 0  # evaluation points along training, for "best:*"
    loss_sets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # declared beside ours
    layout: str = "experiment"
    seeds: int = 1
    source: str = ""  # the file it was read from, for provenance
