"""IAT-specific checks beyond the generic fixture tests (tests/test_baseline_fixtures.py).

The strongest one: with the authors' own LOL-v1 checkpoint, our ``forward`` on real
photographs gives the enhanced image that THEIR code gives. The reference
``tests/data/iat_lol_v1_reference.pt`` was made by us by running the official IAT
(cuiziteng/Illumination-Adaptive-Transformer @ c764722) outside this repository; its
``note`` field says how. It stores per image the output shape, per-channel means and 4096
pixel values at seeded positions, plus SHA-256s of the input file and of its decoded pixels.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import bench
from baselines.iat import IAT, ChannelAffine, apply_color_gamma, drop_path, load_official_checkpoint
from bench.data.base import read_image
from bench.errors import BenchError, MissingFileError
from bench.testing import fill_by_key, shared_path

REFERENCE = Path(__file__).resolve().parent.parent / "data" / "iat_lol_v1_reference.pt"
ATOL = 1e-4  # vs the official code's output on real images (we measured 0.0: bit-identical on CPU)


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    return shared_path("weights", "iat_official", "best_Epoch_lol_v1.pth")


@pytest.fixture(scope="module")
def official(checkpoint: Path) -> IAT:
    return load_official_checkpoint(checkpoint)


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- real photographs


def test_reference_file_is_small_and_describes_itself() -> None:
    assert REFERENCE.stat().st_size < 200_000
    ref = torch.load(REFERENCE, weights_only=True)
    assert ref["commit"] == "c76472265247f47cea57649af28b15018bb64cb1"
    assert "official IAT class" in ref["note"]
    assert len(ref["images"]) == 4


@pytest.mark.parametrize(
    "rel",
    [
        "real_demo/iat_low_demo.jpg",
        "lol_eval15_low_partial/low/1.png",
        "lol_eval15_low_partial/low/22.png",
        "lol_eval15_low_partial/low/780.png",
    ],
)
def test_forward_matches_official_code_on_real_images(official: IAT, rel: str) -> None:
    ref = torch.load(REFERENCE, weights_only=True)["images"][rel]
    path = shared_path("data", *rel.split("/"))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == ref["file_sha256"], f"{rel}: not the file the reference was made from"
    with Image.open(path) as im:
        pixels = np.ascontiguousarray(np.asarray(im.convert("RGB")))
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == ref["pixels_sha256"], (
        f"{rel}: this Pillow decodes the file to other pixels than the reference's; the comparison would be moot"
    )
    x = read_image(path)[None]
    with torch.no_grad():
        y = official(x)[0]
        gamma, color = (t[0] for t in official.global_net(x))  # cheap: the global branch works at 1/4 size
    assert tuple(y.shape) == tuple(ref["shape"])
    got_means = y.double().mean(dim=(1, 2))
    assert torch.allclose(got_means, ref["channel_mean"], atol=ATOL, rtol=0), (got_means, ref["channel_mean"])
    err = (y.reshape(-1)[ref["index"].long()] - ref["value"]).abs().max().item()
    assert err <= ATOL, f"{rel}: max abs error {err:.3g} vs the official output at 4096 pixels"
    assert torch.allclose(gamma, ref["gamma"], atol=ATOL, rtol=0)
    assert torch.allclose(color, ref["color"], atol=ATOL, rtol=0)


# ----------------------------------------------------------------------------- checkpoint loader


def test_loader_rejects_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="not found"):
        load_official_checkpoint(tmp_path / "best_Epoch_lol_v1.pth")


def test_loader_rejects_wrong_sha256(tmp_path: Path, checkpoint: Path) -> None:
    bad = tmp_path / checkpoint.name
    data = bytearray(checkpoint.read_bytes())
    data[-1] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(BenchError, match="SHA-256"):
        load_official_checkpoint(bad)


def test_loader_unwraps_state_dict_and_module_prefix(tmp_path: Path, checkpoint: Path, official: IAT) -> None:
    """Documented rule: ``{'state_dict': ...}`` / ``{'model': ...}`` wrappers and a ``module.`` prefix are removed."""
    sd = torch.load(checkpoint, map_location="cpu", weights_only=True)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, wrapped)
    model = load_official_checkpoint(wrapped)
    x = _rand(1, 3, 24, 40, seed=4)
    with torch.no_grad():
        assert torch.equal(model(x), official(x))
    junk = tmp_path / "junk.pth"
    torch.save({"epoch": 3}, junk)
    with pytest.raises(BenchError, match="state_dict"):
        load_official_checkpoint(junk)


def test_exposure_checkpoint_freezes_gamma_base(checkpoint: Path, tmp_path: Path) -> None:
    exposure = shared_path("weights", "iat_official", "best_Epoch_exposure.pth")
    model = load_official_checkpoint(exposure)
    assert not model.global_net.gamma_base.requires_grad
    assert load_official_checkpoint(checkpoint).global_net.gamma_base.requires_grad
    # a file under another checkpoint's name fails that name's hash check
    shutil.copy(exposure, tmp_path / checkpoint.name)
    with pytest.raises(BenchError, match="SHA-256"):
        load_official_checkpoint(tmp_path / checkpoint.name)


# ----------------------------------------------------------------------------- forward, aux maps, sizes


def test_forward_range_shape_and_output_selection(official: IAT) -> None:
    x = _rand(2, 3, 40, 56, seed=1) * 0.3  # dim, like a low-light photo
    with torch.no_grad():
        y = official(x)
        stacked = official.official_forward(x)
    assert y.shape == x.shape
    assert y.min() >= 0 and y.max() <= 1  # clamp(., 1e-8, 1) ** gamma with the trained gamma > 0
    assert y.mean() > x.mean() + 0.1  # it brightens
    assert stacked.shape == (3, *x.shape)
    assert torch.equal(y, stacked[2])


def test_aux_maps_are_separate_and_consistent(official: IAT) -> None:
    x = _rand(1, 3, 33, 47, seed=3) * 0.3
    with torch.no_grad():
        aux = official.aux_maps(x)
        y = official(x)
    assert set(aux) == {"mul", "add", "gamma", "color"}
    assert aux["mul"].shape == aux["add"].shape == x.shape
    assert aux["gamma"].shape == (1, 1) and aux["color"].shape == (1, 3, 3)
    assert aux["mul"].min() >= 0  # ReLU head
    assert aux["add"].abs().max() <= 1  # Tanh head
    rebuilt = apply_color_gamma(x * aux["mul"] + aux["add"], aux["color"], aux["gamma"])
    assert torch.equal(rebuilt, y)


def test_apply_color_gamma_is_the_per_pixel_matrix_product() -> None:
    img = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    color = torch.randn(2, 3, 3, dtype=torch.float64)
    gamma = torch.tensor([[0.7], [1.3]], dtype=torch.float64)
    got = apply_color_gamma(img, color, gamma)
    for b in range(2):
        pix = img[b].permute(1, 2, 0).reshape(-1, 3)  # official: image.view(-1, 3) then tensordot with ccm
        want = (pix @ color[b].T).clamp(1e-8, 1.0) ** gamma[b]
        assert torch.allclose(got[b].permute(1, 2, 0).reshape(-1, 3), want, atol=1e-12)


def test_channel_affine_mixes_channels_per_pixel() -> None:
    torch.manual_seed(0)
    norm = ChannelAffine(4).double()
    with torch.no_grad():
        for p in norm.parameters():
            p.copy_(torch.randn_like(p))
    x = torch.randn(2, 4, 3, 5, dtype=torch.float64)
    want = torch.einsum("ij,bjhw->bihw", norm.color, x) * norm.alpha.view(1, 4, 1, 1) + norm.beta.view(1, 4, 1, 1)
    assert torch.allclose(norm(x), want, atol=1e-12)


# ----------------------------------------------------------------------------- init, training behaviour


def test_official_initialisation() -> None:
    torch.manual_seed(0)
    model = IAT()
    assert sum(p.numel() for p in model.parameters()) == 91_154
    blk = model.local_net.mul_blocks[0]
    assert torch.equal(blk.gamma_1, torch.full((1, 16, 1, 1), 1e-4))
    assert torch.equal(blk.norm1.color, torch.eye(16))
    assert torch.count_nonzero(model.global_net.generator.attn.v.weight) == 0  # official: v starts at zero
    assert torch.equal(model.global_net.generator.attn.q, torch.ones(1, 10, 64))
    assert model.global_net.gamma_base.requires_grad  # 'lol' type trains it
    assert not IAT(type="exp").global_net.gamma_base.requires_grad
    assert [b.drop_path for b in model.local_net.add_blocks] == [0.01, 0.05, 0.1]
    # He fan-out init of local convs: std sqrt(2 / (k*k*out/groups)); conv1 of a block: 1x1x16 -> std ~0.354
    assert abs(blk.conv1.weight.std().item() - (2 / 16) ** 0.5) < 0.08
    assert torch.count_nonzero(blk.conv1.bias) == 0


def test_drop_path_is_per_sample_and_only_in_training() -> None:
    x = torch.ones(4000, 2, 3, 3)
    assert drop_path(x, 0.1, training=False) is x
    torch.manual_seed(0)
    y = drop_path(x, 0.25, training=True)
    per_sample = y.flatten(1)
    assert ((per_sample == 0).all(1) | (per_sample == 1 / 0.75).all(1)).all()  # whole sample kept or dropped
    assert abs((per_sample[:, 0] == 0).float().mean().item() - 0.25) < 0.03


def test_gradients_flow_from_forward_to_every_parameter() -> None:
    """Fixture fill weights (all non-zero; the trained checkpoint has near-zero layer scales that
    zero some gradients, in the official code too). One backward on a small input, train mode."""
    model = fill_by_key(bench.build_baseline("iat"), 0.05).train()
    torch.manual_seed(0)
    model(_rand(2, 3, 16, 20, seed=5)).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().max() > 0, name
