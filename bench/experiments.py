"""What each paper table trains and evaluates, turned into a job graph.

A table is a list of :class:`Row` (baseline x loss set x task x seed); ``build_graph``
makes the data, prior, train, evaluate and render jobs for a profile. Only configs
enter job hashes, so two tables sharing a row share its jobs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.config import Profile
from bench.errors import BenchError, UnknownNameError
from bench.graph.job import Job
from bench.prior.ref import PriorRef
from bench.train.loop import TrainConfig

_DIFFLOSS: dict[str, Any] = {"weight": 1.0, "lam": 0.01, "gamma": 0.001, "norm": "l2", "mode": "paper",
                              "pixel": "l2"}

#: Loss sets by name. The pixel term uses the paper's Euclidean norm (``||x - z||_2``, Eq. 16)
#: in both the baseline and the DiffLoss rows, so the two differ by the DiffLoss term alone.
LOSS_SETS: dict[str, dict[str, dict[str, Any]]] = {
    "l2": {"l2": {"weight": 1.0, "norm": "l2"}},
    "diffloss": {"diffloss": {**_DIFFLOSS, "variant": "eps"}},
    # Table 4 ablation: (a) constrain x0-hat only, (b) x_{t-1}-hat only; (c) is "diffloss".
    "diffloss_x0": {"diffloss": {**_DIFFLOSS, "variant": "x0"}},
    "diffloss_xprev": {"diffloss": {**_DIFFLOSS, "variant": "xprev"}},
    # Table 3: every row shares the L1 base term and adds its own (weights stated in REPRODUCE.md).
    "l1": {"l1": {"weight": 1.0}},
    "l1+perceptual": {"l1": {"weight": 1.0}, "perceptual": {"weight": 0.04}},
    "l1+adversarial": {"l1": {"weight": 1.0}, "adversarial": {"weight": 1e-3}},
    "l1+diffloss": {"l1": {"weight": 1.0}, "diffloss": {**_DIFFLOSS, "variant": "eps", "pixel": None}},
}

def without_zero_weight_priors(losses: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The same loss with every DiffLoss term of gamma = 0 replaced by its pixel term alone.

    gamma = 0 multiplies the prior's terms by zero: the network's gradient is the pixel term's, so
    running the 552M-parameter prior forward and backward would only cost hours (Figure 7's first
    point). The job then needs no prior at all, and its key says exactly what it computes.
    """
    out = {}
    for name, cfg in losses.items():
        if name == "diffloss" and float(cfg.get("gamma", 1.0)) == 0.0:
            if cfg.get("pixel", "l2") is None:
                continue  # nothing left of this term
            out["l2"] = {"weight": cfg.get("weight", 1.0), "norm": cfg.get("norm", "l2")}
        else:
            out[name] = cfg
    if not out:
        raise BenchError("A loss set with DiffLoss at gamma = 0 and no pixel term trains nothing.",
                         fix="Give gamma > 0 or keep the pixel term.")
    return out


#: Figure 7: gamma sweep with lambda = 0 on MSBDN (gamma = 0 is the pixel loss alone).
FIGURE7_GAMMAS = (0.0, 5e-4, 1e-3, 5e-3, 1e-2)
for _g in FIGURE7_GAMMAS:
    LOSS_SETS[f"diffloss_gamma{_g:g}"] = {"diffloss": {**_DIFFLOSS, "variant": "eps", "lam": 0.0, "gamma": _g}}

#: Per task: (train data set, test data set, metric convention) for real data.
TASKS: dict[str, tuple[str, str, str]] = {
    "dehazing": ("dense_haze", "dense_haze", "rgb"),
    "deraining": ("rain13k", "rain100h", "y"),
    "lowlight": ("lol", "lol", "rgb"),
}

TASK_TITLES = {"dehazing": "Dehazing (Dense-Haze)", "deraining": "Deraining (Rain100H)",
               "lowlight": "Low-light enhancement (LOL)"}


@dataclass(frozen=True)
class Row:
    """One trained row of a table."""

    task: str
    baseline: str
    loss_set: str
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


TABLE1_BASELINES = {"dehazing": ("fsdgn", "mb_taylorformer"), "deraining": ("rcdnet", "efderain"),
                    "lowlight": ("deeplpf", "iat")}


TABLE_ROWS = {
    1: [(task, b, ls) for task, bs in TABLE1_BASELINES.items() for b in bs for ls in ("l2", "diffloss")],
    3: [("dehazing", "msbdn", ls) for ls in ("l1", "l1+perceptual", "l1+adversarial", "l1+diffloss")],
    4: [("dehazing", "griddehazenet", ls) for ls in ("diffloss_x0", "diffloss_xprev", "diffloss")],
    "figure7": [("dehazing", "msbdn", f"diffloss_gamma{g:g}") for g in FIGURE7_GAMMAS],
}


