"""``bench data synth``: published layouts, counts and sizes; ``bench data verify`` and the loaders accept the root."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from support.cli import run_cli as support_run_cli

from bench import cli
from bench.data import synth
from bench.data.verify import MARKER, probe, verify_dataset
from bench.errors import DataError
from bench.registry import DATASETS

SETS = ("dense_haze", "rain13k", "rain100h", "lol", "cub")


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    return support_run_cli(args, capsys, monkeypatch, columns="300")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All five sets at --count 2, written once through the command line."""
    out = tmp_path_factory.mktemp("synth")
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(sys, "argv", ["bench", "data", "synth", "--root", str(out), "--count", "2"])
        with pytest.raises(SystemExit) as e:
            cli.main()
            raise SystemExit(0)
        assert e.value.code in (0, None)
    finally:
        mp.undo()
    return out


def test_published_counts_are_the_defaults() -> None:
    assert synth.PUBLISHED == {"dense_haze": {"all": 55}, "rain13k": {"train": 13_712}, "rain100h": {"test": 100},
                               "lol": {"train": 485, "test": 15},
                               "cub": {"train": 5_994, "test": 5_794, "classes": 200}}
    assert [(name, n) for name, n, _, _ in synth.RAIN13K_PARTS] == [
        ("Rain14000", 11_200), ("Rain1800", 1_800), ("Rain800", 700), ("Rain12", 12)]
    sizes = synth.rain13k_sizes()
    assert len(sizes) == 13_712 and min(min(s) for s in sizes) >= 256
    assert sizes[11_200:13_000].count((481, 321)) == 1_200 and sizes[11_200:13_000].count((321, 481)) == 600
    rain100h = synth.rain100h_sizes()
    assert len(rain100h) == 100 and rain100h.count((321, 481)) == 34 and rain100h.count((481, 321)) == 66
    assert synth.dense_haze_ids() == [f"{i:02d}" for i in range(1, 56)]
    lol = synth.lol_ids()
    assert len(lol["train"]) == 485 and lol["test"] == [1, 22, 23, 55, 79, 111, 146, 179, 493, 547, 665, 669, 748,
                                                        778, 780]
    assert not set(lol["train"]) & set(lol["test"])
    plan = synth.cub_plan()
    assert len(plan) == 200 and sum(p[0] for p in plan) == 5_994 and sum(p[1] for p in plan) == 5_794


def test_counts_with_count_n() -> None:
    assert synth.dense_haze_ids(2) == ["01", "51"]  # train, test, val in turn
    assert synth.dense_haze_ids(4) == ["01", "02", "46", "51"]
    assert len(synth.rain13k_sizes(500)) == 500 and set(synth.rain13k_sizes(500)) <= set(synth.rain13k_sizes())
    assert {s: len(v) for s, v in synth.lol_ids(20).items()} == {"train": 20, "test": 15}  # capped at eval15's 15
    assert synth.cub_plan(5)[0] == (3, 2) and len(synth.cub_plan(5)) == 200
    with pytest.raises(DataError, match="images per class and must be at least 2"):
        synth.cub_plan(1)
    with pytest.raises(DataError, match="--count must be positive"):
        synth.rain13k_sizes(0)


@pytest.mark.parametrize("name", SETS)
def test_verify_accepts_the_synthetic_root(root: Path, name: str, capsys, monkeypatch) -> None:
    code, out = run_cli(["data", "verify", name, "--root", str(root)], capsys, monkeypatch)
    assert code == 0, out
    assert ": OK, found" in out and "SYNTHETIC data, counts as recorded in" in out
    rep = verify_dataset(name, root)
    assert rep.ok and rep.synthetic is not None
    assert json.loads(Path(rep.synthetic).read_text())["counts"] == (rep.found if name != "dense_haze" else
                                                                      {"all": 2})


