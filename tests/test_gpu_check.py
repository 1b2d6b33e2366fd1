"""benchmarks/gpu_check.py: every configuration row is planned, measured or skipped with a reason, and the
speed path imports nothing the GPU machine lacks (pyiqa, torch-fidelity and submitit are not there)."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ABSENT_ON_GPU = ("pyiqa", "torch_fidelity", "submitit")
#: A prelude that makes importing any of ABSENT_ON_GPU fail, as it would on the GPU machine.
BLOCKER = f"""
import sys
class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {ABSENT_ON_GPU!r}:
            raise ImportError(f"{{name}} is not installed on the GPU machine")
        return None
sys.meta_path.insert(0, _Absent())
sys.path.insert(0, {str(REPO)!r})
"""


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod
    spec.loader.exec_module(mod)
    return mod


gc = _gpu_check()


def _blocked_python(code: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + code], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout, env=_env())


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def test_the_speed_path_imports_none_of_the_packages_the_gpu_machine_lacks() -> None:
    res = _blocked_python(
        "import bench.train.speed, bench.losses.diffloss, bench.losses.pixel, bench.prior, baselines, bench.costs\n"
        "from bench import build_baseline\n"
        "from bench.registry import BASELINES\n"
        "[build_baseline(n) for n in BASELINES.names()]\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {ABSENT_ON_GPU!r}))", timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1] == "[]"


def test_the_blocker_does_block() -> None:
    """Guards the test above: were the blocker inert, an import of pyiqa would succeed here."""
    res = _blocked_python("import pyiqa", timeout=60)
    assert res.returncode != 0 and "not installed on the GPU machine" in res.stderr


def test_the_plan_has_every_configuration_once_headline_first() -> None:
    names = ["deeplpf", "efderain", "fsdgn", "griddehazenet", "iat", "mb_taylorformer", "msbdn", "rcdnet"]
    rows = gc.plan(names)
    keys = [r.key for r in rows]
    expected = {(b, "l2", c, "False") for b in names for c in gc.CONFIGS}
    expected |= {(b, "l2+diffloss", c, str(ck)) for b in names for c in gc.CONFIGS for ck in (False, True)}
    assert len(keys) == len(set(keys)) == len(expected) == 96
    assert set(keys) == expected
    assert [r.order for r in rows] == list(range(1, 97))
    first = rows[: 2 * len(names)]  # the paper-step target: bf16, DiffLoss and L2, every baseline
    assert {(r.loss, r.config, r.prior_checkpointing) for r in first} == {("l2+diffloss", "bf16-cl", False),
                                                                          ("l2", "bf16-cl", False)}
    assert all(gc.CONFIGS[r.config].get("compile") for r in rows[-16:])


def test_step_tflop_at_the_paper_shapes_is_bench_costs() -> None:
    from bench.costs import NETWORK_STEP_TFLOP, PRIOR_TFLOP_PER_FORWARD

    tflop, source = gc.step_tflop("rcdnet", True, gc.FULL, {})
    assert source == "bench.costs"
    assert tflop == pytest.approx(NETWORK_STEP_TFLOP["rcdnet"] + 3 * 4 * PRIOR_TFLOP_PER_FORWARD, rel=1e-12)
    assert gc.step_tflop("rcdnet", False, gc.FULL, {})[0] == NETWORK_STEP_TFLOP["rcdnet"]


def test_resume_keeps_measured_rows_and_marks_the_rest_pending(tmp_path: Path) -> None:
    common = {"batch": 1, "patch": 32, "prior": "p", "device": "cpu", "torch": "t"}
    rows = gc.plan(["iat", "fsdgn"])
    rows[3].status, rows[3].reason, rows[3].values = "ok", "", {"ms_per_step": "12.50"}
    rows[4].status, rows[4].reason = "failed", "RuntimeError: boom"
    path = tmp_path / "gpu_cpu.csv"
    gc.write_rows(path, rows, common)
    again = gc.plan(["iat", "fsdgn"])
    assert gc.resume(path, again, common) == 1  # only measured rows are taken over; a failure runs again
    assert again[3].status == "ok" and again[3].values["ms_per_step"] == "12.50"
    assert all(r.status == "pending" and r.reason == gc.PENDING for i, r in enumerate(again) if i != 3)
    assert gc.resume(path, gc.plan(["iat", "fsdgn"]), {**common, "torch": "other"}) == 0  # other torch: rerun


def test_smoke_mode_on_cpu_writes_every_row_with_a_result_or_a_reason(tmp_path: Path) -> None:
    """The script's entry point in --smoke mode, in a subprocess where pyiqa/torch-fidelity/submitit cannot import."""
    res = _blocked_python(
        "import runpy\n"
        "sys.argv = ['gpu_check.py', '--smoke', '--device', 'cpu', '--baseline', 'iat', '--no-diffloss-speed',"
        f" '--results', {str(tmp_path)!r}]\n"
        "try:\n"
        "    runpy.run_path('benchmarks/gpu_check.py', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {ABSENT_ON_GPU!r}))", timeout=400)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1] == "[]"
    with (tmp_path / "gpu_cpu_smoke.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == gc.COLUMNS
        rows = list(reader)

    planned = {r.key for r in gc.plan(["iat"])}
    assert {tuple(r[k] for k in gc.KEY) for r in rows} == planned and len(rows) == len(planned) == 12
    for r in rows:
        assert r["status"] in ("ok", "skipped", "failed"), r  # a finished run leaves nothing pending
        assert r["device"] == "cpu" and r["batch"] == "1" and r["patch"] == "32"
        assert json.loads(r["speed_options"])["prior_checkpointing"] == (r["prior_checkpointing"] == "True")
        if r["status"] != "ok":
            assert r["reason"].strip(), r
            continue
        ms, tflop = float(r["ms_per_step"]), float(r["step_tflop"])
        assert 0 < float(r["ms_min"]) <= ms and int(r["steps_timed"]) == 2
        assert float(r["peak_memory_mib"]) > 0 and r["peak_memory_kind"] == "process_peak_rss"
        assert math.isclose(float(r["achieved_tflops"]), tflop / (ms / 1000), rel_tol=2e-3)
    by = {tuple(r[k] for k in gc.KEY): r for r in rows}
    for config in ("fp32", "paper"):  # float32 rows run on any CPU
        assert by["iat", "l2", config, "False"]["status"] == "ok"
        for ckpt in ("False", "True"):
            assert by["iat", "l2+diffloss", config, ckpt]["status"] == "ok"
        # DiffLoss adds the prior's three passes to the step's FLOPs
        assert float(by["iat", "l2+diffloss", config, "False"]["step_tflop"]) > float(
            by["iat", "l2", config, "False"]["step_tflop"])
    compile_rows = [r for r in rows if r["config"] == "bf16-compile"]
    assert len(compile_rows) == 3 and all(r["status"] == "skipped" and "--smoke" in r["reason"] for r in compile_rows)
