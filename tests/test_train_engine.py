"""The one training-step engine: the three loops it runs train exactly the weights of the loops it replaced.

Each ``_reference_*`` function below is a frozen copy of a loop as it was before the engine
(``bench/train/loop.py``, ``bench/prior/smoke.py``, ``bench/evaluate/classify.py`` at commit
f54f836), kept only here. Old and new run side by side in the same process on the same inputs,
so the comparison is exact (``torch.equal``) on any CPU: both sides do the same arithmetic in
the same order, so they round alike wherever they run.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from support.nets import Poison
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.weak import WeakIdKeyDictionary

import bench.train.cost as cost_module
from bench.data.patches import PatchSampler
from bench.errors import TrainingDiverged
from bench.evaluate import classify
from bench.evaluate.classify import ClassifyRecipe, ImageSet, finetune
from bench.io import torch_save, write_csv
from bench.losses.composite import build_loss
from bench.prior.adm import create_adm
from bench.prior.load import freeze
from bench.prior.schedule import DiffusionSchedule
from bench.prior.smoke import new_smoke_prior as _new_model
from bench.prior.smoke import smoke_prior_kwargs
from bench.train.loop import TrainConfig, train
from bench.train.smoke_prior import train_smoke_prior

MEASURED = ["ms_per_step", "peak_memory_bytes"]  # wall time and memory: new columns, not deterministic


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny ops on a shared CPU are dominated by thread hand-offs; one thread is several times faster."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


# --------------------------------------------------------------------------------------------- frozen loops


def _reference_train(model, loss_fn, sampler, cfg, out_dir, device="cpu"):
    """bench.train.loop.train before the engine (progress, logging and stop_after removed)."""
    out_dir = Path(out_dir)
    model.to(device).train()
    loss_fn.to(device)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    torch.manual_seed(cfg.seed)
    step, rows = 0, []
    last: dict[str, float] = {}
    while step < cfg.steps:
        deg, clr = sampler.next_batch()
        deg, clr = deg.to(device), clr.to(device)
        restored = model(deg)
        terms = loss_fn(restored, clr)
        total = terms["total"]
        if not math.isfinite(total.item()):
            raise TrainingDiverged(f"Loss became {total.item()} at step {step + 1}")
        opt.zero_grad(set_to_none=True)
        total.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        # the old AdversarialLoss returned Python floats here; it returns device tensors now
        aux = {k: float(v) for k, v in loss_fn.after_step(restored.detach(), clr).items()}
        step += 1
        last = {k: float(v.detach()) for k, v in terms.items()} | aux
        if step % cfg.log_every == 0 or step == cfg.steps:
            rows.append({"step": step, **last})
        if cfg.snapshot_every and step % cfg.snapshot_every == 0:
            torch_save(out_dir / "snapshots" / f"step{step:07d}.pt", model.state_dict())
    torch_save(out_dir / "model.pt", model.state_dict())
    write_csv(out_dir / "train_log.csv", pd.DataFrame(rows))
    return {"steps": step, **{f"final_{k}": v for k, v in last.items()}}, opt


def _reference_batch(images, size, batch, gen):
    n, _, h, w = images.shape
    idx = torch.randint(0, n, (batch,), generator=gen).tolist()
    tops = torch.randint(0, h - size + 1, (batch,), generator=gen).tolist()
    lefts = torch.randint(0, w - size + 1, (batch,), generator=gen).tolist()
    flips = (torch.rand(batch, generator=gen) < 0.5).tolist()
    crops = []
    for i, a, b, f in zip(idx, tops, lefts, flips):
        c = images[i, :, a : a + size, b : b + size]
        crops.append(c.flip(-1) if f else c)
    return torch.stack(crops).float() * 2 - 1


def _reference_smoke(images, *, steps, seed, image_size, batch_size=8, lr=3e-4):
    """bench.train.smoke_prior.train_smoke_prior's loop before the engine (checkpointing removed)."""
    kwargs = smoke_prior_kwargs(image_size)
    schedule = DiffusionSchedule.linear(1000)
    model = _new_model(kwargs, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    step, losses = 0, []
    images = images.detach().cpu()
    model.train()
    while step < steps:
        x0 = _reference_batch(images, image_size, batch_size, gen)
        t = torch.randint(0, schedule.num_timesteps, (batch_size,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        x_t = schedule.q_sample(x0, t, noise)
        loss = (model(x_t, t)[:, :3] - noise).pow(2).mean()
        assert torch.isfinite(loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        losses.append(float(loss.detach()))
    return freeze(model), losses


def _reference_finetune(model, train_set, recipe, seed, device="cpu", loaded=()):
    """bench.evaluate.classify.finetune before the engine."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model.to(device).train()
    groups = classify._param_groups(model, set(loaded), recipe)
    if recipe.optimizer == "sgd":
        opt = torch.optim.SGD(groups, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    else:
        opt = torch.optim.Adam(groups, weight_decay=recipe.weight_decay)
    n = len(train_set)
    batch = min(recipe.batch, n)
    per_epoch = n // batch
    total = per_epoch * recipe.epochs
    base_lrs = [g["lr"] for g in opt.param_groups]
    history, step = [], 0
    with classify.deterministic_cudnn():
        for epoch in range(recipe.epochs):
            order = torch.randperm(n, generator=gen)
            loss_sum, correct, seen = 0.0, 0, 0
            for b in range(per_epoch):
                idx = order[b * batch:(b + 1) * batch]
                x = classify._to_float(classify._augment(train_set.images[idx], recipe.input_size, recipe, gen),
                                       device)
                y = train_set.labels[idx].to(device)
                if recipe.schedule == "cosine":
                    factor = 0.5 * (1.0 + math.cos(math.pi * step / max(1, total)))
                    for g, lr in zip(opt.param_groups, base_lrs):
                        g["lr"] = lr * factor
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                assert torch.isfinite(loss)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                loss_sum += float(loss.detach()) * len(idx)
                correct += int((logits.argmax(1) == y).sum())
                seen += len(idx)
            history.append({"epoch": epoch + 1, "steps": step, "loss": loss_sum / max(1, seen),
                            "train_top1": 100.0 * correct / max(1, seen)})
    model.eval()
    return history


# --------------------------------------------------------------------------------------------- fixtures


class TinyNet(nn.Module):
    """Conv + dropout: exercises torch's global RNG, which the checkpoint must carry."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout(0.2),
                                  nn.Conv2d(8, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _sampler(seed: int, patch: int = 20) -> PatchSampler:
    g = torch.Generator().manual_seed(123)
    clear = [torch.rand(3, 40, 48, generator=g) for _ in range(3)]
    degraded = [c * 0.5 + 0.1 for c in clear]
    return PatchSampler(degraded, clear, patch=patch, batch=2, seed=seed)


def tiny_prior(seed: int = 0) -> nn.Module:
    """The 16x16 smoke ADM with every weight perturbed: ADM zero-initialises its residual branches,
    which would leave the restored branch without gradient."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        prior = create_adm(**smoke_prior_kwargs(16))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in prior.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return freeze(prior)


LOSSES = {
    "l2": lambda: build_loss({"l2": {"norm": "l2"}}, seed=7),
    "l2+diffloss+adversarial": lambda: build_loss(
        {"l2": {"norm": "l2"}, "diffloss": {"weight": 1.0, "gamma": 0.1},
         "adversarial": {"weight": 0.01, "width": 8, "n_layers": 2}},
        {"prior": tiny_prior()}, seed=7),
}


# --------------------------------------------------------------------------------------------- bit identity


@pytest.mark.parametrize("losses", list(LOSSES))
def test_restoration_training_is_bit_identical_to_the_loop_it_replaced(tmp_path: Path, losses: str) -> None:
    cfg = TrainConfig(steps=6, batch=2, patch=20, lr=1e-3, seed=7, ckpt_every=4, log_every=2, snapshot_every=3,
                      grad_clip=0.5)
    torch.manual_seed(0)
    old_model = TinyNet()
    old_result, old_opt = _reference_train(old_model, LOSSES[losses](), _sampler(7), cfg, tmp_path / "old")
    torch.manual_seed(0)
    new_model = TinyNet()
    new_result = train(new_model, LOSSES[losses](), _sampler(7), cfg, tmp_path / "new", log=lambda m: None)

    old_w, new_w = (torch.load(tmp_path / d / "model.pt", weights_only=True) for d in ("old", "new"))
    assert old_w.keys() == new_w.keys()
    for k in old_w:
        assert torch.equal(old_w[k], new_w[k]), k
    snap_old, snap_new = (torch.load(tmp_path / d / "snapshots" / "step0000003.pt", weights_only=True)
                          for d in ("old", "new"))
    assert all(torch.equal(snap_old[k], snap_new[k]) for k in snap_old)
    ck = torch.load(tmp_path / "new" / "checkpoint.pt", weights_only=False)
    old_state = old_opt.state_dict()["state"]
    for i, s in ck["optimizer"]["state"].items():
        assert torch.equal(s["exp_avg_sq"], old_state[i]["exp_avg_sq"]), i
    old_log = pd.read_csv(tmp_path / "old" / "train_log.csv")
    new_log = pd.read_csv(tmp_path / "new" / "train_log.csv")
    pd.testing.assert_frame_equal(old_log, new_log.drop(columns=MEASURED), check_exact=True)
    for k, v in old_result.items():
        assert new_result[k] == v, k


def _images(n: int = 6, size: int = 20) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, size, size, generator=g)


def test_smoke_prior_is_bit_identical_to_the_loop_it_replaced(tmp_path: Path) -> None:
    images = _images()
    old, old_losses = _reference_smoke(images, steps=5, seed=3, image_size=16, batch_size=4, lr=1e-3)
    global_before = torch.get_rng_state()
    new = train_smoke_prior(images, steps=5, seed=3, image_size=16, batch_size=4, lr=1e-3, save_every=2,
                            log_every=2, checkpoint_path=tmp_path / "p.pt", log=lambda m: None)
    assert torch.equal(global_before, torch.get_rng_state())  # the smoke prior never touches the global RNG
    so, sn = old.state_dict(), new.state_dict()
    assert so.keys() == sn.keys() and all(torch.equal(so[k], sn[k]) for k in so)
    ck = torch.load(tmp_path / "p.pt", weights_only=True)
    assert ck["step"] == 5 and ck["losses"] == old_losses


class TinyClassifier(nn.Module):
    """The classifier interface, with dropout so the global generator matters."""

    def __init__(self, num_classes: int = 2):
        super().__init__()
        self.arch, self.num_classes = "tiny", num_classes
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Dropout(0.3), nn.Linear(4, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _toy_set(n: int = 14) -> ImageSet:
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(n) % 2
    base = torch.where(labels.view(-1, 1, 1, 1) == 1, 200.0, 50.0)
    imgs = (base + 20 * torch.randn(n, 3, 12, 12, generator=g)).clamp(0, 255).to(torch.uint8)
    return ImageSet([f"i{k}" for k in range(n)], imgs, labels)


@pytest.mark.parametrize("recipe", [
    ClassifyRecipe(optimizer="adam", lr=0.05, weight_decay=0.0, epochs=3, batch=4, input_size=10, resize=12),
    ClassifyRecipe(optimizer="sgd", lr=0.1, epochs=2, batch=4, input_size=10, resize=12, train_layers="head"),
], ids=["adam-cosine", "sgd-head"])
def test_finetune_is_bit_identical_to_the_loop_it_replaced(recipe: ClassifyRecipe) -> None:
    loaded = ("0.weight", "0.bias") if recipe.train_layers == "head" else ()
    torch.manual_seed(123)
    old = TinyClassifier()
    old_hist = _reference_finetune(old, _toy_set(), recipe, 5, loaded=loaded)
    torch.manual_seed(123)
    new = TinyClassifier()
    new_hist = finetune(new, _toy_set(), recipe, 5, "cpu", loaded)  # type: ignore[arg-type]
    assert new_hist == old_hist  # exact float equality of every epoch's loss and Top-1
    so, sn = old.state_dict(), new.state_dict()
    assert all(torch.equal(so[k], sn[k]) for k in so)


def test_finetune_resumes_mid_epoch_to_identical_weights(tmp_path: Path) -> None:
    from bench import preempt

    recipe = ClassifyRecipe(optimizer="adam", lr=0.05, weight_decay=0.0, epochs=3, batch=4, input_size=10, resize=12)
    torch.manual_seed(123)
    straight = TinyClassifier()
    hist = finetune(straight, _toy_set(), recipe, 5, "cpu")  # type: ignore[arg-type]

    def stop_at_5(step: int, steps: int, loss: float) -> None:
        if step == 5:  # 3 steps per epoch: step 5 is in the middle of the second epoch
            preempt.request("test")

    torch.manual_seed(123)
    model = TinyClassifier()
    try:
        with pytest.raises(preempt.Preempted):
            finetune(model, _toy_set(), recipe, 5, "cpu", on_step=stop_at_5, log_every=1,  # type: ignore[arg-type]
                     checkpoint_path=tmp_path / "ck.pt", log=lambda m: None)
    finally:
        preempt.clear()
    assert torch.load(tmp_path / "ck.pt", weights_only=False)["step"] == 5
    torch.manual_seed(999)
    resumed = TinyClassifier()
    hist_b = finetune(resumed, _toy_set(), recipe, 5, "cpu", checkpoint_path=tmp_path / "ck.pt",  # type: ignore[arg-type]
                      log=lambda m: None)
    assert hist_b == hist
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in straight.state_dict().items())


# --------------------------------------------------------------------------------------------- guard, faults


def test_non_finite_loss_is_reported_at_its_step_and_no_checkpoint_follows_it(tmp_path: Path) -> None:
    # loss goes bad at step 5; log steps are 4, 8; checkpoints every 3: the guard is read at 6 and stops there
    cfg = TrainConfig(steps=10, batch=2, patch=16, lr=1e-3, seed=1, ckpt_every=3, log_every=4)
    logs: list[str] = []
    with pytest.raises(TrainingDiverged, match=r"became (inf|nan) at step 5;"):
        train(Poison(5), build_loss({"l2": {}}), _sampler(1, 16), cfg, tmp_path, log=logs.append)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 3
    assert not (tmp_path / "model.pt").exists()


def test_fault_points_bracket_every_checkpoint_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.train.checkpoint as ckmod

    seen: list[tuple[str, int | None]] = []

    def record(point: str) -> None:
        path = tmp_path / "checkpoint.pt"
        seen.append((point, torch.load(path, weights_only=False)["step"] if path.exists() else None))

    monkeypatch.setattr(ckmod, "fault_point", record)
    cfg = TrainConfig(steps=5, batch=2, patch=16, lr=1e-3, seed=1, ckpt_every=2, log_every=1)
    torch.manual_seed(0)
    train(TinyNet(), build_loss({"l2": {}}), _sampler(1, 16), cfg, tmp_path, log=lambda m: None, tensorboard=False)
    assert seen == [("before_checkpoint", None), ("checkpoint_saved", 2), ("before_checkpoint", 2),
                    ("checkpoint_saved", 4), ("before_checkpoint", 4), ("checkpoint_saved", 5)]
    assert torch.load(tmp_path / "checkpoint.prev.pt", weights_only=False)["step"] == 4  # the last two are kept


# --------------------------------------------------------------------------------------------- host syncs


class HostReads(TorchDispatchMode):
    """Counts what would make the host wait for a CUDA device, on the CPU.

    A tensor "lives on the device" if it is a parameter or buffer of the network, the losses or
    the prior, a batch after ``to_device``, or anything computed from one (taint propagates
    through every aten op, backward included). Counted: scalar reads (``.item()``, ``float()``,
    ``bool()``, ``int()``: ``aten._local_scalar_dense``), ops whose output size depends on
    values, ``torch.equal``, and ``.tolist()`` / ``.cpu()`` / ``.numpy()`` of such a tensor, plus
    explicit ``synchronize`` calls. Reads of CPU-generator draws (DiffLoss's t, noise and crops,
    the sampler's) are not counted: those tensors never touch the device. Not seen: ``.to("cpu")``,
    which on a CPU run cannot be told from the ``.to(device)`` that sets a module up.
    """

    SYNC_OPS: ClassVar[set[str]] = {"_local_scalar_dense", "equal", "is_nonzero", "nonzero", "masked_select",
                                    "_unique2", "unique_consecutive", "unique_dim", "repeat_interleave"}

    def __init__(self, seeds: list[torch.Tensor]):
        super().__init__()
        self.hot = WeakIdKeyDictionary()
        for t in seeds:
            self.hot[t] = True
        self.step = 0
        self.reads: list[tuple[int, str]] = []

    def is_hot(self, t: object) -> bool:
        return isinstance(t, torch.Tensor) and t in self.hot

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        hot = any(self.is_hot(a) for a in tree_flatten((args, kwargs))[0])
        if hot and func.overloadpacket.__name__ in self.SYNC_OPS:
            self.reads.append((self.step, func.overloadpacket.__name__))
        out = func(*args, **kwargs)
        if hot:
            for o in tree_flatten(out)[0]:
                if isinstance(o, torch.Tensor):
                    self.hot[o] = True
        return out


@contextlib.contextmanager
def count_host_reads(monkeypatch: pytest.MonkeyPatch, seeds: list[torch.Tensor], sampler: PatchSampler,
                     module: object) -> Iterator[HostReads]:
    mode = HostReads(seeds)
    base = torch._C.TensorBase

    def python_read(name: str):
        real = getattr(base, name)

        def wrapper(self, *args, **kwargs):
            if mode.is_hot(self):
                mode.reads.append((mode.step, name))
            return real(self, *args, **kwargs)
        return wrapper

    for name in ("tolist", "cpu", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, python_read(name))
    real_next, real_to_device, real_sync = sampler.next_batch, module.to_device, cost_module.synchronize

    def next_batch():
        mode.step += 1  # reads from here on belong to this step
        return real_next()

    def to_device(t, device):
        out = real_to_device(t, device)
        mode.hot[out] = True  # from here on the batch lives on the device
        return out

    def synchronize(device):
        mode.reads.append((mode.step, "synchronize"))
        return real_sync(device)

    monkeypatch.setattr(sampler, "next_batch", next_batch)
    monkeypatch.setattr(module, "to_device", to_device)
    monkeypatch.setattr(cost_module, "synchronize", synchronize)
    with mode:
        yield mode


def _seeds(*modules: nn.Module) -> list[torch.Tensor]:
    out = []
    for m in modules:
        out += [*m.parameters(), *m.buffers()]
    return out


@pytest.mark.parametrize("losses", ["l2", "l2+diffloss"])
def test_training_reads_the_device_only_at_log_and_checkpoint_steps(tmp_path: Path, losses: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.train.loop as loop

    spec = {"l2": {"norm": "l2"}} | ({"diffloss": {"gamma": 0.1}} if "diffloss" in losses else {})
    prior = tiny_prior()
    loss = build_loss(spec, {"prior": prior}, seed=7)
    torch.manual_seed(0)
    model = TinyNet()
    sampler = _sampler(7)
    cfg = TrainConfig(steps=10, batch=2, patch=20, lr=1e-3, seed=7, ckpt_every=6, log_every=4, grad_clip=1.0)
    with count_host_reads(monkeypatch, _seeds(model, loss, prior), sampler, loop) as reads:
        train(model, loss, sampler, cfg, tmp_path, log=lambda m: None)
    assert reads.step == 10
    by_step: dict[int, list[str]] = {}
    for step, what in reads.reads:
        by_step.setdefault(step, []).append(what)
    # log steps 4, 8, 10 (the last); checkpoint steps 6, 10: one transfer each, a synchronize at log steps
    assert by_step == {4: ["tolist", "synchronize"], 6: ["tolist"], 8: ["tolist", "synchronize"],
                       10: ["tolist", "synchronize"]}


def test_the_host_read_counter_sees_the_old_loops_per_step_reads(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The counter can fail: the loop before the engine read the loss on every step."""
    import bench.train.loop as loop

    loss = build_loss({"l2": {"norm": "l2"}, "diffloss": {"gamma": 0.1}}, {"prior": tiny_prior()}, seed=7)
    torch.manual_seed(0)
    model = TinyNet()
    sampler = _sampler(7)
    cfg = TrainConfig(steps=3, batch=2, patch=20, lr=1e-3, seed=7, log_every=10)
    with count_host_reads(monkeypatch, _seeds(model, loss, loss.parts["diffloss"].prior), sampler, loop) as reads:
        _reference_train(model, loss, sampler, cfg, tmp_path)
    assert {s for s, _ in reads.reads} == {1, 2, 3}
    assert all(sum(1 for s, w in reads.reads if s == k and w == "_local_scalar_dense") >= 2 for k in (1, 2, 3))
