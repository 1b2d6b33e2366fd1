"""Registries: decorator registration, lookup, and 'did you mean' on a miss."""

from __future__ import annotations

import pytest

from bench.errors import UnknownNameError
from bench.registry import Registry


def test_register_and_lookup_with_metadata() -> None:
    reg: Registry = Registry("widget")

    @reg.register("alpha", task="x")
    def alpha() -> int:
        return 1

    assert reg.get("alpha") is alpha
    assert reg.meta("alpha") == {"task": "x"}
    assert "alpha" in reg and "beta" not in reg
    assert reg.names() == ["alpha"] and len(reg) == 1


def test_miss_suggests_close_names() -> None:
    reg: Registry = Registry("widget")
    reg.register("griddehazenet")(object)
    reg.register("msbdn")(object)
    with pytest.raises(UnknownNameError) as e:
        reg.get("griddehazenett")
    msg = str(e.value)
    assert "Unknown widget 'griddehazenett'" in msg
    assert "Did you mean 'griddehazenet'?" in msg
    assert "bench ls widgets" in msg


def test_miss_without_close_name_has_no_suggestion() -> None:
    reg: Registry = Registry("widget")
    reg.register("msbdn")(object)
    with pytest.raises(UnknownNameError) as e:
        reg.get("zzzzzz")
    assert "Did you mean" not in str(e.value)


def test_double_registration_of_another_object_fails() -> None:
    reg: Registry = Registry("widget")
    reg.register("a")(int)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(float)


def test_autoload_imports_plugin_module_on_first_lookup() -> None:
    reg: Registry = Registry("thing", autoload=("json",))
    assert not reg._loaded
    assert reg.names() == []
    assert reg._loaded


def test_project_registries_hold_their_entries() -> None:
    import bench

    assert "l2" in bench.LOSSES and "l1" in bench.LOSSES
    assert {"smoke_dehazing", "smoke_deraining", "smoke_lowlight"} <= set(bench.DATASETS.names())
    with pytest.raises(UnknownNameError, match="Did you mean 'l2'"):
        bench.LOSSES.get("l3")
