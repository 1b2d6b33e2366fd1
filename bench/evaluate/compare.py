"""``bench compare A.csv B.csv``: paired statistics on two per-image result files (or two folders of images).

A difference of means says little on a 15-image test set; pairing each image with itself
removes the between-image spread, so we report per metric: n, mean A, mean B, delta (B - A),
a 95% percentile bootstrap CI of the mean paired delta, the Wilcoxon signed-rank p-value and
wins / ties / losses of B in the metric's better direction. Set-level metrics (FID, KID) come
from the summary CSVs beside the per-image files and are shown without CI or test.

Files from other tools pair too: the id column is the first of ``image_id``, ``image``, ``name``,
``file``, ``filename`` (or ``id_column``), and ids pair by file name without folders or image
extension (``results/1.png`` pairs with ``1``). Column names are compared case-insensitively.
A metric's direction comes from the registry or the standard names below, or from
``higher_better`` / ``lower_better``; an unknown direction is refused rather than guessed.
:func:`compare_folders` scores two runs' restored images with one convention and compares them.

Refusals (each a :class:`BenchError`): no common images, different image sets (unless
``intersect``), a metric whose convention differs between the files (PSNR on Y vs RGB),
duplicate image ids, no metric in common, a metric of unknown direction.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
import textwrap
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
FORMATS = ("rich", "plain", "md", "latex", "json", "csv")
#: Id columns tried in this order (bench writes image_id; BasicSR-style and papers' scripts use the others).
ID_CANDIDATES = ("image_id", "image", "name", "file", "filename")
CONVENTION_SUFFIX = "_convention"
SHOW_MISSING = 10
#: Extensions dropped from ids when pairing (``1.png`` pairs with ``1``); other dots stay (``img.001``).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Metrics outside the registry whose direction is standard; any other name needs --higher/--lower-better.
HIGHER_BETTER = frozenset({"psnr", "ssim", "ms_ssim", "msssim", "psnr_y", "ssim_y", "psnry", "ssimy", "top1", "top5",
                           "accuracy", "fsim", "vif", "musiq", "clipiqa", "nrqm"})
LOWER_BETTER = frozenset({"lpips", "fid", "kid", "niqe", "dists", "mse", "mae", "rmse", "brisque", "pieapp", "pi"})
#: Convention strings written before 'y' was split: the same arithmetic as today's 'y-pyiqa-rounded'.
_LEGACY_CONVENTIONS = {"y": "y-pyiqa-rounded"}


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


def known_direction(metric: str) -> bool | None:
    """True if lower is better, False if higher is, None if bench does not know (registry, then standard names)."""
    from bench.registry import METRICS

    metric = metric.lower()
    if metric in METRICS:
        return bool(METRICS.meta(metric).get("lower_better", False))
    if metric in LOWER_BETTER:
        return True
    return False if metric in HIGHER_BETTER else None


def lower_is_better(metric: str) -> bool:
    """The known direction of ``metric``; unknown names count as higher-better (prefer :func:`metric_directions`)."""
    return bool(known_direction(metric))


def _names(metrics: Iterable[str]) -> set[str]:
    return {m.strip().lower() for m in metrics if m.strip()}


def metric_directions(metrics: Iterable[str], higher_better: Iterable[str] = (),
                      lower_better: Iterable[str] = ()) -> dict[str, bool]:
    """metric -> lower-is-better; the user's lists win over what bench knows; unknown directions are refused."""
    higher, lower = _names(higher_better), _names(lower_better)
    if higher & lower:
        raise BenchError(f"{', '.join(sorted(higher & lower))} is named both higher- and lower-better.",
                         fix="Name each metric in one of --higher-better and --lower-better.")
    out, unknown = {}, []
    for m in metrics:
        direction = False if m in higher else True if m in lower else known_direction(m)
        if direction is None:
            unknown.append(m)
        else:
            out[m] = direction
    if unknown:
        raise BenchError(f"bench does not know whether higher or lower is better for {', '.join(unknown)}.",
                         fix=f"Say so: --higher-better {unknown[0]} or --lower-better {unknown[0]}.")
    return out


