"""The paper path before any job runs: one preflight report, content-based job keys, prior files checked."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import torch
from support.e2e import bench
from support.shared import shared_path

from bench import pipeline
from bench.errors import BenchError
from bench.graph.job import toposort
from bench.prior import create_adm

TINY_ADM = dict(image_size=64, num_channels=32, num_res_blocks=1, channel_mult="1,2", attention_resolutions="16",
                num_head_channels=32, learn_sigma=True, use_scale_shift_norm=True, resblock_updown=True)


def _jobs(graph, kind: str) -> list:
    return [j for j in toposort([graph]) if j.kind == kind]


def _prior_file(path: Path, seed: int = 0, bare: bool = False, **kw) -> Path:
    torch.manual_seed(seed)
    kwargs = {**TINY_ADM, **kw}
    state = create_adm(**kwargs).state_dict()
    torch.save(state if bare else {"adm_kwargs": kwargs, "state_dict": state}, path)
    return path


def test_empty_root_one_report_names_every_data_set_and_the_prior(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    t0 = time.perf_counter()
    out = bench(tmp_path, "run", "--table", "1", "--profile", "paper", "--data-root", str(tmp_path / "empty"),
                "--no-progress", timeout=120)
    seconds = time.perf_counter() - t0
    text = out.stdout + out.stderr
    assert out.returncode == 2, text
    assert seconds < 60
    assert text.count("Error:") == 1 and "Preflight found" in text and "Traceback" not in text
    for name in ("dense_haze", "rain13k", "rain100h", "lol"):
        assert f"data: {name} under" in text, name
    assert "prior" in text and "256x256_diffusion_uncond.pt" in text
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("*/done.json"))  # nothing ran


@pytest.mark.parametrize("flag", ["--dry-run", "--check"])
def test_dry_run_and_check_run_the_preflight(tmp_path: Path, flag: str) -> None:
    (tmp_path / "empty").mkdir()
    out = bench(tmp_path, "run", "--table", "4", "--profile", "paper", "--data-root", str(tmp_path / "empty"), flag,
                timeout=120)
    assert out.returncode == 2 and "dense_haze" in out.stderr and "Preflight found" in out.stderr


def test_smoke_preflight_passes_and_lists_its_checks(tmp_path: Path) -> None:
    out = bench(tmp_path, "run", "--table", "4", "--profile", "smoke", "--check", timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Preflight: all" in out.stderr and "ok  disk:" in out.stderr and "weights: inception_fid" in out.stderr


def _table1_efderain(root: Path, **kw) -> pipeline.Plan:
    return pipeline.build_plan(pipeline.RunSpec(table=1, profile="truncated", data_root=root,
                                                baselines=["efderain"], limit=2, **kw))


def test_two_paths_to_the_same_data_give_the_same_keys(tmp_path: Path) -> None:
    root = shared_path("data")
    link = tmp_path / "link"
    link.symlink_to(root, target_is_directory=True)
    a, b = _table1_efderain(root), _table1_efderain(link)
    assert a.graph.key == b.graph.key
    (data_a,) = [j for j in _jobs(a.graph, "prepare_data") if j.config.get("dataset") == "rain100h"]
    (data_b,) = [j for j in _jobs(b.graph, "prepare_data") if j.config.get("dataset") == "rain100h"]
    assert data_a.params["root"] != data_b.params["root"] and data_a.key == data_b.key


def test_a_changed_image_changes_the_keys(tmp_path: Path) -> None:
    src = shared_path("data", "rain100h_crop")
    root = tmp_path / "root" / "rain100h_crop"
    for sub in ("inputcrop", "cleancrop"):
        (root / sub).mkdir(parents=True)
        for n in (1, 2):
            shutil.copy(src / sub / f"{n}.png", root / sub / f"{n}.png")
    before = _table1_efderain(tmp_path / "root")
    from PIL import Image

    img = Image.open(root / "inputcrop" / "2.png").convert("RGB")
    img.putpixel((0, 0), tuple(255 - c for c in img.getpixel((0, 0))))  # one pixel
    img.save(root / "inputcrop" / "2.png")
    after = _table1_efderain(tmp_path / "root")
    assert before.graph.key != after.graph.key
    keys = lambda p, kind: {j.key for j in _jobs(p.graph, kind)}  # noqa: E731
    assert keys(before, "evaluate").isdisjoint(keys(after, "evaluate"))
    assert keys(before, "train") == keys(after, "train")  # trained on the (unchanged) synthetic stand-in


def test_the_prior_files_sha256_enters_every_key_that_uses_it(tmp_path: Path) -> None:
    a = _prior_file(tmp_path / "a.pt", seed=0)
    b = _prior_file(tmp_path / "b.pt", seed=1)
    (tmp_path / "elsewhere").mkdir()
    a2 = shutil.copy(a, tmp_path / "elsewhere" / "a.pt")

    def trains(prior: Path) -> dict[str, object]:
        plan = pipeline.build_plan(pipeline.RunSpec(table=4, profile="smoke", prior=str(prior)))
        return {j.config["losses"].__repr__(): j for j in _jobs(plan.graph, "train")}

    ta, tb, ta2 = trains(a), trains(b), trains(Path(a2))
    assert {k: j.key for k, j in ta.items()} == {k: j.key for k, j in ta2.items()}  # same content, other path
    assert all(ta[k].key != tb[k].key for k in ta)
    from bench.weights import sha256_of

    assert all(j.config["prior"]["sha256"] == sha256_of(a) for j in ta.values())


@pytest.mark.parametrize("fault", ["missing", "empty", "truncated", "not_state_dict", "pickled_module",
                                   "wrong_architecture", "folder"])
def test_every_prior_file_fault_is_one_sentence_with_a_fix(tmp_path: Path, fault: str) -> None:
    from bench.prior.ref import file_ref

    path = tmp_path / "prior.pt"
    if fault == "empty":
        path.write_bytes(b"")
    elif fault == "truncated":
        _prior_file(tmp_path / "whole.pt")
        path.write_bytes((tmp_path / "whole.pt").read_bytes()[:50_000])
    elif fault == "not_state_dict":
        torch.save([1, 2, 3], path)
    elif fault == "pickled_module":
        torch.save(torch.nn.Linear(2, 2), path)
    elif fault == "wrong_architecture":
        _prior_file(path, bare=True)  # a bare state_dict is read as the 256x256 uncond ADM: it is not one
    elif fault == "folder":
        path.mkdir()
    wanted = {"missing": "does not exist", "empty": "is empty", "truncated": "truncated",
              "not_state_dict": "does not hold a model state_dict", "pickled_module": "pickled Python object",
              "wrong_architecture": "is not the 256x256 unconditional ADM", "folder": "is a folder"}[fault]
    with pytest.raises(BenchError) as info:
        file_ref(path)
    err = info.value
    assert wanted in err.message and err.fix and "weights_only" not in err.message + err.fix
    assert err.message.count(". ") == 0 or fault == "wrong_architecture"  # one sentence
    out = bench(tmp_path, "run", "--table", "4", "--profile", "smoke", "--prior", str(path), "--check", timeout=120)
    assert out.returncode == 2 and wanted in out.stderr and "Traceback" not in out.stderr


def test_random_prior_needs_a_rehearsal() -> None:
    with pytest.raises(BenchError, match="only allowed with --rehearse"):
        pipeline.build_plan(pipeline.RunSpec(table=4, profile="paper", prior="random"))


def test_figure7_gamma0_builds_no_prior() -> None:
    from bench.config import get_profile
    from bench.paper import build_target

    fig = build_target("figure7", get_profile("smoke"))
    trains = {j.label: j for j in _jobs(fig, "train")}
    zero = trains["train:msbdn+diffloss_gamma0/seed0"]
    assert zero.config["losses"] == {"l2": {"weight": 1.0, "norm": "l2"}}
    assert "prior" not in zero.inputs and "prior" not in zero.config
    assert all("prior" in j.inputs for label, j in trains.items() if label != zero.label)


def test_gamma0_loss_is_the_pixel_term_of_diffloss() -> None:
    """What the gamma = 0 job trains with equals DiffLoss at gamma = 0 in value and gradient."""
    from bench.experiment.losses import LOSS_SETS, without_zero_weight_priors
    from bench.losses.composite import build_loss
    from bench.prior.smoke import SMOKE_PRIOR_KWARGS

    torch.manual_seed(0)
    prior = create_adm(**SMOKE_PRIOR_KWARGS).eval()
    full = build_loss(LOSS_SETS["diffloss_gamma0"], {"prior": prior}, seed=0)
    cheap = build_loss(without_zero_weight_priors(LOSS_SETS["diffloss_gamma0"]), seed=0)
    z = torch.rand(2, 3, 32, 32, requires_grad=True)
    x = torch.rand(2, 3, 32, 32)
    a, b = full(z, x)["total"], cheap(z, x)["total"]
    (ga,) = torch.autograd.grad(a, z)
    (gb,) = torch.autograd.grad(b, z)
    assert torch.equal(a, b) and torch.equal(ga, gb)
