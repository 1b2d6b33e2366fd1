"""``bench restore``: a trained network applied to a folder of images of any size, through the one restore routine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import bench
from bench.data.base import read_image
from bench.graph.job import Job
from bench.graph.store import RunStore
from bench.restore import restore_tensor


def run_cli(args: list[str], capsys, monkeypatch) -> tuple[int, str]:
    from bench import cli

    monkeypatch.setattr("sys.argv", ["bench", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as info:
        cli.main()
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out + out.err


def _image(path: Path, h: int, w: int, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(path)


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = bench.build_baseline("fsdgn")  # size_multiple 16: 401 x 599 must be padded and cropped back
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    return path


def test_awkward_size_comes_back_at_its_size_and_equals_the_library(tmp_path: Path, weights: Path, capsys,
                                                                   monkeypatch) -> None:
    _image(tmp_path / "in" / "odd.png", 401, 599)
    code, out = run_cli(["restore", "--weights", str(weights), "--baseline", "fsdgn", "--input", str(tmp_path / "in"),
                         "--out", str(tmp_path / "out"), "--device", "cpu"], capsys, monkeypatch)
    assert code == 0, out
    assert "restored 1 image(s)" in out
    with Image.open(tmp_path / "out" / "odd.png") as im:
        assert im.size == (599, 401)
    model = bench.build_baseline("fsdgn")
    model.load_state_dict(torch.load(weights, weights_only=True))
    want = restore_tensor(model.eval(), read_image(tmp_path / "in" / "odd.png")[None])
    got = read_image(tmp_path / "out" / "odd.png")[None]
    assert float((got - want.clamp(0, 1)).abs().max()) <= 0.5 / 255 + 1e-6  # the PNG's 8-bit rounding only


def test_a_train_job_key_restores_with_its_own_network(tmp_path: Path, weights: Path, capsys, monkeypatch) -> None:
    store = RunStore(tmp_path / "runs")
    job = Job("train", {"baseline": "fsdgn", "baseline_kwargs": {}, "losses": {"l2": {}}}, label="train:fsdgn+l2")
    store.write_spec(job)
    (store.dir(job) / "model.pt").write_bytes(weights.read_bytes())
    store.mark_done(job, {"steps": 1}, 0.1)
    _image(tmp_path / "in" / "a.jpg", 64, 80)
    code, out = run_cli(["restore", "--run", job.key[:8], "--runs-dir", str(store.root), "--input",
                         str(tmp_path / "in"), "--out", str(tmp_path / "out")], capsys, monkeypatch)
    assert code == 0, out
    assert job.key in out and (tmp_path / "out" / "a.png").is_file()


@pytest.mark.parametrize("case", ["both", "no_baseline", "wrong_network", "out_not_empty", "no_images", "no_run"])
def test_mistakes_are_one_sentence_and_write_nothing(case: str, tmp_path: Path, weights: Path, capsys,
                                                    monkeypatch) -> None:
    _image(tmp_path / "in" / "a.png", 40, 40)
    (tmp_path / "empty").mkdir()
    out_dir = tmp_path / "out"
    args = {"both": ["--run", "abc", "--weights", str(weights), "--baseline", "fsdgn"],
            "no_baseline": ["--weights", str(weights)],
            "wrong_network": ["--weights", str(weights), "--baseline", "iat"],
            "out_not_empty": ["--weights", str(weights), "--baseline", "fsdgn"],
            "no_images": ["--weights", str(weights), "--baseline", "fsdgn"],
            "no_run": ["--run", "0123456789abcdef", "--runs-dir", str(tmp_path / "runs")]}[case]
    if case == "out_not_empty":
        out_dir.mkdir()
        (out_dir / "keep.txt").write_text("mine")
    source = tmp_path / ("empty" if case == "no_images" else "in")
    code, text = run_cli(["restore", *args, "--input", str(source), "--out", str(out_dir)], capsys, monkeypatch)
    expected = {"both": "Give exactly one of --run KEY and --weights FILE.", "no_baseline": "needs --baseline",
                "wrong_network": "is not iat's state_dict", "out_not_empty": "is not an empty folder",
                "no_images": "holds no images", "no_run": "No single job"}[case]
    assert code == 2 and expected in text and "Traceback" not in text
    if case == "out_not_empty":
        assert [p.name for p in out_dir.iterdir()] == ["keep.txt"]
    elif case != "no_images":
        assert not out_dir.exists() or not any(out_dir.iterdir())