# --------------------------------------------------------------------------- conventions


def convention_split(conv: str) -> tuple[str, str]:
    """(what is computed, implementation-version): the last ``|`` field names the implementation."""
    head, _, impl = conv.rpartition("|")
    return (head, impl) if head else (conv, "")


def canonical_convention(conv: str) -> str:
    """Today's name for a convention string written under a former name (``y|...`` -> ``y-pyiqa-rounded|...``)."""
    head, sep, rest = conv.partition("|")
    return _LEGACY_CONVENTIONS[head] + sep + rest if head in _LEGACY_CONVENTIONS and sep else conv


def file_convention(frame: pd.DataFrame, metric: str, label: str) -> str:
    """The single convention string a file states for ``metric`` ("" if it states none)."""
    col = metric + CONVENTION_SUFFIX
    if col not in frame.columns:
        return ""
    values = sorted({canonical_convention(str(v)) for v in frame[col].dropna()})
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
                         fix=f"Rescore with 'bench evaluate', which writes a {metric}{CONVENTION_SUFFIX} column, or "
                             "score both runs' images in one go: bench compare --pred-a DIR --pred-b DIR --target DIR "
                             "--dataset NAME.")
    (what_a, impl_a), (what_b, impl_b) = convention_split(conv_a), convention_split(conv_b)
    if what_a != what_b:
        raise BenchError(f"{metric} was computed differently: '{conv_a}' in {a} and '{conv_b}' in {b}.",
                         fix="Rescore both result sets with the same data set convention (bench evaluate --dataset).")
    notes.append(f"{metric}: same convention, different implementation versions ({impl_a} vs {impl_b}).")
    return conv_a


# --------------------------------------------------------------------------- pairing


def image_key(value: Any) -> str:
    """The pairing key of an image id: its file name without folders or image extension (``a/1.png`` -> ``1``)."""
    name = re.split(r"[\\/]", str(value).strip())[-1]
    stem, dot, ext = name.rpartition(".")
    return stem if dot and stem and "." + ext.lower() in IMAGE_EXTENSIONS else name


