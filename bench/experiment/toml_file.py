"""``bench run --experiment FILE.toml``: a user's own experiment, read into the :class:`Experiment` a paper table is.

The format (every key but ``title`` and the rows' ``baseline`` is optional)::

    title = "TinyNet with and without DiffLoss"
    metrics = ["psnr", "ssim", "lpips"]          # default: psnr, ssim
    seeds = 1                                     # --seeds overrides

    [[row]]
    baseline = "mynets:TinyNet"                   # registered name, or package.module:Class on PYTHONPATH
    baseline_kwargs = { width = 16 }              # constructor arguments
    task = "dehazing"                             # ours: dehazing | deraining | lowlight (the profile's data)
    loss_sets = ["l2", "diffloss"]                # ours (bench ls losses) or declared below

    [[row]]
    baseline = "iat"
    label = "IAT, own photos"
    data = { train = "my/train", test = "my/test", convention = "rgb" }   # degraded/ + clear/ folders
    loss_sets = ["l2", "mine"]

    [loss_set.mine]                               # a declared loss set: terms with their settings
    l2 = { weight = 1.0 }
    diffloss = { variant = "eps", gamma = 0.002, lam = 0.01 }

Relative folders are read from the file's own folder. Every mistake is one sentence naming the
key and the line it is on.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.experiment.spec import FOLDERS, TASKS, DataRef, Experiment, RowSpec

DOC = "Your own network and data"
TOP_KEYS = {"title", "metrics", "seeds", "row", "loss_set", "select", "snapshots"}
ROW_KEYS = {"baseline", "baseline_kwargs", "task", "data", "loss_sets", "label"}
DATA_KEYS = {"train", "test", "convention"}


class _Lines:
    """Where each key of the file is, so an error can name its line (tomllib reports none for valid TOML)."""

    def __init__(self, text: str):
        self.headers: list[tuple[str, int]] = []  # ("row", line) for each [[row]], ("loss_set.x", line), ...
        self.keys: list[tuple[int, str, int]] = []  # (header index or -1, key, line)
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            m = re.fullmatch(r"\[\[?\s*([^\]]+?)\s*\]\]?", line)
            if m:
                self.headers.append((m.group(1), n))
                continue
            m = re.match(r"([A-Za-z0-9_\-\"'.]+)\s*=", line)
            if m:
                self.keys.append((len(self.headers) - 1, m.group(1).strip("\"'"), n))

    def of(self, key: str, row: int | None = None, table: str | None = None) -> int | None:
        """The line of ``key`` at the top level, in the ``row``-th ``[[row]]`` or in ``[table]``."""
        if row is None and table is None:
            return next((n for h, k, n in self.keys if h == -1 and k == key), None)
        if row is not None:
            idx = [i for i, (name, _) in enumerate(self.headers) if name == "row"]
            if row >= len(idx):
                return None
            header = idx[row]
        else:
            header = next((i for i, (name, _) in enumerate(self.headers) if name == table), -2)
        found = next((n for h, k, n in self.keys if h == header and k == key), None)
        return found if found is not None else (self.headers[header][1] if header >= 0 else None)


def _error(path: Path, line: int | None, key: str, what: str, fix: str) -> BenchError:
    where = f"{path}, line {line}" if line else str(path)
    return BenchError(f"{where}: '{key}' {what}.", fix=fix, doc=DOC)


def _folder(base: Path, value: Any, path: Path, line: int | None, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise _error(path, line, key, "must be a folder path (a string)", f'For example: {key.split(".")[-1]} = '
                     '"data/train".')
    folder = (base / value).expanduser().resolve()
    if not folder.is_dir():
        raise _error(path, line, key, f"names {folder}, which is not a folder",
                     "Give a folder holding degraded/ and clear/ (or input/ and target/) with equal file names.")
    return str(folder)


def _strings(value: Any, path: Path, line: int | None, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise _error(path, line, key, "must be a non-empty list of names", f'For example: {key} = ["l2", "diffloss"].')
    return tuple(value)


def load_experiment(path: Path) -> Experiment:
    """Read and check ``path``; every problem is one sentence naming the key and its line."""
    from bench.experiment.losses import LOSS_SETS, check_loss_set

    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise BenchError(f"Experiment file {path} {what}.", fix="Pass the path of your .toml file.", doc=DOC)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise BenchError(f"Experiment file {path} cannot be read ({e.strerror or e}).",
                         fix="Fix its permissions, or pass a copy you can read.", doc=DOC) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise BenchError(f"{path} is not valid TOML ({e}).", fix="Fix the syntax at the line it names.",
                         doc=DOC) from None
    lines = _Lines(text)
    for key in raw:
        if key not in TOP_KEYS:
            import difflib

            close = difflib.get_close_matches(key, sorted(TOP_KEYS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise _error(path, lines.of(key), key, f"is not a key of an experiment file.{hint} It", "Keys: "
                         + ", ".join(sorted(TOP_KEYS)) + ".")
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip():
        raise _error(path, lines.of("title"), "title", "is missing or empty", 'Add: title = "What this compares".')
    declared: dict[str, dict[str, dict[str, Any]]] = {}
    for name, terms in (raw.get("loss_set") or {}).items():
        where = lines.of(name, table=f"loss_set.{name}") or lines.of("loss_set")
        if name in LOSS_SETS:
            raise _error(path, where, f"loss_set.{name}", "redefines one of our loss sets",
                         "Give your loss set another name.")
        try:
            declared[name] = check_loss_set(terms)
        except BenchError as e:
            raise _error(path, where, f"loss_set.{name}", e.message.rstrip(".").lower()[:1] + e.message.rstrip(".")[1:],
                         e.fix or "See bench ls losses.") from None
    rows_raw = raw.get("row")
    if not isinstance(rows_raw, list) or not rows_raw:
        raise _error(path, None, "row", "is missing: an experiment needs at least one [[row]]",
                     'Add a [[row]] table with baseline = "...", task = "..." and loss_sets = [...].')
    rows = [_row(path, i, r, lines, declared) for i, r in enumerate(rows_raw)]
    metrics = _strings(raw.get("metrics", ["psnr", "ssim"]), path, lines.of("metrics"), "metrics")
    from bench.registry import METRICS

    for m in metrics:
        if m not in METRICS:
            raise _error(path, lines.of("metrics"), "metrics", f"names an unknown metric '{m}'",
                         f"Choose among {', '.join(METRICS.names())}.")
    seeds = raw.get("seeds", 1)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise _error(path, lines.of("seeds"), "seeds", "must be a whole number of at least 1",
                     "For example: seeds = 3.")
    return Experiment(name=path.stem, title=title.strip(), rows=tuple(rows), metrics=metrics, seeds=seeds,
                      loss_sets=declared, layout="experiment", source=str(path.resolve()))


def _row(path: Path, i: int, r: Any, lines: _Lines, declared: dict[str, Any]) -> RowSpec:
    from bench.experiment.losses import LOSS_SETS
    from bench.experiment.user_baselines import check_baseline

    if not isinstance(r, dict):
        raise _error(path, lines.of("row"), f"row[{i + 1}]", "must be a table", "Write it as [[row]] with keys.")
    for key in r:
        if key not in ROW_KEYS:
            raise _error(path, lines.of(key, row=i), f"row[{i + 1}].{key}", "is not a row key",
                         "Row keys: " + ", ".join(sorted(ROW_KEYS)) + ".")
    line = lambda key: lines.of(key, row=i)  # noqa: E731
    baseline = r.get("baseline")
    if not isinstance(baseline, str) or not baseline:
        raise _error(path, line("baseline"), f"row[{i + 1}].baseline", "is missing",
                     'Name a registered baseline (bench ls baselines) or your class as "package.module:Class".')
    kwargs = r.get("baseline_kwargs", {})
    if not isinstance(kwargs, dict):
        raise _error(path, line("baseline_kwargs"), f"row[{i + 1}].baseline_kwargs", "must be a table",
                     "For example: baseline_kwargs = { width = 16 }.")
    try:
        check_baseline(baseline, kwargs)
    except BenchError as e:
        raise _error(path, line("baseline"), f"row[{i + 1}].baseline", f"cannot be used: {e.message.rstrip('.')}",
                     e.fix or "") from None
    has_task, has_data = "task" in r, "data" in r
    if has_task == has_data:
        raise _error(path, line("task" if has_task else "baseline"), f"row[{i + 1}]",
                     "needs exactly one of 'task' (ours) and 'data' (your folders)",
                     'Give task = "dehazing" (or deraining, lowlight), or data = { train = "...", test = "..." }.')
    if has_task:
        task = r["task"]
        if task not in TASKS:
            import difflib

            close = difflib.get_close_matches(str(task), list(TASKS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise _error(path, line("task"), f"row[{i + 1}].task", f"names an unknown task '{task}'{hint}",
                         f"Choose one of {', '.join(TASKS)}, or give your own data = {{ train, test }}.")
        data = DataRef(task)
    else:
        d = r["data"]
        if not isinstance(d, dict):
            raise _error(path, line("data"), f"row[{i + 1}].data", "must be a table",
                         'For example: data = { train = "my/train", test = "my/test", convention = "rgb" }.')
        for key in d:
            if key not in DATA_KEYS:
                raise _error(path, line("data"), f"row[{i + 1}].data.{key}", "is not a data key",
                             "Data keys: train, test, convention.")
        for key in ("train", "test"):
            if key not in d:
                raise _error(path, line("data"), f"row[{i + 1}].data.{key}", "is missing",
                             f'Add {key} = "folder with degraded/ and clear/".')
        from bench.evaluate.metrics import CONVENTIONS

        conv = d.get("convention", "rgb")
        if conv not in CONVENTIONS:
            raise _error(path, line("data"), f"row[{i + 1}].data.convention", f"names an unknown convention '{conv}'",
                         f"Choose one of {', '.join(CONVENTIONS)}.")
        base = path.resolve().parent
        data = DataRef(FOLDERS, _folder(base, d["train"], path, line("data"), f"row[{i + 1}].data.train"),
                       _folder(base, d["test"], path, line("data"), f"row[{i + 1}].data.test"), conv)
    loss_sets = _strings(r.get("loss_sets", ["l2", "diffloss"]), path, line("loss_sets"), f"row[{i + 1}].loss_sets")
    for ls in loss_sets:
        if ls not in LOSS_SETS and ls not in declared:
            import difflib

            close = difflib.get_close_matches(ls, [*LOSS_SETS, *declared], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise _error(path, line("loss_sets"), f"row[{i + 1}].loss_sets", f"names an unknown loss set '{ls}'{hint}",
                         "Use one of ours (bench ls losses) or declare it as [loss_set.NAME].")
    label = r.get("label", "")
    if not isinstance(label, str):
        raise _error(path, line("label"), f"row[{i + 1}].label", "must be a string", 'For example: label = "TinyNet".')
    return RowSpec(baseline, data, loss_sets, dict(kwargs), label)
