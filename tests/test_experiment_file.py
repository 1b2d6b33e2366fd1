"""Experiments a user declares: the TOML file, its errors (key and line), and a full run with a network and data
that live outside the repository."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from support.e2e import bench, copy_jobs, job_kind_of, running_lines

from bench.errors import BenchError
from bench.experiment.toml_file import load_experiment

TINYNET = '''
import torch
from torch import nn


class TinyNet(nn.Module):
    """A residual 3-layer CNN: the user's own network, outside the repository."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.body(x)).clamp(0, 1)
'''

#: The issue's example, as written.
ISSUE_FILE = '''title = "TinyNet with and without DiffLoss"
[[row]]
baseline = "mynets:TinyNet"
task = "dehazing"
loss_sets = ["l2", "diffloss"]
'''


def _write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


@pytest.fixture
def mynets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pkg = tmp_path / "userland"
    pkg.mkdir()
    (pkg / "mynets.py").write_text(TINYNET)
    monkeypatch.syspath_prepend(str(pkg))
    return pkg


def _pairs(folder: Path, n: int, size: tuple[int, int], seed: int) -> None:
    """Paired folders of the user's own: smooth images, degraded by a haze-like veil."""
    rng = np.random.default_rng(seed)
    for sub in ("degraded", "clear"):
        (folder / sub).mkdir(parents=True)
    for i in range(n):
        base = rng.random((4, 4, 3))
        clear = np.asarray(Image.fromarray((base * 255).astype(np.uint8)).resize(size, Image.Resampling.BICUBIC))
        veil = (0.6 * clear + 0.4 * 230).astype(np.uint8)
        Image.fromarray(clear).save(folder / "clear" / f"img{i}.png")
        Image.fromarray(veil).save(folder / "degraded" / f"img{i}.png")


def test_the_issues_example_file_reads(tmp_path: Path, mynets: Path) -> None:
    exp = load_experiment(_write(tmp_path, ISSUE_FILE))
    assert exp.title == "TinyNet with and without DiffLoss" and len(exp.rows) == 1
    row = exp.rows[0]
    assert row.baseline == "mynets:TinyNet" and row.data.task == "dehazing" and row.loss_sets == ("l2", "diffloss")
    assert exp.metrics == ("psnr", "ssim") and exp.layout == "experiment"


@pytest.mark.parametrize(("text", "key", "line", "what"), [
    ('title = "x"\n[[row]]\nbaseline = "mynets:NoSuch"\ntask = "dehazing"\n', "row[1].baseline", 3, "has no 'NoSuch'"),
    ('title = "x"\n[[row]]\nbaseline = "nomodule:Net"\ntask = "dehazing"\n', "row[1].baseline", 3,
     "cannot be imported"),
    ('title = "x"\n[[row]]\nbaseline = "iat"\ntask = "dehazeing"\n', "row[1].task", 4, "did you mean 'dehazing'"),
    ('title = "x"\n[[row]]\nbaseline = "iat"\ntask = "lowlight"\nloss_sets = ["l2", "difloss"]\n',
     "row[1].loss_sets", 5, "did you mean 'diffloss'"),
    ('title = "x"\n[[row]]\nbaseline = "iat"\ntask = "lowlight"\ncolour = 1\n', "row[1].colour", 5, "is not a row key"),
    ('title = "x"\n\n[[row]]\nbaseline = "iat"\ndata = { train = "nowhere", test = "nowhere" }\n', "row[1].data.train",
     5, "not a folder"),
    ('[[row]]\nbaseline = "iat"\ntask = "lowlight"\n', "title", None, "is missing"),
    ('title = "x"\nseeds = 0\n[[row]]\nbaseline = "iat"\ntask = "lowlight"\n', "seeds", 2, "at least 1"),
    ('title = "x"\nmetrics = ["psnr", "sharpness"]\n[[row]]\nbaseline = "iat"\ntask = "lowlight"\n', "metrics", 2,
     "unknown metric 'sharpness'"),
    ('title = "x"\n[[row]]\nbaseline = "iat"\ntask = "lowlight"\nloss_sets = ["mine"]\n[loss_set.mine]\n'
     'l2 = { weight = 1.0, nrom = "l2" }\n', "loss_set.mine", 6, "no setting 'nrom'"),
    ('title = "x"\n[[row]]\nbaseline = "iat"\nbaseline_kwargs = { depth = 3 }\ntask = "lowlight"\n', "row[1].baseline",
     3, "does not take these arguments"),
])
def test_every_mistake_names_the_key_and_its_line(tmp_path: Path, mynets: Path, text: str, key: str,
                                                  line: int | None, what: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(BenchError) as info:
        load_experiment(path)
    msg = info.value.message
    assert f"'{key}'" in msg and what in msg and info.value.fix
    assert (f"line {line}:" in msg) if line else ("line" not in msg.split(":")[0])


def test_invalid_toml_names_its_line(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"not valid TOML \(.*line 2"):
        load_experiment(_write(tmp_path, 'title = "x"\n[[row]\n'))


def test_a_declared_loss_set_and_own_folders(tmp_path: Path, mynets: Path) -> None:
    _pairs(tmp_path / "mine" / "train", 3, (64, 64), 0)
    _pairs(tmp_path / "mine" / "test", 2, (40, 56), 1)
    exp = load_experiment(_write(tmp_path, '''
        title = "own data"
        [[row]]
        baseline = "mynets:TinyNet"
        baseline_kwargs = { width = 4 }
        data = { train = "mine/train", test = "mine/test", convention = "rgb" }
        loss_sets = ["l2", "strong"]
        [loss_set.strong]
        l2 = { weight = 1.0, norm = "l2" }
        diffloss = { gamma = 0.01, lam = 0.0 }
    '''))
    assert exp.loss_sets["strong"]["diffloss"] == {"weight": 1.0, "gamma": 0.01, "lam": 0.0}
    assert exp.rows[0].data.train == str((tmp_path / "mine" / "train").resolve())
    assert exp.rows[0].baseline_kwargs == {"width": 4}


def test_own_network_and_data_end_to_end(smoke_all, tmp_path: Path) -> None:
    """A network in a module outside the repository, trained with and without DiffLoss on the user's own
    folders (and on our smoke dehazing task), rendered with provenance; a second run does no work."""
    base, proc, _ = smoke_all
    assert proc.returncode == 0
    user = tmp_path / "userland"
    user.mkdir()
    (user / "mynets.py").write_text(TINYNET)
    _pairs(user / "data" / "train", 3, (72, 64), 0)
    _pairs(user / "data" / "test", 3, (61, 77), 1)  # an awkward size at test time
    (user / "exp.toml").write_text(ISSUE_FILE + textwrap.dedent('''
        [[row]]
        baseline = "mynets:TinyNet"
        label = "TinyNet (own photos)"
        data = { train = "data/train", test = "data/test", convention = "rgb" }
        loss_sets = ["l2", "diffloss"]
    '''))
    copy_jobs(base / "runs", tmp_path / "runs", {"train_prior", "prepare_data"})
    args = ("run", "--experiment", str(user / "exp.toml"), "--profile", "smoke", "--no-progress")
    out = bench(tmp_path, *args, PYTHONPATH=str(user))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    md = (tmp_path / "tables" / "exp.md").read_text()
    assert md.startswith("# TinyNet with and without DiffLoss") and "SMOKE RUN" in md
    for section in ("## Dehazing (Dense-Haze)", "## Own data (train "):
        assert section in md
    for line in ("| TinyNet / l2 |", "| TinyNet / diffloss |", "| TinyNet (own photos) / l2 |",
                 "| TinyNet (own photos) / diffloss |"):
        assert line in md
    assert "experiment file: " in md and "git: " in md and (tmp_path / "tables" / "exp.tex").is_file()
    results = pd.read_csv(tmp_path / "tables" / "exp_results.csv")
    assert len(results) == 4 and results["psnr"].notna().all()
    evals = [d for d in (tmp_path / "runs").iterdir() if job_kind_of(d) == "evaluate"]
    assert len(evals) == 4
    for d in evals:
        frame = pd.read_csv(d / "per_image.csv")
        assert frame["baseline"].eq("mynets:TinyNet").all() and frame["git_sha"].astype(str).str.len().ge(7).all()
        spec = json.loads((d / "job.json").read_text())
        assert len(spec["config"]["baseline_source_sha256"]) == 64
    own = [d for d in evals if "data/test" in (d / "pairs.csv").read_text()]
    assert len(own) == 2 and all(len(pd.read_csv(d / "per_image.csv")) == 3 for d in own)
    again = bench(tmp_path, *args, PYTHONPATH=str(user))
    assert again.returncode == 0 and not running_lines(again.stdout + again.stderr)