def test_loaders_load_it_at_the_published_sizes(root: Path) -> None:
    sizes = {"dense_haze": {(1600, 1200)}, "rain13k": set(synth.rain13k_sizes()), "rain100h": {(481, 321), (321, 481)},
             "lol": {(600, 400)}}
    assert len(DATASETS.get("dense_haze")(root, split="val")) == 0  # --count 2: one train and one test pair
    for name, splits in (("dense_haze", ("train", "test")), ("rain13k", ("train",)), ("rain100h", ("test",)),
                         ("lol", ("train", "test"))):
        for split in splits:
            ps = DATASETS.get(name)(root, split=split)
            assert len(ps) >= 1 and ps.subset == "synthetic" and "synthetic" in ps.info
            for p in ps.pairs:
                assert probe(p.degraded).size == probe(p.clear).size
                assert probe(p.degraded).size in sizes[name]
            if len(ps) > 1:
                assert DATASETS.get(name)(root, split=split, limit=1).subset == "synthetic,truncated:1"
    assert len(DATASETS.get("rain13k")(root)) == 2 and len(DATASETS.get("lol")(root, split="test")) == 2
    assert {p.id for p in DATASETS.get("lol")(root, split="test").pairs} == {"1", "22"}
    cub = DATASETS.get("cub")(root, split="train")
    assert len(cub) == 200 and cub.num_classes == 200 and cub.subset == "synthetic"
    assert len(DATASETS.get("cub")(root, split="test")) == 200
    assert all(max(probe(p).size) == 500 for p in cub.paths[:20])  # type: ignore[arg-type]
    rain = (root / "train" / "Rain13K" / "input").iterdir()
    assert {f.suffix for f in rain} == {".jpg"}


def test_verify_still_finds_problems_in_a_synthetic_root(tmp_path: Path) -> None:
    synth.synth_rain100h(tmp_path, count=3)
    folder = tmp_path / "test" / "Rain100H"
    assert verify_dataset("rain100h", tmp_path).ok
    (folder / "target" / "2.png").unlink()
    rep = verify_dataset("rain100h", tmp_path)
    assert rep.unpaired == [str(folder / "input" / "2.png")]
    (folder / "input" / "2.png").unlink()
    rep = verify_dataset("rain100h", tmp_path)
    assert [p.kind for p in rep.problems] == ["count"]
    assert "2 degraded images found where its SYNTHETIC.json records 3" in rep.summary()
    with pytest.raises(DataError, match=r"its SYNTHETIC\.json records 3"):
        DATASETS.get("rain100h")(tmp_path)
    (folder / MARKER).write_text("{not json")
    rep = verify_dataset("rain100h", tmp_path)
    assert rep.problems[0].kind == "layout" and "is not readable JSON" in rep.summary()
    (folder / MARKER).unlink()  # without the marker the release's 100 count again
    assert "2 degraded images found where the release has 100" in verify_dataset("rain100h", tmp_path).summary()


def test_same_seed_same_bytes_and_no_writing_over_real_data(tmp_path: Path) -> None:
    def digest(root: Path) -> str:
        files = sorted((root / "LOLdataset").rglob("*.png"))
        return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()

    synth.synth_lol(tmp_path / "a", count=1, seed=3)
    synth.synth_lol(tmp_path / "b", count=1, seed=3)
    synth.synth_lol(tmp_path / "c", count=1, seed=4)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")
    synth.synth_lol(tmp_path / "a", count=2, seed=3)  # a synthetic set is replaced whole
    assert verify_dataset("lol", tmp_path / "a").found == {"train": 2, "test": 2}
    real = tmp_path / "real" / "LOLdataset"
    real.mkdir(parents=True)
    with pytest.raises(DataError, match="already exists and is not synthetic data"):
        synth.synth_lol(tmp_path / "real", count=1)


def test_unknown_set_is_one_sentence_with_a_suggestion(tmp_path: Path, capsys, monkeypatch) -> None:
    code, out = run_cli(["data", "synth", "--root", str(tmp_path), "--sets", "rain13k,rain100", "--count", "1"],
                        capsys, monkeypatch)
    assert code == 2
    assert "Unknown synthetic data set 'rain100'. Did you mean 'rain100h'" in out and "Traceback" not in out
    assert not any(tmp_path.iterdir())  # nothing written before the names are checked


def test_an_interrupted_synth_is_refused_and_then_replaced(tmp_path: Path) -> None:
    folder = synth._prepare(tmp_path, "rain100h", seed=0)
    (folder / "input").mkdir()
    assert json.loads((folder / MARKER).read_text())["complete"] is False
    synth.save(synth.scene(481, 321, synth._rng(0, "t", 0)), folder / "input" / "1.png")  # killed after one image
    (folder / "target").mkdir()
    rep = verify_dataset("rain100h", tmp_path)
    assert rep.problems[0].kind == "layout" and "did not finish" in rep.summary()
    with pytest.raises(DataError, match="did not finish"):
        DATASETS.get("rain100h")(tmp_path)
    synth.synth_rain100h(tmp_path, count=1)
    assert verify_dataset("rain100h", tmp_path).ok
