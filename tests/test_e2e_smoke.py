"""End to end on the embedded smoke profile, through the real CLI in subprocesses.

One Table 1 run is shared by the tests of this module (minutes on 2 CPU cores); a second run
must do no work, and a run killed with SIGKILL mid-training must resume and end with the same
summary as an uninterrupted run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = [sys.executable, "-m", "bench.cli"]
PROVENANCE = ["git_sha", "git_dirty", "config_hash", "seed", "profile", "subset", "version_torch", "version_pyiqa",
              "version_torch_fidelity", "version_timm", "device", "wall_time_s"]


def _env(base: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(BENCH_CACHE=str(base / "cache"), BENCH_RUNS=str(base / "runs"), BENCH_TABLES=str(base / "tables"),
               COLUMNS="200", PYTHONUNBUFFERED="1")
    return env


def _bench(base: Path, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BENCH, *args], cwd=REPO, env=_env(base), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def table1(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], float]:
    base = tmp_path_factory.mktemp("smoke")
    t0 = time.perf_counter()
    proc = _bench(base, "run", "--table", "1", "--profile", "smoke", "--no-progress")
    return base, proc, time.perf_counter() - t0


def test_table1_smoke_writes_labelled_tables(table1) -> None:
    base, proc, seconds = table1
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert seconds < 15 * 60
    md = (base / "tables" / "table1.md").read_text()
    tex = (base / "tables" / "table1.tex").read_text()
    assert "SMOKE RUN" in md and "NOT a reproduction" in md
    assert "SMOKE RUN" in tex
    for section in ("Dehazing (Dense-Haze)", "Deraining (Rain100H)", "Low-light enhancement (LOL)"):
        assert f"## {section}" in md
    for method in ("FSDGN [67]", "TaylorFormer* [45]", "RCD-Net [55]", "EfDeRain* [22]", "DeepLPF [41]", "IAT* [11]",
                   "AOD-Net [33]", "DRBN [63]"):
        assert method in md
    assert "profile: smoke" in md and "git: " in md
    assert r"\toprule" in tex and r"\bottomrule" in tex


def test_every_result_row_carries_provenance(table1) -> None:
    base, proc, _ = table1
    assert proc.returncode == 0
    per_image = list((base / "runs").glob("*/per_image.csv"))
    summaries = list((base / "runs").glob("*/summary.csv"))
    assert len(per_image) == len(summaries) == 12
    for f in per_image + summaries:
        frame = pd.read_csv(f)
        missing = [c for c in PROVENANCE if c not in frame.columns]
        assert not missing, f"{f}: {missing}"
        assert frame["profile"].eq("smoke").all() and frame["subset"].eq("full").all()
        assert frame["git_sha"].astype(str).str.len().ge(7).all()
    rows = pd.read_csv(per_image[0])
    assert {"psnr", "ssim", "psnr_convention", "ssim_convention", "image_id"} <= set(rows.columns)


def test_second_run_does_no_work(table1) -> None:
    base, proc, _ = table1
    assert proc.returncode == 0
    before = (base / "tables" / "table1.md").read_text()
    t0 = time.perf_counter()
    again = _bench(base, "run", "--table", "1", "--profile", "smoke", "--no-progress")
    seconds = time.perf_counter() - t0
    assert again.returncode == 0, again.stderr
    assert "[job]" not in again.stdout + again.stderr
    assert seconds < 30
    assert (base / "tables" / "table1.md").read_text() == before


def _summary(base: Path) -> pd.DataFrame:
    frames = [pd.read_csv(f) for f in sorted((base / "runs").glob("*/summary.csv"))]
    out = pd.concat(frames).drop(columns=["wall_time_s"])  # the one column that must differ
    return out.sort_values(["config_hash", "metric"]).reset_index(drop=True)


def test_sigkill_during_training_resumes_to_identical_summary(table1, tmp_path: Path) -> None:
    base, proc, _ = table1
    assert proc.returncode == 0
    args = ["run", "--table", "1", "--profile", "smoke", "--baseline", "iat", "--no-progress"]
    # Reuse the finished data and prior jobs; the training and evaluation of IAT start from scratch.
    shutil.copytree(base / "cache", tmp_path / "cache")
    (tmp_path / "runs").mkdir()
    for d in (base / "runs").iterdir():
        kind = (d / "job.json").read_text()
        if '"kind": "prepare_data"' in kind or '"kind": "train_prior"' in kind:
            shutil.copytree(d, tmp_path / "runs" / d.name)
    p = subprocess.Popen([*BENCH, *args], cwd=REPO, env=_env(tmp_path), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and not list((tmp_path / "runs").glob("*/checkpoint.pt")):
        time.sleep(0.2)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert list((tmp_path / "runs").glob("*/checkpoint.pt")), "training never wrote a checkpoint"
    resumed = _bench(tmp_path, *args)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming from step" in resumed.stdout + resumed.stderr
    ours = _summary(tmp_path)
    reference = _summary(base)
    reference = reference[reference["baseline"] == "iat"].reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, reference)
