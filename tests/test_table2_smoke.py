"""Table 2 (classification on degraded CUB): its graph shares Table 1's training, its layout follows the paper.

These tests build graphs and layouts only; the end-to-end smoke run of Table 2 (through
``run_all.sh``, sharing Table 1's training) is in tests/test_e2e_smoke.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from support.shared import jobs_by_kind

from bench.config import get_profile
from bench.evaluate.classify import ARCHS
from bench.paper import build_target as build_table
from bench.paper import paper_numbers
from bench.paper._cub import TABLE2_TASKS
from bench.paper.table2 import REFERENCE_TITLE, TASK_HEADINGS
from bench.paper.table2 import layout as table2
from bench.report.formats import to_latex, to_markdown


def build_table2(profile, seeds: int = 1, data_root: Path | None = None):
    return build_table(2, profile, seeds=seeds, data_root=data_root)


def paper_table(n: int) -> pd.DataFrame:
    return paper_numbers(f"table{n}")


BUILDERS = {2: table2}

REPO = Path(__file__).resolve().parent.parent
BENCH = [sys.executable, "-m", "bench.cli"]
PROVENANCE = ["git_sha", "git_dirty", "config_hash", "seed", "profile", "subset", "version_torch", "version_timm",
              "device", "classifier", "classifier_init", "classifier_config_hash", "train_config_hash", "degradation",
              "severity", "image_id", "label", "predicted"]
#: Job kinds Table 2 adds on top of Table 1's data, prior and train jobs; the smoke budget covers these.
TABLE2_KINDS = {"prepare_cub", "degrade_cub", "restore_cub", "finetune_classifier", "classify", "render"}
SMOKE_BUDGET_S = 180.0


def test_table2_restores_with_table1_train_jobs() -> None:
    """Same configs, same hashes: a smoke Table 2 after Table 1 trains nothing new."""
    smoke = get_profile("smoke")
    t1 = {j.key for j in jobs_by_kind(build_table(1, smoke))["train"]}
    t2 = jobs_by_kind(build_table(2, smoke))["train"]
    assert len(t2) == 6
    assert {j.key for j in t2} <= t1
    assert sorted((j.config["baseline"], next(iter(j.config["losses"]))) for j in t2) == sorted(
        (b, loss) for b, _ in TABLE2_TASKS.values() for loss in ("l2", "diffloss"))


def test_table2_graph_has_the_paper_rows_and_reference_rows() -> None:
    render = build_table2(get_profile("smoke"), seeds=2)
    rows = pd.DataFrame(list(render.config["rows"].values()))
    assert len(rows) == len(render.inputs) == 2 + 3 * 2 + 3 * 2 * 2 * 2  # clean, degraded, restored x seeds
    assert set(rows["classifier"]) == set(ARCHS)
    restored = rows[rows["row"] == "restored"]
    assert set(zip(restored["task"], restored["baseline"])) == {(t, b) for t, (b, _) in TABLE2_TASKS.items()}
    assert set(restored["loss_set"]) == {"l2", "diffloss"} and set(restored["seed"]) == {0, 1}
    kinds = jobs_by_kind(render)
    assert len(kinds["finetune_classifier"]) == 2  # one classifier per architecture serves every row
    assert len(kinds["degrade_cub"]) == 3 and len(kinds["restore_cub"]) == 3 * 2 * 2


def test_truncated_profile_reads_cub_with_a_per_class_limit() -> None:
    render = build_table2(get_profile("truncated"), data_root=Path("/data"))
    (data,) = jobs_by_kind(render)["prepare_cub"]
    assert data.config["dataset"] == "cub_subset" and data.config["limit_per_class"] == {"train": 4, "test": 2}


def _results(profile: str, subset: str = "full") -> pd.DataFrame:
    render = build_table2(get_profile(profile), data_root=None if profile == "smoke" else Path("/data"))
    rows = []
    for spec in render.config["rows"].values():
        metric = ARCHS[spec["classifier"]]
        value = {"clean": 90.0, "degraded": 40.0}.get(spec["row"], 50.0 + 10.0 * (spec["loss_set"] == "diffloss"))
        rows.append({**spec, metric: value, "dataset": "d", "subset": subset, "git_sha": "abc1234",
                     "git_dirty": False, "device": "cpu:x", "config_hash": "h", "profile": profile})
    return pd.DataFrame(rows)


def test_layout_follows_the_paper_table() -> None:
    paper = paper_table(2)
    layout = BUILDERS[2](_results("smoke"), "smoke", False)
    assert [s.title for s in layout.sections] == [REFERENCE_TITLE, *TASK_HEADINGS.values()]
    for sec, task in zip(layout.sections[1:], TABLE2_TASKS):
        p = paper[paper.task == task].sort_values("row")
        assert [ln.label for ln in sec.lines] == list(p.config)
        for ln, (_, prow) in zip(sec.lines, p.iterrows()):
            assert ln.cells["top1_v"].paper == pytest.approx(prow.top1_v, abs=0)
            assert ln.cells["top1_r"].mean == (60.0 if prow.loss == "diffloss" else 50.0)
    md = to_markdown(layout)
    for col in ("Top-1 V (%)↑", "Top-1 R (%)↑"):
        assert f"{col} (ours) | {col} (paper) | Δ" in md
    assert "SMOKE RUN" in md and "NOT a reproduction" in md and "n/c" in md
    assert "| Clean test images | 90.00 | – | – | 90.00 | – | – |" in md  # reference rows: ours only, not bold
    assert "**60.00**" in md  # the better restored row is bold within its section
    assert "SMOKE RUN" in to_latex(layout)


def test_paper_profile_compares_but_a_subset_never_does() -> None:
    md = to_markdown(table2(_results("paper"), "paper", True))
    assert "n/c" not in md and "+22.41" in md  # dehazing w/o DiffLoss, Top-1 V: 60.00 - 37.59
    cut = to_markdown(table2(_results("paper", subset="truncated:4+2/class"), "paper", True))
    assert "NOT a reproduction" in cut and "+22.41" not in cut


def test_truncated_cub_subset_is_listed_limited_and_degraded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The truncated profile's data path on the real 100-class CUB subset: one image per class and split."""
    from support.shared import shared_path

    from bench.data.base import read_image
    from bench.graph.executor import LocalExecutor
    from bench.graph.job import Job
    from bench.graph.store import RunStore
    from bench.jobs.images import read_image_set_at

    root = shared_path("data", "cub100_subset_227").parent  # the data root, as --data-root would give it
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    data = Job("prepare_cub", {"source": "cub", "dataset": "cub_subset", "limit_per_class": {"train": 1, "test": 1}},
               params={"root": str(root)})
    fog = Job("degrade_cub", {"degradation": "fog", "severity": 3, "seed": 0}, {"data": data})
    store = RunStore(tmp_path / "runs")
    LocalExecutor(log=lambda _: None).run([fog], store)
    clean, info = read_image_set_at(store.dir(data), "prepare_cub")
    assert info["num_classes"] == 100 and info["subset"] == "truncated:1+1/class"
    assert sorted(clean["label"]) == list(range(100))  # balanced: one test image per class
    assert len(pd.read_csv(store.artifact(data, "train_images"))) == 100
    degraded, dinfo = read_image_set_at(store.dir(fog), "degrade_cub")
    assert dinfo["stage"] == "degraded" and dinfo["degradation_params"] == {"amount": 2.5, "decay": 1.7}
    assert list(degraded["image_id"]) == list(clean["image_id"])
    a, b = read_image(Path(clean["file"][0])), read_image(Path(degraded["file"][0]))
    assert a.shape == b.shape and float((a - b).abs().mean()) > 0.02  # fog changed the picture


