"""Content hashing of jobs and atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.graph.job import Job
from bench.hashing import content_hash
from bench.io import atomic_path, write_json, write_text


def test_hash_ignores_key_order_and_labels() -> None:
    a = Job("train", {"lr": 1e-4, "steps": 10}, label="one")
    b = Job("train", {"steps": 10, "lr": 1e-4}, label="two")
    assert a.key == b.key
    assert content_hash({"x": [1, 2]}) != content_hash({"x": [2, 1]})


def test_config_change_makes_a_new_job_unrelated_change_does_not() -> None:
    data = Job("prepare_data", {"dataset": "smoke_dehazing", "seed": 0})
    other = Job("prepare_data", {"dataset": "smoke_lowlight", "seed": 0})
    t1 = Job("train", {"baseline": "iat", "lr": 1e-4}, {"data": data})
    t2 = Job("train", {"baseline": "iat", "lr": 2e-4}, {"data": data})
    assert t1.key != t2.key  # the job's own config changed
    t3 = Job("train", {"baseline": "iat", "lr": 1e-4}, {"data": Job("prepare_data", {"dataset": "smoke_dehazing",
                                                                                     "seed": 1})})
    assert t1.key != t3.key  # an input's config changed
    u1 = Job("train", {"baseline": "deeplpf", "lr": 1e-4}, {"data": other})
    u2 = Job("train", {"baseline": "deeplpf", "lr": 1e-4}, {"data": Job("prepare_data", {"dataset": "smoke_lowlight",
                                                                                         "seed": 0})})
    assert u1.key == u2.key  # t1/t2's change is unrelated to u


def test_walk_lists_dependencies_first_once() -> None:
    d = Job("prepare_data", {"a": 1})
    t1 = Job("train", {"s": 1}, {"data": d})
    t2 = Job("train", {"s": 2}, {"data": d})
    r = Job("render", {}, {"x": t1, "y": t2})
    order = [j.key for j in r.walk()]
    assert order[0] == d.key and order[-1] == r.key and len(order) == len(set(order)) == 4


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "x.json"
    write_json(p, {"a": 1})
    assert p.read_text().strip().startswith("{")
    write_text(p, "second")
    assert p.read_text() == "second"
    assert [f.name for f in p.parent.iterdir()] == ["x.json"]  # no temp files left


def test_atomic_write_failure_leaves_old_content_and_no_temp(tmp_path: Path) -> None:
    p = tmp_path / "x.txt"
    write_text(p, "old")
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert p.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["x.txt"]
