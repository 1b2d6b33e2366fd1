"""``verify_dataset``: the full report behind ``bench data verify`` (counts, unpaired, unreadable, sizes, channels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.shared import shared_path

from bench.data.verify import VerifyReport, verify_dataset
from bench.errors import UnknownNameError


def png(path: Path, h: int = 6, w: int = 8, value: int = 0, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    shape = (h, w) if mode == "L" else (h, w, 3)
    Image.fromarray(rng.integers(0, 255, shape).astype(np.uint8)).save(path)
    return path


def rain_tree(root: Path, n: int = 4) -> Path:
    for k in range(1, n + 1):
        png(root / "input" / f"{k}.png", value=k)
        png(root / "target" / f"{k}.png", value=50 + k)
    return root


def test_real_rain100h_sample_verifies_clean() -> None:
    root = shared_path("data", "rain100h_crop")
    rep = verify_dataset("rain100h", root, deep=False)
    assert rep.ok, rep.details()
    assert rep.found == {"test": 100} and rep.expected == {"test": 100} and rep.checked == 200
    assert rep.summary() == f"Rain100H test under {root}: OK, found test 100/100 (200 file(s) checked)."


def test_clean_synthetic_set_with_conversion_notes(tmp_path: Path) -> None:
    rain_tree(tmp_path)
    png(tmp_path / "input" / "5.png", mode="L")
    png(tmp_path / "target" / "5.png", mode="L", value=9)
    rep = verify_dataset("rain100h", tmp_path, strict_counts=False)
    assert rep.ok and rep.found == {"test": 5} and rep.checked == 10
    assert rep.converted == {"grayscale replicated to RGB": 2}
    assert "2 file(s) grayscale replicated to RGB" in rep.summary()


def test_every_problem_kind_is_reported_with_its_files(tmp_path: Path) -> None:
    rain_tree(tmp_path, 6)
    png(tmp_path / "input" / "7.png")  # unpaired
    (tmp_path / "target" / "2.png").write_bytes(b"\x89PNG broken")  # unreadable
    png(tmp_path / "target" / "3.png", h=7)  # size mismatch
    Image.new("1", (8, 6)).save(tmp_path / "input" / "4.png")  # unsupported mode
    rep = verify_dataset("rain100h", tmp_path)
    assert not rep.ok
    assert rep.unpaired == [str(tmp_path / "input" / "7.png")]
    assert rep.unreadable == [str(tmp_path / "target" / "2.png")]
    assert rep.size_mismatches == [str(tmp_path / "input" / "3.png"), str(tmp_path / "target" / "3.png")]
    assert rep.channel_problems == [str(tmp_path / "input" / "4.png")]
    assert rep.found == {"test": 7} and rep.expected == {"test": 100}
    kinds = [p.kind for p in rep.problems]
    assert sorted(kinds) == ["channels", "count", "size", "unpaired", "unreadable"]
    assert rep.summary() == (f"Rain100H test: degraded image {tmp_path / 'input' / '7.png'} has no clear partner "
                             "(1 file(s) affected, and 4 more problem(s)).")
    assert any(line.startswith("size: pair '3': degraded 8x6 but clear 8x7 [2]") for line in rep.details())
    assert rep.as_dict()["ok"] is False


def test_truncated_file_passes_headers_but_not_a_deep_check(tmp_path: Path) -> None:
    rain_tree(tmp_path, 2)
    big = tmp_path / "input" / "1.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3)).astype(np.uint8)).save(big)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "target" / "1.png")
    png(tmp_path / "input" / "2.png", 64, 64)
    png(tmp_path / "target" / "2.png", 64, 64)
    big.write_bytes(big.read_bytes()[:200])
    assert verify_dataset("rain100h", tmp_path, deep=False, strict_counts=False).ok
    rep = verify_dataset("rain100h", tmp_path, strict_counts=False)
    assert rep.unreadable == [str(big)]
    assert rep.summary() == f"Rain100H test: {big} cannot be decoded (1 file(s) affected)."


def test_missing_root_is_a_failed_report_not_a_traceback(tmp_path: Path) -> None:
    rep = verify_dataset("lol", tmp_path / "absent")
    assert not rep.ok and [p.kind for p in rep.problems] == ["layout"]
    assert rep.summary().startswith(f"lol: The LOL data set folder {tmp_path / 'absent'} does not exist; expected "
                                    "our485/{low,high}/")


def test_unknown_dataset_suggests_a_name(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'rain100h'"):
        verify_dataset("rain100", tmp_path)


def test_dense_haze_verifies_all_55(tmp_path: Path) -> None:
    for n in range(1, 56):
        if n != 30:
            png(tmp_path / f"{n:02d}_hazy.png", value=n)
        png(tmp_path / f"{n:02d}_GT.png", value=n + 100)
    rep = verify_dataset("dense_haze", tmp_path, deep=False)
    assert rep.found == {"all": 54} and rep.expected == {"all": 55}
    assert rep.summary() == f"Dense-Haze all: clear image {tmp_path / '30_GT.png'} has no degraded partner " \
                            "(1 file(s) affected, and 1 more problem(s))."
    assert [p.files for p in rep.problems if p.kind == "count"] == [["30"]]


def test_lol_verifies_both_splits(tmp_path: Path) -> None:
    for split, n in (("our485", 485), ("eval15", 15)):
        for k in range(n):
            png(tmp_path / split / "low" / f"{k}.png", 2, 2, value=k)
            png(tmp_path / split / "high" / f"{k}.png", 2, 2, value=k + 1)
    rep = verify_dataset("lol", tmp_path, deep=False)
    assert rep.ok and rep.found == {"train": 485, "test": 15} and rep.checked == 1000


def test_cub_subset_verify_and_count_problems(tmp_path: Path) -> None:
    lines = {"images.txt": [], "image_class_labels.txt": [], "train_test_split.txt": [], "classes.txt": []}
    for k in range(1, 5):
        rel = f"c{(k + 1) // 2}/{k}.jpg"
        png(tmp_path / "images" / rel)
        Image.open(tmp_path / "images" / rel).save(tmp_path / "images" / rel, format="JPEG")
        lines["images.txt"].append(f"{k} {rel}")
        lines["image_class_labels.txt"].append(f"{k} {(k + 1) // 2}")
        lines["train_test_split.txt"].append(f"{k} {k % 2}")
    lines["classes.txt"] = ["1 c1", "2 c2"]
    for f, ls in lines.items():
        (tmp_path / f).write_text("\n".join(ls) + "\n")
    rep = verify_dataset("cub_subset", tmp_path)
    assert rep.ok and rep.found == {"train": 2, "test": 2, "classes": 2} and rep.checked == 4
    full = verify_dataset("cub", tmp_path)
    assert not full.ok and [p.kind for p in full.problems] == ["count", "count", "count"]
    assert full.summary() == ("CUB-200-2011: the train split has 2 images where the full release has 5,994 "
                              "(5992 file(s) affected, and 2 more problem(s)).")
    (tmp_path / "images" / "c2" / "4.jpg").unlink()
    assert verify_dataset("cub_subset", tmp_path).unreadable == [str(tmp_path / "images" / "c2" / "4.jpg")]


def test_smoke_sets_fall_back_to_their_loader(tmp_path: Path) -> None:
    for split in ("train", "test"):
        png(tmp_path / split / "degraded" / "a.png")
        png(tmp_path / split / "clear" / "a.png", value=3)
    rep = verify_dataset("smoke_dehazing", tmp_path)
    assert rep.ok and rep.found == {"train": 1, "test": 1}
    png(tmp_path / "test" / "clear" / "a.png", h=3)
    assert verify_dataset("smoke_dehazing", tmp_path).size_mismatches


def test_report_merge_and_raise(tmp_path: Path) -> None:
    a, b = VerifyReport("x", tmp_path), VerifyReport("x", tmp_path)
    a.found["train"] = 3
    b.add("unreadable", ["f.png"], "f.png cannot be decoded")
    a.merge(b)
    assert not a.ok and a.found == {"train": 3}
    from bench.errors import DataError

    with pytest.raises(DataError, match=r"^x: f\.png cannot be decoded \(1 file\(s\) affected\)\. Fix: Replace"):
        a.raise_if_bad()


def test_cli_exit_code_follows_the_report(tmp_path: Path) -> None:
    typer_testing = pytest.importorskip("typer.testing")
    from bench.cli import app

    rain_tree(tmp_path / "good", 100)
    runner = typer_testing.CliRunner()
    ok = runner.invoke(app, ["data", "verify", "rain100h", "--root", str(tmp_path / "good")])
    assert ok.exit_code == 0, ok.output
    (tmp_path / "good" / "target" / "9.png").unlink()
    bad = runner.invoke(app, ["data", "verify", "rain100h", "--root", str(tmp_path / "good")])
    assert bad.exit_code != 0 and "has no clear partner" in bad.output
