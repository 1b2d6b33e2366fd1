"""A table's layout, independent of the output format: sections of lines of cells.

Each cell holds our values (one per seed) and the paper's value. A line may carry gain rows:
the paired difference between it and a partner line per metric (``bench.evaluate.stats``),
beside the paper's own difference. Rendering to Markdown or LaTeX only formats this; what is
compared with what is decided here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.evaluate.stats import PairedGain


@dataclass(frozen=True)
class MetricCol:
    key: str
    header: str
    higher_better: bool
    fmt: str
    in_paper: bool = True
    #: One value per test set (FID, KID): shown with its N, no per-image interval.
    set_level: bool = False
    #: Below this N the value is never compared with the paper's nor bold (FID: FID_PAPER_MIN_N).
    min_n: int | None = None


@dataclass
class Cell:
    ours: list[float] = field(default_factory=list)
    paper: float | None = None
    #: Set-level metrics: the N of each of our values (one per seed).
    n: list[int] = field(default_factory=list)

    @property
    def n_min(self) -> int | None:
        return min(self.n) if self.n else None

    @property
    def mean(self) -> float | None:
        vals = [v for v in self.ours if v is not None and math.isfinite(v)]
        return sum(vals) / len(vals) if vals else None

    @property
    def ci95(self) -> float | None:
        """Half-width of the 95% t-interval of the mean over seeds (None with one seed)."""
        vals = [v for v in self.ours if v is not None and math.isfinite(v)]
        if len(vals) < 2:
            return None
        m = sum(vals) / len(vals)
        sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))
        from scipy import stats  # here, not at import: 1.4 s that single-seed tables never need

        return float(stats.t.ppf(0.975, len(vals) - 1) * sd / math.sqrt(len(vals)))


@dataclass
class Diff:
    """One metric's difference between two lines: ours (paired, None without per-image data) and the paper's."""

    ours: PairedGain | None = None
    paper: float | None = None


@dataclass
class GainRow:
    """A sub-row under a line: its paired difference to the line ``versus`` names, per metric."""

    versus: str
    diffs: dict[str, Diff]


@dataclass
class Line:
    label: str
    kind: str  # "reference" (a paper's number only), "trained" (ours beside the paper's), "ours-only", "zero-shot"
    cells: dict[str, Cell]
    note: str = ""
    #: Paired differences of this line to its partners (rendered as sub-rows; never bold, never a "best").
    gains: list[GainRow] = field(default_factory=list)


@dataclass
class Section:
    title: str
    lines: list[Line]


@dataclass
class Layout:
    number: int | str
    title: str
    metrics: list[MetricCol]
    sections: list[Section]
    reproduction: bool
    banner: str
    footer: list[str]
    #: Further tables rendered after this one in the same files (e.g. Table 1's cost of each row).
    appendices: list[Layout] = field(default_factory=list)

    def best(self, section: Section, key: str) -> float | None:
        col = next(c for c in self.metrics if c.key == key)
        cells = [ln.cells[key] for ln in section.lines if ln.kind == "trained" and key in ln.cells]
        if col.min_n is not None:  # an FID on fewer images than that (or an unknown N) is never the best
            cells = [c for c in cells if (c.n_min or 0) >= col.min_n]
        vals = [c.mean for c in cells if c.mean is not None]
        if not vals:
            return None
        return max(vals) if col.higher_better else min(vals)
