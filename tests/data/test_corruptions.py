"""CUB synthetic degradations: ImageNet-C fog fidelity, severity tables, determinism, cache, example grid."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.data import corruptions as C
from bench.data import degrade
from bench.errors import BenchError, UnknownNameError

# ImageNet-C's own fog (hendrycks/robustness, ImageNet-C/imagenet_c/imagenet_c/corruptions.py), run by us outside
# the repository on RAMP after np.random.seed(seed); its float output / 255. Values: mean, std, pixels (0,0),
# (100,37), (223,223). Tolerance 1e-12: ours is bit-identical before their final "* 255".
RAMP_FOG = {
    (1, 0): (0.43719658502837644, 0.10577828589949344, [0.0, 0.0, 0.0],
             [0.33785753920146533, 0.4288469985690273, 0.3826301303188371], [0.5832620941271008] * 3),
    (3, 7): (0.47003696974178644, 0.10835662358362193, [0.5581959225538689] * 3,
             [0.346424061016213, 0.4104497642667171, 0.3779287721394769], [0.5548326339615224] * 3),
    (5, 123): (0.4943646334969839, 0.13969441814578423, [0.3770227025768584] * 3,
               [0.31429761352946056, 0.3700608905001679, 0.3417366863245705], [0.4566232419090484] * 3),
}
# Their plasma_fractal(256, wibbledecay=2) after np.random.seed(5): mean, [17, 200], [255, 3].
PLASMA = (0.4891101539187054, 0.5853409931893871, 0.632659562955088)
TOL = 1e-12


def ramp() -> np.ndarray:
    yy, xx = np.mgrid[0:224, 0:224]
    return np.stack([xx, yy, (xx + yy) // 2], -1).astype(np.uint8)


def photo(h: int = 48, w: int = 40, seed: int = 0) -> np.ndarray:
    """A smooth colour image with some texture (deterministic)."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    noise = np.random.default_rng(seed).random((h, w, 3)) * 0.2
    img = np.stack([0.3 + 0.5 * xx, 0.2 + 0.6 * yy, 0.5 + 0.3 * np.sin(6 * xx)], -1) + noise
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.mark.parametrize(("severity", "seed"), list(RAMP_FOG))
def test_fog_equals_imagenet_c(severity: int, seed: int) -> None:
    mean, std, p00, p_mid, p_end = RAMP_FOG[(severity, seed)]
    out = C.corrupt(ramp(), "fog", severity, seed)
    assert out.shape == (224, 224, 3) and out.dtype == np.float64
    assert abs(out.mean() - mean) < TOL and abs(out.std() - std) < TOL
    for (y, x), want in (((0, 0), p00), ((100, 37), p_mid), ((223, 223), p_end)):
        np.testing.assert_allclose(out[y, x], want, rtol=0, atol=TOL)


def test_plasma_fractal_equals_imagenet_c() -> None:
    p = C.plasma_fractal(256, 2.0, np.random.RandomState(5))
    assert p.min() == 0.0 and p.max() == 1.0
    assert abs(p.mean() - PLASMA[0]) < TOL and abs(p[17, 200] - PLASMA[1]) < TOL and abs(p[255, 3] - PLASMA[2]) < TOL
    with pytest.raises(ValueError, match="power of two"):
        C.plasma_fractal(200, 2.0, np.random.RandomState(0))


def test_fog_severities_are_imagenet_c_parameters() -> None:
    assert [tuple(C.params("fog", s).values()) for s in C.SEVERITIES] == \
        [(1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)]


@pytest.mark.parametrize("name", C.CORRUPTIONS)
def test_deterministic_any_size_in_range(name: str) -> None:
    for h, w in ((37, 53), (20, 300)):  # odd sizes; 300 needs a 512 fractal
        img = photo(h, w)
        a, b = C.corrupt(img, name, 4, 11), C.corrupt(img, name, 4, 11)
        assert a.shape == (h, w, 3) and np.array_equal(a, b)
        assert a.min() >= 0.0 and a.max() <= 1.0
        assert not np.array_equal(a, C.corrupt(img, name, 4, 12))
    float_in = C.corrupt(photo().astype(np.float64) / 255.0, name, 2, 3)
    assert np.array_equal(float_in, C.corrupt(photo(), name, 2, 3))  # uint8 and float inputs agree