def table_rows(table: int | str, seeds: int = 1) -> list[Row]:
    if table not in TABLE_ROWS:
        raise UnknownNameError(f"Table {table} is not available.", fix="Choose a table from 1 to 4.")
    return [Row(task, b, ls, s) for task, b, ls in TABLE_ROWS[table] for s in range(seeds)]


class GraphBuilder:
    """Builds (and shares) the jobs of one profile."""

    def __init__(self, profile: Profile, data_root: Path | None = None, prior: PriorRef | None = None,
                 problems: list[BenchError] | None = None):
        self.profile = profile
        self.data_root = data_root
        if not profile.embedded_data and data_root is None:
            raise BenchError(f"The '{profile.name}' profile needs real data sets.",
                             fix="Pass --data-root PATH (or set BENCH_DATA).", doc="Data")
        #: What could not be read while the graph was built (a missing data set): the preflight reports them all.
        self.problems: list[BenchError] = problems if problems is not None else []
        self.prior = prior if prior is not None else self._default_prior()
        self._data: dict[str, Job] = {}
        self._prior: Job | None = None
        self._memo: Any = None

    def _default_prior(self) -> PriorRef:
        """The profile's own prior; a file that cannot be used becomes a problem for the preflight to report."""
        from bench.prior.adm import ADM256_UNCOND_KWARGS
        from bench.prior.ref import resolve

        try:
            return resolve(None, self.profile.prior)
        except BenchError as e:
            self.problems.append(e)
            return PriorRef("file", sha256="unavailable", adm_kwargs=dict(ADM256_UNCOND_KWARGS))

    def data_job(self, task: str, role: str) -> tuple[Job, str]:
        """(prepare_data job, metric convention) for ``task``'s train or test data."""
        train_ds, test_ds, convention = TASKS[task]
        real = train_ds if role == "train" else test_ds
        if self.profile.embedded_data or self._stand_in(real, role):
            name = f"smoke_{task}"
            cfg: dict[str, Any] = {"source": "smoke", "task": task, "dataset": name, "seed": 0}
            if not self.profile.embedded_data:  # truncated profile, real set absent: say what it replaces
                cfg["stand_in_for"] = real
            params: dict[str, Any] = {}
        else:
            name = real
            splits = ["train", "test"] if train_ds == test_ds else [role]
            cfg = {"source": "real", "dataset": name, "limit": self.profile.limit, "splits": splits,
                   "fingerprint": self._fingerprints(name, splits)}
            params = {"root": str(self.data_root)}
        job = self._data.setdefault(f"{name}:{cfg.get('stand_in_for', '')}",
                                    Job("prepare_data", cfg, label=f"data:{name}", params=params))
        return job, convention

    def _fingerprints(self, dataset: str, splits: list[str]) -> dict[str, str]:
        """Per split, the content fingerprint of the pairs a job will read (``unavailable`` if unreadable).

        The root path never enters a key: two paths to the same files give the same jobs, and any
        changed file gives new ones (``bench.data.fingerprint``).
        """
        from bench.data.fingerprint import DigestMemo, paired_set_fingerprint
        from bench.jobs.data import load_split

        if self._memo is None:
            self._memo = DigestMemo()
        out = {}
        for split in splits:
            try:
                pairs = load_split({"dataset": dataset, "root": str(self.data_root), "limit": self.profile.limit},
                                   split)
                out[split] = paired_set_fingerprint(pairs, Path(self.data_root), self._memo)  # type: ignore[arg-type]
            except BenchError as e:
                self.problems.append(e)
                out[split] = "unavailable"
        self._memo.save()
        return out

    def _stand_in(self, dataset: str, role: str) -> bool:
        """Truncated profile only: is ``dataset`` absent under the data root, so synthetic data stands in?

        The paper profile never substitutes (a missing set is an error there); the truncated profile
        runs what real data it has and labels every row made from synthetic data as such.
        """
        if self.profile.is_reproduction:
            return False
        from bench.errors import MissingFileError
        from bench.registry import DATASETS

        try:
            DATASETS.get(dataset)(Path(self.data_root), split=role, limit=1, strict_counts=False)  # type: ignore[arg-type]
        except MissingFileError:
            return True
        return False

    def prior_job(self) -> Job | None:
        if self.prior.kind != "smoke":
            return None
        if self._prior is None:
            from bench.prior.smoke import SMOKE_PRIOR_KWARGS

            # Always the embedded smoke images, whatever the profile's data: one smoke prior per cache.
            data = self._data.setdefault("smoke_dehazing:", Job(
                "prepare_data", {"source": "smoke", "task": "dehazing", "dataset": "smoke_dehazing", "seed": 0},
                label="data:smoke_dehazing"))
            self._prior = Job("train_prior", {"adm_kwargs": dict(SMOKE_PRIOR_KWARGS),
                                              "steps": self.profile.prior_steps, "seed": 0},
                              inputs={"data": data}, label="prior:smoke")
        return self._prior

    def train_job(self, row: Row, losses: dict[str, Any] | None = None, snapshot_every: int = 0) -> Job:
        p = self.profile
        losses = without_zero_weight_priors(losses if losses is not None else LOSS_SETS[row.loss_set])
        tcfg = TrainConfig(steps=p.steps_for(row.baseline), batch=p.batch, patch=p.patch, lr=p.lr, seed=row.seed,
                           ckpt_every=p.ckpt_every, log_every=p.log_every, snapshot_every=snapshot_every)
        data, _ = self.data_job(row.task, "train")
        inputs = {"data": data}
        cfg: dict[str, Any] = {"profile": p.name, "baseline": row.baseline, "baseline_kwargs": {},
                               "losses": losses, "train": tcfg.as_dict()}
        params: dict[str, Any] = {}
        if any(name == "diffloss" for name in losses):
            prior = self.prior_job()
            if prior is not None:
                inputs["prior"] = prior
            else:
                cfg["prior"] = self.prior.identity()
                params["prior_path"] = self.prior.path_param()
        return Job("train", cfg, inputs, label=f"train:{row.baseline}+{row.loss_set}/seed{row.seed}", params=params)

    def eval_job(self, row: Row, train: Job, metrics: tuple[str, ...], select: str = "last") -> Job:
        data, convention = self.data_job(row.task, "test")
        cfg = {"profile": self.profile.name, "baseline": row.baseline, "baseline_kwargs": {}, "split": "test",
               "metrics": list(metrics), "convention": convention, "seed": row.seed, "select": select}
        suffix = "" if select == "last" else f"/{select}"
        return Job("evaluate", cfg, {"model": train, "data": data},
                   label=f"eval:{row.baseline}+{row.loss_set}/seed{row.seed}{suffix}")


