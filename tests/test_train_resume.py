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
    import pandas as pd

    la, lb = (pd.read_csv(tmp_path / d / "train_log.csv") for d in ("straight", "resumed"))
    measured = ["ms_per_step", "peak_memory_bytes"]  # wall time and memory: the columns that may differ
    assert list(la.columns) == list(lb.columns) and set(measured) <= set(la.columns)
    pd.testing.assert_frame_equal(la.drop(columns=measured), lb.drop(columns=measured), check_exact=True)


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


# --------------------------------------------------------------------------------------------- corruption


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path / "model.pt", weights_only=True)


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("damaged", [["checkpoint.pt"], ["checkpoint.pt", "checkpoint.prev.pt"]],
                         ids=["newest", "both"])
def test_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path: Path, damaged: list[str]) -> None:
    _run(tmp_path / "straight")
    _run(tmp_path / "resumed", stop_after=7)  # checkpoints at steps 3 and 6 are on disk
    for name in damaged:
        f = tmp_path / "resumed" / name
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    logs: list[str] = []
    # a job builds its network from the run's seed: starting over starts from the same weights
    torch.manual_seed(999 if len(damaged) == 1 else 0)
    cfg = TrainConfig(steps=12, batch=2, patch=16, lr=1e-3, seed=7, ckpt_every=3, log_every=1)
    train(TinyNet(), build_loss({"l2": {"norm": "l2"}}), _sampler(7), cfg, tmp_path / "resumed", log=logs.append)
    text = "\n".join(logs)
    assert "checkpoint.pt is unreadable" in text
    if len(damaged) == 1:
        assert "falling back to checkpoint.prev.pt (step 3)" in text and "resuming from step 3" in text
    else:
        assert "no readable checkpoint is left, starting from step 0" in text and "resuming" not in text
    assert _same(_weights(tmp_path / "straight"), _weights(tmp_path / "resumed"))


# --------------------------------------------------------------------------------------------- preemption


class _StopAfter:
    """A sampler that asks for a stop while it draws batch ``k`` (as a signal arriving mid-step would)."""

    def __init__(self, sampler: PatchSampler, k: int) -> None:
        self.sampler, self.k, self.calls = sampler, k, 0

    def next_batch(self):
        from bench import preempt

        self.calls += 1
        if self.calls == self.k:
            preempt.request("test")
        return self.sampler.next_batch()

    def state_dict(self):
        return self.sampler.state_dict()

    def load_state_dict(self, s) -> None:
        self.sampler.load_state_dict(s)


def test_preempted_run_checkpoints_at_once_and_resumes_to_identical_weights(tmp_path: Path) -> None:
    from bench import preempt

    _run(tmp_path / "straight")
    cfg = TrainConfig(steps=12, batch=2, patch=16, lr=1e-3, seed=7, ckpt_every=3, log_every=1)
    torch.manual_seed(0)
    try:
        with pytest.raises(preempt.Preempted) as err:
            train(TinyNet(), build_loss({"l2": {"norm": "l2"}}), _StopAfter(_sampler(7), 5), cfg,
                  tmp_path / "resumed", log=lambda m: None)
    finally:
        preempt.clear()
    assert err.value.step == 5  # not a checkpoint step (3, 6, ...): it checkpointed because it was asked to
    assert torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)["step"] == 5
    assert not (tmp_path / "resumed" / "model.pt").exists()
    torch.manual_seed(999)
    logs: list[str] = []
    train(TinyNet(), build_loss({"l2": {"norm": "l2"}}), _sampler(7), cfg, tmp_path / "resumed", log=logs.append)
    assert any("resuming from step 5" in m for m in logs)
    assert _same(_weights(tmp_path / "straight"), _weights(tmp_path / "resumed"))


CHILD = r'''
import sys, time
from pathlib import Path
import torch
from torch import nn
from bench.data.patches import PatchSampler
from bench import preempt
from bench.losses.composite import build_loss
from bench.train.loop import TrainConfig, train

out, mode = Path(sys.argv[1]), sys.argv[2]
torch.set_num_threads(1)


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout(0.2),
                                  nn.Conv2d(8, 3, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


class WaitForSignal(PatchSampler):
    """Batch 4 waits (at most 60 s) until the parent's signal has arrived, then training goes on."""
    calls = 0

    def next_batch(self):
        self.calls += 1
        if mode == "signal" and self.calls == 4:
            (out / "ready").write_text("4")
            deadline = time.time() + 60
            while preempt.requested() is None and time.time() < deadline:
                time.sleep(0.01)
        return super().next_batch()


g = torch.Generator().manual_seed(123)
clear = [torch.rand(3, 40, 48, generator=g) for _ in range(3)]
sampler = WaitForSignal([c * 0.5 + 0.1 for c in clear], clear, patch=16, batch=2, seed=7)
preempt.install()
torch.manual_seed(0 if mode != "resume" else 999)
cfg = TrainConfig(steps=10, batch=2, patch=16, lr=1e-3, seed=7, ckpt_every=3, log_every=2)
try:
    train(TinyNet(), build_loss({"l2": {"norm": "l2"}}), sampler, cfg, out, log=print, tensorboard=False)
except preempt.Preempted as e:
    print(f"PREEMPTED at {e.step} on {preempt.requested()}")
    sys.exit(e.exit_code)
'''


