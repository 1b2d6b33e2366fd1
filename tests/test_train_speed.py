"""Speed options reach the modules, and the job hash holds exactly the ones that change the numbers.

Evidence for the hash: prior checkpointing gives bit-identical DiffLoss terms and gradients on
the CPU (so it stays out); bf16 moves L_nat by far more than float32 rounding could (so it is
in). compile, channels_last, tf32 and cudnn_benchmark are hashed by what they are (other
kernels or lower precision), see ``bench.train.speed``; channels_last is checked here to stay
the same function within float32 reordering error.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from bench import build_baseline
from bench.data.patches import PatchSampler
from bench.errors import BenchError
from bench.losses.composite import build_loss
from bench.losses.diffloss import DiffLoss
from bench.prior.adm import AttentionBlock, ResBlock, create_adm
from bench.prior.load import freeze
from bench.prior.smoke import smoke_prior_kwargs
from bench.registry import BASELINES
from bench.train.loop import TrainConfig, train
from bench.train.speed import HASHED_OPTIONS, SpeedForward, SpeedOptions


@pytest.fixture(autouse=True)
def one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def tiny_prior(seed: int = 0) -> nn.Module:
    """The 16x16 smoke ADM with every weight perturbed (ADM zero-initialises its residual branches)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        prior = create_adm(**smoke_prior_kwargs(16))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in prior.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return freeze(prior)


