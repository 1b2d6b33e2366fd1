"""CLI exit codes and one-sentence messages (no tracebacks) for the common mistakes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.cli import run_cli


def test_help_lists_every_command(capsys, monkeypatch) -> None:
    code, out = run_cli(["--help"], capsys, monkeypatch)
    assert code == 0
    for cmd in ("run", "compare", "ls", "weights", "data"):
        assert cmd in out


def test_unknown_table(capsys, monkeypatch) -> None:
    code, out = run_cli(["run", "--table", "9", "--dry-run"], capsys, monkeypatch)
    assert code == 2
    assert "Error: Unknown table 9." in out and "Traceback" not in out


@pytest.mark.parametrize("args", [[], ["--table", "1", "--all"], ["--table", "1", "--figure", "7"],
                                  ["--table", "1", "--experiment", "x.toml"]])
def test_run_needs_exactly_one_target(args: list[str], capsys, monkeypatch) -> None:
    code, out = run_cli(["run", *args, "--dry-run"], capsys, monkeypatch)
    assert code == 2 and "Give exactly one of --table N, --figure N, --all or --experiment FILE." in out


def test_all_plans_every_table_then_figure_in_one_process(capsys, monkeypatch, tmp_path: Path) -> None:
    code, out = run_cli(["run", "--all", "--dry-run", "--runs-dir", str(tmp_path)], capsys, monkeypatch)
    assert code == 0
    renders = [w for w in out.split() if w.startswith("render:")]
    assert renders == ["render:table1", "render:table2", "render:table3", "render:table4", "render:figure7"]
    assert out.count("job graph") == 5


@pytest.mark.parametrize("command", ["run", "status"])
def test_both_commands_need_exactly_one_target(command: str, capsys, monkeypatch) -> None:
    code, out = run_cli([command, "--table", "4", "--figure", "7"], capsys, monkeypatch)
    assert code == 2 and "Give exactly one of --table N, --figure N, --all or --experiment FILE." in out


def _keys(out: str) -> list[str]:
    return re.findall(r"^\W*([0-9a-f]{16}) ", out, re.M)


def test_status_reports_the_graph_run_built_speed_options_included(capsys, monkeypatch, tmp_path: Path) -> None:
    """bench status takes bench run's graph options (declared once), so a bf16 run's jobs are the ones it shows."""
    runs = ["--runs-dir", str(tmp_path)]
    code, planned = run_cli(["run", "-t", "4", "--precision", "bf16", "--dry-run", *runs], capsys, monkeypatch)
    assert code == 0
    code, shown = run_cli(["status", "-t", "4", "--precision", "bf16", *runs], capsys, monkeypatch)
    assert code == 0
    code, fp32 = run_cli(["status", "-t", "4", *runs], capsys, monkeypatch)
    assert code == 0
    assert len(_keys(planned)) == 9 and _keys(shown) == _keys(planned)
    # precision changes numbers, so the trainings, evaluations and render are other jobs (data and prior are not)
    assert _keys(fp32)[:2] == _keys(planned)[:2] and not set(_keys(fp32)[2:]) & set(_keys(planned)[2:])


def test_unknown_profile_suggests(capsys, monkeypatch) -> None:
    code, out = run_cli(["run", "--table", "1", "--profile", "smok", "--dry-run"], capsys, monkeypatch)
    assert code == 2 and "Did you mean 'smoke'?" in out


def test_unknown_baseline_suggests(capsys, monkeypatch) -> None:
    code, out = run_cli(["run", "--table", "1", "--baseline", "iatt", "--dry-run"], capsys, monkeypatch)
    assert code == 2
    assert "Unknown baseline 'iatt'" in out and "Did you mean 'iat'" in out and "Traceback" not in out


def test_missing_data_directory(capsys, monkeypatch, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    code, out = run_cli(["run", "--table", "1", "--profile", "truncated", "--data-root", str(missing), "--dry-run"],
                        capsys, monkeypatch)
    assert code == 2
    assert f"Data directory {missing} does not exist." in out and "REPRODUCE.md" in out


def test_truncated_profile_without_data_root(capsys, monkeypatch) -> None:
    monkeypatch.delenv("BENCH_DATA", raising=False)
    code, out = run_cli(["run", "--table", "1", "--profile", "truncated", "--dry-run"], capsys, monkeypatch)
    assert code == 2 and "needs real data sets" in out and "--data-root" in out


def test_unwritable_output_directory(capsys, monkeypatch, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, out = run_cli(["run", "--table", "1", "--runs-dir", str(blocker / "runs"), "--no-progress"],
                        capsys, monkeypatch)
    assert code == 2
    assert "is not writable" in out and "--runs-dir" in out and "Traceback" not in out


def test_dry_run_prints_graph_with_statuses(capsys, monkeypatch, tmp_path: Path) -> None:
    code, out = run_cli(["run", "--table", "1", "--dry-run", "--runs-dir", str(tmp_path)], capsys, monkeypatch)
    assert code == 0
    assert "job graph" in out and "pending" in out
    assert "render:table1" in out and "prior:smoke" in out and "zero-shot:gdp_x0/lowlight" in out
    # 3 data + 1 prior + 12 train + 12 eval + 3 GDP zero-shot restorations + 1 render
    assert "0 done, 32 pending, 0 stale" in out


def test_truncated_profile_uses_real_rain100h_and_labels_stand_ins(capsys, monkeypatch, tmp_path: Path) -> None:
    """shared/data has Rain100H test pairs but no Rain13K: training data is a labelled synthetic stand-in."""
    from support.shared import shared_path

    root = shared_path("data")
    code, out = run_cli(["run", "--table", "1", "--profile", "truncated", "--data-root", str(root), "--baseline",
                         "efderain", "--limit", "3", "--dry-run", "--runs-dir", str(tmp_path)], capsys, monkeypatch)
    assert code == 0, out
    assert "data:rain100h" in out and "data:smoke_deraining" in out and "data:rain13k" not in out
    # stand-in train data, real test data, the smoke prior's own data, prior, 2 train, 2 eval, render
    assert "0 done, 9 pending, 0 stale" in out

    from bench.config import get_profile
    from bench.experiment.graph import GraphBuilder

    g = GraphBuilder(get_profile("truncated", limit=3), root)
    train, _ = g.data_job("deraining", "train")
    test, _ = g.data_job("deraining", "test")
    assert train.config["stand_in_for"] == "rain13k" and test.config == {
        "source": "real", "dataset": "rain100h", "limit": 3, "splits": ["test"],
        "fingerprint": test.config["fingerprint"]}
    assert test.params == {"root": str(root)} and len(test.config["fingerprint"]["test"]) == 64


def test_paper_profile_never_substitutes_synthetic_data(tmp_path: Path) -> None:
    from bench.config import get_profile
    from bench.experiment.graph import GraphBuilder

    g = GraphBuilder(get_profile("paper"), tmp_path)
    job, _ = g.data_job("deraining", "train")
    assert job.config["source"] == "real" and "stand_in_for" not in job.config


def test_truncated_profile_keeps_the_smoke_prior_unless_one_is_named(monkeypatch, tmp_path: Path) -> None:
    """REPRODUCE.md, Profiles: finding the official file does not change a truncated run; --prior does."""
    import torch
    from support.shared import shared_path

    from bench import pipeline, weights
    from bench.prior import create_adm

    spec = pipeline.RunSpec(table=1, profile="truncated", data_root=shared_path("data"), baselines=["efderain"])

    def trains(job):
        for j in job.inputs.values():
            yield from trains(j)
        if job.kind == "train" and "diffloss" in job.config["losses"]:
            yield job

    monkeypatch.setattr(weights, "find", lambda name: tmp_path / "256x256_diffusion_uncond.pt")
    (smoke,) = set(trains(pipeline.build(spec)))
    assert "prior" in smoke.inputs and "prior" not in smoke.config
    kwargs = dict(image_size=64, num_channels=32, num_res_blocks=1, channel_mult="1,2", attention_resolutions="16",
                  num_head_channels=32, learn_sigma=True, use_scale_shift_norm=True, resblock_updown=True)
    torch.save({"adm_kwargs": kwargs, "state_dict": create_adm(**kwargs).state_dict()}, tmp_path / "p64.pt")
    plan = pipeline.build_plan(pipeline.RunSpec(**{**spec.__dict__, "prior": str(tmp_path / "p64.pt")}))
    (named,) = set(trains(plan.graph))
    assert "prior" not in named.inputs and named.config["prior"]["kind"] == "file"
    assert named.config["prior"]["adm_kwargs"]["image_size"] == 64 and len(named.config["prior"]["sha256"]) == 64
    assert named.params["prior_path"] == str(tmp_path / "p64.pt")
    assert plan.profile.patch == 64 and named.config["train"]["patch"] == 64  # trains at the prior's size


@pytest.mark.parametrize("case", ["proc", "file_parent", "folder"])
def test_evaluate_out_that_cannot_be_written(case: str, capsys, monkeypatch, tmp_path: Path) -> None:
    """``bench evaluate --out`` under a folder that cannot be made: one sentence + fix, exit 2, nothing written."""
    from PIL import Image

    for side in ("pred", "gt"):
        (tmp_path / side).mkdir()
        Image.new("RGB", (16, 16), (90, 120, 30)).save(tmp_path / side / "1.png")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out, expected = {
        "proc": (Path("/proc/nope/x.csv"), "Cannot write --out /proc/nope/x.csv: its folder /proc/nope cannot be "
                 "created or written"),
        "file_parent": (blocker / "sub" / "x.csv", f"Cannot write --out {blocker / 'sub' / 'x.csv'}: {blocker} is "
                        "a file, not a folder."),
        "folder": (tmp_path / "pred", f"--out {tmp_path / 'pred'} is a folder, not a CSV file name."),
    }[case]
    if case == "proc" and not Path("/proc").is_dir():
        pytest.skip("no /proc on this system")
    before = sorted(tmp_path.rglob("*"))
    code, text = run_cli(["evaluate", "--pred", str(tmp_path / "pred"), "--target", str(tmp_path / "gt"),
                          "--dataset", "lol", "--metrics", "psnr", "--device", "cpu", "--out", str(out)],
                         capsys, monkeypatch)
    assert code == 2, text
    assert f"Error: {expected}" in text and "Fix: Pass" in text and "Traceback" not in text
    assert sorted(tmp_path.rglob("*")) == before and blocker.read_text() == ""  # nothing written