def test_sigusr1_checkpoints_a_real_training_process_which_then_resumes(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    repo = Path(__file__).resolve().parent.parent
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}

    def child(out: Path, mode: str) -> subprocess.Popen:
        out.mkdir(exist_ok=True)
        return subprocess.Popen([sys.executable, str(script), str(out), mode], env=env, cwd=repo,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    p = child(tmp_path / "run", "signal")
    deadline = time.time() + 120
    while not (tmp_path / "run" / "ready").exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "run" / "ready").exists(), p.communicate()[0]
    os.kill(p.pid, signal.SIGUSR1)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 3, out  # Preempted's exit code
    assert "PREEMPTED at 4 on SIGUSR1" in out
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["step"] == 4
    resumed = child(tmp_path / "run", "resume")
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0 and "resuming from step 4" in out, out
    # the uninterrupted run, here: same CPU, one thread like the children, so the same arithmetic
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        cfg = TrainConfig(steps=10, batch=2, patch=16, lr=1e-3, seed=7, ckpt_every=3, log_every=2)
        train(TinyNet(), build_loss({"l2": {"norm": "l2"}}), _sampler(7), cfg, tmp_path / "straight",
              log=lambda m: None, tensorboard=False)
    finally:
        torch.set_num_threads(saved)
    assert _same(_weights(tmp_path / "straight"), _weights(tmp_path / "run"))


# --------------------------------------------------------------------------------------------- stochastic nets


def test_iat_with_drop_path_resumes_to_identical_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """IAT draws stochastic-depth masks from torch's global generator every step: the checkpoint carries it."""
    import shutil

    import bench.train.engine as engine
    from bench import build_baseline

    def run(out: Path, stop_after: int | None = None, seed: int = 0) -> dict:
        torch.manual_seed(seed)
        model = build_baseline("iat")
        cfg = TrainConfig(steps=6, batch=2, patch=16, lr=1e-3, seed=7, ckpt_every=2, log_every=2)
        return train(model, build_loss({"l2": {}}), _sampler(7), cfg, out, log=lambda m: None,
                     stop_after=stop_after, tensorboard=False)

    run(tmp_path / "straight")
    run(tmp_path / "resumed", stop_after=3)  # killed after step 3, checkpoint of step 2 on disk
    shutil.copytree(tmp_path / "resumed", tmp_path / "no_rng")
    torch.manual_seed(5)  # the resumed process's global generator is elsewhere entirely, and so are
    run(tmp_path / "resumed", seed=42)  # its initial weights: the checkpoint replaces both
    assert _same(_weights(tmp_path / "straight"), _weights(tmp_path / "resumed"))
    # without the global generator restored the masks differ: the test above can fail
    monkeypatch.setattr(engine, "restore_global_rng", lambda state, log=None: None)
    run(tmp_path / "no_rng", seed=42)
    assert not _same(_weights(tmp_path / "straight"), _weights(tmp_path / "no_rng"))


# --------------------------------------------------------------------------------------------- curves and cost


def test_tensorboard_curves_and_training_cost_are_written(tmp_path: Path) -> None:
    import pandas as pd
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    torch.manual_seed(0)
    cfg = TrainConfig(steps=9, batch=2, patch=16, lr=1e-3, seed=7, ckpt_every=3, log_every=3)
    res = train(TinyNet(), build_loss({"l2": {"norm": "l2"}}), _sampler(7), cfg, tmp_path, log=lambda m: None)
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "loss/total" in tags and "cost/ms_per_step" in tags
    log = pd.read_csv(tmp_path / "train_log.csv")
    assert [e.step for e in acc.Scalars("loss/total")] == [3, 6, 9] == list(log["step"])
    # TensorBoard stores float32 scalars
    assert [e.value for e in acc.Scalars("loss/total")] == pytest.approx(list(log["total"]), rel=1e-6)
    assert res["ms_per_step_intervals"] == 2  # three intervals, the first is warm-up
    assert res["ms_per_step_median"] == pytest.approx(float(log["ms_per_step"][1:].median()), rel=1e-12)
    assert res["ms_per_step_median"] > 0 and res["peak_memory_kind"] == "process_peak_rss"
    assert res["peak_memory_bytes"] > 10 * 2**20  # a Python process with torch loaded holds far more than 10 MiB
