"""From an :class:`Experiment` to its job graph: data, prior, train, evaluate and a render job over named inputs.

Only configs enter job keys (``bench.graph.job``), so two experiments that share a row (Table 1 and
Table 2, or a paper table and a user's file) share its jobs. The render job's inputs are named by
row (``<n>.<network>.<loss set>.seed<k>.<checkpoint rule>``) and its config holds the same names
with each row's description, so nothing is paired by position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import Profile
from bench.errors import BenchError
from bench.experiment.losses import LOSS_SETS, has_prior_term, without_zero_weight_priors
from bench.experiment.spec import FOLDERS, TASKS, DataRef, Experiment, RowSpec
from bench.graph.job import Job
from bench.prior.ref import PriorRef
from bench.train.loop import TrainConfig


def task_convention(task: str) -> str:
    """The metric convention of a task: its real test set's (``bench ls datasets``), also for its smoke stand-in."""
    from bench.registry import DATASETS

    return str(DATASETS.meta(TASKS[task][1]).get("convention", "rgb"))


@dataclass(frozen=True)
class TrainedRow:
    """One (row, loss set, seed) of an experiment: its train job and its evaluate job per checkpoint rule."""

    row: RowSpec
    index: int
    loss_set: str
    seed: int
    train: Job
    evals: dict[str, Job] = field(default_factory=dict)

    def spec(self, select: str) -> dict[str, Any]:
        """The render job's description of this row (what the layouts select on)."""
        return {"index": self.index, "task": self.row.data.task, "data": self.row.data.title,
                "baseline": self.row.baseline, "label": self.row.name, "loss_set": self.loss_set,
                "seed": self.seed, "select": select}

    def input_name(self, select: str) -> str:
        return f"{self.index:02d}.{self.row.name}.{self.loss_set}.seed{self.seed}.{select}"


class GraphBuilder:
    """Builds (and shares) the jobs of one profile."""

    def __init__(self, profile: Profile, data_root: Path | None = None, prior: PriorRef | None = None,
                 problems: list[BenchError] | None = None, speed: dict[str, Any] | None = None):
        self.profile = profile
        self.data_root = data_root
        #: What could not be read while the graph was built (a missing data set): the preflight reports them all.
        self.problems: list[BenchError] = problems if problems is not None else []
        self.prior = prior if prior is not None else self._default_prior()
        #: Training speed options (bench.train.speed); those that change numbers enter train keys.
        from bench.train.speed import SpeedOptions

        self.speed = SpeedOptions.from_dict(speed)
        self._data: dict[str, Job] = {}
        self._prior: Job | None = None
        self._memo: Any = None

    def _need_root(self) -> Path:
        if self.data_root is None:
            raise BenchError(f"The '{self.profile.name}' profile needs real data sets.",
                             fix="Pass --data-root PATH (or set BENCH_DATA).", doc="Data")
        return self.data_root

    def _default_prior(self) -> PriorRef:
        """The profile's own prior; a file that cannot be used becomes a problem for the preflight to report."""
        from bench.prior.adm import ADM256_UNCOND_KWARGS
        from bench.prior.ref import resolve

        try:
            return resolve(None, self.profile.prior)
        except BenchError as e:
            self.problems.append(e)
            return PriorRef("file", sha256="unavailable", adm_kwargs=dict(ADM256_UNCOND_KWARGS))

    # -- data -----------------------------------------------------------------------------------
    def data_job(self, data: DataRef | str, role: str) -> tuple[Job, str]:
        """(prepare_data job, metric convention) for a row's train or test data."""
        if isinstance(data, str):
            data = DataRef(data)
        if data.task == FOLDERS:
            return self._folder_job(data, role), str(data.convention or "rgb")
        task = data.task
        train_ds, test_ds = TASKS[task]
        convention = task_convention(task)
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
                   "fingerprint": self._fingerprints(name, self._need_root(), splits)}
            params = {"root": str(self._need_root())}
        job = self._data.setdefault(f"{name}:{cfg.get('stand_in_for', '')}",
                                    Job("prepare_data", cfg, label=f"data:{name}", params=params))
        return job, convention

    def _folder_job(self, data: DataRef, role: str) -> Job:
        """A user's own folder of pairs (one folder per split), keyed by its content."""
        folder = Path(data.train if role == "train" else data.test)  # type: ignore[arg-type]
        cfg = {"source": "real", "dataset": FOLDERS, "limit": self.profile.limit if not self.profile.embedded_data
               else None, "splits": [role], "fingerprint": self._fingerprints(FOLDERS, folder, [role])}
        return self._data.setdefault(f"folders:{folder}:{role}", Job(
            "prepare_data", cfg, label=f"data:{folder.name}/{role}", params={"root": str(folder)}))

    def _fingerprints(self, dataset: str, root: Path, splits: list[str]) -> dict[str, str]:
        """Per split, the content fingerprint of the pairs a job will read (``unavailable`` if unreadable).

        The root path never enters a key: two paths to the same files give the same jobs, and any
        changed file gives new ones (``bench.data.fingerprint``).
        """
        from bench.data.fingerprint import DigestMemo, paired_set_fingerprint
        from bench.jobs.data import load_split

        if self._memo is None:
            self._memo = DigestMemo()
        out = {}
        limit = self.profile.limit if not self.profile.embedded_data else None
        for split in splits:
            try:
                pairs = load_split({"dataset": dataset, "root": str(root), "limit": limit}, split)
                out[split] = paired_set_fingerprint(pairs, Path(root), self._memo)
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
        if self.profile.is_reproduction or self.profile.name == "rehearsal":
            return False
        from bench.errors import MissingFileError
        from bench.registry import DATASETS

        try:
            DATASETS.get(dataset)(self._need_root(), split=role, limit=1, strict_counts=False)
        except MissingFileError:
            return True
        return False

    # -- prior, train, evaluate -------------------------------------------------------------------
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

    def _baseline_config(self, row: RowSpec) -> dict[str, Any]:
        cfg: dict[str, Any] = {"baseline": row.baseline, "baseline_kwargs": dict(row.baseline_kwargs)}
        from bench.experiment.user_baselines import is_import_path, source_sha256

        if is_import_path(row.baseline):  # a user's class: its source enters the key, so edits give new jobs
            cfg["baseline_source_sha256"] = source_sha256(row.baseline)
        return cfg

    def train_job(self, row: RowSpec, loss_set: str, seed: int, losses: dict[str, Any] | None = None,
                  snapshot_every: int = 0, declared: dict[str, Any] | None = None) -> Job:
        p = self.profile
        terms = losses if losses is not None else (declared or {}).get(loss_set) or LOSS_SETS[loss_set]
        terms = without_zero_weight_priors(terms)
        tcfg = TrainConfig(steps=p.steps_for(row.baseline), batch=p.batch, patch=p.patch, lr=p.lr, seed=seed,
                           ckpt_every=p.ckpt_every, log_every=p.log_every, snapshot_every=snapshot_every)
        data, _ = self.data_job(row.data, "train")
        inputs = {"data": data}
        cfg: dict[str, Any] = {"profile": p.name, **self._baseline_config(row), "losses": terms,
                               "train": tcfg.as_dict()}
        cfg["speed"] = self.speed.hashed()
        params: dict[str, Any] = {"speed": self.speed.as_dict()}
        if has_prior_term(terms):
            self.attach_prior(cfg, inputs, params)
        return Job("train", cfg, inputs, label=f"train:{row.name}+{loss_set}/seed{seed}", params=params)

    def attach_prior(self, cfg: dict[str, Any], inputs: dict[str, Job], params: dict[str, Any]) -> None:
        """The job reads the prior: the smoke prior job as an input, or a file by content (path in params)."""
        prior = self.prior_job()
        if prior is not None:
            inputs["prior"] = prior
        else:
            cfg["prior"] = self.prior.identity()
            params["prior_path"] = self.prior.path_param()

    def eval_job(self, row: RowSpec, loss_set: str, seed: int, train: Job, metrics: tuple[str, ...],
                 select: str = "last") -> Job:
        data, convention = self.data_job(row.data, "test")
        cfg = {"profile": self.profile.name, **self._baseline_config(row), "split": "test", "metrics": list(metrics),
               "convention": convention, "seed": seed, "select": select}
        suffix = "" if select == "last" else f"/{select}"
        return Job("evaluate", cfg, {"model": train, "data": data},
                   label=f"eval:{row.name}+{loss_set}/seed{seed}{suffix}")