@dataclass(frozen=True)
class TableOptions:
    """Per table: what is measured and how a checkpoint is chosen."""

    metrics: tuple[str, ...]
    select: tuple[str, ...] = ("last",)  # "best:psnr" = the paper's "best in the first K iterations"
    snapshots: int = 0  # evaluation points along training, for "best:*"


TABLE_OPTIONS: dict[int | str, TableOptions] = {
    1: TableOptions(("psnr", "ssim", "lpips", "fid")),
    3: TableOptions(("lpips", "psnr", "ssim"), select=("best:psnr", "last"), snapshots=4),
    4: TableOptions(("fid", "psnr", "ssim")),
    "figure7": TableOptions(("psnr", "ssim"), select=("best:psnr", "last"), snapshots=4),
}


def build_table(table: int | str, profile: Profile, seeds: int = 1, data_root: Path | None = None,
                prior: PriorRef | None = None, problems: list[BenchError] | None = None) -> Job:
    """The render job of ``table`` (or ``"figure7"``); everything it needs hangs below it.

    ``problems`` collects what could not be read while building (a missing data set), for the preflight.
    """
    if table == 2:  # classification on degraded CUB: its own graph, sharing Table 1's train jobs
        from bench.experiments_table2 import build_table2

        return build_table2(profile, seeds, data_root, prior, problems)
    g = GraphBuilder(profile, data_root, prior, problems)
    rows = table_rows(table, seeds)
    opts = TABLE_OPTIONS[table]
    inputs, specs, trained = {}, [], []
    for row in rows:
        every = max(1, profile.steps_for(row.baseline) // opts.snapshots) if opts.snapshots else 0
        train = g.train_job(row, snapshot_every=every)
        evals = {}
        for select in opts.select:
            evals[select] = inputs[f"row{len(specs):03d}"] = g.eval_job(row, train, opts.metrics, select)
            specs.append({**row.as_dict(), "select": select})
        trained.append((row, train, evals))
    cfg: dict[str, Any] = {"table": table, "profile": profile.name, "rows": specs,
                           "is_reproduction": profile.is_reproduction}
    if table == "figure7":
        from bench.experiments_table2 import figure7_has_top1, figure7_top1_jobs

        cfg["top1"] = figure7_has_top1(profile, data_root)  # False: the figure says CUB was not found
        if cfg["top1"]:
            for spec, job in figure7_top1_jobs(profile, data_root, trained, g.problems):
                inputs[f"row{len(specs):03d}"] = job
                specs.append(spec)
    return Job("render", cfg, inputs, label=f"render:table{table}" if isinstance(table, int) else f"render:{table}")
