"""A regular (non-editable) install works where users are: a wheel in a fresh venv runs a smoke table and writes
its runs and tables under the current directory, with the paper's numbers and the weights manifest inside."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pandas as pd
from support.e2e import REPO, bench_env, copy_jobs


def test_declared_ranges_and_exact_pins() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert meta["requires-python"] == ">=3.11"
    deps = {d.split(">")[0].split("=")[0].strip(): d for d in meta["dependencies"]}
    assert deps["torch"] == "torch>=2.13" and deps["torchvision"] == "torchvision>=0.28"
    pins = (REPO / "constraints.txt").read_text()
    assert "torch==2.14.1" in pins and "torchvision==0.29.1" in pins
    assert "-c constraints.txt" in (REPO / "scripts" / "setup.sh").read_text()


def test_wheel_in_a_fresh_venv_runs_under_the_current_directory(smoke_all, tmp_path: Path) -> None:
    base, proc, _ = smoke_all
    assert proc.returncode == 0
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(dist), str(REPO)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = dist.glob("diffloss_bench-*.whl")
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies (torch & co.) come from this environment, without its editable install of bench
    (Path(site) / "deps-from-dev-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    inst = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr[-2000:]
    work = tmp_path / "work"
    copy_jobs(base / "runs", work / "runs", {"prepare_data", "train_prior"})
    env = bench_env(work)
    for var in ("BENCH_RUNS", "BENCH_TABLES", "PYTHONPATH"):
        env.pop(var, None)
    where = subprocess.run([str(py), "-c", "import bench, pathlib; print(pathlib.Path(bench.__file__).resolve())"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(site) and str(REPO) not in where, where
    run = subprocess.run([str(py), "-m", "bench.cli", "run", "--table", "1", "--profile", "smoke", "--baseline",
                          "iat", "--no-progress"], cwd=work, env=env, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    md = (work / "tables" / "table1.md").read_text()
    assert "SMOKE RUN" in md and "| IAT* [11] |" in md and "13.14" in md  # the paper's numbers came along
    results = pd.read_csv(work / "tables" / "table1_results.csv")
    assert results["git_sha"].astype(str).str.startswith("release-").all()  # no checkout: the release says so
    assert len(list((work / "runs").glob("*/done.json"))) > 5 and not (Path(site) / "runs").exists()