def test_truncated_cub_keeps_only_the_first_classes(tmp_path: Path) -> None:
    """``--classes K``: the first K classes with their per-class limit; labels stay 0..K-1 and rows say so."""
    from support.shared import shared_path

    from bench.data.cub import cub_subset
    from bench.errors import DataError
    from bench.graph.executor import LocalExecutor
    from bench.graph.job import Job
    from bench.graph.store import RunStore
    from bench.jobs.images import read_image_set_at

    root = shared_path("data", "cub100_subset_227")
    render = build_table2(get_profile("truncated", classes=10), data_root=root.parent)
    (data,) = jobs_by_kind(render)["prepare_cub"]
    assert data.config["classes"] == 10
    assert data.params == {"root": str(root.parent)} and set(data.config["fingerprint"]) == {"train", "test"}
    data = Job("prepare_cub", {**data.config, "limit_per_class": {"train": 2, "test": 1}}, params=data.params)
    store = RunStore(tmp_path / "runs")
    LocalExecutor(log=lambda _: None).run([data], store)
    clean, info = read_image_set_at(store.dir(data), "prepare_cub")
    assert info["num_classes"] == 10 and len(info["class_names"]) == 10
    assert info["subset"] == "truncated:2+1/class,10 classes"
    assert sorted(clean["label"]) == list(range(10))
    train = pd.read_csv(store.artifact(data, "train_images"))
    assert sorted(train["label"]) == sorted(list(range(10)) * 2)
    whole = cub_subset(root, "test")
    assert whole.first_classes(10).class_names == whole.class_names[:10]
    with pytest.raises(DataError, match="at least 2"):
        whole.first_classes(1)


def test_classes_option_needs_real_cub() -> None:
    from bench.errors import BenchError
    from bench.pipeline import RunSpec, build

    with pytest.raises(BenchError, match="--classes cuts real CUB"):
        build(RunSpec(table=2, profile="smoke", classes=5))