def lower_columns(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Column names stripped and lower-cased (``PSNR`` pairs with ``psnr``); refuses names that then collide."""
    names = [str(c).strip().lower() for c in frame.columns]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise DataError(f"{label} has columns that differ only in case or spaces: {', '.join(clash)}.",
                        fix="Keep one column per metric.")
    return frame.set_axis(names, axis=1)


def find_id_column(columns: Iterable[str], label: str, id_column: str | None = None) -> str:
    """The (lower-cased) id column: ``id_column`` where the file has it, else the first of :data:`ID_CANDIDATES`.

    ``id_column`` names a non-standard column of one file; the other (e.g. bench's, with
    ``image_id``) still pairs by its standard column.
    """
    columns = list(columns)
    if id_column and id_column.strip().lower() in columns:
        return id_column.strip().lower()
    for c in ID_CANDIDATES:
        if c in columns:
            return c
    if id_column:
        raise DataError(f"{label} has no column '{id_column}' and none of {', '.join(ID_CANDIDATES)} (it has: "
                        f"{', '.join(columns)}).", fix="Pass --id-column with the column that names each image.")
    raise DataError(f"{label} has no image id column (none of {', '.join(ID_CANDIDATES)}), so its rows cannot be "
                    f"paired (it has: {', '.join(columns)}).", fix="Name the id column with --id-column NAME.")


def _keyed(frame: pd.DataFrame, label: str, id_column: str | None, use_dataset: bool) -> pd.DataFrame:
    col = find_id_column(frame.columns, label, id_column)
    key = frame[col].map(image_key)
    if use_dataset:
        key = frame["dataset"].astype(str) + "/" + key
    frame = frame.assign(_key=key, _raw=frame[col].astype(str))
    dup = frame[frame["_key"].duplicated(keep=False)]
    if len(dup):
        first = dup["_key"].iloc[0]
        raws = ", ".join(repr(r) for r in dup.loc[dup["_key"] == first, "_raw"])
        raise DataError(f"{label} lists {dup['_key'].nunique()} image id(s) more than once, first: '{first}' "
                        f"(from {raws}).", fix="Keep one row per image (and data set) in each file.")
    return frame


def _metric_columns(frame: pd.DataFrame, named: set[str]) -> list[str]:
    """Columns holding a metric: stated by a ``<metric>_convention`` column, of known direction, or named."""
    stated = {c.removesuffix(CONVENTION_SUFFIX) for c in frame.columns if c.endswith(CONVENTION_SUFFIX)}
    return [c for c in frame.columns if not c.startswith("_") and not c.endswith(CONVENTION_SUFFIX)
            and (c in stated or c in named or known_direction(c) is not None)]


#: Numeric columns that are bookkeeping, never metrics.
_NOT_METRICS = frozenset({"wall_time_s", "epoch", "seed", "step", "iteration", "index", "height", "width", "n"})


def _unknown_numeric_columns(fa: pd.DataFrame, fb: pd.DataFrame, metrics: set[str]) -> list[str]:
    shared = [c for c in fa.columns if c in fb.columns and not c.startswith("_") and c not in metrics]
    return [c for c in shared if c not in _NOT_METRICS and c not in ID_CANDIDATES and c != "dataset"
            and pd.api.types.is_numeric_dtype(fa[c]) and pd.api.types.is_numeric_dtype(fb[c])]


def _ids(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    shown = ", ".join(repr(k) for k in keys[:SHOW_MISSING])
    return shown + (f" and {len(keys) - SHOW_MISSING} more" if len(keys) > SHOW_MISSING else "")


def compare_frames(fa: pd.DataFrame, fb: pd.DataFrame, a: str = "A", b: str = "B", intersect: bool = False,
                   summary_a: pd.DataFrame | None = None, summary_b: pd.DataFrame | None = None,
                   id_column: str | None = None, higher_better: Iterable[str] = (),
                   lower_better: Iterable[str] = ()) -> CompareResult:
    """Paired comparison of two per-image tables (and optionally their set-level summaries)."""
    named = _names(higher_better) | _names(lower_better)
    fa, fb = lower_columns(fa, a), lower_columns(fb, b)
    use_dataset = "dataset" in fa.columns and "dataset" in fb.columns
    if id_column and id_column.strip().lower() not in set(fa.columns) | set(fb.columns):
        raise DataError(f"Neither {a} nor {b} has the column '{id_column}' given with --id-column.",
                        fix=f"Name a column of one of them (A has: {', '.join(map(str, fa.columns))}).")
    fa, fb = _keyed(fa, a, id_column, use_dataset), _keyed(fb, b, id_column, use_dataset)
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

    metrics = [m for m in _metric_columns(fa, named) if m in set(_metric_columns(fb, named))]
    summary_a = lower_columns(summary_a, a) if summary_a is not None else None
    summary_b = lower_columns(summary_b, b) if summary_b is not None else None
    set_level = _set_level_metrics(summary_a, summary_b, set(metrics))
    if not metrics and not set_level:
        raise BenchError(f"{a} and {b} share no metric column.",
                         fix="Score both with the same metrics (e.g. --metrics psnr,ssim,lpips), or name a column "
                             "with --higher-better / --lower-better.")
    unused = sorted(named - set(metrics) - set(set_level))
    if unused:
        notes.append(f"{', '.join(unused)}: named but not a column of both files.")
    ignored = _unknown_numeric_columns(fa, fb, set(metrics))
    if ignored:
        notes.append(f"Not compared (not a metric bench knows; name them with --higher-better or --lower-better): "
                     f"{', '.join(ignored)}.")
    directions = metric_directions(metrics + set_level, higher_better, lower_better)
    pa = fa.set_index("_key").loc[sorted(common)]
    pb = fb.set_index("_key").loc[sorted(common)]
    rows = []
    for m in metrics:
        conv = check_conventions(m, file_convention(fa, m, a), file_convention(fb, m, b), a, b, notes)
        va = pd.to_numeric(pa[m], errors="coerce").to_numpy(float)
        vb = pd.to_numeric(pb[m], errors="coerce").to_numpy(float)
        for label, frame, vals in ((a, pa, va), (b, pb, vb)):
            bad = ~np.isfinite(vals)
            if bad.any():  # NaN, inf or not a number: a mean and a test over them would mean nothing
                first = int(np.flatnonzero(bad)[0])
                raise DataError(f"{label} has {int(bad.sum())} value(s) of '{m}' that are not finite numbers, first "
                                f"{frame[m].iloc[first]} for image '{frame['_raw'].iloc[first]}'.",
                                fix="Rescore those images, or remove their rows from both files.")
        d = vb - va
        lower = directions[m]
        low, high = bootstrap_ci(d) if len(d) > 1 else (float(d[0]), float(d[0]))
        w, t, lo = win_tie_loss(d, lower)
        rows.append(MetricComparison(m, "image", lower, conv, len(d), float(va.mean()), float(vb.mean()),
                                     float(d.mean()), low, high, wilcoxon_p(d), w, t, lo))
    if set_level and (only_a or only_b):
        notes.append(f"Set-level metrics ({', '.join(set_level)}) left out: computed on different image sets.")
    elif set_level:
        rows += _compare_set_level(summary_a, summary_b, set_level, a, b, notes, directions)
    datasets = sorted({str(x) for x in pa["dataset"]}) if use_dataset else []
    method = {"pairing": ("dataset/" if use_dataset else "") + "image id (file name without folders or image "
                         "extension)", "delta": "B - A",
              "ci": f"{CI_LEVEL:.0%} percentile bootstrap of the mean paired delta",
              "bootstrap_resamples": BOOTSTRAP_RESAMPLES, "bootstrap_seed": BOOTSTRAP_SEED,
              "bootstrap_rng": "numpy default_rng (PCG64)",
              "test": "scipy.stats.wilcoxon, two-sided, zero_method='wilcox' (zero deltas dropped), method='auto'",
              "wins": "images where B is better than A in the metric's direction; ties are exact equality"}
    return CompareResult(a, b, len(common), datasets, rows, only_a, only_b, notes, method)


def _summary_metrics(s: pd.DataFrame) -> pd.Series:
    return s["metric"].astype(str).str.strip().str.lower()


def _set_level_metrics(sa: pd.DataFrame | None, sb: pd.DataFrame | None, per_image: set[str]) -> list[str]:
    if sa is None or sb is None or "metric" not in sa.columns or "metric" not in sb.columns:
        return []
    shared = set(_summary_metrics(sa)) & set(_summary_metrics(sb))
    return sorted(shared - per_image)  # a per-image metric's summary mean is already compared above


def _compare_set_level(sa: pd.DataFrame, sb: pd.DataFrame, metrics: list[str], a: str, b: str,
                       notes: list[str], directions: dict[str, bool]) -> list[MetricComparison]:
    rows = []
    for m in metrics:
        ra, rb = sa[_summary_metrics(sa) == m], sb[_summary_metrics(sb) == m]
        if len(ra) != 1 or len(rb) != 1:
            notes.append(f"{m}: the summaries hold {len(ra)} and {len(rb)} rows for it; not compared.")
            continue
        ca = canonical_convention(str(ra["convention"].iloc[0])) if "convention" in ra.columns else ""
        cb = canonical_convention(str(rb["convention"].iloc[0])) if "convention" in rb.columns else ""
        conv = check_conventions(m, ca, cb, a, b, notes)
        va, vb = float(ra["value"].iloc[0]), float(rb["value"].iloc[0])
        na = int(float(ra["n"].iloc[0])) if "n" in ra.columns else 0
        nb = int(float(rb["n"].iloc[0])) if "n" in rb.columns else 0
        if na != nb:
            notes.append(f"{m}: computed on N={na} in {a} and N={nb} in {b}.")
        rows.append(MetricComparison(m, "set", directions[m], conv, min(na, nb), va, vb, vb - va))
    return rows


# --------------------------------------------------------------------------- files


def read_results(path: Path, id_column: str | None = None) -> pd.DataFrame:
    """A result CSV with its id-like columns (and ``id_column``) read as text, so ``001`` stays ``001``."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a CSV file" if path.is_dir() else "does not exist"
        raise DataError(f"Result file {path} {what}.", fix="Pass a per-image CSV (per_image.csv).")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise DataError(f"Result file {path} cannot be read ({e.strerror or e}).",
                        fix="Fix its permissions, or pass a copy you can read.") from None
    text_columns = {*ID_CANDIDATES, "dataset", "metric", "convention", (id_column or "").strip().lower()}
    try:
        header = pd.read_csv(path, nrows=0).columns
        dtype = {c: str for c in header if str(c).strip().lower() in text_columns
                 or str(c).strip().lower().endswith(CONVENTION_SUFFIX)}
        return pd.read_csv(path, dtype=dtype)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"Result file {path} is not a readable CSV ({type(e).__name__}).",
                        fix="Pass a per-image CSV (bench's, BasicSR's or a paper's script's).") from None


