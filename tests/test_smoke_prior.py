"""The smoke prior trains (its loss falls), resumes bit-exactly, and loads back as a frozen prior."""

from __future__ import annotations

import pytest
import torch

from bench.errors import BenchError
from bench.prior import load_prior
from bench.prior.schedule import DiffusionSchedule
from bench.prior.smoke import SMOKE_PRIOR_KWARGS, smoke_prior_kwargs
from bench.prior.smoke import new_smoke_prior as _new_model
from bench.train.smoke_prior import eps_mse, train_smoke_prior

SIZE = 16  # 16x16 keeps each step well under a second on 2 CPU cores


def _images(n: int = 8, size: int = 20) -> torch.Tensor:
    """Smooth colour gradients with a bright square: structured, so a denoiser can learn them."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    out = []
    for _ in range(n):
        c = torch.rand(3, 2, generator=g)
        img = c[:, :1, None] * yy + c[:, 1:, None] * xx
        a, b = torch.randint(0, size - 6, (2,), generator=g).tolist()
        img[:, a : a + 6, b : b + 6] = 1.0
        out.append(img.clamp(0, 1))
    return torch.stack(out)


def test_smoke_kwargs_are_the_adm_family():
    kw = SMOKE_PRIOR_KWARGS
    assert kw["image_size"] == 32 and kw["learn_sigma"] and kw["use_scale_shift_norm"] and kw["resblock_updown"]
    assert kw["attention_resolutions"] == "8,4"  # the two deepest of the 4 levels (32, 16, 8, 4)
    assert sum(p.numel() for p in _new_model(kw, 0).parameters()) == 2_777_574


def test_loss_decreases_on_a_fixed_batch(tmp_path):
    images = _images()
    sched = DiffusionSchedule.linear()
    g = torch.Generator().manual_seed(1)
    x0 = images[:, :, :SIZE, :SIZE] * 2 - 1
    t = torch.randint(0, 1000, (len(x0),), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    with torch.no_grad():
        before = eps_mse(_new_model(smoke_prior_kwargs(SIZE), 0), x0, t, noise, sched).item()
    model = train_smoke_prior(images, steps=12, seed=0, image_size=SIZE, checkpoint_path=tmp_path / "p.pt",
                              lr=1e-3)
    with torch.no_grad():
        after = eps_mse(model, x0, t, noise, sched).item()
    assert after < 0.9 * before, (before, after)
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_resume_after_interruption_gives_identical_weights(tmp_path):
    images = _images()
    common = dict(steps=4, seed=3, image_size=SIZE, save_every=2, log_every=1)
    straight = train_smoke_prior(images, checkpoint_path=tmp_path / "a.pt", **common)

    def interrupt(step: int, steps: int, loss: float) -> None:
        if step == 3:  # after step 3: the checkpoint on disk is the one from step 2
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_smoke_prior(images, checkpoint_path=tmp_path / "b.pt", progress=interrupt, **common)
    assert torch.load(tmp_path / "b.pt", weights_only=True)["step"] == 2
    resumed = train_smoke_prior(images, checkpoint_path=tmp_path / "b.pt", **common)

    sa, sb = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    ca, cb = (torch.load(tmp_path / f, weights_only=True) for f in ("a.pt", "b.pt"))
    assert ca["step"] == cb["step"] == 4 and ca["losses"] == cb["losses"]

    loaded = load_prior(tmp_path / "b.pt", **smoke_prior_kwargs(SIZE))  # the smoke profile's way in
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in sb.items())
    with pytest.raises(BenchError, match="different smoke-prior run"):
        train_smoke_prior(images, checkpoint_path=tmp_path / "b.pt", **{**common, "seed": 4})


def test_preempted_then_corrupted_run_resumes_from_the_previous_checkpoint(tmp_path):
    from bench import preempt

    images = _images()
    common = dict(steps=5, seed=3, image_size=SIZE, save_every=2, log_every=1, log=lambda m: None)
    straight = train_smoke_prior(images, checkpoint_path=tmp_path / "a.pt", **common)

    def stop(step: int, steps: int, loss: float) -> None:
        if step == 3:
            preempt.request("test")

    try:
        with pytest.raises(preempt.Preempted):
            train_smoke_prior(images, checkpoint_path=tmp_path / "b.pt", progress=stop, **common)
    finally:
        preempt.clear()
    newest, previous = tmp_path / "b.pt", tmp_path / "b.prev.pt"
    assert torch.load(newest, weights_only=True)["step"] == 3  # checkpointed at once, off the save_every grid
    assert torch.load(previous, weights_only=True)["step"] == 2
    newest.write_bytes(newest.read_bytes()[:1000])  # a torn write
    logs: list[str] = []
    resumed = train_smoke_prior(images, checkpoint_path=newest, **{**common, "log": logs.append})
    assert any("b.pt is unreadable" in m and "falling back to b.prev.pt (step 2)" in m for m in logs)
    sa, sb = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    ca, cb = (torch.load(tmp_path / f, weights_only=True) for f in ("a.pt", "b.pt"))
    assert ca["losses"] == cb["losses"] and len(cb["losses"]) == 5
