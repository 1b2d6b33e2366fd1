"""``bench check baselines`` runs the fixture proofs; ``bench ls baselines`` lists fast and shows their last verdict.

The fidelity column is the fixture check really run, not a claim. The first test runs every fixture
check (about 22 s on a shared 2-core CPU) into a fresh cache; the rest use one cheap network (IAT,
91k parameters) or the cache.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from support.shared import fill_by_key, shared_path
from torch import nn

import bench
from bench import fidelity, listing

ALL = {"fsdgn", "mb_taylorformer", "rcdnet", "efderain", "deeplpf", "iat", "msbdn", "griddehazenet"}


@pytest.fixture(scope="module")
def cold_table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str], list[list]]]:
    """``bench check baselines`` computed from nothing: an empty cache folder."""
    shared_path("fixtures")  # skip loudly (fail under CI=true) without the fixtures
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_CACHE", str(cache))
        _, headers, rows = listing.check_table()
        yield cache, headers, rows


def _fixture_meta(name: str) -> dict:
    return json.loads((fidelity.fixture_dir(name) / "meta.json").read_text())


def test_eight_rows_all_fixture_verified_with_the_official_param_counts(cold_table) -> None:
    cache, headers, rows = cold_table
    assert headers[:3] == ["name", "task", "params (M)"] and headers[-1] == "fidelity"
    assert {r[0] for r in rows} == ALL and len(rows) == 8
    for name, task, params_m, gflops, repo, fid in rows:
        meta = _fixture_meta(name)
        assert fid.startswith("fixture-verified (max err "), f"{name}: {fid}"
        # IAT's proof leaves its ill-conditioned enhanced pixels unjudged and says so (bench.fidelity.compare_iat)
        assert ("% of outputs ill-conditioned, not judged)" in fid) == (name == "iat"), f"{name}: {fid}"
        assert params_m == f"{meta['params'] / 1e6:.3f}", name
        assert repo == meta["official_repo"], name
        assert task and float(gflops) > 0, name
    entries = sorted((cache / "listing").glob("*.json"))
    assert len(entries) == 8
    for e in entries:  # the exact count, not only its rounding, equals the official one
        facts = json.loads(e.read_text())
        assert facts["params"] == _fixture_meta(e.name.rsplit("-", 1)[0])["params"], e.name


def test_second_listing_comes_from_the_cache(cold_table, monkeypatch: pytest.MonkeyPatch) -> None:
    cache, _, rows = cold_table

    def no_check(name: str) -> None:
        raise AssertionError(f"fixture check of {name} re-run despite a valid cache entry")

    monkeypatch.setenv("BENCH_CACHE", str(cache))
    monkeypatch.setattr(fidelity, "check_fixture", no_check)
    assert listing.table("baselines")[2] == rows


def test_listing_runs_no_proof_and_says_so_until_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def no_check(name: str) -> None:
        raise AssertionError(f"bench ls ran the fixture proof of {name}")

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(fidelity, "check_fixture", no_check)
    _, _, rows = listing.table("baselines")
    assert {r[0] for r in rows} == ALL and all(r[-1] == listing.NOT_CHECKED for r in rows)
    iat = next(r for r in rows if r[0] == "iat")
    assert iat[2] == "0.091" and iat[3] == "3.3"  # parameters and FLOPs are still counted


def test_cache_key_follows_torch_version_and_fixture(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = listing._baseline_cache_key("iat")
    assert listing._baseline_cache_key("iat") == key
    monkeypatch.setattr(torch, "__version__", "0.0.0-other")
    assert listing._baseline_cache_key("iat") != key
    monkeypatch.undo()
    monkeypatch.setenv("BENCH_SHARED", str(tmp_path))  # no fixture there: another key
    assert listing._baseline_cache_key("iat") != key


def test_flops_count_a_known_network() -> None:
    """IAT at 256x256: 3.28 GFLOPs (conv + matmul, measured on a real CPU run and on meta: equal)."""
    assert listing._flops("iat") == "3.3"
    assert float(listing._flops("iat", size=512)) == pytest.approx(4 * 3.277, rel=0.02)  # ~ pixel count


# ----------------------------------------------------------------------------- failures are reported


def _perturbing_fill(key: str, delta: float):
    """fill_by_key, then one weight nudged: a network that is no longer the official one."""

    def fill(model: nn.Module, scale: float) -> nn.Module:
        fill_by_key(model, scale)
        with torch.no_grad():
            model.state_dict()[key].view(-1)[0] += delta
        return model

    return fill


def test_a_perturbed_weight_fails_the_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shared_path("fixtures", "iat")
    ok = fidelity.check_fixture("iat")
    assert ok.ok and ok.max_err is not None and ok.max_err <= ok.atol and ok.inputs > 0
    monkeypatch.setattr(fidelity, "fill_by_key", _perturbing_fill("local_net.conv1.weight", 0.5))
    bad = fidelity.check_fixture("iat")
    assert bad.status == fidelity.FAILED and not bad.ok
    assert bad.max_err is not None and bad.max_err > bad.atol
    assert bad.label.startswith("FAILED: input 0: max abs error")
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))  # and the listing shows it
    assert listing._baseline_facts("iat")["fidelity"] == bad.label


def _copy_fixture(name: str, dest: Path, edit) -> Path:
    src = shared_path("fixtures", name)
    d = dest / "fixtures" / name
    shutil.copytree(src, d)
    meta = json.loads((d / "meta.json").read_text())
    edit(meta)
    (d / "meta.json").write_text(json.dumps(meta))
    return dest


def test_wrong_param_count_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = _copy_fixture("iat", tmp_path, lambda m: m.update(params=m["params"] + 1))
    monkeypatch.setenv("BENCH_SHARED", str(root))
    r = fidelity.check_fixture("iat")
    assert r.status == fidelity.FAILED and r.label == "FAILED: 91,154 parameters, official 91,155"


def test_renamed_key_fails_strict_loading(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def rename(meta: dict) -> None:
        keys = meta["state_dict_keys"]
        keys["renamed.weight"] = keys.pop("local_net.conv1.weight")

    monkeypatch.setenv("BENCH_SHARED", str(_copy_fixture("iat", tmp_path, rename)))
    r = fidelity.check_fixture("iat")
    assert r.status == fidelity.FAILED
    assert "1 official keys missing (e.g. renamed.weight)" in r.reason
    assert "1 keys the official model lacks (e.g. local_net.conv1.weight)" in r.reason


def test_missing_fixture_is_said_and_not_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BENCH_SHARED", str(tmp_path / "nowhere"))
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    r = fidelity.check_fixture("iat")
    assert r.status == fidelity.NO_FIXTURE and r.label == "no fixture (set BENCH_SHARED)"
    facts = listing._baseline_facts("iat")
    assert facts["fidelity"] == r.label
    assert facts["params"] == sum(p.numel() for p in bench.build_baseline("iat").parameters())
    assert not (tmp_path / "cache" / "listing").exists()