def zero_shot_job(g: GraphBuilder, data: DataRef, restorer: str, metrics: tuple[str, ...], seed: int = 0) -> Job:
    """A zero-shot restorer (GDP) on ``g``'s prior over a task's test images, scored like an evaluate job."""
    test, convention = g.data_job(data, "test")
    cfg: dict[str, Any] = {"profile": g.profile.name, "restorer": restorer, "task": data.task,
                           "steps": g.profile.zero_shot_steps, "settings": {}, "seed": seed, "metrics": list(metrics),
                           "convention": convention}
    inputs: dict[str, Job] = {"data": test}
    params: dict[str, Any] = {}
    g.attach_prior(cfg, inputs, params)
    return Job("zero_shot", cfg, inputs, label=f"zero-shot:{restorer}/{data.task}", params=params)


def train_and_evaluate(exp: Experiment, g: GraphBuilder, seeds: int) -> list[TrainedRow]:
    """Every (row, loss set, seed) of ``exp``: its train job and an evaluate job per checkpoint rule."""
    out = []
    for i, row in enumerate(exp.rows):
        for loss_set in row.loss_sets:
            for seed in range(seeds):
                steps = g.profile.steps_for(row.baseline)
                every = max(1, steps // exp.snapshots) if exp.snapshots else 0
                train = g.train_job(row, loss_set, seed, snapshot_every=every, declared=exp.loss_sets)
                evals = {s: g.eval_job(row, loss_set, seed, train, exp.metrics, s) for s in exp.select}
                out.append(TrainedRow(row, i, loss_set, seed, train, evals))
    return out


def render_job(exp: Experiment, profile: Profile, rows: dict[str, tuple[dict[str, Any], Job]],
               **extra: Any) -> Job:
    """The job that renders ``exp``'s layout from ``rows`` ({input name: (row description, job)})."""
    cfg: dict[str, Any] = {"experiment": exp.name, "title": exp.title, "layout": exp.layout,
                           "metrics": list(exp.metrics), "profile": profile.name,
                           "is_reproduction": profile.is_reproduction,
                           "rows": {name: spec for name, (spec, _) in rows.items()}, **extra}
    if exp.source:
        cfg["source"] = exp.source
    return Job("render", cfg, {name: job for name, (_, job) in rows.items()}, label=f"render:{exp.name}")


def build_experiment(exp: Experiment, g: GraphBuilder, seeds: int | None = None) -> tuple[Job, list[TrainedRow]]:
    """The render job of an experiment whose rows are all train + evaluate (every paper table but Table 2)."""
    trained = train_and_evaluate(exp, g, seeds or exp.seeds)
    rows = {t.input_name(s): (t.spec(s), job) for t in trained for s, job in t.evals.items()}
    return render_job(exp, g.profile, rows), trained
