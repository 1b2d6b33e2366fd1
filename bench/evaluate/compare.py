"""``bench compare A.csv B.csv``: paired statistics on two per-image result files.

A difference of means says little on a 15-image test set; pairing each image with itself
removes the between-image spread, so we report per metric: n, mean A, mean B, delta (B - A),
a 95% percentile bootstrap CI of the mean paired delta, the Wilcoxon signed-rank p-value and
wins / ties / losses of B in the metric's better direction. Set-level metrics (FID) come from
the summary CSVs beside the per-image files and are shown without CI or test.

Refusals (each a :class:`BenchError`): no common images, different image sets (unless
``intersect``), a metric whose convention differs between the files (PSNR on Y vs RGB),
duplicate image ids, no metric in common.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import BenchError, DataError

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CI_LEVEL = 0.95
FORMATS = ("rich", "md", "latex", "json", "csv")
ID_COLUMNS = ("dataset", "image_id")
CONVENTION_SUFFIX = "_convention"
SHOW_MISSING = 10
#: Metrics outside the registry whose direction we know; everything unknown counts as higher-better.
_LOWER_BETTER_FALLBACK = {"lpips", "fid", "niqe", "dists", "mse", "mae"}


@dataclass
class MetricComparison:
    """One metric's paired comparison (CI, p and wins are None for set-level metrics)."""

    metric: str
    level: str  # "image" or "set"
    lower_better: bool
    convention: str
    n: int
    mean_a: float
    mean_b: float
    delta: float
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    wins: int | None = None
    ties: int | None = None
    losses: int | None = None


@dataclass
class CompareResult:
    a: str
    b: str
    n_common: int
    datasets: list[str]
    rows: list[MetricComparison]
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    method: dict[str, Any] = field(default_factory=dict)

    def row(self, metric: str) -> MetricComparison:
        return next(r for r in self.rows if r.metric == metric)


# --------------------------------------------------------------------------- statistics