def summary_path(per_image: Path) -> Path | None:
    """The set-level summary beside a per-image CSV: ``X_summary.csv`` (bench evaluate) or ``summary.csv`` (job)."""
    per_image = Path(per_image)
    for cand in (per_image.with_name(per_image.stem + "_summary.csv"),
                 per_image.with_name("summary.csv") if per_image.name == "per_image.csv" else None):
        if cand is not None and cand.is_file():
            return cand
    return None


def compare_files(a: Path, b: Path, intersect: bool = False, id_column: str | None = None,
                  higher_better: Iterable[str] = (), lower_better: Iterable[str] = ()) -> CompareResult:
    """Read two per-image CSVs (and their summaries, when present) and compare them."""
    sa, sb = summary_path(a), summary_path(b)
    return compare_frames(read_results(a, id_column), read_results(b, id_column), str(a), str(b), intersect,
                          read_results(sa) if sa else None, read_results(sb) if sb else None, id_column,
                          higher_better, lower_better)


def compare_folders(pred_a: Path, pred_b: Path, target: Path, dataset: str, metrics: list[str],
                    device: str = "cpu", convention: str | None = None, higher_better: Iterable[str] = (),
                    lower_better: Iterable[str] = ()) -> CompareResult:
    """Score two runs' restored images against one target folder with one convention, then compare them.

    Both runs are scored here by :func:`bench.evaluate.scoring.score` (the data set's convention,
    or ``convention``), so their numbers cannot differ by how they were computed.
    """
    from bench.evaluate import scoring

    conv = scoring.dataset_convention(dataset, convention)
    scoring.check_same_names(Path(pred_a), scoring.folder_names(Path(pred_a)), Path(pred_b),
                             scoring.folder_names(Path(pred_b)),
                             fix="Both runs must restore the same images (same file names, extension aside).")
    frames, summaries = [], []
    for pred in (pred_a, pred_b):
        pairs = scoring.folder_items(Path(pred), Path(target))
        rows, summary = scoring.score(scoring.load_items(pairs), metrics, conv, device)
        frames.append(pd.DataFrame(rows).assign(dataset=dataset))
        summaries.append(pd.DataFrame(summary))
    result = compare_frames(frames[0], frames[1], str(pred_a), str(pred_b), False, summaries[0], summaries[1],
                            None, higher_better, lower_better)
    result.method["scoring"] = (f"both runs scored against {target} with convention '{conv}' "
                                f"(data set '{dataset}')")
    return result


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


