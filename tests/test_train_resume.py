"""Training resumes from its checkpoint to bit-identical weights; NaN losses stop the run clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from bench.data.patches import PatchSampler
from bench.errors import TrainingDiverged
from bench.losses.composite import build_loss
from bench.train.loop import TrainConfig, train


class TinyNet(nn.Module):
    """Conv + dropout: exercises torch's global RNG, which the checkpoint must carry."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout(0.2),
                                  nn.Conv2d(8, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _sampler(seed: int) -> PatchSampler:
    g = torch.Generator().manual_seed(123)
    clear = [torch.rand(3, 40, 48, generator=g) for _ in range(3)]
    degraded = [c * 0.5 + 0.1 for c in clear]
    return PatchSampler(degraded, clear, patch=16, batch=2, seed=seed)


def _run(out: Path, stop_after: int | None = None, steps: int = 12) -> dict:
    torch.manual_seed(0)
    model = TinyNet()
    cfg = TrainConfig(steps=steps, batch=2, patch=16, lr=1e-3, seed=7, ckpt_every=3, log_every=1)
    res = train(model, build_loss({"l2": {"norm": "l2"}}), _sampler(7), cfg, out, log=lambda m: None,
                stop_after=stop_after)
    return res


def test_interrupted_run_ends_with_identical_weights(tmp_path: Path) -> None:
    _run(tmp_path / "straight")
    stopped = _run(tmp_path / "resumed", stop_after=7)  # killed after step 7; last checkpoint at step 6
    assert stopped["stopped_at"] == 7
    logs: list[str] = []
    torch.manual_seed(999)  # a resumed process starts with an unrelated global RNG
    model = TinyNet()
    cfg = TrainConfig(steps=12, batch=2, patch=16, lr=1e-3, seed=7, ckpt_every=3, log_every=1)
    train(model, build_loss({"l2": {"norm": "l2"}}), _sampler(7), cfg, tmp_path / "resumed", log=logs.append)
    assert any("resuming from step 6" in m for m in logs)
    a = torch.load(tmp_path / "straight" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    la = (tmp_path / "straight" / "train_log.csv").read_text()
    lb = (tmp_path / "resumed" / "train_log.csv").read_text()
    assert la == lb


def test_loss_decreases_on_fixed_data(tmp_path: Path) -> None:
    res = _run(tmp_path, steps=30)
    import pandas as pd

    log = pd.read_csv(tmp_path / "train_log.csv")
    assert res["steps"] == 30
    assert log["total"].iloc[-5:].mean() < log["total"].iloc[:5].mean()


def test_nan_loss_raises_and_keeps_checkpoint(tmp_path: Path) -> None:
    class Poison(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(()))
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            return x * self.w * (float("nan") if self.calls > 4 else 1.0)

    cfg = TrainConfig(steps=10, batch=2, patch=16, lr=1e-3, seed=1, ckpt_every=2)
    with pytest.raises(TrainingDiverged, match="at step 5"):
        train(Poison(), build_loss({"l2": {}}), _sampler(1), cfg, tmp_path, log=lambda m: None)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 4
    assert not (tmp_path / "model.pt").exists()
