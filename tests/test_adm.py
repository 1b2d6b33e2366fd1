"""Our ADM UNet computes guided-diffusion's function and has its exact state_dict structure."""

from __future__ import annotations

import inspect
import re

import pytest
import torch
from support.shared import fill_by_key, load_fixture, shared_path

from bench.errors import BenchError, MissingFileError
from bench.prior import ADM256_UNCOND_KWARGS, create_adm, load_prior

ATOL = 1e-4  # the fixture's float32 CPU tolerance

# guided_diffusion/script_util.py::create_model, in order (openai/guided-diffusion @ 22e0df8)
CREATE_MODEL_ARGS = [
    "image_size", "num_channels", "num_res_blocks", "channel_mult", "learn_sigma", "class_cond", "use_checkpoint",
    "attention_resolutions", "num_heads", "num_head_channels", "num_heads_upsample", "use_scale_shift_norm",
    "dropout", "resblock_updown", "use_fp16", "use_new_attention_order",
]

SMALL = dict(image_size=16, num_channels=32, num_res_blocks=1, channel_mult="1,2", learn_sigma=True,
             attention_resolutions="8", num_head_channels=16, use_scale_shift_norm=True, resblock_updown=True)


@pytest.fixture(scope="module")
def tiny():
    """(model, io) for fixtures/adm_tiny: weights loaded strictly, eval mode."""
    meta, io = load_fixture("adm_tiny")
    model = create_adm(**meta["guided_diffusion_create_model_kwargs"])
    state = torch.load(shared_path("fixtures", "adm_tiny", "state_dict.pt"), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in model.parameters()) == meta["params"]
    return model.eval(), io


def _small(**over) -> torch.nn.Module:
    return fill_by_key(create_adm(**{**SMALL, **over}), 0.05).eval()


def _run(model, io, objective):
    x = io["x"].clone().requires_grad_(True)
    out, h = model(x, io["t"], return_h=True)
    objective(out, h).backward()
    return out.detach(), h.detach(), x.grad


def test_create_adm_takes_exactly_create_model_arguments():
    assert list(inspect.signature(create_adm).parameters) == CREATE_MODEL_ARGS


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_fixture_out_and_h(tiny, attention):
    model, io = tiny
    model.configure(attention=attention)
    with torch.no_grad():
        out, h = model(io["x"], io["t"], return_h=True)
    model.configure(attention="sdpa")
    assert out.shape == io["out"].shape == (2, 6, 32, 32)
    torch.testing.assert_close(out, io["out"], atol=ATOL, rtol=0)
    torch.testing.assert_close(h, io["h"], atol=ATOL, rtol=0)
    torch.testing.assert_close(model(io["x"], io["t"]).detach(), io["out"], atol=ATOL, rtol=0)


def test_fixture_grad_x(tiny):
    """The fixture's grad_x is, to the last bit, the gradient of mean(out[:, :3]^2) alone.

    Its h term carried no gradient when it was made (h was evidently detached): the official
    guided-diffusion code run with h taken by a forward hook gives the full gradient that our model
    gives. So this test checks the out-term against the fixture, the xfail below records the
    discrepancy, and the finite-difference test checks the h-term path.
    """
    model, io = tiny
    _, _, grad = _run(model, io, lambda out, h: out[:, :3].pow(2).mean())
    torch.testing.assert_close(grad, io["grad_x"], atol=ATOL, rtol=0)


@pytest.mark.xfail(strict=True, reason="fixture grad_x lacks the gradient of mean(h^2) (see test_fixture_grad_x)")
def test_fixture_grad_x_with_h_term(tiny):
    model, io = tiny
    _, _, grad = _run(model, io, lambda out, h: out[:, :3].pow(2).mean() + h.pow(2).mean())
    torch.testing.assert_close(grad, io["grad_x"], atol=ATOL, rtol=0)


def test_full_gradient_matches_finite_differences(tiny):
    """d/dx [mean(out[:, :3]^2) + mean(h^2)] along random directions, float64, central differences."""
    model, io = tiny
    m64 = create_adm(**load_fixture("adm_tiny")[0]["guided_diffusion_create_model_kwargs"]).double().eval()
    m64.load_state_dict(model.state_dict())
    m64.dtype = torch.float64  # the torso dtype (float32 unless use_fp16), here float64 for exact differences

    def f(x):
        out, h = m64(x, io["t"], return_h=True)
        return out[:, :3].pow(2).mean() + h.pow(2).mean()

    x = io["x"].double().requires_grad_(True)
    f(x).backward()
    g = torch.Generator().manual_seed(0)
    eps = 1e-4
    with torch.no_grad():
        for _ in range(2):
            v = torch.randn(x.shape, generator=g, dtype=torch.float64)
            fd = (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
            assert abs(fd.item() - (x.grad * v).sum().item()) <= 1e-6 * max(1.0, abs(fd.item()))


def _official_keys() -> dict[str, tuple[int, ...]]:
    keys = {}
    for line in shared_path("fixtures", "adm256_uncond_keys.txt").read_text().splitlines():
        if line.strip():
            name, shape = re.fullmatch(r"(\S+) \(([\d, ]*)\)", line.strip()).groups()
            keys[name] = tuple(int(s) for s in shape.split(",") if s.strip())
    return keys


def test_adm256_uncond_structure_on_meta_device():
    with torch.device("meta"):
        model = create_adm(**ADM256_UNCOND_KWARGS)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    official = _official_keys()
    assert len(official) == 566
    assert list(ours) == list(official)  # same keys in the same order
    assert ours == official
    assert sum(p.numel() for p in model.parameters()) == 552_814_086


@pytest.mark.parametrize("new_order", [False, True])
def test_sdpa_matches_eager_attention(new_order):
    model = _small(use_new_attention_order=new_order)
    x, t = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)), torch.tensor([3, 900])
    with torch.no_grad():
        a = model.configure(attention="sdpa")(x, t)
        b = model.configure(attention="eager")(x, t)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_attention_orders_differ():
    """The two qkv layouts are different functions of the same weights (so the flag matters)."""
    x, t = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(2)), torch.tensor([10])
    with torch.no_grad():
        a = _small(use_new_attention_order=False)(x, t)
        b = _small(use_new_attention_order=True)(x, t)
    assert (a - b).abs().max() > 1e-4