def _cell_widths(rows: list[list[str]], headers: list[str]) -> list[int]:
    return [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]


def _wrap_convention(metric: str, conv: str, width: int) -> list[str]:
    """``  metric: a|b|c`` broken after a ``|`` to fit ``width``; a field is never split."""
    lines, line = [], f"  {metric}: "
    fields = conv.split("|")
    for i, f in enumerate(fields):
        piece = f + ("|" if i < len(fields) - 1 else "")
        if len(line) + len(piece) > width and line.strip() and not line.endswith(": "):
            lines.append(line)
            line = "      "
        line += piece
    return [*lines, line]


def _pack(items: list[str], width: int, indent: str = "  ", sep: str = "   ") -> list[str]:
    """Items side by side while they fit in ``width``; an item is never split."""
    lines, line = [], ""
    for item in items:
        if line and len(indent) + len(line) + len(sep) + len(item) > width:
            lines.append(indent + line)
            line = item
        else:
            line = f"{line}{sep}{item}" if line else item
    return [*lines, indent + line] if line else lines


def to_text(result: CompareResult, width: int = 80) -> str:
    """Plain text that fits ``width`` columns without cutting a number: a table when it fits, else one block per metric.

    For pipes, files and narrow terminals (rich would shorten cells to ``+0.4…`` there).
    """
    width = max(width, 40)
    headers, rows = _HEADERS[:-1], [r[:-1] for r in table_rows(result)]
    widths = _cell_widths(rows, headers)
    lines = [f"B vs A: {Path(result.b).name} vs {Path(result.a).name}", ""]
    if sum(widths) + 2 * (len(widths) - 1) <= width:
        def line(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        lines += [line(headers).rstrip(), "  ".join("-" * w for w in widths)] + [line(r).rstrip() for r in rows]
    else:
        for m, r in zip(result.rows, rows):
            items = [f"{h} {c}" for h, c in zip(headers[3:], r[3:])]
            set_level = " (set-level: no CI, test or wins)" if m.level == "set" else ""
            lines.append(f"{r[0]} ({r[1]} is better), n = {r[2]}{set_level}")
            lines += _pack(items[:3] if set_level else items, width)
    lines += ["", "conventions:"]
    for r in result.rows:
        lines += _wrap_convention(r.metric, r.convention or "(not stated)", width)
    wrap = functools.partial(textwrap.wrap, width=width, break_long_words=False, break_on_hyphens=False)
    lines += ["", *wrap(method_text(result))]
    for n in result.notes:
        lines += wrap(n, initial_indent="- ", subsequent_indent="  ")
    return "\n".join(lines) + "\n"


def to_rich(result: CompareResult) -> Any:
    """A rich table; numbers never wrap or shorten (``write_result`` falls back to :func:`to_text` when narrow)."""
    from rich.table import Table

    t = Table(title=f"B vs A: {Path(result.b).name} vs {Path(result.a).name}", caption=method_text(result)
              + "".join(f"\n{n}" for n in result.notes))
    for h in _HEADERS:
        if h == "convention":
            t.add_column(h, overflow="fold")
        else:
            t.add_column(h, justify="left" if h in ("metric", "better") else "right", no_wrap=True,
                         overflow="ignore")
    for r, cells in zip(result.rows, table_rows(result)):
        good = (r.delta < 0) if r.lower_better else (r.delta > 0)
        significant = r.ci_low is not None and (r.ci_low > 0 or r.ci_high < 0)
        style = ("green" if good else "red") if significant else None
        t.add_row(*cells, style=style)
    return t


def format_result(result: CompareResult, fmt: str = "rich") -> Any:
    """``rich`` -> a rich Table; ``plain`` -> 80-column text; ``md``/``latex``/``json``/``csv`` -> a string."""
    writers = {"rich": to_rich, "plain": to_text, "md": to_markdown, "latex": to_latex, "json": to_json,
               "csv": to_csv}
    if fmt not in writers:
        raise BenchError(f"Unknown output format '{fmt}'.", fix=f"Use one of: {', '.join(FORMATS)}.")
    return writers[fmt](result)


def write_result(result: CompareResult, fmt: str = "rich", console: Any = None) -> None:
    """Print ``result`` to stdout (or ``console``'s file); no number is ever cut, whatever the width.

    ``rich`` draws the table only on a terminal wide enough for all of it, and otherwise (narrow
    terminal, pipe, file) prints :func:`to_text` at the console's width (``COLUMNS``, else 80).
    """
    from rich.console import Console

    if fmt not in ("rich", "plain"):
        out = format_result(result, fmt)
        file = console.file if console is not None else sys.stdout
        file.write(out if out.endswith("\n") else out + "\n")
        return
    console = console if console is not None else Console()
    if fmt == "rich" and console.is_terminal:
        table = to_rich(result)
        natural = console.measure(table, options=console.options.update_width(10**6)).maximum
        if natural <= console.width:
            console.print(table)
            return
    console.file.write(to_text(result, console.width))