def bootstrap_ci(deltas: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                 level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``deltas`` (resampling images with replacement)."""
    n = len(deltas)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, min(resamples, 2_000_000 // max(n, 1)))  # bound memory on large test sets
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = deltas[idx].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def wilcoxon_p(deltas: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value; zero differences are dropped, all-zero gives 1."""
    from scipy.stats import wilcoxon

    if np.count_nonzero(deltas) == 0:
        return 1.0
    return float(wilcoxon(deltas, zero_method="wilcox", alternative="two-sided", method="auto").pvalue)


def win_tie_loss(deltas: np.ndarray, lower_better: bool) -> tuple[int, int, int]:
    """Images where B is better / exactly equal / worse than A."""
    better = deltas < 0 if lower_better else deltas > 0
    ties = deltas == 0
    return int(better.sum()), int(ties.sum()), int(len(deltas) - better.sum() - ties.sum())


def lower_is_better(metric: str) -> bool:
    from bench.registry import METRICS

    if metric in METRICS:
        return bool(METRICS.meta(metric).get("lower_better", False))
    return metric.lower() in _LOWER_BETTER_FALLBACK


# --------------------------------------------------------------------------- conventions


def convention_split(conv: str) -> tuple[str, str]:
    """(what is computed, implementation-version): the last ``|`` field names the implementation."""
    head, _, impl = conv.rpartition("|")
    return (head, impl) if head else (conv, "")


def file_convention(frame: pd.DataFrame, metric: str, label: str) -> str:
    """The single convention string a file states for ``metric`` ("" if it states none)."""
    col = metric + CONVENTION_SUFFIX
    if col not in frame.columns:
        return ""
    values = sorted({str(v) for v in frame[col].dropna()})
    if len(values) > 1:
        raise BenchError(f"{label} mixes {len(values)} conventions for {metric}: {', '.join(map(repr, values[:3]))}.",
                         fix="Compare files scored with one convention (one data set per file).")
    return values[0] if values else ""


def check_conventions(metric: str, conv_a: str, conv_b: str, a: str, b: str, notes: list[str]) -> str:
    """Refuse different conventions; tolerate a different implementation version with a note."""
    if conv_a == conv_b:
        return conv_a
    if not conv_a or not conv_b:
        missing = a if not conv_a else b
        raise BenchError(f"{missing} does not state the {metric} convention, so it cannot be compared with "
                         f"{b if missing == a else a} ('{conv_a or conv_b}').",
                         fix=f"Rescore with 'bench evaluate', which writes a {metric}{CONVENTION_SUFFIX} column.")
    (what_a, impl_a), (what_b, impl_b) = convention_split(conv_a), convention_split(conv_b)
    if what_a != what_b:
        raise BenchError(f"{metric} was computed differently: '{conv_a}' in {a} and '{conv_b}' in {b}.",
                         fix="Rescore both result sets with the same data set convention (bench evaluate --dataset).")
    notes.append(f"{metric}: same convention, different implementation versions ({impl_a} vs {impl_b}).")
    return conv_a


# --------------------------------------------------------------------------- pairing


def _key(frame: pd.DataFrame, use_dataset: bool) -> pd.Series:
    if use_dataset:
        return frame["dataset"].astype(str) + "/" + frame["image_id"].astype(str)
    return frame["image_id"].astype(str)


def _metric_columns(frame: pd.DataFrame) -> list[str]:
    from bench.registry import METRICS

    stated = {c.removesuffix(CONVENTION_SUFFIX) for c in frame.columns if c.endswith(CONVENTION_SUFFIX)}
    registered = {c for c in frame.columns if c in METRICS}
    return [c for c in frame.columns if c in stated | registered]


def _ids(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    shown = ", ".join(repr(k) for k in keys[:SHOW_MISSING])
    return shown + (f" and {len(keys) - SHOW_MISSING} more" if len(keys) > SHOW_MISSING else "")


def compare_frames(fa: pd.DataFrame, fb: pd.DataFrame, a: str = "A", b: str = "B", intersect: bool = False,
                   summary_a: pd.DataFrame | None = None, summary_b: pd.DataFrame | None = None) -> CompareResult:
    """Paired comparison of two per-image tables (and optionally their set-level summaries)."""
    for frame, label in ((fa, a), (fb, b)):
        if "image_id" not in frame.columns:
            raise DataError(f"{label} has no 'image_id' column, so its rows cannot be paired.",
                            fix="Use a per-image CSV written by 'bench evaluate' or an evaluate job.")
    use_dataset = "dataset" in fa.columns and "dataset" in fb.columns
    fa, fb = fa.assign(_key=_key(fa, use_dataset)), fb.assign(_key=_key(fb, use_dataset))
    for frame, label in ((fa, a), (fb, b)):
        dup = frame["_key"][frame["_key"].duplicated()]
        if len(dup):
            raise DataError(f"{label} lists {dup.nunique()} image id(s) more than once, first: '{dup.iloc[0]}'.",
                            fix="Keep one row per image (and data set) in each file.")
    keys_a, keys_b = set(fa["_key"]), set(fb["_key"])
    common = keys_a & keys_b
    if not common:
        raise BenchError(f"{a} and {b} have no image in common ({len(keys_a)} ids such as {_ids(list(keys_a)[:1])} "
                         f"vs {len(keys_b)} such as {_ids(list(keys_b)[:1])}).",
                         fix="Compare results on the same test set (image ids and data set names must match).")
    only_a, only_b = sorted(keys_a - common), sorted(keys_b - common)
    notes: list[str] = []
    if (only_a or only_b) and not intersect:
        parts = []
        if only_a:
            parts.append(f"{b} lacks {len(only_a)} of {a}'s images ({_ids(only_a)})")
        if only_b:
            parts.append(f"{a} lacks {len(only_b)} of {b}'s images ({_ids(only_b)})")
        raise BenchError("The files cover different images: " + "; ".join(parts) + ".",
                         fix="Pass --intersect to compare only the common images.")
    if only_a or only_b:
        notes.append(f"Compared the {len(common)} common images; {len(only_a)} only in {a}, {len(only_b)} only in {b}.")

    metrics = [m for m in _metric_columns(fa) if m in set(_metric_columns(fb))]
    set_level = _set_level_metrics(summary_a, summary_b, set(metrics))
    if not metrics and not set_level:
        raise BenchError(f"{a} and {b} share no metric column.",
                         fix="Score both with the same metrics (e.g. --metrics psnr,ssim,lpips).")
    pa = fa.set_index("_key").loc[sorted(common)]
    pb = fb.set_index("_key").loc[sorted(common)]
    rows = []
    for m in metrics:
        conv = check_conventions(m, file_convention(fa, m, a), file_convention(fb, m, b), a, b, notes)
        va = pd.to_numeric(pa[m], errors="coerce").to_numpy(float)
        vb = pd.to_numeric(pb[m], errors="coerce").to_numpy(float)
        ok = np.isfinite(va) & np.isfinite(vb)
        if not ok.all():
            notes.append(f"{m}: {int((~ok).sum())} image(s) without a finite value in both files were left out.")
        va, vb = va[ok], vb[ok]
        if len(va) == 0:
            notes.append(f"{m}: no image has a finite value in both files; not compared.")
            continue
        d = vb - va
        lower = lower_is_better(m)
        low, high = bootstrap_ci(d) if len(d) > 1 else (float(d[0]), float(d[0]))
        w, t, lo = win_tie_loss(d, lower)
        rows.append(MetricComparison(m, "image", lower, conv, len(d), float(va.mean()), float(vb.mean()),
                                     float(d.mean()), low, high, wilcoxon_p(d), w, t, lo))
    if set_level and (only_a or only_b):
        notes.append(f"Set-level metrics ({', '.join(set_level)}) left out: computed on different image sets.")
    elif set_level:
        rows += _compare_set_level(summary_a, summary_b, set_level, a, b, notes)
    datasets = sorted({str(x) for x in pa["dataset"]}) if use_dataset else []
    method = {"pairing": "dataset/image_id" if use_dataset else "image_id", "delta": "B - A",
              "ci": f"{CI_LEVEL:.0%} percentile bootstrap of the mean paired delta",
              "bootstrap_resamples": BOOTSTRAP_RESAMPLES, "bootstrap_seed": BOOTSTRAP_SEED,
              "bootstrap_rng": "numpy default_rng (PCG64)",
              "test": "scipy.stats.wilcoxon, two-sided, zero_method='wilcox' (zero deltas dropped), method='auto'",
              "wins": "images where B is better than A in the metric's direction; ties are exact equality"}
    return CompareResult(a, b, len(common), datasets, rows, only_a, only_b, notes, method)


def _set_level_metrics(sa: pd.DataFrame | None, sb: pd.DataFrame | None, per_image: set[str]) -> list[str]:
    if sa is None or sb is None or "metric" not in sa.columns or "metric" not in sb.columns:
        return []
    shared = set(sa["metric"].astype(str)) & set(sb["metric"].astype(str))
    return sorted(shared - per_image)  # a per-image metric's summary mean is already compared above


def _compare_set_level(sa: pd.DataFrame, sb: pd.DataFrame, metrics: list[str], a: str, b: str,
                       notes: list[str]) -> list[MetricComparison]:
    rows = []
    for m in metrics:
        ra, rb = sa[sa["metric"].astype(str) == m], sb[sb["metric"].astype(str) == m]
        if len(ra) != 1 or len(rb) != 1:
            notes.append(f"{m}: the summaries hold {len(ra)} and {len(rb)} rows for it; not compared.")
            continue
        ca = str(ra["convention"].iloc[0]) if "convention" in ra.columns else ""
        cb = str(rb["convention"].iloc[0]) if "convention" in rb.columns else ""
        conv = check_conventions(m, ca, cb, a, b, notes)
        va, vb = float(ra["value"].iloc[0]), float(rb["value"].iloc[0])
        na = int(ra["n"].iloc[0]) if "n" in ra.columns else 0
        nb = int(rb["n"].iloc[0]) if "n" in rb.columns else 0
        if na != nb:
            notes.append(f"{m}: computed on N={na} in {a} and N={nb} in {b}.")
        rows.append(MetricComparison(m, "set", lower_is_better(m), conv, min(na, nb), va, vb, vb - va))
    return rows


# --------------------------------------------------------------------------- files


def read_results(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Result file {path} does not exist.", fix="Pass a per-image CSV (per_image.csv).")
    try:
        return pd.read_csv(path, dtype={"image_id": str, "dataset": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"Result file {path} is not a readable CSV ({type(e).__name__}).",
                        fix="Pass a per-image CSV written by bench.") from None


def summary_path(per_image: Path) -> Path | None:
    """The set-level summary beside a per-image CSV: ``X_summary.csv`` (bench evaluate) or ``summary.csv`` (job)."""
    per_image = Path(per_image)
    for cand in (per_image.with_name(per_image.stem + "_summary.csv"),
                 per_image.with_name("summary.csv") if per_image.name == "per_image.csv" else None):
        if cand is not None and cand.is_file():
            return cand
    return None


def compare_files(a: Path, b: Path, intersect: bool = False) -> CompareResult:
    """Read two per-image CSVs (and their summaries, when present) and compare them."""
    sa, sb = summary_path(a), summary_path(b)
    return compare_frames(read_results(a), read_results(b), str(a), str(b), intersect,
                          read_results(sa) if sa else None, read_results(sb) if sb else None)


# --------------------------------------------------------------------------- output

_HEADERS = ["metric", "better", "n", "mean A", "mean B", "delta (B-A)", "95% CI", "Wilcoxon p", "W/T/L", "convention"]


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def _p(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def table_rows(result: CompareResult, arrows: tuple[str, str] = ("lower", "higher")) -> list[list[str]]:
    out = []
    for r in result.rows:
        ci = f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]" if r.ci_low is not None else "- (set-level)"
        wtl = f"{r.wins}/{r.ties}/{r.losses}" if r.wins is not None else "-"
        out.append([r.metric, arrows[0] if r.lower_better else arrows[1], str(r.n), _fmt(r.mean_a), _fmt(r.mean_b),
                    f"{r.delta:+.4f}", ci, _p(r.p_value), wtl, r.convention])
    return out


def method_text(result: CompareResult) -> str:
    m = result.method
    return (f"A = {result.a}; B = {result.b}; n = {result.n_common} paired images"
            f"{' (' + ', '.join(result.datasets) + ')' if result.datasets else ''}. Delta = B - A; "
            f"{m['ci']} ({m['bootstrap_resamples']:,} resamples, seed {m['bootstrap_seed']}); "
            f"{m['test']}; W/T/L = images where B is better/equal/worse.")


def to_markdown(result: CompareResult) -> str:
    lines = ["| " + " | ".join(_HEADERS) + " |", "|" + "---|" * len(_HEADERS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table_rows(result)]
    lines += ["", method_text(result)] + [f"- {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


_TEX = {"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "|": r"\textbar{}",
        "$": r"\$", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in s)


def to_latex(result: CompareResult) -> str:
    cols = _HEADERS[:-1]  # conventions go into the caption: they are long
    rows = table_rows(result, arrows=("$\\downarrow$", "$\\uparrow$"))
    body = [" & ".join([_tex(c) if i != 1 else c for i, c in enumerate(r[:-1])]) + " \\\\" for r in rows]
    conv = "; ".join(f"{r.metric}: {r.convention}" for r in result.rows)
    lines = ["\\begin{table}[t]", "\\centering", "\\begin{tabular}{l" + "c" * (len(cols) - 1) + "}", "\\toprule",
             " & ".join(_tex(c) for c in cols) + " \\\\", "\\midrule", *body, "\\bottomrule", "\\end{tabular}",
             f"\\caption{{{_tex(method_text(result))} Conventions: {_tex(conv)}.}}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def _finite(obj: Any) -> Any:
    """NaN/inf -> None, so the JSON is strict (no NaN literals)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def to_json(result: CompareResult) -> str:
    return json.dumps(_finite(asdict(result)), indent=2, allow_nan=False, default=str) + "\n"


def to_csv(result: CompareResult) -> str:
    frame = pd.DataFrame([asdict(r) for r in result.rows])
    frame.insert(0, "b", result.b)
    frame.insert(0, "a", result.a)
    frame["bootstrap_resamples"] = BOOTSTRAP_RESAMPLES
    frame["bootstrap_seed"] = BOOTSTRAP_SEED
    return frame.to_csv(index=False)


def to_rich(result: CompareResult) -> Any:
    from rich.table import Table

    t = Table(title=f"B vs A: {Path(result.b).name} vs {Path(result.a).name}", caption=method_text(result)
              + "".join(f"\n{n}" for n in result.notes))
    for h in _HEADERS:
        t.add_column(h, justify="right" if h not in ("metric", "better", "convention") else "left")
    for r, cells in zip(result.rows, table_rows(result)):
        good = (r.delta < 0) if r.lower_better else (r.delta > 0)
        significant = r.ci_low is not None and (r.ci_low > 0 or r.ci_high < 0)
        style = ("green" if good else "red") if significant else None
        t.add_row(*cells, style=style)
    return t


def format_result(result: CompareResult, fmt: str = "rich") -> Any:
    """``rich`` -> a rich Table; ``md``/``latex``/``json``/``csv`` -> a string."""
    writers = {"rich": to_rich, "md": to_markdown, "latex": to_latex, "json": to_json, "csv": to_csv}
    if fmt not in writers:
        raise BenchError(f"Unknown output format '{fmt}'.", fix=f"Use one of: {', '.join(FORMATS)}.")
    return writers[fmt](result)