@pytest.mark.parametrize("name", ["rain", "lowlight"])
def test_rain_and_lowlight_get_worse_with_severity(name: str) -> None:
    img = photo(64, 64)
    err = [np.abs(C.corrupt(img, name, s, 0) - img / 255.0).mean() for s in C.SEVERITIES]
    assert all(b > a for a, b in itertools.pairwise(err)), err
    means = [C.corrupt(img, name, s, 0).mean() for s in C.SEVERITIES]
    if name == "lowlight":
        assert all(b < a for a, b in itertools.pairwise(means)), means  # darker
    else:
        assert all(b > a for a, b in itertools.pairwise(means)), means  # more bright streaks


def test_severity_3_is_the_smoke_profile_degradation() -> None:
    img = photo()
    x = img.astype(np.float64) / 255.0
    assert np.array_equal(C.corrupt(img, "rain", 3, 9), degrade.rain(x, np.random.default_rng(9)))
    assert np.array_equal(C.corrupt(img, "lowlight", 3, 9), degrade.low_light(x, np.random.default_rng(9)))


def test_bad_names_and_severities() -> None:
    with pytest.raises(UnknownNameError, match=r"Unknown degradation 'rian'\. Did you mean 'rain'"):
        C.corrupt(photo(), "rian", 1, 0)
    for bad in (0, 6, 2.5, 3.0):
        with pytest.raises(BenchError, match="Severity must be an integer from 1 to 5"):
            C.corrupt(photo(), "fog", bad, 0)  # type: ignore[arg-type]
    with pytest.raises(BenchError, match=r"Expected an H x W x 3 image, got shape \(8, 8\)"):
        C.corrupt(np.zeros((8, 8), np.uint8), "fog", 1, 0)


def test_per_image_seeds_and_cache_key() -> None:
    a, b = b"image-a", b"image-b"
    assert C.image_seed(a, "fog", 1, 0) == C.image_seed(a, "fog", 1, 0)
    assert len({C.image_seed(a, "fog", 1, 0), C.image_seed(b, "fog", 1, 0), C.image_seed(a, "fog", 1, 1)}) == 3
    keys = {C.cache_key(a, "fog", 1, 0), C.cache_key(b, "fog", 1, 0), C.cache_key(a, "fog", 2, 0),
            C.cache_key(a, "rain", 1, 0), C.cache_key(a, "fog", 1, 1)}
    assert len(keys) == 5 and C.cache_key(a, "fog", 1, 0) == C.cache_key(a, "fog", 1, 0)


def test_cache_writes_once_and_matches_direct_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "bird.png"
    Image.fromarray(photo()).save(src)
    other = tmp_path / "other.png"
    Image.fromarray(photo(seed=1)).save(other)
    cache = C.CorruptionCache(tmp_path / "cache")
    out = cache.get(src, "fog", 2, 0)
    assert out.is_file() and out.parent.parent == tmp_path / "cache" / "fog" / "s2"
    content = src.read_bytes()
    want = C.corrupt(photo(), "fog", 2, C.image_seed(content, "fog", 2, 0))
    got = np.asarray(Image.open(out)).astype(np.float64) / 255.0
    assert np.abs(got - want).max() <= 0.5 / 255 + 1e-12  # 8-bit rounding only

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("recomputed a cached image")

    monkeypatch.setattr(C, "corrupt", boom)
    assert cache.get(src, "fog", 2, 0) == out  # served from the cache
    monkeypatch.undo()
    paths = cache.many([src, other], "fog", 2, 0)
    assert paths[0] == out and paths[1] != out
    assert not np.array_equal(np.asarray(Image.open(paths[0])), np.asarray(Image.open(paths[1])))


def test_grid_png_layout(tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    Image.fromarray(photo(40, 40)).save(src)
    out = C.render_grid([src, photo(30, 50, seed=2)], tmp_path / "grid.png", tile=40)
    im = np.asarray(Image.open(out))
    assert im.shape == (16 + 2 * 3 * 42, 72 + 6 * 42, 3)  # 2 images x 3 degradations rows; clean + 5 columns
    clean_tile = im[16:56, 72:112]
    assert np.array_equal(clean_tile, photo(40, 40))  # a 40x40 image at tile 40 is shown unchanged
    fog_s5 = im[16:56, 72 + 5 * 42:72 + 5 * 42 + 40].astype(np.float64) / 255.0
    want = C.corrupt(photo(40, 40), "fog", 5, C.image_seed(src.read_bytes(), "fog", 5, 0))
    assert np.abs(fog_s5 - want).max() <= 0.5 / 255 + 1e-12