def diffloss_step(opts: SpeedOptions) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """One DiffLoss forward and backward through the network with ``opts`` applied; (terms, network grads)."""
    torch.manual_seed(0)
    net, prior = TinyNet(), tiny_prior()
    opts.apply(net, prior, device="cpu", log=lambda m: None)
    loss = DiffLoss(prior, gamma=1.0, seed=3)
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand(2, 3, 20, 20, generator=g), torch.rand(2, 3, 20, 20, generator=g)  # 20 > 16: random crops
    terms = loss(net(x), y)
    terms["total"].backward()
    return {k: v.detach() for k, v in terms.items()}, [p.grad.clone() for p in net.parameters()]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_options_reach_the_network_and_the_prior() -> None:
    net, prior = TinyNet(), tiny_prior()
    opts = SpeedOptions(precision="bf16", channels_last=True, prior_checkpointing=True)
    _, _, notes = opts.apply(net, prior, device="cpu", log=lambda m: None)
    assert prior.autocast_dtype is torch.bfloat16 and prior.channels_last
    convs = [m for m in prior.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    blocks = [m for m in prior.modules() if isinstance(m, ResBlock | AttentionBlock)]
    assert blocks and all(m.use_checkpoint for m in blocks)
    assert isinstance(net.forward, SpeedForward) and net.forward.autocast_dtype is torch.bfloat16
    assert net.body[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert list(net.state_dict()) == ["body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias"]  # keys kept
    out = net(torch.rand(1, 3, 8, 8))
    assert out.dtype is torch.float32  # losses reduce in float32
    assert any("autocast(bf16)" in n for n in notes) and any("checkpointing" in n for n in notes)
    opts.apply(net, prior, device="cpu")  # the same options again: nothing changes
    with pytest.raises(BenchError, match="already configured"):
        SpeedOptions().apply(net, prior, device="cpu")


@pytest.mark.parametrize("name", sorted(BASELINES.names()))
def test_channels_last_applies_to_every_published_network(name: str) -> None:
    """The paper profile's default: every network takes it (RCDNet has a 5-D weight, which stays as it is),
    and computes the same function to float32 rounding."""
    torch.manual_seed(0)
    net = build_baseline(name).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = net(x)
        SpeedOptions(channels_last=True).apply(net, None, device="cpu", log=lambda m: None)
        after = net(x)
    four_d = [p for p in net.parameters() if p.dim() == 4]
    assert four_d and all(p.is_contiguous(memory_format=torch.channels_last) for p in four_d)
    assert all(p.is_contiguous() for p in net.parameters() if p.dim() != 4)
    assert _rel(after, before) < 1e-4, name


def test_default_options_leave_the_modules_as_they_are() -> None:
    net = TinyNet()
    SpeedOptions().apply(net, None, device="cpu")
    assert "forward" not in net.__dict__  # the class's own forward: the default path is untouched


def test_prior_checkpointing_is_bit_identical_so_it_stays_out_of_the_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.prior.adm as adm

    calls: list[bool] = []
    real = adm.checkpoint

    def counting(*args, **kwargs):
        calls.append(torch.is_grad_enabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(adm, "checkpoint", counting)
    plain, g_plain = diffloss_step(SpeedOptions())
    assert calls == []
    ckpt, g_ckpt = diffloss_step(SpeedOptions(prior_checkpointing=True))
    assert calls and all(calls)  # the restored branch was checkpointed; the no_grad clear branch never is
    for k in plain:
        assert torch.equal(plain[k], ckpt[k]), k
    assert all(torch.equal(a, b) for a, b in zip(g_plain, g_ckpt))
    assert "prior_checkpointing" not in SpeedOptions().hashed()


def test_bf16_changes_the_numbers_so_it_is_hashed() -> None:
    fp32, g32 = diffloss_step(SpeedOptions())
    bf16, g16 = diffloss_step(SpeedOptions(precision="bf16"))
    # bf16 keeps 8 significant bits: L_nat moves ~4e-4 relative here; float32 reordering moves it ~1e-7
    assert 2e-5 < _rel(bf16["nat"], fp32["nat"]) < 1e-2
    assert 1e-4 < max(_rel(a, b) for a, b in zip(g16, g32)) < 0.5
    assert SpeedOptions(precision="bf16").hashed() != SpeedOptions().hashed()


def test_channels_last_computes_the_same_function_and_is_hashed() -> None:
    fp32, g32 = diffloss_step(SpeedOptions())
    cl, gcl = diffloss_step(SpeedOptions(channels_last=True))
    for k in fp32:
        assert _rel(cl[k], fp32[k]) < 1e-5, k  # other kernels, other summation order: float32 rounding only
    assert max(_rel(a, b) for a, b in zip(gcl, g32)) < 1e-4
    assert set(SpeedOptions().hashed()) == set(HASHED_OPTIONS) == {
        "precision", "channels_last", "compile", "tf32", "cudnn_benchmark"}


def test_a_bf16_channels_last_training_run_on_cpu(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(123)
    clear = [torch.rand(3, 24, 24, generator=g) for _ in range(2)]
    sampler = PatchSampler([c * 0.5 for c in clear], clear, patch=20, batch=2, seed=1)
    torch.manual_seed(0)
    net = TinyNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    loss = build_loss({"l2": {}, "diffloss": {"gamma": 0.1}}, {"prior": tiny_prior()}, seed=1)
    cfg = TrainConfig(steps=2, batch=2, patch=20, lr=1e-3, seed=1, log_every=1)
    logs: list[str] = []
    res = train(net, loss, sampler, cfg, tmp_path, log=logs.append, tensorboard=False,
                speed=SpeedOptions(precision="bf16", channels_last=True, prior_checkpointing=True))
    assert loss.parts["diffloss"].prior.autocast_dtype is torch.bfloat16  # train() configured DiffLoss's prior
    after = torch.load(tmp_path / "model.pt", weights_only=True)
    assert all(v.dtype is torch.float32 and torch.isfinite(v).all() for v in after.values())
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert any("prior: autocast(bf16)" in n for n in res["speed_notes"])
    assert any("[speed] network: forward under autocast(bf16)" in m for m in logs)


def test_compile_failure_falls_back_to_eager_with_a_logged_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.train.speed as speed

    def broken_compile(fn):
        def run(*args, **kwargs):
            raise RuntimeError("backend exploded\nlong traceback")
        return run

    monkeypatch.setattr(speed.torch, "compile", broken_compile)
    monkeypatch.setattr(speed, "_compile_blocker", lambda device_type: None)
    torch.manual_seed(0)
    net, prior = TinyNet(), tiny_prior()
    logs: list[str] = []
    SpeedOptions(compile=True).apply(net, prior, device="cpu", log=logs.append)
    assert isinstance(net.forward, SpeedForward) and net.forward.compiled is not None
    assert isinstance(prior.forward, SpeedForward) and prior.forward.compiled is not None
    x = torch.rand(1, 3, 16, 16)
    out = net(x)
    assert net.forward.compiled is None and net.forward.fallback_reason == "RuntimeError: backend exploded"
    assert any("compile of the network is off" in m and "backend exploded" in m for m in logs)
    assert torch.equal(out, net.forward.eager(x))  # eager is the unmodified module


def test_compile_without_a_compiler_is_reported_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.train.speed as speed

    monkeypatch.setattr(speed.shutil, "which", lambda name: None)
    net, prior = TinyNet(), tiny_prior()
    _, _, notes = SpeedOptions(compile=True).apply(net, prior, device="cpu", log=lambda m: None)
    assert "forward" not in net.__dict__ and "forward" not in prior.__dict__
    assert sum("no C++ compiler" in n for n in notes) == 2


@pytest.mark.slow
def test_compiled_network_runs_compiled_and_computes_the_same_function() -> None:
    """A real torch.compile (about a minute of Inductor compilation on a small CPU)."""
    from bench.train.speed import _compile_blocker

    if _compile_blocker("cpu") is not None:
        pytest.skip(_compile_blocker("cpu"))
    torch.manual_seed(0)
    net = TinyNet()
    SpeedOptions(compile=True).apply(net, None, device="cpu", log=print)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    out = net(x)
    out.sum().backward()
    assert net.forward.compiled is not None and net.forward.fallback_reason is None
    torch.testing.assert_close(out, net.forward.eager(x), rtol=1e-5, atol=1e-6)


def test_backend_flags_are_set_for_cuda_runs_and_restored() -> None:
    b = torch.backends
    saved = (b.cudnn.benchmark, b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32)
    with SpeedOptions().backend("cpu") as notes:
        assert notes == [] and (b.cudnn.benchmark, b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32) == saved
    # the flags are process globals: settable without a GPU, so the CUDA branch's bookkeeping is checked here
    with SpeedOptions(cudnn_benchmark=True, tf32=True).backend("cuda") as notes:
        assert b.cudnn.benchmark and b.cuda.matmul.allow_tf32 and b.cudnn.allow_tf32
        assert notes and "TF32" in notes[0]
    with SpeedOptions().backend("cuda"):
        assert not b.cudnn.benchmark and not b.cuda.matmul.allow_tf32 and not b.cudnn.allow_tf32
    assert (b.cudnn.benchmark, b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32) == saved


def test_bad_options_are_refused_with_a_fix() -> None:
    with pytest.raises(BenchError, match="Unknown precision 'fp16'") as err:
        SpeedOptions(precision="fp16")
    assert err.value.fix and "bf16" in err.value.fix
    with pytest.raises(BenchError, match="Unknown speed option 'channel_last'"):
        SpeedOptions.from_dict({"channel_last": True})
    assert SpeedOptions.from_dict({"compile": True}) == SpeedOptions(compile=True)
    with pytest.raises(BenchError, match="ADM prior"):
        SpeedOptions().apply(TinyNet(), nn.Linear(2, 2), device="cpu")