def test_checkpointing_channels_last_same_numbers():
    model = _small().requires_grad_(False)  # frozen, as a prior is: gradients reach the input only
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    t = torch.tensor([1, 500])
    ref = _run(model, {"x": x, "t": t}, lambda o, h: o.pow(2).mean() + h.pow(2).mean())
    for opts in ({"use_checkpoint": True}, {"channels_last": True}):
        model.configure(**opts)
        got = _run(model, {"x": x, "t": t}, lambda o, h: o.pow(2).mean() + h.pow(2).mean())
        model.configure(use_checkpoint=False, channels_last=False)
        for a, b in zip(got, ref):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_bf16_autocast_close_and_float32_out():
    model = _small()
    x, t = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(4)), torch.tensor([1, 500])
    with torch.no_grad():
        ref = model(x, t)
        got = model.configure(autocast_dtype=torch.bfloat16)(x, t)
    model.configure(autocast_dtype=None)
    assert got.dtype == torch.float32
    assert (got - ref).abs().max() <= 0.05 * ref.abs().max()  # bf16 keeps ~3 significant digits


def test_fp16_converts_only_torso_convs():
    model = create_adm(**{**SMALL, "use_fp16": True})
    sd = model.state_dict()
    assert sd["input_blocks.1.0.in_layers.2.weight"].dtype == torch.float16
    assert sd["middle_block.1.qkv.weight"].dtype == torch.float16
    assert sd["input_blocks.1.0.in_layers.0.weight"].dtype == torch.float32  # GroupNorm
    assert sd["input_blocks.1.0.emb_layers.1.weight"].dtype == torch.float32  # Linear
    assert sd["out.2.weight"].dtype == torch.float32 and sd["time_embed.0.weight"].dtype == torch.float32


def test_other_create_model_options_build_and_run():
    kw = {**SMALL, "resblock_updown": False, "use_scale_shift_norm": False, "learn_sigma": False, "class_cond": True}
    model = create_adm(**kw).eval()
    keys = model.state_dict()
    assert "label_emb.weight" in keys and "input_blocks.2.0.op.weight" in keys
    assert any(k.endswith(".conv.weight") for k in keys)  # Upsample conv
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 16, 16), torch.tensor([5]), y=torch.tensor([3]))
    assert out.shape == (1, 3, 16, 16)


def test_load_prior_missing_file_names_it(tmp_path):
    with pytest.raises(MissingFileError) as e:
        load_prior(tmp_path / "256x256_diffusion_uncond.pt")
    msg = str(e.value)
    assert "256x256_diffusion_uncond.pt" in msg and "weights/" in msg and "adm256_uncond" in msg
    assert e.value.doc == "Weights"


def test_load_prior_by_manifest_name_when_absent(tmp_path, monkeypatch):
    from bench import weights

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path / "w"))
    if weights.find("adm256_uncond") is not None:
        pytest.skip("the real 256x256_diffusion_uncond.pt is installed here")
    with pytest.raises(MissingFileError) as e:
        load_prior("adm256_uncond")
    assert "256x256_diffusion_uncond.pt" in str(e.value) and e.value.doc == "Weights"


def test_load_prior_strict_and_frozen(tiny, tmp_path):
    meta, io = load_fixture("adm_tiny")
    kw = meta["guided_diffusion_create_model_kwargs"]
    model = load_prior(shared_path("fixtures", "adm_tiny", "state_dict.pt"), device="cpu", **kw)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    with torch.no_grad():
        torch.testing.assert_close(model(io["x"], io["t"]), io["out"], atol=ATOL, rtol=0)
    with pytest.raises(BenchError, match="is not the 32x32 unconditional ADM DiffLoss needs"):
        load_prior(shared_path("fixtures", "adm_tiny", "state_dict.pt"), **{**kw, "num_channels": 64})


def test_fp16_torso_runs_close_to_fixture(tiny):
    """use_fp16 as in the official sampling scripts: same function, float16 rounding (~1% here)."""
    meta, io = load_fixture("adm_tiny")
    model = create_adm(**{**meta["guided_diffusion_create_model_kwargs"], "use_fp16": True}).eval()
    model.load_state_dict(tiny[0].state_dict())
    with torch.no_grad():
        out, h = model(io["x"], io["t"], return_h=True)
    assert out.dtype == torch.float32 and h.dtype == torch.float16
    assert (out - io["out"]).abs().max() <= 0.01 * io["out"].abs().max()
    assert (h.float() - io["h"]).abs().max() <= 0.01 * io["h"].abs().max()
